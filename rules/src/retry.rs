//! When a delivery is tried again (DOMAIN.md §4): each channel's retry schedule, `Retry-After`,
//! jitter, and the delivery's expiry — a late reminder is worse than none. Pure: the outbox asks
//! with the attempt's outcome, the time and a jitter draw, and gets the delivery's next state.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How a delivery leaves the building, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// SMTP.
    Email,
    /// A Slack-style incoming webhook.
    Slack,
    /// A signed webhook (Standard Webhooks).
    Webhook,
    /// invoiceflow's own task manager (a database write).
    Task,
    /// QuickBooks' `invoice/{id}/send`.
    SendInvoice,
}

impl Channel {
    /// The channel an action kind goes through (`email`, `slack`, …).
    pub fn of_action(kind: &str) -> Option<Self> {
        match kind {
            "email" => Some(Self::Email),
            "slack" => Some(Self::Slack),
            "webhook" => Some(Self::Webhook),
            "task" => Some(Self::Task),
            "send_invoice" => Some(Self::SendInvoice),
            _ => None,
        }
    }

    /// The waits before each retry: after attempt `n` (from 1), the `n`-th entry; past the end,
    /// the delivery is given up.
    ///
    /// - Email: from 5 minutes, doubling, up to 4,000 seconds, while the delivery lives.
    /// - Webhooks, Slack and QuickBooks: Svix's schedule — immediately, 5 s, 5 min, 30 min, 2 h,
    ///   5 h, 10 h, 10 h.
    /// - Tasks are written to our own database: a failure there is retried soon, a few times.
    pub fn schedule(self) -> &'static [i64] {
        const EMAIL: &[i64] = &[300, 600, 1200, 2400, 4000, 4000, 4000, 4000, 4000, 4000, 4000, 4000];
        const SVIX: &[i64] = &[5, 300, 1800, 7200, 18_000, 36_000, 36_000];
        const TASK: &[i64] = &[1, 5, 30];
        match self {
            Self::Email => EMAIL,
            Self::Slack | Self::Webhook | Self::SendInvoice => SVIX,
            Self::Task => TASK,
        }
    }
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// The peer took it (SMTP 250, HTTP 2xx with Slack's `ok`).
    Delivered,
    /// Worth trying again: SMTP 4xx, HTTP 429 or 5xx, a timeout, a refused connection.
    Transient {
        /// What the peer asked for (`Retry-After`, in seconds), honoured as it is.
        retry_after: Option<Duration>,
        /// What happened.
        detail: String,
    },
    /// Trying again would give the same: SMTP 5xx, HTTP 4xx, Slack's `channel_not_found`.
    Permanent {
        /// What happened.
        detail: String,
        /// The destination itself is gone (HTTP 410, Slack's `channel_is_archived`…): no delivery
        /// to it can succeed until an admin fixes it.
        disable_destination: bool,
    },
    /// Not attempted: the peer's pace (Slack's one message a second per webhook) puts this
    /// delivery at `until`. Uses up no attempt.
    Deferred {
        /// When its turn comes.
        until: DateTime<Utc>,
    },
}

/// A delivery's state after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Delivered: done.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Given up: the reason goes to the dead letters, and an alert.
    Dead(String),
    /// The next try would come after the delivery's expiry: dropped, with the reason.
    Expired(String),
}

/// The delivery's next state after attempt number `attempt` (from 1) gave `outcome` at `now`.
/// `jitter` (in 0 … 1) spreads retries by up to ±10 % so that a peer coming back is not hit by
/// every delivery at once; a `Retry-After` is honoured exactly.
pub fn next(
    channel: Channel,
    attempt: u32,
    outcome: &Attempted,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    jitter: f64,
) -> Next {
    let (retry_after, detail) = match outcome {
        Attempted::Delivered => return Next::Delivered,
        Attempted::Permanent { detail, .. } => return Next::Dead(detail.clone()),
        Attempted::Transient { retry_after, detail } => (*retry_after, detail),
        Attempted::Deferred { until } => {
            return match expires_at {
                Some(expiry) if *until > expiry => Next::Expired("its turn would come after the expiry".into()),
                _ => Next::RetryAt(*until),
            };
        }
    };
    let schedule = channel.schedule();
    let Some(wait) = usize::try_from(attempt).ok().and_then(|n| n.checked_sub(1)).and_then(|i| schedule.get(i)) else {
        return Next::Dead(format!("{detail} (gave up after {attempt} attempts)"));
    };
    let wait = retry_after.unwrap_or_else(|| {
        let spread = (jitter.clamp(0.0, 1.0) - 0.5) * 0.2;
        // Milliseconds, so that a 5 s wait moves by up to half a second.
        let millis = (*wait as f64 * 1000.0 * (1.0 + spread)).round();
        Duration::milliseconds(millis as i64)
    });
    let at = now + wait.max(Duration::zero());
    match expires_at {
        Some(expiry) if at > expiry => Next::Expired(format!(
            "{detail} (the next try, at {}, would be after the expiry)",
            at.format("%Y-%m-%d %H:%M UTC")
        )),
        _ => Next::RetryAt(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn transient() -> Attempted {
        Attempted::Transient { retry_after: None, detail: "451 try later".into() }
    }

    #[test]
    fn email_backs_off_from_five_minutes_to_four_thousand_seconds() {
        let now = t("2026-11-25T09:00:00Z");
        let waits: Vec<i64> = (1..=6)
            .map(|n| match next(Channel::Email, n, &transient(), now, None, 0.5) {
                Next::RetryAt(at) => (at - now).num_seconds(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, [300, 600, 1200, 2400, 4000, 4000]);
    }

    #[test]
    fn webhooks_follow_svix_and_give_up_after_the_last_step() {
        let now = t("2026-11-25T09:00:00Z");
        let waits: Vec<Option<i64>> = (1..=8)
            .map(|n| match next(Channel::Webhook, n, &transient(), now, None, 0.5) {
                Next::RetryAt(at) => Some((at - now).num_seconds()),
                Next::Dead(_) => None,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, [Some(5), Some(300), Some(1800), Some(7200), Some(18_000), Some(36_000), Some(36_000), None]);
    }

    #[test]
    fn jitter_spreads_by_a_tenth_and_retry_after_is_honoured_exactly() {
        let now = t("2026-11-25T09:00:00Z");
        let at = |jitter| match next(Channel::Slack, 2, &transient(), now, None, jitter) {
            Next::RetryAt(at) => (at - now).num_seconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!((at(0.0), at(1.0)), (270, 330));
        let asked = Attempted::Transient { retry_after: Some(Duration::seconds(42)), detail: "429".into() };
        assert_eq!(next(Channel::Slack, 1, &asked, now, None, 0.9), Next::RetryAt(now + Duration::seconds(42)));
    }

    #[test]
    fn a_retry_after_the_expiry_drops_the_delivery_and_permanent_failures_are_dead() {
        let now = t("2026-11-25T09:00:00Z");
        let expiry = Some(t("2026-11-25T09:10:00Z"));
        assert!(matches!(next(Channel::Email, 3, &transient(), now, expiry, 0.5), Next::Expired(_)));
        assert_eq!(
            next(Channel::Email, 2, &transient(), now, expiry, 0.5),
            Next::RetryAt(t("2026-11-25T09:10:00Z")),
            "at the expiry itself it may still go"
        );
        assert_eq!(next(Channel::Email, 1, &transient(), now, expiry, 0.5), Next::RetryAt(t("2026-11-25T09:05:00Z")));
        let gone = Attempted::Permanent { detail: "550 no such user".into(), disable_destination: false };
        assert_eq!(next(Channel::Email, 1, &gone, now, expiry, 0.5), Next::Dead("550 no such user".into()));
        assert_eq!(next(Channel::Task, 1, &Attempted::Delivered, now, None, 0.5), Next::Delivered);
    }
}

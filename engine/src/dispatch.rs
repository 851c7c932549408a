//! Turning the outbox into deliveries. Each round leases a batch of due deliveries to this node,
//! re-checks each workflow reminder's record (paid in between ⇒ cancelled, with the reason), makes
//! one attempt through the connector, and records it with the delivery's next state — delivered,
//! retried later per the channel's schedule, dead, or expired. A node that dies mid-round leaves
//! its leases to run out; another node then takes the deliveries over, and the connector's
//! idempotency key (Message-ID, `webhook-id`) lets the receiver recognise a re-sent attempt.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt as _;
use invoiceflow_connectors::{Attempted, Connector, Delivery};
use invoiceflow_rules::retry::{self, Channel, Next};
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::workflow::config::{WorkflowConfig, WorkflowKind};
use invoiceflow_rules::workflow::plan::qualifies;

use crate::clock::Clock;
use invoiceflow_rules::AccountName;
use invoiceflow_rules::script::seen::Seen;
use invoiceflow_rules::script::{About, Action, Cause, Intent};

use crate::store::{Attempt, Claimed, DisabledDestination, Finished, NewIntent, Store, StoreError};

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Deliveries leased.
    pub claimed: u64,
    /// Delivered.
    pub delivered: u64,
    /// To be tried again later.
    pub retrying: u64,
    /// Given up (dead) or past their expiry.
    pub failed: u64,
    /// Cancelled at claim time: the record no longer qualifies.
    pub cancelled: u64,
    /// Not attempted yet: put off to their turn at a peer's pace.
    pub deferred: u64,
    /// Alerts put in the outbox (deliveries dead, destinations disabled).
    pub alerted: u64,
}

impl std::ops::AddAssign for Round {
    fn add_assign(&mut self, o: Self) {
        self.claimed += o.claimed;
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.failed += o.failed;
        self.cancelled += o.cancelled;
        self.deferred += o.deferred;
        self.alerted += o.alerted;
    }
}

/// How a node dispatches.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    /// This node's name in leases and attempt rows.
    pub node: String,
    /// How long a lease lasts: a delivery not finished by then may be taken over.
    pub lease: Duration,
    /// Deliveries leased per round.
    pub batch: u32,
    /// Attempts under way at once in a round.
    pub concurrency: usize,
    /// Where alerts go (a delivery dead, a destination disabled); none: logged only.
    pub alerts: Option<AlertRoute>,
}

/// Where alerts go: a configured destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertRoute {
    /// A Slack destination, by name.
    Slack(String),
    /// A signed-webhook destination, by name.
    Webhook(String),
    /// Email addresses.
    Email(Vec<String>),
}

impl AlertRoute {
    /// The alert about delivery `seq` of `intent`, as an intent of its own, under its key.
    fn alert(&self, seq: i64, intent: &Intent, what: &str, why: &str) -> NewIntent {
        let text = format!(
            "invoiceflow: {what} — {} for {} on {}: {why}. Once fixed: `invoiceflow outbox retry {seq}`.",
            intent.action.kind(),
            intent.rule,
            intent.record
        );
        let action = match self {
            Self::Slack(destination) => Action::Slack { destination: destination.clone(), text, blocks: None },
            Self::Webhook(destination) => Action::Webhook {
                destination: destination.clone(),
                payload: serde_json::json!({"alert": what, "delivery": seq, "channel": intent.action.kind(),
                    "source": intent.rule, "record": intent.record.to_string(), "reason": why}),
            },
            Self::Email(to) => Action::Email {
                to: to.clone(),
                cc: Vec::new(),
                subject: format!("invoiceflow: {what}"),
                text,
                html: None,
            },
        };
        NewIntent {
            key: format!("alert:{seq}:{}", what.split_whitespace().last().unwrap_or("failed")),
            intent: Intent {
                rule: ALERT_SOURCE.into(),
                version: "1".into(),
                cause: Cause::Failure { delivery: seq },
                record: intent.record.clone(),
                seen: intent.seen.clone(),
                action,
            },
        }
    }
}

impl AlertRoute {
    /// The alert that QuickBooks company `company` needs reconnecting for `reason`, once per
    /// disconnection (`version`: its tokens' version, which the disconnection bumped).
    pub fn disconnected(&self, company: &AccountName, version: i64, reason: &str) -> NewIntent {
        let what = format!("QuickBooks company {company} needs reconnecting");
        let fix = format!("Its QuickBooks traffic is paused until `invoiceflow quickbooks connect {company}`");
        let action = match self {
            Self::Slack(destination) => Action::Slack {
                destination: destination.clone(),
                text: format!("invoiceflow: {what}: {reason}. {fix}."),
                blocks: None,
            },
            Self::Webhook(destination) => Action::Webhook {
                destination: destination.clone(),
                payload: serde_json::json!({"alert": "QuickBooks company needs reconnecting", "company": company.as_str(),
                    "reason": reason}),
            },
            Self::Email(to) => Action::Email {
                to: to.clone(),
                cc: Vec::new(),
                subject: format!("invoiceflow: {what}"),
                text: format!("{what}: {reason}.\n\n{fix}."),
                html: None,
            },
        };
        NewIntent {
            key: format!("alert:disconnected:{company}:{version}"),
            intent: Intent {
                rule: ALERT_SOURCE.into(),
                version: "1".into(),
                cause: Cause::Disconnected { reason: reason.to_owned() },
                record: About::Company { company: company.clone() },
                seen: Seen::default(),
                action,
            },
        }
    }
}

/// The cursor alerts are saved with.
const ALERT_CURSOR: &str = "alerts";

/// The source alerts are recorded under (their own failures raise no alert).
pub const ALERT_SOURCE: &str = "alert";

/// What became of one claimed delivery.
enum Fate {
    Delivered,
    Retrying,
    Failed,
    Deferred,
    /// The lease ran out and another node took the delivery over: this attempt changed nothing.
    Lost,
}

impl Dispatcher {
    /// One round at the clock's instant: the due deliveries leased, re-checked, attempted
    /// ([`Dispatcher::concurrency`] at a time) and recorded. `jitter` draws a number in 0 … 1 per
    /// delivery.
    ///
    /// # Errors
    /// [`StoreError`]; what was recorded stays, and an unfinished delivery's lease runs out.
    pub async fn round<S: Store, C: Connector + ?Sized>(
        &self,
        store: &S,
        connector: &C,
        workflows: &BTreeMap<WorkflowKind, WorkflowConfig>,
        clock: &Clock,
        mut jitter: impl FnMut() -> f64,
    ) -> Result<Round, StoreError> {
        let now = clock.now.instant();
        let claimed = store.claim(&self.node, now, self.lease, self.batch).await?;
        let mut round = Round { claimed: claimed.len() as u64, ..Round::default() };
        if claimed.is_empty() {
            return Ok(round);
        }
        let disabled: HashMap<String, DisabledDestination> =
            if claimed.iter().any(|c| c.intent.action.destination().is_some()) {
                store.disabled_destinations().await?.into_iter().map(|d| (d.name.clone(), d)).collect()
            } else {
                HashMap::new()
            };
        let mut due = Vec::with_capacity(claimed.len());
        for c in claimed {
            match no_longer_due(store, &c, workflows, clock).await? {
                Some(reason) => {
                    if store.cancel_delivery(c.seq, &reason, now).await? {
                        round.cancelled += 1;
                    }
                }
                None => due.push((c, jitter())),
            }
        }
        let mut attempts = futures_util::stream::iter(due)
            .map(|(c, draw)| self.attempt(store, connector, &disabled, c, now, draw))
            .buffer_unordered(self.concurrency.max(1));
        let (mut finished, mut fates, mut alerts) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(attempted) = attempts.next().await {
            let (f, fate, alert) = attempted?;
            match f {
                Some(f) => {
                    finished.push(f);
                    fates.push(fate);
                }
                None => fates.push(fate),
            }
            alerts.extend(alert);
        }
        drop(attempts);
        // One transaction records the round's attempts: a commit per delivery would bound the
        // outbox by the disk's flushes.
        let moved = store.finish_all(&self.node, &finished).await?;
        if !alerts.is_empty() {
            // Into the outbox like any action, once per key; the cursor is only a marker.
            let last = finished.iter().map(|f| f.seq).max().unwrap_or(0);
            round.alerted += store.save_evaluations(ALERT_CURSOR, last, &alerts, &[], now).await?;
        }
        let mut moved = moved.into_iter();
        for fate in fates {
            let fate = match fate {
                Fate::Deferred | Fate::Lost => fate,
                other => {
                    if moved.next().unwrap_or(false) {
                        other
                    } else {
                        Fate::Lost
                    }
                }
            };
            match fate {
                Fate::Delivered => round.delivered += 1,
                Fate::Retrying => round.retrying += 1,
                Fate::Failed => round.failed += 1,
                Fate::Deferred => round.deferred += 1,
                Fate::Lost => {}
            }
        }
        Ok(round)
    }

    /// One attempt at a claimed delivery: what to record of it (none when it was only put off),
    /// and its fate.
    async fn attempt<S: Store, C: Connector + ?Sized>(
        &self,
        store: &S,
        connector: &C,
        disabled: &HashMap<String, DisabledDestination>,
        c: Claimed,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Result<(Option<Finished>, Fate, Option<NewIntent>), StoreError> {
        let attempt = c.attempts + 1;
        let destination = c.intent.action.destination();
        let outcome = match destination.and_then(|d| disabled.get(d)) {
            Some(off) => Attempted::Permanent {
                detail: format!(
                    "destination {} is disabled since {} ({}): fix it, then `invoiceflow destinations enable {}` \
                     and `invoiceflow outbox retry {}`",
                    off.name,
                    off.disabled_at.format("%Y-%m-%d %H:%M UTC"),
                    off.reason,
                    off.name,
                    c.seq
                ),
                disable_destination: false,
            },
            None => connector.deliver(&Delivery { key: &c.key, intent: &c.intent, attempt, at: now }).await,
        };
        // The attempt ends now on the clock given: with an injected clock, time stands still.
        let finished_at = now;
        let channel = Channel::of_action(c.intent.action.kind()).unwrap_or(Channel::Webhook);
        let next = retry::next(channel, attempt, &outcome, finished_at, c.expires_at, jitter);
        if let (Attempted::Deferred { .. }, Next::RetryAt(until)) = (&outcome, &next) {
            let fate = if store.defer(c.seq, &self.node, *until, now).await? { Fate::Deferred } else { Fate::Lost };
            return Ok((None, fate, None));
        }
        let alerting = self.alerts.as_ref().filter(|_| c.intent.rule != ALERT_SOURCE);
        let mut alert = None;
        if let (Attempted::Permanent { detail, disable_destination: true }, Some(name)) = (&outcome, destination)
            && store.disable_destination(name, detail, now).await?
        {
            tracing::error!(
                destination = name,
                reason = %detail,
                "destination disabled: nothing goes to it until `invoiceflow destinations enable {name}`"
            );
            alert = alerting.map(|a| {
                a.alert(
                    c.seq,
                    &c.intent,
                    &format!("destination {name} disabled"),
                    &format!("{detail}; `invoiceflow destinations enable {name}` once fixed"),
                )
            });
        }
        let fate = match &next {
            Next::Delivered => Fate::Delivered,
            Next::RetryAt(_) => Fate::Retrying,
            Next::Dead(why) => {
                if alert.is_none() {
                    alert = alerting.map(|a| a.alert(c.seq, &c.intent, "a delivery failed", why));
                }
                tracing::error!(
                    delivery = c.seq, key = %c.key, source = %c.intent.rule, record = %c.intent.record, reason = %why,
                    "delivery failed for good: dead-lettered (`invoiceflow outbox list --status dead`)"
                );
                Fate::Failed
            }
            Next::Expired(why) => {
                tracing::warn!(delivery = c.seq, key = %c.key, reason = %why, "delivery expired");
                Fate::Failed
            }
        };
        let finished = Finished { seq: c.seq, attempt: Attempt { started_at: now, finished_at, outcome }, next };
        Ok((Some(finished), fate, alert))
    }
}

/// Why a workflow reminder should not go out any more (paid, voided, sent, paused… since it was
/// decided), re-checked against the record as stored now; `None` when it should, and for rules'
/// actions, which said what they meant when the change happened.
async fn no_longer_due<S: Store>(
    store: &S,
    claimed: &Claimed,
    workflows: &BTreeMap<WorkflowKind, WorkflowConfig>,
    clock: &Clock,
) -> Result<Option<String>, StoreError> {
    let Some(kind) = claimed.intent.rule.strip_prefix("workflow:").and_then(WorkflowKind::parse) else {
        return Ok(None);
    };
    let Some(config) = workflows.get(&kind) else { return Ok(None) };
    let Some(key) = claimed.intent.record.record() else { return Ok(None) };
    let Some(stored) = store.records(std::slice::from_ref(key)).await?.into_iter().next() else {
        return Ok(Some("the record is no longer stored".to_owned()));
    };
    let today = clock.today_of(&key.account);
    let subject = subject_of(stored.record, today, stored.status == "deposited");
    Ok(qualifies(kind, config, &subject, today).err().map(|why| format!("no longer due: {why}")))
}

//! When each company is swept: once as the engine starts, every `sync_every_minutes` (default
//! 15) from its sync point, and once a day over the last 25 hours whatever
//! the sync point says — a safety net for a change QuickBooks committed later than the sweeps'
//! overlap allows. Across nodes a sweep is leased in the store: one node sweeps a company at a
//! time, and a company another node swept a moment ago is not swept again.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use invoiceflow_connectors::quickbooks::api::ApiError;
use invoiceflow_rules::AccountName;

use super::sync::{Swept, sweep};
use super::{Companies, Watch, WatchError, WatchedCompany};
use crate::clock::Clock;
use crate::store::quickbooks::{ConnectionState, QuickBooksStore};
use crate::store::{Store, StoreError};

/// How far back the daily sweep reads.
pub const DAILY_LOOK_BACK: Duration = Duration::hours(25);

/// How long a node holds a sweep before another may take it over.
const SWEEP_LEASE: Duration = Duration::minutes(10);

/// A sweep that failed is tried again after this (a 429 says its own wait).
const RETRY: Duration = Duration::minutes(1);

/// The sweeps of every company, due or not.
#[derive(Debug)]
pub struct Sweeps {
    due: BTreeMap<AccountName, Due>,
}

/// When a company's next sweeps fall due.
#[derive(Debug, Clone, Copy)]
struct Due {
    /// The next sweep from the sync point; `None`: the first, as the engine starts.
    next: Option<DateTime<Utc>>,
    /// The next daily sweep.
    daily: DateTime<Utc>,
}

/// Which sweep ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKind {
    /// The first, as the engine started.
    Start,
    /// Every `sync_every_minutes`.
    Periodic,
    /// Once a day, over the last 25 hours.
    Daily,
}

/// A sweep that ran (or failed) in a round.
#[derive(Debug)]
pub struct SweepDone {
    /// The company.
    pub company: AccountName,
    /// Which sweep.
    pub kind: SweepKind,
    /// What it did.
    pub result: Result<Swept, WatchError>,
}

impl Sweeps {
    /// Every company's first sweep due at once, its daily one a day after `start`.
    pub fn new(companies: &Companies, start: DateTime<Utc>) -> Self {
        let due = companies
            .iter()
            .map(|c| (c.account.clone(), Due { next: None, daily: start + Duration::days(1) }))
            .collect();
        Self { due }
    }

    /// When the next sweep falls due (none: no company).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.due.values().map(|d| d.next.map_or(d.daily, |n| n.min(d.daily))).min()
    }

    /// Runs the sweeps due at the clock's instant, one company after another. A company not
    /// connected (or needing reconnection) is skipped until its next turn; another node's sweep
    /// under way or just done counts as this one.
    ///
    /// # Errors
    /// [`StoreError`] reading or leasing; QuickBooks' failures are in each [`SweepDone`].
    pub async fn run_due<S: Store + QuickBooksStore>(
        &mut self,
        watch: &Watch<'_, S>,
        companies: &Companies,
        clock: &Clock,
    ) -> Result<Vec<SweepDone>, StoreError> {
        let now = clock.now.instant();
        let mut done = Vec::new();
        let connections = watch.store.connections().await?;
        for company in companies.iter() {
            let Some(due) = self.due.get_mut(&company.account) else { continue };
            let every = Duration::minutes(i64::from(company.sync_every_minutes));
            let stored = connections.iter().find(|c| c.company == company.account);
            let kind = if now >= due.daily {
                SweepKind::Daily
            } else {
                match due.next {
                    None => SweepKind::Start,
                    Some(next) if now >= next => SweepKind::Periodic,
                    Some(_) => continue,
                }
            };
            let reachable = company.fixed_token.is_some()
                || stored.is_some_and(|c| c.state == ConnectionState::Connected && c.tokens.is_some());
            if !reachable {
                // Looked at again at its next turn: `quickbooks connect` may have run meanwhile.
                due.next = Some((now + every).min(due.daily));
                if kind == SweepKind::Daily {
                    due.daily = now + Duration::days(1);
                }
                continue;
            }
            // Not due if any node finished a sweep since: at start, a minute ago; periodically,
            // `every` ago (half a minute early, for timers); daily, always due.
            let not_after = match kind {
                SweepKind::Start => now - Duration::minutes(1),
                SweepKind::Periodic => now - every + Duration::seconds(30),
                SweepKind::Daily => now,
            };
            if !watch
                .store
                .claim_sweep(&company.account, company.api.realm_id(), watch.node, not_after, now, now + SWEEP_LEASE)
                .await?
            {
                let last = stored.and_then(|c| c.last_sync_at).unwrap_or(now);
                due.next = Some((last.max(now - every) + every).max(now + Duration::seconds(30)));
                if kind == SweepKind::Daily {
                    due.daily = now + Duration::days(1);
                }
                continue;
            }
            let since = (kind == SweepKind::Daily).then(|| now - DAILY_LOOK_BACK);
            let result = match sweep(watch, company, clock, since).await {
                Err(WatchError::Store(e)) => return Err(e),
                other => other,
            };
            match &result {
                Ok(_) => {
                    due.next = Some(now + every);
                    if kind == SweepKind::Daily {
                        due.daily = now + Duration::days(1);
                    }
                }
                Err(error) => {
                    watch.store.note_error(&company.account, &error.to_string(), now).await?;
                    due.next = Some(now + retry_after(error, company));
                }
            }
            done.push(SweepDone { company: company.account.clone(), kind, result });
        }
        Ok(done)
    }
}

/// When a sweep that failed with `error` is tried again.
fn retry_after(error: &WatchError, company: &WatchedCompany) -> Duration {
    match error {
        WatchError::Api { error: ApiError::RateLimited { retry_after }, .. } => *retry_after,
        WatchError::NeedsReconnect { .. } | WatchError::NotConnected(_) => {
            Duration::minutes(i64::from(company.sync_every_minutes.max(15)))
        }
        _ => RETRY,
    }
}

//! The webhook inbox, drained: queued notifications leased in a batch, grouped by company and
//! entity kind, each group's entities fetched with as few calls as QuickBooks allows (up to 1,000
//! ids a query), applied through the import path, and the notifications marked done — or put
//! off with a backoff when QuickBooks failed (429: its minute; 401: one refresh, then the company
//! needs reconnecting and waits for it).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use invoiceflow_connectors::quickbooks::api::{ApiError, Entity};

use super::{Companies, Watch, WatchError, WatchedCompany, entities};
use crate::clock::Clock;
use crate::store::quickbooks::{InboxEntry, QuickBooksStore};
use crate::store::{Moment, Outcome, Store};

/// Notifications leased per round.
const BATCH: u32 = 1000;

/// How long a node holds the notifications it leased.
const LEASE: Duration = Duration::minutes(5);

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Notifications leased.
    pub leased: u64,
    /// Notifications done (their entities applied, or gone).
    pub done: u64,
    /// Notifications put off after a failure.
    pub retrying: u64,
    /// What applying the entities did.
    pub applied: Outcome,
}

/// When a notification that failed `attempts` times is tried again: 10 s, 30 s, 1.5 min, … up to
/// an hour (a 429 says its own wait).
fn backoff(attempts: u32) -> Duration {
    Duration::seconds(10 * 3_i64.pow(attempts.min(6))).min(Duration::hours(1))
}

/// One round: leases a batch due at the clock's instant and works it through.
///
/// # Errors
/// [`WatchError::Store`]; QuickBooks' failures put notifications off instead.
pub async fn drain<S: Store + QuickBooksStore>(
    watch: &Watch<'_, S>,
    companies: &Companies,
    clock: &Clock,
) -> Result<Drained, WatchError> {
    let (store, node) = (watch.store, watch.node);
    let now = clock.now.instant();
    let leased = store.claim_inbox(node, now, now + LEASE, BATCH).await?;
    let mut round = Drained { leased: leased.len() as u64, ..Drained::default() };
    let mut by_realm: BTreeMap<String, Vec<InboxEntry>> = BTreeMap::new();
    for entry in leased {
        by_realm.entry(entry.item.realm_id.clone()).or_default().push(entry);
    }
    for (realm, entries) in by_realm {
        let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        let Some(company) = companies.by_realm(&realm) else {
            tracing::warn!(realm = %realm, "notifications for a company no longer configured: dropped");
            round.done += store.inbox_done(node, &seqs, now).await?;
            continue;
        };
        match company_round(watch, company, clock, &entries).await {
            Ok(outcome) => {
                round.applied += outcome;
                round.done += store.inbox_done(node, &seqs, now).await?;
            }
            Err(e @ WatchError::Store(_)) => return Err(e),
            Err(error) => {
                let attempts = entries.iter().map(|e| e.attempts).max().unwrap_or(0);
                let wait = match &error {
                    WatchError::Api { error: ApiError::RateLimited { retry_after }, .. } => *retry_after,
                    WatchError::NeedsReconnect { .. } | WatchError::NotConnected(_) => Duration::hours(1),
                    _ => backoff(attempts),
                };
                tracing::warn!(company = %company.account, error = %error, retry_in = wait.num_seconds(), "QuickBooks notifications put off");
                store.note_error(&company.account, &error.to_string(), now).await?;
                round.retrying += store.inbox_retry(node, &seqs, now + wait, &error.to_string()).await?;
            }
        }
    }
    Ok(round)
}

/// Rounds until the notifications due at the clock's instant are worked through (a round leased
/// fewer than a full batch).
///
/// # Errors
/// [`WatchError::Store`], after the rounds before it were saved.
pub async fn drain_all<S: Store + QuickBooksStore>(
    watch: &Watch<'_, S>,
    companies: &Companies,
    clock: &Clock,
) -> Result<Drained, WatchError> {
    let mut total = Drained::default();
    loop {
        let round = drain(watch, companies, clock).await?;
        total.leased += round.leased;
        total.done += round.done;
        total.retrying += round.retrying;
        total.applied += round.applied;
        if round.leased < u64::from(BATCH) {
            return Ok(total);
        }
    }
}

/// Fetches and applies one company's notifications.
async fn company_round<S: Store + QuickBooksStore>(
    watch: &Watch<'_, S>,
    company: &WatchedCompany,
    clock: &Clock,
    entries: &[InboxEntry],
) -> Result<Outcome, WatchError> {
    let now = clock.now.instant();
    let mut fetch: BTreeMap<Entity, BTreeSet<String>> = BTreeMap::new();
    let mut records = Vec::new();
    for e in entries {
        let Ok(entity) = e.item.entity.parse::<Entity>() else { continue };
        if e.item.operation == "Delete" {
            let at = e.item.last_updated.unwrap_or(now);
            records.extend(entities::deletion(entity, &e.item.entity_id, &company.account, at));
        } else {
            fetch.entry(entity).or_default().insert(e.item.entity_id.clone());
        }
    }
    for (entity, ids) in fetch {
        let ids: Vec<String> = ids.into_iter().collect();
        let ids = ids.as_slice();
        let values = watch
            .call(company, now, |token| async move { company.api.fetch(watch.client, &token, entity, ids).await })
            .await?;
        let read = entities::read(entity, values, &company.account, &clock.companies, now);
        for refused in &read.refused {
            tracing::error!(company = %company.account, "a QuickBooks entity cannot be read: {refused}");
        }
        records.extend(read.records);
    }
    if records.is_empty() {
        return Ok(Outcome::default());
    }
    Ok(watch.store.apply(records, &Moment { now, calendar: clock }).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_an_hour() {
        let waits: Vec<i64> = (0..9).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(waits, [10, 30, 90, 270, 810, 2430, 3600, 3600, 3600]);
    }
}

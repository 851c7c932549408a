//! Change data capture: a sweep asks QuickBooks for every Invoice, Bill, Payment and Deposit
//! changed since the company's sync point (at most 30 days back) and applies them through the
//! import path, so that what a lost webhook did not say is caught up. An entity whose answer is
//! cut at 1,000 objects is read again by query, its window halved until each half fits. The
//! sync point then moves to the sweep's start, less a minute of overlap for changes QuickBooks
//! was still committing (applying one twice changes nothing).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use invoiceflow_connectors::quickbooks::api::{ApiError, Entity, MAX_RESULTS};
use invoiceflow_connectors::secret::SecretString;

use super::{Watch, WatchError, WatchedCompany, entities};
use crate::clock::Clock;
use crate::store::quickbooks::QuickBooksStore;
use crate::store::{Moment, Outcome, Store};

/// How far back QuickBooks' CDC looks.
pub const LOOK_BACK: Duration = Duration::days(30);

/// Overlap between one sweep and the next.
const OVERLAP: Duration = Duration::minutes(1);

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// From when changes were asked for.
    pub since: Option<DateTime<Utc>>,
    /// Entities received, by kind.
    pub received: Vec<(Entity, u64)>,
    /// What applying them did.
    pub applied: Outcome,
    /// Entities refused by the parser (each logged).
    pub refused: u64,
    /// Windows read again by query because CDC's answer was cut.
    pub split_queries: u64,
}

/// Sweeps `company` from `since` (default: its sync point; never more than 30 days back) at the
/// clock's instant, and moves its sync point.
///
/// # Errors
/// [`WatchError`]: tokens, QuickBooks or the store; the sync point stays where it was.
pub async fn sweep<S: Store + QuickBooksStore>(
    watch: &Watch<'_, S>,
    company: &WatchedCompany,
    clock: &Clock,
    since: Option<DateTime<Utc>>,
) -> Result<Swept, WatchError> {
    let (store, client) = (watch.store, watch.client);
    let now = clock.now.instant();
    let stored = store.connections().await?.into_iter().find(|c| c.company == company.account);
    let oldest = now - LOOK_BACK + Duration::minutes(5);
    let since = since.or(stored.and_then(|c| c.synced_through)).unwrap_or(oldest).max(oldest);
    let answer = watch
        .call(company, now, |token| async move { company.api.cdc(client, &token, &Entity::ALL, since, now).await })
        .await?;
    let mut swept = Swept { since: Some(since), ..Swept::default() };
    let mut records = Vec::new();
    for (entity, values) in answer.entities {
        let values = if answer.truncated.contains(&entity) {
            let (values, queries) = watch
                .call(
                    company,
                    now,
                    |token| async move { by_windows(client, company, &token, entity, since, now).await },
                )
                .await?;
            swept.split_queries += queries;
            values
        } else {
            values
        };
        swept.received.push((entity, values.len() as u64));
        let read = entities::read(entity, values, &company.account, &clock.companies, now);
        for refused in &read.refused {
            tracing::error!(company = %company.account, "a QuickBooks entity cannot be read: {refused}");
        }
        swept.refused += read.refused.len() as u64;
        records.extend(read.records);
    }
    if !records.is_empty() {
        swept.applied = store.apply(records, &Moment { now, calendar: clock }).await?;
    }
    store.note_sync(&company.account, company.api.realm_id(), now - OVERLAP, now).await?;
    Ok(swept)
}

/// Every `entity` changed in [`from`, `to`), by queries whose windows are halved until each
/// answer holds fewer than 1,000 (a window of one second that still holds 1,000 is paged).
async fn by_windows(
    client: &reqwest::Client,
    company: &WatchedCompany,
    token: &SecretString,
    entity: Entity,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<serde_json::Value>, u64), ApiError> {
    let mut windows = vec![(from, to)];
    let (mut out, mut queries) = (Vec::new(), 0u64);
    while let Some((start, end)) = windows.pop() {
        let page = |position: usize| {
            format!(
                "select * from {} where MetaData.LastUpdatedTime >= '{}' and MetaData.LastUpdatedTime < '{}' \
                 orderby MetaData.LastUpdatedTime startposition {position} maxresults {MAX_RESULTS}",
                entity.as_str(),
                start.to_rfc3339_opts(SecondsFormat::Secs, true),
                end.to_rfc3339_opts(SecondsFormat::Secs, true),
            )
        };
        let first = list(company.api.query(client, token, &page(1)).await?, entity);
        queries += 1;
        let full = first.len() >= MAX_RESULTS;
        if full && end - start > Duration::seconds(1) {
            let middle = start + (end - start) / 2;
            windows.push((middle, end));
            windows.push((start, middle));
            continue;
        }
        out.extend(first);
        let mut position = 1 + MAX_RESULTS;
        let mut more = full;
        while more {
            let next = list(company.api.query(client, token, &page(position)).await?, entity);
            queries += 1;
            more = next.len() >= MAX_RESULTS;
            position += MAX_RESULTS;
            out.extend(next);
        }
    }
    Ok((out, queries))
}

/// The entities of `entity` in a `QueryResponse`.
fn list(response: serde_json::Value, entity: Entity) -> Vec<serde_json::Value> {
    match response {
        serde_json::Value::Object(mut o) => match o.remove(entity.as_str()) {
            Some(serde_json::Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

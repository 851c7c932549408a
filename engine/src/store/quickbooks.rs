//! What the store keeps about connected QuickBooks companies (migration 0009): their OAuth tokens
//! and state (`quickbooks_connections`), and the webhook notifications waiting for their entities
//! to be fetched (`quickbooks_inbox`). Every node shares both: a token pair is refreshed by one
//! node at a time (a refresh lease plus a compare-and-set on the pair's version), and inbox
//! entries are leased like deliveries.

use std::future::Future;

use chrono::{DateTime, Utc};
use invoiceflow_connectors::secret::SecretString;
use invoiceflow_rules::AccountName;

use super::StoreError;

/// Whether a company's tokens work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Tokens held; QuickBooks traffic flows.
    Connected,
    /// QuickBooks refused the refresh token (`invalid_grant`): its traffic is paused until an
    /// admin runs `invoiceflow quickbooks connect` again.
    NeedsReconnect,
}

impl ConnectionState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReconnect => "needs_reconnect",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "connected" => Ok(Self::Connected),
            "needs_reconnect" => Ok(Self::NeedsReconnect),
            other => {
                Err(StoreError::Corrupt { what: "QuickBooks connection".into(), reason: format!("state {other:?}") })
            }
        }
    }
}

/// An access token and the refresh token that renews it, with their expiries.
pub use invoiceflow_connectors::quickbooks::oauth::Tokens as TokenPair;

/// A connected (or once connected) QuickBooks company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The `[quickbooks.NAME]` it is.
    pub company: AccountName,
    /// Its QuickBooks id.
    pub realm_id: String,
    /// Whether its tokens work.
    pub state: ConnectionState,
    /// Why it needs reconnecting.
    pub reason: Option<String>,
    /// Its tokens (none once QuickBooks refused them).
    pub tokens: Option<TokenPair>,
    /// Bumped by every new pair: a refresh saves only over the version it started from.
    pub token_version: i64,
    /// When `invoiceflow quickbooks connect` last connected it.
    pub connected_at: DateTime<Utc>,
    /// Change data capture: every change up to this time is applied.
    pub synced_through: Option<DateTime<Utc>>,
    /// When a sweep last finished.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When a webhook last named it.
    pub last_webhook_at: Option<DateTime<Utc>>,
    /// The last error talking to QuickBooks, and when.
    pub last_error: Option<(String, DateTime<Utc>)>,
    /// Errors counted since it was connected.
    pub errors: u64,
}

/// A webhook notification to queue: an entity of a company to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// The company.
    pub realm_id: String,
    /// `Invoice`, `Bill`, `Payment` or `Deposit`.
    pub entity: String,
    /// The entity's id.
    pub entity_id: String,
    /// `Create`, `Update`, `Delete`, `Merge`, `Void` or `Emailed`.
    pub operation: String,
    /// QuickBooks' time of the change, when given.
    pub last_updated: Option<DateTime<Utc>>,
}

/// A queued notification, leased to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// Its number.
    pub seq: i64,
    /// What it names.
    pub item: InboxItem,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Fetches tried before this one.
    pub attempts: u32,
}

/// The inbox of one company (or of all), for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxGauge {
    /// Notifications waiting.
    pub pending: u64,
    /// When the oldest of them arrived.
    pub oldest: Option<DateTime<Utc>>,
}

/// The QuickBooks side of the store.
pub trait QuickBooksStore: Send + Sync {
    /// Saves `tokens` for `company` (QuickBooks id `realm_id`) as connected at `now`, whatever its
    /// state was; a company connected to another realm starts its sync afresh.
    fn connect_company(
        &self,
        company: &AccountName,
        realm_id: &str,
        tokens: &TokenPair,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every company ever connected, by name.
    fn connections(&self) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;

    /// Node `node` takes the refresh of `company`'s tokens at `version` until `until`, unless
    /// another node holds it or the tokens already changed; true when taken.
    fn claim_refresh(
        &self,
        company: &AccountName,
        node: &str,
        version: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Saves the pair a refresh of version `version` by `node` returned — access and (rotated)
    /// refresh token in one statement — and frees the refresh; false when the version moved on.
    fn save_refresh(
        &self,
        company: &AccountName,
        node: &str,
        version: i64,
        tokens: &TokenPair,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks `company` as needing `invoiceflow quickbooks connect` for `reason`, forgetting its
    /// tokens; true when it was connected until now.
    fn disconnect(
        &self,
        company: &AccountName,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records an error talking to QuickBooks for `company`.
    fn note_error(
        &self,
        company: &AccountName,
        error: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a finished sweep of `company` (QuickBooks id `realm_id`): changes up to `through`
    /// are applied (never moves back). A company with a fixed token, never connected, gets a row
    /// for its sync point.
    fn note_sync(
        &self,
        company: &AccountName,
        realm_id: &str,
        through: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Node `node` takes the sweep of `company` (QuickBooks id `realm_id`) until `until`, unless
    /// another node holds it or a sweep finished after `due` (it is not due yet); true when taken.
    /// A company with a fixed token, never connected, gets a row for it. [`Self::note_sync`]
    /// frees it.
    fn claim_sweep(
        &self,
        company: &AccountName,
        realm_id: &str,
        node: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Queues `items` received at `now` (a notification already queued is kept once) and notes
    /// the webhook on their companies; returns how many were new.
    fn enqueue(&self, items: &[InboxItem], now: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Node `node` leases until `until` at most `limit` queued notifications due at `now`,
    /// oldest first (a dead node's lease runs out and another takes them).
    fn claim_inbox(
        &self,
        node: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<InboxEntry>, StoreError>> + Send;

    /// Notifications `seqs`, held by `node`, done at `now`.
    fn inbox_done(
        &self,
        node: &str,
        seqs: &[i64],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Notifications `seqs`, held by `node`, failed with `error`: tried again from `next_at`.
    fn inbox_retry(
        &self,
        node: &str,
        seqs: &[i64],
        next_at: DateTime<Utc>,
        error: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Forgets the notifications done before `before` (kept until then to recognise a duplicate).
    fn prune_inbox(&self, before: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The waiting notifications of company `realm_id` (all companies: `None`).
    fn inbox_gauge(&self, realm_id: Option<&str>) -> impl Future<Output = Result<InboxGauge, StoreError>> + Send;
}

/// A row of `quickbooks_connections`, as read by [`sql::CONNECTIONS`].
pub(crate) type ConnectionRow = (
    String,
    String,
    String,
    Option<String>,
    (Option<String>, Option<i64>, Option<String>, Option<i64>),
    i64,
    i64,
    (Option<i64>, Option<i64>, Option<i64>),
    (Option<String>, Option<i64>, i64),
);

fn time(micros: i64) -> DateTime<Utc> {
    super::codec::micros_to_time(micros)
}

/// Decodes a connection row.
pub(crate) fn connection_of(row: ConnectionRow) -> Result<Connection, StoreError> {
    let (company, realm_id, state, reason, tokens, token_version, connected_at, sync, error) = row;
    let company = AccountName::new(&company)
        .map_err(|e| StoreError::Corrupt { what: "QuickBooks connection".into(), reason: e.to_string() })?;
    let tokens = match tokens {
        (Some(access), Some(access_at), Some(refresh), Some(refresh_at)) => Some(TokenPair {
            access_token: SecretString::new(access),
            access_expires_at: time(access_at),
            refresh_token: SecretString::new(refresh),
            refresh_expires_at: time(refresh_at),
        }),
        _ => None,
    };
    Ok(Connection {
        company,
        realm_id,
        state: ConnectionState::parse(&state)?,
        reason,
        tokens,
        token_version,
        connected_at: time(connected_at),
        synced_through: sync.0.map(time),
        last_sync_at: sync.1.map(time),
        last_webhook_at: sync.2.map(time),
        last_error: error.0.zip(error.1.map(time)),
        errors: u64::try_from(error.2).unwrap_or(0),
    })
}

/// An inbox item as a JSON row for [`sql::ENQUEUE`]:
/// `[realm, entity, id, operation, last_updated]`.
pub(crate) fn inbox_row(item: &InboxItem) -> serde_json::Value {
    serde_json::json!([
        item.realm_id,
        item.entity,
        item.entity_id,
        item.operation,
        item.last_updated.map_or(0, |t| t.timestamp_micros())
    ])
}

/// A row of [`sql::CLAIMED_INBOX`].
pub(crate) type InboxRow = (i64, String, String, String, String, i64, i64, i32);

/// Decodes an inbox row.
pub(crate) fn inbox_of(row: InboxRow) -> InboxEntry {
    let (seq, realm_id, entity, entity_id, operation, last_updated, received_at, attempts) = row;
    InboxEntry {
        seq,
        item: InboxItem {
            realm_id,
            entity,
            entity_id,
            operation,
            last_updated: (last_updated != 0).then(|| time(last_updated)),
        },
        received_at: time(received_at),
        attempts: u32::try_from(attempts).unwrap_or(0),
    }
}

/// The SQL of the QuickBooks tables (one text for both backends unless said).
pub(crate) mod sql {
    /// Upserts a connection: `$1` company, `$2` realm, `$3`–`$6` tokens, `$7` now.
    pub(crate) const CONNECT: &str = "INSERT INTO quickbooks_connections (company, realm_id, state, access_token, \
        access_expires_at, refresh_token, refresh_expires_at, token_version, connected_at, updated_at) \
        VALUES ($1, $2, 'connected', $3, $4, $5, $6, 1, $7, $7) ON CONFLICT (company) DO UPDATE SET \
        state = 'connected', reason = NULL, access_token = $3, access_expires_at = $4, refresh_token = $5, \
        refresh_expires_at = $6, token_version = quickbooks_connections.token_version + 1, refresh_owner = NULL, \
        refresh_until = NULL, connected_at = $7, updated_at = $7, errors = 0, last_error = NULL, last_error_at = NULL, \
        synced_through = CASE WHEN quickbooks_connections.realm_id = $2 THEN quickbooks_connections.synced_through END, \
        realm_id = $2";

    /// Every connection, by company.
    pub(crate) const CONNECTIONS: &str = "SELECT company, realm_id, state, reason, access_token, access_expires_at, \
        refresh_token, refresh_expires_at, token_version, connected_at, synced_through, last_sync_at, last_webhook_at, \
        last_error, last_error_at, errors FROM quickbooks_connections ORDER BY company";

    /// Node `$2` takes the refresh of company `$1` at version `$3` until `$5`, at `$4`.
    pub(crate) const CLAIM_REFRESH: &str = "UPDATE quickbooks_connections SET refresh_owner = $2, refresh_until = $5 \
        WHERE company = $1 AND token_version = $3 AND state = 'connected' \
        AND (refresh_until IS NULL OR refresh_until < $4 OR refresh_owner = $2)";

    /// The refreshed pair (`$4`–`$7`) of company `$1`, version `$3`, by node `$2`, at `$8`.
    pub(crate) const SAVE_REFRESH: &str = "UPDATE quickbooks_connections SET access_token = $4, access_expires_at = $5, \
        refresh_token = $6, refresh_expires_at = $7, token_version = token_version + 1, refresh_owner = NULL, \
        refresh_until = NULL, updated_at = $8 WHERE company = $1 AND token_version = $3 AND refresh_owner = $2 \
        AND state = 'connected'";

    /// Company `$1` needs reconnecting for reason `$2`, at `$3`.
    pub(crate) const DISCONNECT: &str = "UPDATE quickbooks_connections SET state = 'needs_reconnect', reason = $2, \
        access_token = NULL, access_expires_at = NULL, refresh_token = NULL, refresh_expires_at = NULL, \
        token_version = token_version + 1, refresh_owner = NULL, refresh_until = NULL, last_error = $2, \
        last_error_at = $3, errors = errors + 1, updated_at = $3 WHERE company = $1 AND state = 'connected'";

    /// Error `$2` of company `$1` at `$3`.
    pub(crate) const NOTE_ERROR: &str = "UPDATE quickbooks_connections SET last_error = $2, last_error_at = $3, \
        errors = errors + 1, updated_at = $3 WHERE company = $1";

    /// Company `$1` (realm `$4`) synced through `$2` at `$3`.
    pub(crate) const NOTE_SYNC: &str = "INSERT INTO quickbooks_connections (company, realm_id, state, connected_at, \
        synced_through, last_sync_at, updated_at) VALUES ($1, $4, 'connected', $3, $2, $3, $3) \
        ON CONFLICT (company) DO UPDATE SET synced_through = CASE WHEN quickbooks_connections.synced_through IS NULL \
        OR quickbooks_connections.synced_through < $2 THEN $2 ELSE quickbooks_connections.synced_through END, \
        last_sync_at = $3, sweep_owner = NULL, sweep_until = NULL, updated_at = $3";

    /// Node `$3` takes the sweep of company `$1` (realm `$2`) until `$5`, at `$4`, unless a sweep
    /// finished after `$6`.
    pub(crate) const CLAIM_SWEEP: &str = "INSERT INTO quickbooks_connections (company, realm_id, state, connected_at, \
        sweep_owner, sweep_until, updated_at) VALUES ($1, $2, 'connected', $4, $3, $5, $4) \
        ON CONFLICT (company) DO UPDATE SET sweep_owner = $3, sweep_until = $5 \
        WHERE (quickbooks_connections.sweep_until IS NULL OR quickbooks_connections.sweep_until < $4 \
        OR quickbooks_connections.sweep_owner = $3) \
        AND (quickbooks_connections.last_sync_at IS NULL OR quickbooks_connections.last_sync_at <= $6)";

    /// Notifications from `[realm, entity, id, operation, last_updated]` rows `$1`, received at `$2`.
    pub(crate) const ENQUEUE: super::super::sql::Sql = super::super::sql::Sql {
        sqlite: "INSERT INTO quickbooks_inbox (realm_id, entity, entity_id, operation, last_updated, received_at, \
            next_at) SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, CAST(k.value->>4 AS BIGINT), $2, $2 \
            FROM jsonb_each($1) k WHERE true ON CONFLICT DO NOTHING",
        postgres: "INSERT INTO quickbooks_inbox (realm_id, entity, entity_id, operation, last_updated, received_at, \
            next_at) SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, CAST(k.value->>4 AS BIGINT), $2, $2 \
            FROM jsonb_array_elements(CAST($1 AS jsonb)) k ON CONFLICT DO NOTHING",
    };

    /// The companies of realms `$1` (a JSON array) heard from by webhook at `$2`.
    pub(crate) const NOTE_WEBHOOK: super::super::sql::Sql = super::super::sql::Sql {
        sqlite: "UPDATE quickbooks_connections SET last_webhook_at = $2 WHERE realm_id IN (SELECT value FROM json_each($1))",
        postgres: "UPDATE quickbooks_connections SET last_webhook_at = $2 \
            WHERE realm_id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))",
    };

    /// Node `$1` leases until `$2` at most `$4` notifications due at `$3`.
    pub(crate) const CLAIM_INBOX: super::super::sql::Sql = super::super::sql::Sql {
        sqlite: "UPDATE quickbooks_inbox SET lease_owner = $1, lease_until = $2 WHERE seq IN (SELECT seq FROM \
            quickbooks_inbox WHERE status = 'pending' AND next_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
            ORDER BY next_at, seq LIMIT $4) RETURNING seq, realm_id, entity, entity_id, operation, last_updated, \
            received_at, attempts",
        postgres: "UPDATE quickbooks_inbox q SET lease_owner = $1, lease_until = $2 FROM (SELECT seq FROM \
            quickbooks_inbox WHERE status = 'pending' AND next_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
            ORDER BY next_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED) due WHERE q.seq = due.seq RETURNING q.seq, \
            q.realm_id, q.entity, q.entity_id, q.operation, q.last_updated, q.received_at, q.attempts",
    };

    /// Notifications `$2` (a JSON array) held by `$1`, done at `$3`.
    pub(crate) const INBOX_DONE: super::super::sql::Sql = super::super::sql::Sql {
        sqlite: "UPDATE quickbooks_inbox SET status = 'done', done_at = $3, lease_owner = NULL, lease_until = NULL \
            WHERE lease_owner = $1 AND status = 'pending' AND seq IN (SELECT value FROM json_each($2))",
        postgres: "UPDATE quickbooks_inbox SET status = 'done', done_at = $3, lease_owner = NULL, lease_until = NULL \
            WHERE lease_owner = $1 AND status = 'pending' \
            AND seq IN (SELECT CAST(jsonb_array_elements_text(CAST($2 AS jsonb)) AS BIGINT))",
    };

    /// Notifications `$2` held by `$1`, tried again from `$3` after error `$4`.
    pub(crate) const INBOX_RETRY: super::super::sql::Sql = super::super::sql::Sql {
        sqlite: "UPDATE quickbooks_inbox SET attempts = attempts + 1, next_at = $3, last_error = $4, \
            lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND status = 'pending' \
            AND seq IN (SELECT value FROM json_each($2))",
        postgres: "UPDATE quickbooks_inbox SET attempts = attempts + 1, next_at = $3, last_error = $4, \
            lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND status = 'pending' \
            AND seq IN (SELECT CAST(jsonb_array_elements_text(CAST($2 AS jsonb)) AS BIGINT))",
    };

    /// Done notifications older than `$1`.
    pub(crate) const PRUNE_INBOX: &str = "DELETE FROM quickbooks_inbox WHERE status = 'done' AND done_at < $1";

    /// Waiting notifications of realm `$1` (any: NULL): how many, the oldest's arrival.
    pub(crate) const INBOX_GAUGE: &str = "SELECT count(*), min(received_at) FROM quickbooks_inbox \
        WHERE status = 'pending' AND ($1 IS NULL OR realm_id = $1)";
}

/// Implements [`QuickBooksStore`] for a store with `pool` and `reads`, in SQL dialect `$dialect`.
macro_rules! quickbooks_store {
    ($store:ty, $dialect:ident) => {
        impl $crate::store::quickbooks::QuickBooksStore for $store {
            async fn connect_company(
                &self,
                company: &invoiceflow_rules::AccountName,
                realm_id: &str,
                tokens: &$crate::store::quickbooks::TokenPair,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::quickbooks::sql::CONNECT)
                    .bind(company.as_str())
                    .bind(realm_id)
                    .bind(tokens.access_token.expose())
                    .bind(tokens.access_expires_at.timestamp_micros())
                    .bind(tokens.refresh_token.expose())
                    .bind(tokens.refresh_expires_at.timestamp_micros())
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn connections(
                &self,
            ) -> Result<Vec<$crate::store::quickbooks::Connection>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::store::quickbooks::sql::CONNECTIONS).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        $crate::store::quickbooks::connection_of((
                            r.try_get(0)?,
                            r.try_get(1)?,
                            r.try_get(2)?,
                            r.try_get(3)?,
                            (r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, r.try_get(7)?),
                            r.try_get(8)?,
                            r.try_get(9)?,
                            (r.try_get(10)?, r.try_get(11)?, r.try_get(12)?),
                            (r.try_get(13)?, r.try_get(14)?, r.try_get(15)?),
                        ))
                    })
                    .collect()
            }

            async fn claim_refresh(
                &self,
                company: &invoiceflow_rules::AccountName,
                node: &str,
                version: i64,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::quickbooks::sql::CLAIM_REFRESH)
                    .bind(company.as_str())
                    .bind(node)
                    .bind(version)
                    .bind(now.timestamp_micros())
                    .bind(until.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn save_refresh(
                &self,
                company: &invoiceflow_rules::AccountName,
                node: &str,
                version: i64,
                tokens: &$crate::store::quickbooks::TokenPair,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::quickbooks::sql::SAVE_REFRESH)
                    .bind(company.as_str())
                    .bind(node)
                    .bind(version)
                    .bind(tokens.access_token.expose())
                    .bind(tokens.access_expires_at.timestamp_micros())
                    .bind(tokens.refresh_token.expose())
                    .bind(tokens.refresh_expires_at.timestamp_micros())
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn disconnect(
                &self,
                company: &invoiceflow_rules::AccountName,
                reason: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::quickbooks::sql::DISCONNECT)
                    .bind(company.as_str())
                    .bind(reason)
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn note_error(
                &self,
                company: &invoiceflow_rules::AccountName,
                error: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::quickbooks::sql::NOTE_ERROR)
                    .bind(company.as_str())
                    .bind(error)
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn note_sync(
                &self,
                company: &invoiceflow_rules::AccountName,
                realm_id: &str,
                through: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::quickbooks::sql::NOTE_SYNC)
                    .bind(company.as_str())
                    .bind(through.timestamp_micros())
                    .bind(now.timestamp_micros())
                    .bind(realm_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn claim_sweep(
                &self,
                company: &invoiceflow_rules::AccountName,
                realm_id: &str,
                node: &str,
                due: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let taken = sqlx::query($crate::store::quickbooks::sql::CLAIM_SWEEP)
                    .bind(company.as_str())
                    .bind(realm_id)
                    .bind(node)
                    .bind(now.timestamp_micros())
                    .bind(until.timestamp_micros())
                    .bind(due.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(taken.rows_affected() == 1)
            }

            async fn enqueue(
                &self,
                items: &[$crate::store::quickbooks::InboxItem],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                if items.is_empty() {
                    return Ok(0);
                }
                let rows: Vec<serde_json::Value> = items.iter().map($crate::store::quickbooks::inbox_row).collect();
                let mut realms: Vec<&str> = items.iter().map(|i| i.realm_id.as_str()).collect();
                realms.sort_unstable();
                realms.dedup();
                let mut tx = self.pool.begin().await?;
                let added = sqlx::query($crate::store::quickbooks::sql::ENQUEUE.$dialect)
                    .bind($crate::store::imp::json_rows(&rows)?)
                    .bind(now.timestamp_micros())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query($crate::store::quickbooks::sql::NOTE_WEBHOOK.$dialect)
                    .bind($crate::store::imp::json_rows(&realms)?)
                    .bind(now.timestamp_micros())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn claim_inbox(
                &self,
                node: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<$crate::store::quickbooks::InboxEntry>, $crate::store::StoreError> {
                let mut rows: Vec<$crate::store::quickbooks::InboxRow> =
                    sqlx::query_as($crate::store::quickbooks::sql::CLAIM_INBOX.$dialect)
                        .bind(node)
                        .bind(until.timestamp_micros())
                        .bind(now.timestamp_micros())
                        .bind(i64::from(limit.max(1)))
                        .fetch_all(&self.pool)
                        .await?;
                rows.sort_unstable_by_key(|r| r.0);
                Ok(rows.into_iter().map($crate::store::quickbooks::inbox_of).collect())
            }

            async fn inbox_done(
                &self,
                node: &str,
                seqs: &[i64],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::quickbooks::sql::INBOX_DONE.$dialect)
                    .bind(node)
                    .bind($crate::store::imp::json_rows(seqs)?)
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn inbox_retry(
                &self,
                node: &str,
                seqs: &[i64],
                next_at: chrono::DateTime<chrono::Utc>,
                error: &str,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::quickbooks::sql::INBOX_RETRY.$dialect)
                    .bind(node)
                    .bind($crate::store::imp::json_rows(seqs)?)
                    .bind(next_at.timestamp_micros())
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn prune_inbox(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::quickbooks::sql::PRUNE_INBOX)
                    .bind(before.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn inbox_gauge(
                &self,
                realm_id: Option<&str>,
            ) -> Result<$crate::store::quickbooks::InboxGauge, $crate::store::StoreError> {
                let (pending, oldest): (i64, Option<i64>) = sqlx::query_as($crate::store::quickbooks::sql::INBOX_GAUGE)
                    .bind(realm_id)
                    .fetch_one(&self.reads)
                    .await?;
                Ok($crate::store::quickbooks::InboxGauge {
                    pending: u64::try_from(pending).unwrap_or(0),
                    oldest: oldest.map($crate::store::codec::micros_to_time),
                })
            }
        }
    };
}

pub(crate) use quickbooks_store;

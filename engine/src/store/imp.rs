//! The one implementation of [`Store`](super::Store) over SQL, expanded for each backend by
//! `sql_store!`: the Rust is the same, the pool type and the SQL dialect differ. Each backend
//! module supplies `begin_write` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction holding the
//! ingest advisory lock) and the migrator.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use invoiceflow_rules::{RecordKey, RecordKind};

use super::StoreError;
use super::codec::Row;
use super::plan::Plan;

/// Record rows for one upsert statement.
pub(crate) enum RowChunk {
    /// As one JSON array (SQLite).
    Json(String),
    /// As rows to bind one by one (PostgreSQL).
    Rows(Vec<Row>),
}

/// A plan turned into statement parameters: writing it is only database work, so a batch can be
/// planned and prepared while the one before it is written.
pub(crate) struct Prepared {
    pub(crate) now: DateTime<Utc>,
    pub(crate) rows: Vec<RowChunk>,
    pub(crate) events: Vec<String>,
    /// `[holder_kind, account, invoice_id]` whose hand-made unlinks the new field values undo.
    pub(crate) relinked: Vec<String>,
    /// The deposits to clear, and the payments they now deposit.
    pub(crate) deposits: Option<(String, Vec<String>)>,
    keys: HashSet<RecordKey>,
}

impl Prepared {
    /// Encodes `plan`, recorded at `now`; record rows as JSON arrays when `rows_as_json`.
    pub(crate) fn new(plan: &Plan, now: DateTime<Utc>, rows_as_json: bool) -> Result<Self, StoreError> {
        let rows = plan.rows.iter().map(super::codec::encode).collect::<Result<Vec<_>, _>>()?;
        let rows = if rows_as_json {
            rows.chunks(CHUNK).map(|c| json_rows(c).map(RowChunk::Json)).collect::<Result<_, _>>()?
        } else {
            let mut chunks = Vec::new();
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                chunks.push(RowChunk::Rows(rows.by_ref().take(CHUNK).collect()));
            }
            chunks
        };
        let events: Vec<_> = plan
            .events
            .iter()
            .map(|e| {
                serde_json::json!([
                    e.record.kind.as_str(),
                    e.record.account.as_str(),
                    e.record.id.as_str(),
                    e.change.property.as_str(),
                    e.change.old,
                    e.change.new,
                    e.source_time.timestamp_micros()
                ])
            })
            .collect();
        let relinked: Vec<[&str; 3]> =
            plan.relinked.iter().map(|(kind, k)| [kind.as_str(), k.account.as_str(), k.id.as_str()]).collect();
        let deposits = if plan.deposits.is_empty() {
            None
        } else {
            let cleared: Vec<[&str; 2]> =
                plan.deposits.iter().map(|(d, _)| [d.account.as_str(), d.id.as_str()]).collect();
            let added: Vec<[&str; 3]> = plan
                .deposits
                .iter()
                .flat_map(|(d, payments)| payments.iter().map(move |p| [d.account.as_str(), d.id.as_str(), p.as_str()]))
                .collect();
            Some((json_rows(&cleared)?, json_chunks(&added)?))
        };
        Ok(Self {
            now,
            rows,
            events: json_chunks(&events)?,
            relinked: json_chunks(&relinked)?,
            deposits,
            keys: plan.rows.iter().map(|s| s.record.key().clone()).collect(),
        })
    }

    /// Whether loading `keys` before this is written would read something it changes: one of its
    /// records, or (when it writes deposits) whether a payment is deposited.
    pub(crate) fn affects(&self, keys: &[RecordKey]) -> bool {
        let deposits = self.deposits.is_some();
        keys.iter().any(|k| self.keys.contains(k) || (deposits && k.kind == RecordKind::Payment))
    }
}

fn json_chunks<T: serde::Serialize>(rows: &[T]) -> Result<Vec<String>, StoreError> {
    rows.chunks(CHUNK).map(json_rows).collect()
}

/// An intent as a row of `INSERT_INTENTS` (and of `INSERT_DELIVERIES`: its destination and its
/// delivery's expiry follow).
pub(crate) fn intent_row(
    i: &super::NewIntent,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<serde_json::Value, StoreError> {
    let body = serde_json::to_string(&i.intent)
        .map_err(|e| StoreError::Corrupt { what: "intent".into(), reason: e.to_string() })?;
    let about = &i.intent.record;
    let (kind, id) = match about.record() {
        Some(r) => (r.kind.as_str(), r.id.as_str()),
        None => ("company", ""),
    };
    Ok(serde_json::json!([
        i.key,
        i.intent.rule,
        i.intent.version,
        kind,
        about.account().as_str(),
        id,
        i.intent.action.kind(),
        body,
        now.timestamp_micros(),
        i.intent.action.destination(),
        expires_at.map(|t| t.timestamp_micros())
    ]))
}

/// A stored intent's body, decoded.
pub(crate) fn intent_of(body: &str) -> Result<invoiceflow_rules::script::Intent, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt { what: "intent".into(), reason: e.to_string() })
}

/// A firing as a row of `INSERT_FIRINGS`.
pub(crate) fn firing_row(f: &super::NewFiring) -> serde_json::Value {
    let (expires_at, reason) = match &f.decision {
        super::FiringDecision::Sent { expires_at, .. } => (expires_at.map(|t| t.timestamp_micros()), None),
        super::FiringDecision::Skipped { reason } => (None, Some(reason.as_str())),
    };
    let r = &f.record;
    serde_json::json!([
        f.key,
        f.workflow.as_str(),
        r.kind.as_str(),
        r.account.as_str(),
        r.id.as_str(),
        f.step,
        f.nominal.to_string(),
        f.due_at.timestamp_micros(),
        expires_at,
        reason.is_none(),
        reason
    ])
}

/// The record key of a row's `kind`, `account` and `record_id` columns; `what` names the row
/// when they are unreadable.
pub(crate) fn key_of(what: &str, kind: &str, account: String, id: String) -> Result<RecordKey, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: what.to_owned(), reason };
    Ok(RecordKey::new(
        invoiceflow_rules::RecordKind::parse(kind).ok_or_else(|| corrupt(format!("kind {kind}")))?,
        invoiceflow_rules::AccountName::new(account).map_err(|e| corrupt(e.to_string()))?,
        invoiceflow_rules::RecordId::new(id).map_err(|e| corrupt(e.to_string()))?,
    ))
}

/// The records of one `SCAN_DUE` value.
pub(crate) fn split_page(page: &str) -> Result<Vec<super::Encoded>, StoreError> {
    page.split('\u{1f}')
        .map(|record| {
            let mut f = record.split('\u{1e}').map(str::to_owned);
            let mut next = || {
                f.next().ok_or_else(|| StoreError::Corrupt {
                    what: "scanned record".into(),
                    reason: record.chars().take(80).collect(),
                })
            };
            let (kind, account, id, status, body) = (next()?, next()?, next()?, next()?, next()?);
            let position = super::ScanPosition(next()?, next()?);
            Ok(super::Encoded { kind, account, id, status, body, position })
        })
        .collect()
}

/// A failure as a row of `INSERT_FAILURES`.
pub(crate) fn failure_row(f: &super::RuleFailure, now: DateTime<Utc>) -> Result<serde_json::Value, StoreError> {
    let cause = serde_json::to_string(&f.cause)
        .map_err(|e| StoreError::Corrupt { what: "failure".into(), reason: e.to_string() })?;
    Ok(serde_json::json!([
        f.rule,
        f.version,
        f.record.kind.as_str(),
        f.record.account.as_str(),
        f.record.id.as_str(),
        cause,
        f.message,
        f.limit,
        now.timestamp_micros()
    ]))
}

/// A `rule_failures` row.
pub(crate) fn failure_from_row<R>(row: &R) -> Result<super::StoredFailure, StoreError>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |reason: String| StoreError::Corrupt { what: "rule failure".into(), reason };
    let kind: String = row.try_get("kind")?;
    let record = RecordKey::new(
        RecordKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind}")))?,
        invoiceflow_rules::AccountName::new(row.try_get::<String, _>("account")?)
            .map_err(|e| corrupt(e.to_string()))?,
        invoiceflow_rules::RecordId::new(row.try_get::<String, _>("record_id")?).map_err(|e| corrupt(e.to_string()))?,
    );
    let cause: String = row.try_get("cause")?;
    Ok(super::StoredFailure {
        seq: row.try_get("seq")?,
        created_at: super::codec::micros_to_time(row.try_get("created_at")?),
        failure: super::RuleFailure {
            rule: row.try_get("rule")?,
            version: row.try_get("version")?,
            record,
            cause: serde_json::from_str(&cause).map_err(|e| corrupt(e.to_string()))?,
            message: row.try_get("message")?,
            limit: row.try_get("is_limit")?,
        },
    })
}

/// JSON text of rows to bind to a `ROWS` query.
pub(crate) fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String, super::StoreError> {
    serde_json::to_string(rows).map_err(|e| super::StoreError::Corrupt { what: "batch".into(), reason: e.to_string() })
}

macro_rules! sql_store {
    ($store:ty, $writer:ident, $db:ty, $dialect:ident) => {
        /// An open write transaction (see [`Writer`](crate::store::Writer)). Each batch is planned
        /// while the previous one is written: the database works while the planner does.
        pub struct $writer {
            tx: Option<sqlx::Transaction<'static, $db>>,
            pending: Option<$crate::store::imp::Prepared>,
        }

        impl $writer {
            fn tx(&mut self) -> Result<&mut sqlx::Transaction<'static, $db>, $crate::store::StoreError> {
                self.tx.as_mut().ok_or($crate::store::StoreError::Interrupted)
            }

            /// Writes the pending plan now.
            async fn flush(&mut self) -> Result<(), $crate::store::StoreError> {
                if let Some(p) = self.pending.take() {
                    <$store>::write_prepared(self.tx()?, &p).await?;
                }
                Ok(())
            }
        }

        impl $crate::store::Writer for $writer {
            async fn apply(
                &mut self,
                batch: Vec<invoiceflow_rules::parse::Incoming>,
                at: &$crate::store::Moment<'_>,
            ) -> Result<$crate::store::Outcome, $crate::store::StoreError> {
                Ok(self.apply_groups(vec![batch], at).await?.into_iter().next().unwrap_or_default())
            }

            async fn apply_groups(
                &mut self,
                groups: Vec<Vec<invoiceflow_rules::parse::Incoming>>,
                at: &$crate::store::Moment<'_>,
            ) -> Result<Vec<$crate::store::Outcome>, $crate::store::StoreError> {
                let mut keys: Vec<invoiceflow_rules::RecordKey> =
                    groups.iter().flat_map(|g| $crate::store::plan::Existing::keys_for(g)).collect();
                if groups.len() > 1 {
                    keys.sort();
                    keys.dedup();
                }
                // The batch is read before the pending plan is written: unless the plan touches
                // what the batch reads, write it first.
                if self.pending.as_ref().is_some_and(|p| p.affects(&keys)) {
                    self.flush().await?;
                }
                let existing = <$store>::load_existing(&mut **self.tx()?, &keys).await?;
                let mut tx = self.tx.take().ok_or($crate::store::StoreError::Interrupted)?;
                let pending = self.pending.take();
                let write = tokio::spawn(async move {
                    if let Some(p) = pending {
                        <$store>::write_prepared(&mut tx, &p).await?;
                    }
                    Ok::<_, $crate::store::StoreError>(tx)
                });
                let (plan, outcomes) = $crate::store::plan::plan_groups(existing, groups, at);
                let prepared = $crate::store::imp::Prepared::new(&plan, at.now, <$store>::ROWS_AS_JSON);
                self.tx = Some(write.await.map_err(|_| $crate::store::StoreError::Interrupted)??);
                self.pending = Some(prepared?);
                Ok(outcomes)
            }

            async fn commit(mut self) -> Result<(), $crate::store::StoreError> {
                self.flush().await?;
                if let Some(tx) = self.tx.take() {
                    tx.commit().await?;
                }
                Ok(())
            }
        }

        impl $store {
            async fn apply_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                batch: Vec<invoiceflow_rules::parse::Incoming>,
                at: &$crate::store::Moment<'_>,
            ) -> Result<$crate::store::Outcome, $crate::store::StoreError> {
                let keys = $crate::store::plan::Existing::keys_for(&batch);
                let existing = Self::load_existing(&mut **tx, &keys).await?;
                let plan = $crate::store::plan::plan_batch(existing, batch, at);
                Self::write_plan(tx, &plan, at.now).await?;
                Ok(plan.outcome)
            }

            async fn load_existing(
                conn: &mut <$db as sqlx::Database>::Connection,
                keys: &[invoiceflow_rules::RecordKey],
            ) -> Result<$crate::store::plan::Existing, $crate::store::StoreError> {
                use sqlx::Row as _;
                let triples: Vec<[&str; 3]> =
                    keys.iter().map(|k| [k.kind.as_str(), k.account.as_str(), k.id.as_str()]).collect();
                let mut existing = $crate::store::plan::Existing::default();
                for chunk in triples.chunks(CHUNK) {
                    let rows = sqlx::query($crate::store::sql::LOAD.$dialect)
                        .bind($crate::store::imp::json_rows(chunk)?)
                        .fetch_all(&mut *conn)
                        .await?;
                    for row in rows {
                        let stored = $crate::store::codec::decode(
                            row.try_get("kind")?,
                            row.try_get("status")?,
                            row.try_get("body")?,
                        )?;
                        existing.records.insert(stored.record.key().clone(), stored);
                    }
                }
                let payments: Vec<[&str; 2]> = keys
                    .iter()
                    .filter(|k| k.kind == invoiceflow_rules::RecordKind::Payment)
                    .map(|k| [k.account.as_str(), k.id.as_str()])
                    .collect();
                for chunk in payments.chunks(CHUNK) {
                    let rows = sqlx::query($crate::store::sql::LOAD_DEPOSITED.$dialect)
                        .bind($crate::store::imp::json_rows(chunk)?)
                        .fetch_all(&mut *conn)
                        .await?;
                    for row in rows {
                        let account: String = row.try_get(0)?;
                        let id: String = row.try_get(1)?;
                        if let (Ok(account), Ok(id)) =
                            (invoiceflow_rules::AccountName::new(account), invoiceflow_rules::RecordId::new(id))
                        {
                            existing.deposited.insert(invoiceflow_rules::RecordKey::new(
                                invoiceflow_rules::RecordKind::Payment,
                                account,
                                id,
                            ));
                        }
                    }
                }
                Ok(existing)
            }

            async fn write_plan(
                tx: &mut sqlx::Transaction<'static, $db>,
                plan: &$crate::store::plan::Plan,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                let prepared = $crate::store::imp::Prepared::new(plan, now, Self::ROWS_AS_JSON)?;
                Self::write_prepared(tx, &prepared).await
            }

            async fn write_prepared(
                tx: &mut sqlx::Transaction<'static, $db>,
                p: &$crate::store::imp::Prepared,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::sql;
                for chunk in &p.rows {
                    Self::upsert_chunk(tx, chunk).await?;
                }
                for chunk in &p.events {
                    sqlx::query(sql::INSERT_EVENTS.$dialect)
                        .bind(chunk.as_str())
                        .bind(p.now.timestamp_micros())
                        .execute(&mut **tx)
                        .await?;
                }
                for chunk in &p.relinked {
                    sqlx::query(sql::CLEAR_UNLINKS.$dialect).bind(chunk.as_str()).execute(&mut **tx).await?;
                }
                if let Some((cleared, added)) = &p.deposits {
                    sqlx::query(sql::CLEAR_DEPOSITS.$dialect).bind(cleared.as_str()).execute(&mut **tx).await?;
                    for chunk in added {
                        sqlx::query(sql::ADD_DEPOSITS.$dialect).bind(chunk.as_str()).execute(&mut **tx).await?;
                    }
                }
                Ok(())
            }

            fn decode_all(
                rows: Vec<<$db as sqlx::Database>::Row>,
            ) -> Result<Vec<$crate::store::Stored>, $crate::store::StoreError> {
                use sqlx::Row as _;
                rows.iter()
                    .map(|row| {
                        $crate::store::codec::decode(row.try_get("kind")?, row.try_get("status")?, row.try_get("body")?)
                    })
                    .collect()
            }

            /// The own holder fields and hand-made links of these invoices.
            async fn links_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                keys: &[invoiceflow_rules::RecordKey],
            ) -> Result<$crate::store::plan::Links, $crate::store::StoreError> {
                use invoiceflow_rules::{AccountName, Holder, HolderId, HolderKind, RecordId, RecordKey, RecordKind};
                use sqlx::Row as _;
                let corrupt = |reason: String| $crate::store::StoreError::Corrupt { what: "link".into(), reason };
                let invoice = |account: String, id: String| -> Result<RecordKey, $crate::store::StoreError> {
                    Ok(RecordKey::new(
                        RecordKind::Invoice,
                        AccountName::new(account).map_err(|e| corrupt(e.to_string()))?,
                        RecordId::new(id).map_err(|e| corrupt(e.to_string()))?,
                    ))
                };
                let holder_id = |id: String| HolderId::new(id).map_err(|e| corrupt(e.to_string()));
                let pairs: Vec<[&str; 2]> = keys
                    .iter()
                    .filter(|k| k.kind == RecordKind::Invoice)
                    .map(|k| [k.account.as_str(), k.id.as_str()])
                    .collect();
                let mut links = $crate::store::plan::Links::default();
                for chunk in pairs.chunks(CHUNK) {
                    let json = $crate::store::imp::json_rows(chunk)?;
                    for row in sqlx::query($crate::store::sql::FIELD_HOLDERS.$dialect)
                        .bind(&json)
                        .fetch_all(&mut *conn)
                        .await?
                    {
                        let key = invoice(row.try_get(0)?, row.try_get(1)?)?;
                        for (i, kind) in HolderKind::ALL.into_iter().enumerate() {
                            if let Some(id) = row.try_get::<Option<String>, _>(2 + i)? {
                                links.fields.push((key.clone(), Holder { kind, id: holder_id(id)? }));
                            }
                        }
                    }
                    for row in
                        sqlx::query($crate::store::sql::MANUAL_LINKS.$dialect).bind(&json).fetch_all(&mut *conn).await?
                    {
                        let key = invoice(row.try_get(0)?, row.try_get(1)?)?;
                        let kind: String = row.try_get(2)?;
                        let kind = HolderKind::parse(&kind).ok_or_else(|| corrupt(format!("holder kind {kind}")))?;
                        let holder = Holder { kind, id: holder_id(row.try_get(3)?)? };
                        links.manual.push((key, holder, row.try_get(4)?));
                    }
                }
                Ok(links)
            }

            /// Adds (`linked`) or removes a link by hand, recording the event when it changed anything.
            async fn set_link(
                &self,
                holder: &invoiceflow_rules::Holder,
                key: &invoiceflow_rules::RecordKey,
                linked: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::LinkChange, $crate::store::StoreError> {
                use $crate::store::plan::ManualEdit;
                let mut tx = self.begin_write().await?;
                let links = Self::links_of(&mut *tx, std::slice::from_ref(key)).await?;
                let Some(edit) = links.edit(holder, key, linked) else {
                    return Ok($crate::store::LinkChange::AlreadySo);
                };
                let query = match edit {
                    ManualEdit::Set(linked) => sqlx::query($crate::store::sql::SET_MANUAL_LINK.$dialect)
                        .bind(holder.kind.as_str())
                        .bind(holder.id.as_str())
                        .bind(key.account.as_str())
                        .bind(key.id.as_str())
                        .bind(linked),
                    ManualEdit::Clear => sqlx::query($crate::store::sql::CLEAR_MANUAL_LINK.$dialect)
                        .bind(holder.kind.as_str())
                        .bind(holder.id.as_str())
                        .bind(key.account.as_str())
                        .bind(key.id.as_str()),
                };
                query.execute(&mut *tx).await?;
                Self::link_event(&mut tx, holder, key, linked, now).await?;
                tx.commit().await?;
                Ok($crate::store::LinkChange::Done)
            }

            /// Runs `sql` (`INTENTS` or `FAILURES`) with the filters of `q` bound in their order:
            /// rule, record kind, account, id, after, limit.
            /// `sql` with the filters of `q` bound: `$1` rule, `$2`-`$4` record, `$5` after, `$6`
            /// limit (intents, failures, and the deliveries of the intents).
            fn filtered(
                sql: &'static str,
                q: &$crate::store::IntentQuery,
            ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
                let record = q.record.as_ref();
                sqlx::query(sql)
                    .bind(q.rule.clone())
                    .bind(record.map(|k| k.kind.as_str()))
                    .bind(record.map(|k| k.account.to_string()))
                    .bind(record.map(|k| k.id.to_string()))
                    .bind(q.after_seq.unwrap_or(0))
                    .bind(i64::from(q.limit.max(1)))
            }

            /// Stores intents (skipping keys already stored), each with its delivery in the outbox
            /// (expiring when given, else [`RULE_DELIVERY_EXPIRY`](crate::store::RULE_DELIVERY_EXPIRY)
            /// after `now`), and failures; returns the new intents.
            async fn insert_decisions(
                tx: &mut sqlx::Transaction<'static, $db>,
                intents: &[(&$crate::store::NewIntent, Option<chrono::DateTime<chrono::Utc>>)],
                failures: &[$crate::store::RuleFailure],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::imp::{failure_row, intent_row, json_rows};
                let mut added = 0;
                let default_expiry = now + $crate::store::RULE_DELIVERY_EXPIRY;
                let rows = intents
                    .iter()
                    .map(|(i, expires)| intent_row(i, now, Some(expires.unwrap_or(default_expiry))))
                    .collect::<Result<Vec<_>, _>>()?;
                for chunk in rows.chunks(CHUNK) {
                    let chunk = json_rows(chunk)?;
                    added += sqlx::query($crate::store::sql::INSERT_INTENTS.$dialect)
                        .bind(&chunk)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected();
                    sqlx::query($crate::store::sql::INSERT_DELIVERIES.$dialect)
                        .bind(&chunk)
                        .bind(now.timestamp_micros())
                        .execute(&mut **tx)
                        .await?;
                }
                let rows = failures.iter().map(|f| failure_row(f, now)).collect::<Result<Vec<_>, _>>()?;
                for chunk in rows.chunks(CHUNK) {
                    sqlx::query($crate::store::sql::INSERT_FAILURES.$dialect)
                        .bind(json_rows(chunk)?)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(added)
            }

            async fn link_event(
                tx: &mut sqlx::Transaction<'static, $db>,
                holder: &invoiceflow_rules::Holder,
                key: &invoiceflow_rules::RecordKey,
                linked: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                let id = Some(holder.id.to_string());
                let (old, new) = if linked { (None, id) } else { (id, None) };
                let change =
                    invoiceflow_rules::Change { property: invoiceflow_rules::Property::link(holder.kind), old, new };
                let plan = $crate::store::plan::Plan {
                    events: vec![$crate::store::plan::NewEvent { record: key.clone(), change, source_time: now }],
                    ..Default::default()
                };
                Self::write_plan(tx, &plan, now).await
            }
        }

        impl $crate::store::Store for $store {
            type Writer = $writer;

            async fn migrate(&self) -> Result<(), $crate::store::StoreError> {
                Self::migrator().run(&self.pool).await?;
                self.end_bulk().await
            }

            async fn begin_bulk(&self, records: u64) -> Result<bool, $crate::store::StoreError> {
                self.set_indexes_aside(records).await
            }

            async fn end_bulk(&self) -> Result<(), $crate::store::StoreError> {
                self.restore_indexes().await
            }

            async fn writer(&self) -> Result<$writer, $crate::store::StoreError> {
                Ok($writer { tx: Some(self.begin_write().await?), pending: None })
            }

            async fn apply(
                &self,
                batch: Vec<invoiceflow_rules::parse::Incoming>,
                at: &$crate::store::Moment<'_>,
            ) -> Result<$crate::store::Outcome, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let outcome = Self::apply_in(&mut tx, batch, at).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn refresh(
                &self,
                at: &$crate::store::Moment<'_>,
            ) -> Result<$crate::store::Outcome, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut tx = self.begin_write().await?;
                let accounts: Vec<String> = sqlx::query($crate::store::sql::ACCOUNTS.$dialect)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                let mut outcome = $crate::store::Outcome::default();
                for account in accounts {
                    let Ok(name) = invoiceflow_rules::AccountName::new(account.as_str()) else { continue };
                    let today = at.calendar.today(&name).to_string();
                    let rows = sqlx::query($crate::store::sql::REFRESH_CANDIDATES.$dialect)
                        .bind(&account)
                        .bind(&today)
                        .fetch_all(&mut *tx)
                        .await?;
                    let plan = $crate::store::plan::plan_refresh(Self::decode_all(rows)?, at);
                    Self::write_plan(&mut tx, &plan, at.now).await?;
                    outcome += plan.outcome;
                }
                tx.commit().await?;
                Ok(outcome)
            }

            async fn invoices(
                &self,
                q: &$crate::store::InvoiceQuery,
            ) -> Result<Vec<$crate::store::Stored>, $crate::store::StoreError> {
                let (after_account, after_id) =
                    q.after.as_ref().map_or((String::new(), String::new()), |(a, i)| (a.to_string(), i.to_string()));
                let account = q.account.as_ref().map(ToString::to_string);
                let limit = i64::from(q.limit.max(1));
                let rows = match &q.holder {
                    None => {
                        sqlx::query($crate::store::sql::INVOICES.$dialect)
                            .bind(account)
                            .bind(after_account)
                            .bind(after_id)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                    }
                    Some(h) => {
                        let sql = match h.kind {
                            invoiceflow_rules::HolderKind::Deal => $crate::store::sql::DEAL_INVOICES,
                            invoiceflow_rules::HolderKind::Contact => $crate::store::sql::CONTACT_INVOICES,
                            invoiceflow_rules::HolderKind::Company => $crate::store::sql::COMPANY_INVOICES,
                        };
                        sqlx::query(sql.$dialect)
                            .bind(account)
                            .bind(after_account)
                            .bind(after_id)
                            .bind(limit)
                            .bind(h.id.as_str())
                            .fetch_all(&self.pool)
                            .await?
                    }
                };
                Self::decode_all(rows)
            }

            async fn find(
                &self,
                kind: invoiceflow_rules::RecordKind,
                id: &invoiceflow_rules::RecordId,
                account: Option<&invoiceflow_rules::AccountName>,
            ) -> Result<Vec<$crate::store::Stored>, $crate::store::StoreError> {
                let rows = sqlx::query($crate::store::sql::FIND.$dialect)
                    .bind(kind.as_str())
                    .bind(id.as_str())
                    .bind(account.map(ToString::to_string))
                    .fetch_all(&self.pool)
                    .await?;
                Self::decode_all(rows)
            }

            async fn holders_of(
                &self,
                keys: &[invoiceflow_rules::RecordKey],
            ) -> Result<Vec<(invoiceflow_rules::RecordKey, invoiceflow_rules::Holder)>, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                Ok(Self::links_of(&mut conn, keys).await?.holders())
            }

            async fn link(
                &self,
                holder: &invoiceflow_rules::Holder,
                key: &invoiceflow_rules::RecordKey,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::LinkChange, $crate::store::StoreError> {
                self.set_link(holder, key, true, now).await
            }

            async fn unlink(
                &self,
                holder: &invoiceflow_rules::Holder,
                key: &invoiceflow_rules::RecordKey,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::LinkChange, $crate::store::StoreError> {
                self.set_link(holder, key, false, now).await
            }

            async fn events(
                &self,
                q: &$crate::store::EventQuery,
            ) -> Result<Vec<$crate::store::Event>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let record = q.record.as_ref();
                let rows = sqlx::query($crate::store::sql::EVENTS.$dialect)
                    .bind(record.map(|k| k.kind.as_str()))
                    .bind(record.map(|k| k.account.to_string()))
                    .bind(record.map(|k| k.id.to_string()))
                    .bind(q.after_seq.unwrap_or(0))
                    .bind(i64::from(q.limit.max(1)))
                    .fetch_all(&self.reads)
                    .await?;
                let corrupt = |reason: String| $crate::store::StoreError::Corrupt { what: "event".into(), reason };
                let mut events = Vec::with_capacity(rows.len());
                for row in rows {
                    let kind: String = row.try_get("kind")?;
                    let property: String = row.try_get("property")?;
                    let record = invoiceflow_rules::RecordKey::new(
                        invoiceflow_rules::RecordKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind}")))?,
                        invoiceflow_rules::AccountName::new(row.try_get::<String, _>("account")?)
                            .map_err(|e| corrupt(e.to_string()))?,
                        invoiceflow_rules::RecordId::new(row.try_get::<String, _>("record_id")?)
                            .map_err(|e| corrupt(e.to_string()))?,
                    );
                    events.push($crate::store::Event {
                        seq: row.try_get("seq")?,
                        record,
                        property: invoiceflow_rules::Property::parse(&property)
                            .ok_or_else(|| corrupt(format!("property {property}")))?,
                        old: row.try_get("old_value")?,
                        new: row.try_get("new_value")?,
                        source_time: $crate::store::codec::micros_to_time(row.try_get("source_time")?),
                        ingest_time: $crate::store::codec::micros_to_time(row.try_get("ingest_time")?),
                    });
                }
                Ok(events)
            }

            async fn records(
                &self,
                keys: &[invoiceflow_rules::RecordKey],
            ) -> Result<Vec<$crate::store::Stored>, $crate::store::StoreError> {
                let mut conn = self.reads.acquire().await?;
                let existing = Self::load_existing(&mut *conn, keys).await?;
                let mut out: Vec<$crate::store::Stored> = existing.records.into_values().collect();
                out.sort_by(|a, b| a.record.key().cmp(b.record.key()));
                Ok(out)
            }

            async fn cursor(&self, name: &str) -> Result<i64, $crate::store::StoreError> {
                let seq: Option<i64> = sqlx::query_scalar($crate::store::sql::CURSOR.$dialect)
                    .bind(name)
                    .fetch_optional(&self.reads)
                    .await?;
                Ok(seq.unwrap_or(0))
            }

            async fn last_event_seq(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar($crate::store::sql::LAST_EVENT.$dialect).fetch_one(&self.pool).await?)
            }

            async fn save_evaluations(
                &self,
                name: &str,
                through: i64,
                intents: &[$crate::store::NewIntent],
                failures: &[$crate::store::RuleFailure],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let intents: Vec<_> = intents.iter().map(|i| (i, None)).collect();
                let added = Self::insert_decisions(&mut tx, &intents, failures, now).await?;
                sqlx::query($crate::store::sql::SET_CURSOR.$dialect).bind(name).bind(through).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn records_of_kind(
                &self,
                kind: invoiceflow_rules::RecordKind,
                after: Option<&invoiceflow_rules::RecordKey>,
                limit: u32,
            ) -> Result<Vec<$crate::store::Stored>, $crate::store::StoreError> {
                let (account, id) =
                    after.map_or((String::new(), String::new()), |k| (k.account.to_string(), k.id.to_string()));
                let rows = sqlx::query($crate::store::sql::RECORDS_OF_KIND.$dialect)
                    .bind(kind.as_str())
                    .bind(account)
                    .bind(id)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&self.pool)
                    .await?;
                Self::decode_all(rows)
            }

            async fn enrolled(
                &self,
                rule: &str,
                keys: &[invoiceflow_rules::RecordKey],
            ) -> Result<Vec<invoiceflow_rules::RecordKey>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let triples: Vec<[&str; 3]> =
                    keys.iter().map(|k| [k.kind.as_str(), k.account.as_str(), k.id.as_str()]).collect();
                let mut out = Vec::new();
                for chunk in triples.chunks(CHUNK) {
                    let rows = sqlx::query($crate::store::sql::ENROLLED.$dialect)
                        .bind($crate::store::imp::json_rows(chunk)?)
                        .bind(rule)
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        let kind: String = row.try_get(0)?;
                        out.push($crate::store::imp::key_of("enrollment", &kind, row.try_get(1)?, row.try_get(2)?)?);
                    }
                }
                Ok(out)
            }

            async fn save_slot(
                &self,
                rule: &str,
                enroll: &[invoiceflow_rules::RecordKey],
                leave: &[invoiceflow_rules::RecordKey],
                intents: &[$crate::store::NewIntent],
                failures: &[$crate::store::RuleFailure],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::imp::json_rows;
                let triples = |keys: &[invoiceflow_rules::RecordKey]| -> Vec<[String; 3]> {
                    keys.iter().map(|k| [k.kind.as_str().to_owned(), k.account.to_string(), k.id.to_string()]).collect()
                };
                let mut tx = self.pool.begin().await?;
                let intents: Vec<_> = intents.iter().map(|i| (i, None)).collect();
                let added = Self::insert_decisions(&mut tx, &intents, failures, now).await?;
                for chunk in triples(enroll).chunks(CHUNK) {
                    sqlx::query($crate::store::sql::ENROLL.$dialect)
                        .bind(json_rows(chunk)?)
                        .bind(rule)
                        .bind(now.timestamp_micros())
                        .execute(&mut *tx)
                        .await?;
                }
                for chunk in triples(leave).chunks(CHUNK) {
                    sqlx::query($crate::store::sql::LEAVE.$dialect)
                        .bind(json_rows(chunk)?)
                        .bind(rule)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn intents(
                &self,
                q: &$crate::store::IntentQuery,
            ) -> Result<Vec<$crate::store::StoredIntent>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = Self::filtered($crate::store::sql::INTENTS.$dialect, q).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| {
                        let body: String = row.try_get("body")?;
                        let intent = $crate::store::imp::intent_of(&body)?;
                        Ok($crate::store::StoredIntent {
                            seq: row.try_get("seq")?,
                            key: row.try_get("key")?,
                            created_at: $crate::store::codec::micros_to_time(row.try_get("created_at")?),
                            intent,
                        })
                    })
                    .collect()
            }

            async fn claim(
                &self,
                node: &str,
                now: chrono::DateTime<chrono::Utc>,
                lease: chrono::Duration,
                limit: u32,
            ) -> Result<Vec<$crate::store::Claimed>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let until = (now + lease).timestamp_micros();
                let mut tx = self.pool.begin().await?;
                sqlx::query($crate::store::sql::EXPIRE_DELIVERIES.$dialect)
                    .bind(now.timestamp_micros())
                    .execute(&mut *tx)
                    .await?;
                // Only what this call leased: a node claiming again in the same instant does not get
                // back what it already holds.
                let leased: Vec<i64> = sqlx::query_scalar($crate::store::sql::CLAIM.$dialect)
                    .bind(node)
                    .bind(until)
                    .bind(now.timestamp_micros())
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&mut *tx)
                    .await?;
                let rows = sqlx::query($crate::store::sql::CLAIMED.$dialect)
                    .bind($crate::store::imp::json_rows(&leased)?)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter()
                    .map(|row| {
                        let body: String = row.try_get(4)?;
                        let intent = $crate::store::imp::intent_of(&body)?;
                        Ok($crate::store::Claimed {
                            seq: row.try_get(0)?,
                            attempts: u32::try_from(row.try_get::<i32, _>(1)?).unwrap_or(0),
                            expires_at: row.try_get::<Option<i64>, _>(2)?.map($crate::store::codec::micros_to_time),
                            key: row.try_get(3)?,
                            intent,
                        })
                    })
                    .collect()
            }

            async fn finish(
                &self,
                seq: i64,
                node: &str,
                attempt: &$crate::store::Attempt,
                next: &invoiceflow_rules::retry::Next,
            ) -> Result<bool, $crate::store::StoreError> {
                let one = $crate::store::Finished { seq, attempt: attempt.clone(), next: next.clone() };
                Ok(self.finish_all(node, std::slice::from_ref(&one)).await?.first().copied().unwrap_or(false))
            }

            async fn finish_all(
                &self,
                node: &str,
                finished: &[$crate::store::Finished],
            ) -> Result<Vec<bool>, $crate::store::StoreError> {
                use invoiceflow_rules::retry::{Attempted, Next};
                if finished.is_empty() {
                    return Ok(Vec::new());
                }
                let mut moves = Vec::with_capacity(finished.len());
                let mut attempts = Vec::with_capacity(finished.len());
                for f in finished {
                    let (outcome, detail) = match &f.attempt.outcome {
                        Attempted::Delivered => ("delivered", None),
                        Attempted::Transient { detail, .. } => ("transient", Some(detail.as_str())),
                        Attempted::Permanent { detail, .. } => ("permanent", Some(detail.as_str())),
                        Attempted::Deferred { .. } => ("deferred", None),
                    };
                    let at = f.attempt.finished_at.timestamp_micros();
                    let (status, next_at, reason) = match &f.next {
                        Next::Delivered => ("delivered", at, None),
                        Next::RetryAt(when) => ("pending", when.timestamp_micros(), detail),
                        Next::Dead(why) => ("dead", at, Some(why.as_str())),
                        Next::Expired(why) => ("expired", at, Some(why.as_str())),
                    };
                    moves.push(serde_json::json!([f.seq, status, next_at, reason, at]));
                    attempts.push(serde_json::json!([
                        f.seq,
                        f.attempt.started_at.timestamp_micros(),
                        at,
                        outcome,
                        detail
                    ]));
                }
                let mut tx = self.pool.begin().await?;
                let moved: Vec<i64> = sqlx::query_scalar($crate::store::sql::FINISH_DELIVERIES.$dialect)
                    .bind($crate::store::imp::json_rows(&moves)?)
                    .bind(node)
                    .fetch_all(&mut *tx)
                    .await?;
                sqlx::query($crate::store::sql::INSERT_ATTEMPTS.$dialect)
                    .bind($crate::store::imp::json_rows(&attempts)?)
                    .bind(node)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let moved: std::collections::HashSet<i64> = moved.into_iter().collect();
                Ok(finished.iter().map(|f| moved.contains(&f.seq)).collect())
            }

            async fn deliveries(
                &self,
                q: &$crate::store::DeliveryQuery,
            ) -> Result<Vec<$crate::store::StoredDelivery>, $crate::store::StoreError> {
                use sqlx::Row as _;
                use $crate::store::codec::micros_to_time;
                let rows = Self::filtered($crate::store::sql::DELIVERIES.$dialect, &q.of)
                    .bind(q.status.clone())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let body: String = row.try_get("body")?;
                        let intent = $crate::store::imp::intent_of(&body)?;
                        Ok($crate::store::StoredDelivery {
                            seq: row.try_get("intent_seq")?,
                            key: row.try_get("key")?,
                            channel: row.try_get("channel")?,
                            destination: row.try_get("destination")?,
                            status: row.try_get("status")?,
                            attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
                            next_at: micros_to_time(row.try_get("next_at")?),
                            expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(micros_to_time),
                            reason: row.try_get("reason")?,
                            leased_by: row.try_get("lease_owner")?,
                            decided_at: micros_to_time(row.try_get("created_at")?),
                            updated_at: micros_to_time(row.try_get("updated_at")?),
                            intent,
                        })
                    })
                    .collect()
            }

            async fn retry_delivery(
                &self,
                seq: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::sql::RETRY_DELIVERY.$dialect)
                    .bind(seq)
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn cancel_delivery(
                &self,
                seq: i64,
                reason: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::sql::CANCEL_DELIVERY.$dialect)
                    .bind(seq)
                    .bind(now.timestamp_micros())
                    .bind(reason)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn defer(
                &self,
                seq: i64,
                node: &str,
                until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::sql::DEFER_DELIVERY.$dialect)
                    .bind(seq)
                    .bind(node)
                    .bind(until.timestamp_micros())
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release(&self, node: &str) -> Result<u64, $crate::store::StoreError> {
                let done =
                    sqlx::query($crate::store::sql::RELEASE_LEASES.$dialect).bind(node).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn disable_destination(
                &self,
                name: &str,
                reason: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::sql::DISABLE_DESTINATION.$dialect)
                    .bind(name)
                    .bind(reason)
                    .bind(now.timestamp_micros())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn enable_destination(&self, name: &str) -> Result<bool, $crate::store::StoreError> {
                let done =
                    sqlx::query($crate::store::sql::ENABLE_DESTINATION.$dialect).bind(name).execute(&self.pool).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn disabled_destinations(
                &self,
            ) -> Result<Vec<$crate::store::DisabledDestination>, $crate::store::StoreError> {
                let rows: Vec<(String, String, i64)> =
                    sqlx::query_as($crate::store::sql::DISABLED_DESTINATIONS.$dialect).fetch_all(&self.reads).await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, reason, at)| $crate::store::DisabledDestination {
                        name,
                        reason,
                        disabled_at: chrono::DateTime::from_timestamp_micros(at).unwrap_or_default(),
                    })
                    .collect())
            }

            async fn create_task(
                &self,
                task: &$crate::store::NewTask,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(i64, bool), $crate::store::StoreError> {
                let record = task.record.as_ref();
                let mut tx = self.pool.begin().await?;
                let id: Option<i64> = sqlx::query_scalar($crate::store::sql::INSERT_TASK.$dialect)
                    .bind(task.key.as_deref())
                    .bind(&task.title)
                    .bind(task.notes.as_deref())
                    .bind(task.assignee.as_deref())
                    .bind(task.due.map(|d| d.to_string()))
                    .bind(task.approval)
                    .bind(record.map(|k| k.kind.as_str()))
                    .bind(record.map(|k| k.account.to_string()))
                    .bind(record.map(|k| k.id.to_string()))
                    .bind(&task.source)
                    .bind(now.timestamp_micros())
                    .fetch_optional(&mut *tx)
                    .await?;
                let made = match id {
                    Some(id) => (id, true),
                    None => {
                        let id: i64 = sqlx::query_scalar($crate::store::sql::TASK_BY_KEY.$dialect)
                            .bind(task.key.as_deref())
                            .fetch_one(&mut *tx)
                            .await?;
                        (id, false)
                    }
                };
                tx.commit().await?;
                Ok(made)
            }

            async fn tasks(
                &self,
                q: &$crate::store::TaskQuery,
            ) -> Result<Vec<$crate::store::StoredTask>, $crate::store::StoreError> {
                use sqlx::Row as _;
                use $crate::store::codec::micros_to_time;
                let rows = sqlx::query($crate::store::sql::TASKS.$dialect)
                    .bind(q.status.as_deref())
                    .bind(q.assignee.as_deref())
                    .bind(q.record.as_ref().map(|k| k.kind.as_str()))
                    .bind(q.record.as_ref().map(|k| k.account.to_string()))
                    .bind(q.record.as_ref().map(|k| k.id.to_string()))
                    .bind(q.id)
                    .bind(i64::from(q.limit.max(1)))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let kind: Option<String> = row.try_get("kind")?;
                        let record = match kind {
                            Some(kind) => Some($crate::store::imp::key_of(
                                "task",
                                &kind,
                                row.try_get::<Option<String>, _>("account")?.unwrap_or_default(),
                                row.try_get::<Option<String>, _>("record_id")?.unwrap_or_default(),
                            )?),
                            None => None,
                        };
                        let due: Option<String> = row.try_get("due")?;
                        Ok($crate::store::StoredTask {
                            id: row.try_get("id")?,
                            task: $crate::store::NewTask {
                                key: row.try_get("key")?,
                                title: row.try_get("title")?,
                                notes: row.try_get("notes")?,
                                assignee: row.try_get("assignee")?,
                                due: due.and_then(|d| d.parse().ok()),
                                approval: row.try_get("approval")?,
                                record,
                                source: row.try_get("source")?,
                            },
                            status: row.try_get("status")?,
                            created_at: micros_to_time(row.try_get("created_at")?),
                            closed_at: row.try_get::<Option<i64>, _>("closed_at")?.map(micros_to_time),
                            closed_by: row.try_get("closed_by")?,
                            comment: row.try_get("comment")?,
                        })
                    })
                    .collect()
            }

            async fn close_task(
                &self,
                id: i64,
                how: $crate::store::TaskClose,
                by: &str,
                comment: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::sql::CLOSE_TASK.$dialect)
                    .bind(id)
                    .bind(how.status())
                    .bind(now.timestamp_micros())
                    .bind(by)
                    .bind(comment)
                    .bind(how != $crate::store::TaskClose::Done)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn save_slot_skips(
                &self,
                skips: &[$crate::store::SlotSkip],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                for skip in skips {
                    sqlx::query($crate::store::sql::INSERT_SLOT_SKIP.$dialect)
                        .bind(&skip.rule)
                        .bind(skip.slot.timestamp_micros())
                        .bind(skip.zone.as_deref())
                        .bind(&skip.reason)
                        .bind(now.timestamp_micros())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn slot_skips(
                &self,
                rule: Option<&str>,
                limit: u32,
            ) -> Result<Vec<$crate::store::SlotSkip>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::store::sql::SLOT_SKIPS.$dialect)
                    .bind(rule)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::SlotSkip {
                            rule: row.try_get("rule")?,
                            slot: $crate::store::codec::micros_to_time(row.try_get("slot")?),
                            zone: row.try_get("zone")?,
                            reason: row.try_get("reason")?,
                        })
                    })
                    .collect()
            }

            async fn reset_cursor(&self, name: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::sql::RESET_CURSOR.$dialect).bind(name).execute(&self.pool).await?;
                Ok(())
            }

            async fn anchored(
                &self,
                q: &$crate::store::AnchorQuery,
            ) -> Result<Vec<$crate::store::Stored>, $crate::store::StoreError> {
                let sql = match q.anchor {
                    $crate::store::AnchorColumn::DueDate => $crate::store::sql::ANCHORED_DUE.$dialect,
                    $crate::store::AnchorColumn::TxnDate => $crate::store::sql::ANCHORED_TXN.$dialect,
                };
                let (account, id) = q
                    .after
                    .as_ref()
                    .map_or((String::new(), String::new()), |k| (k.account.to_string(), k.id.to_string()));
                let rows = sqlx::query(sql)
                    .bind(q.kind.as_str())
                    .bind(q.status)
                    .bind(q.date.to_string())
                    .bind(account)
                    .bind(id)
                    .bind(i64::from(q.limit.max(1)))
                    .fetch_all(&self.pool)
                    .await?;
                Self::decode_all(rows)
            }

            async fn scan_due(
                &self,
                q: &$crate::store::DueScan,
            ) -> Result<Vec<$crate::store::Encoded>, $crate::store::StoreError> {
                use $crate::store::imp::json_rows;
                let dates = |d: &[chrono::NaiveDate]| json_rows(&d.iter().map(ToString::to_string).collect::<Vec<_>>());
                let $crate::store::ScanPosition(first, second) =
                    q.after.clone().unwrap_or($crate::store::ScanPosition(String::new(), String::new()));
                let page: Option<String> = sqlx::query_scalar($crate::store::sql::SCAN_DUE.$dialect)
                    .bind(q.kind.as_str())
                    .bind(first)
                    .bind(second)
                    .bind(json_rows(&q.statuses)?)
                    .bind(dates(&q.due_dates)?)
                    .bind(dates(&q.txn_dates)?)
                    .bind(i64::from(q.limit.max(1)))
                    .fetch_one(&self.pool)
                    .await?;
                page.as_deref().map_or(Ok(Vec::new()), $crate::store::imp::split_page)
            }

            async fn decided(
                &self,
                workflow: invoiceflow_rules::workflow::config::WorkflowKind,
                keys: &[invoiceflow_rules::RecordKey],
            ) -> Result<Vec<(invoiceflow_rules::RecordKey, String)>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let triples: Vec<[&str; 3]> =
                    keys.iter().map(|k| [k.kind.as_str(), k.account.as_str(), k.id.as_str()]).collect();
                let mut out = Vec::new();
                for chunk in triples.chunks(CHUNK) {
                    let rows = sqlx::query($crate::store::sql::DECIDED.$dialect)
                        .bind($crate::store::imp::json_rows(chunk)?)
                        .bind(workflow.as_str())
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        let kind: String = row.try_get(0)?;
                        let key = $crate::store::imp::key_of("firing", &kind, row.try_get(1)?, row.try_get(2)?)?;
                        out.push((key, row.try_get(3)?));
                    }
                }
                Ok(out)
            }

            async fn save_firings(
                &self,
                cursor: Option<(&str, i64)>,
                firings: &[$crate::store::NewFiring],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::imp::{firing_row, json_rows};
                let mut tx = self.pool.begin().await?;
                let mut written = std::collections::HashSet::new();
                for chunk in firings.chunks(CHUNK) {
                    let rows: Vec<serde_json::Value> = chunk.iter().map(firing_row).collect();
                    let keys: Vec<String> = sqlx::query_scalar($crate::store::sql::INSERT_FIRINGS.$dialect)
                        .bind(json_rows(&rows)?)
                        .bind(now.timestamp_micros())
                        .fetch_all(&mut *tx)
                        .await?;
                    written.extend(keys);
                }
                // Only the intents of firings written now: a step already decided under another
                // key (its date moved) sends nothing again.
                let intents: Vec<(&$crate::store::NewIntent, Option<chrono::DateTime<chrono::Utc>>)> = firings
                    .iter()
                    .filter(|f| written.contains(&f.key))
                    .filter_map(|f| match &f.decision {
                        $crate::store::FiringDecision::Sent { intents, expires_at } => {
                            Some(intents.iter().map(move |i| (i, *expires_at)))
                        }
                        $crate::store::FiringDecision::Skipped { .. } => None,
                    })
                    .flatten()
                    .collect();
                Self::insert_decisions(&mut tx, &intents, &[], now).await?;
                if let Some((name, through)) = cursor {
                    sqlx::query($crate::store::sql::SET_CURSOR.$dialect)
                        .bind(name)
                        .bind(through)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(written.len() as u64)
            }

            async fn firings(
                &self,
                q: &$crate::store::FiringQuery,
            ) -> Result<Vec<$crate::store::StoredFiring>, $crate::store::StoreError> {
                use sqlx::Row as _;
                use $crate::store::codec::micros_to_time;
                let corrupt = |reason: String| $crate::store::StoreError::Corrupt { what: "firing".into(), reason };
                let rows = sqlx::query($crate::store::sql::FIRINGS.$dialect)
                    .bind(q.workflow.map(|w| w.as_str()))
                    .bind(q.record.as_ref().map(|k| k.kind.as_str()))
                    .bind(q.record.as_ref().map(|k| k.account.to_string()))
                    .bind(q.record.as_ref().map(|k| k.id.to_string()))
                    .bind(i64::from(q.limit.max(1)))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let workflow: String = row.try_get("workflow")?;
                        let kind: String = row.try_get("kind")?;
                        let nominal: String = row.try_get("nominal")?;
                        Ok($crate::store::StoredFiring {
                            key: row.try_get("key")?,
                            workflow: invoiceflow_rules::workflow::config::WorkflowKind::parse(&workflow)
                                .ok_or_else(|| corrupt(format!("workflow {workflow}")))?,
                            record: $crate::store::imp::key_of(
                                "firing",
                                &kind,
                                row.try_get("account")?,
                                row.try_get("record_id")?,
                            )?,
                            step: row.try_get("step")?,
                            nominal: nominal.parse().map_err(|_| corrupt(format!("date {nominal}")))?,
                            due_at: micros_to_time(row.try_get("due_at")?),
                            expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(micros_to_time),
                            sent: row.try_get("sent")?,
                            reason: row.try_get("reason")?,
                            decided_at: micros_to_time(row.try_get("decided_at")?),
                        })
                    })
                    .collect()
            }

            async fn failures(
                &self,
                q: &$crate::store::IntentQuery,
            ) -> Result<Vec<$crate::store::StoredFailure>, $crate::store::StoreError> {
                let rows = Self::filtered($crate::store::sql::FAILURES.$dialect, q).fetch_all(&self.pool).await?;
                rows.iter().map($crate::store::imp::failure_from_row).collect()
            }

            async fn maintain(&self) -> Result<bool, $crate::store::StoreError> {
                self.upkeep().await
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn gauges(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::Gauges, $crate::store::StoreError> {
                let count = |n: i64| u64::try_from(n).unwrap_or(0);
                let by_status: Vec<(String, String, i64)> =
                    sqlx::query_as($crate::store::sql::DELIVERY_COUNTS.$dialect).fetch_all(&self.pool).await?;
                let (pending, oldest_due, failures, unevaluated): (i64, Option<i64>, i64, i64) =
                    sqlx::query_as($crate::store::sql::WORK_GAUGES.$dialect)
                        .bind(now.timestamp_micros())
                        .fetch_one(&self.pool)
                        .await?;
                Ok($crate::store::Gauges {
                    deliveries: by_status.into_iter().map(|(c, s, n)| (c, s, count(n))).collect(),
                    pending: count(pending),
                    oldest_due: oldest_due.map($crate::store::codec::micros_to_time),
                    evaluation_failures: count(failures),
                    unevaluated_changes: count(unevaluated),
                })
            }
        }
    };
}

/// Rows per statement: large enough to amortise a round trip, small enough for one JSON parameter.
pub(crate) const CHUNK: usize = 1000;

pub(crate) use sql_store;

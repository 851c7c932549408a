//! The one implementation of [`Store`](super::Store) over SQL, expanded for each backend by
//! `sql_store!`: the Rust is the same, the pool type and the SQL dialect differ. Each backend
//! module supplies `begin_write` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction holding the
//! ingest advisory lock) and the migrator.

/// JSON text of rows to bind to a `ROWS` query.
pub(crate) fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String, super::StoreError> {
    serde_json::to_string(rows).map_err(|e| super::StoreError::Corrupt { what: "batch".into(), reason: e.to_string() })
}

macro_rules! sql_store {
    ($store:ty, $writer:ident, $db:ty, $dialect:ident) => {
        /// An open write transaction (see [`Writer`](crate::store::Writer)).
        pub struct $writer {
            tx: sqlx::Transaction<'static, $db>,
        }

        impl $crate::store::Writer for $writer {
            async fn apply(
                &mut self,
                batch: Vec<invoiceflow_rules::parse::Incoming>,
                at: &$crate::store::Moment<'_>,
            ) -> Result<$crate::store::Outcome, $crate::store::StoreError> {
                <$store>::apply_in(&mut self.tx, batch, at).await
            }

            async fn commit(self) -> Result<(), $crate::store::StoreError> {
                self.tx.commit().await?;
                Ok(())
            }
        }

        impl $store {
            async fn apply_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                batch: Vec<invoiceflow_rules::parse::Incoming>,
                at: &$crate::store::Moment<'_>,
            ) -> Result<$crate::store::Outcome, $crate::store::StoreError> {
                let started = std::time::Instant::now();
                let existing = Self::load_existing(tx, &batch).await?;
                let loaded = started.elapsed();
                let plan = $crate::store::plan::plan_batch(existing, batch, at);
                let planned = started.elapsed();
                Self::write_plan(tx, &plan, at.now).await?;
                tracing::debug!(
                    rows = plan.rows.len(),
                    events = plan.events.len(),
                    load_ms = loaded.as_millis() as u64,
                    plan_ms = (planned - loaded).as_millis() as u64,
                    write_ms = (started.elapsed() - planned).as_millis() as u64,
                    "batch applied"
                );
                Ok(plan.outcome)
            }

            async fn load_existing(
                tx: &mut sqlx::Transaction<'static, $db>,
                batch: &[invoiceflow_rules::parse::Incoming],
            ) -> Result<$crate::store::plan::Existing, $crate::store::StoreError> {
                use sqlx::Row as _;
                let keys = $crate::store::plan::Existing::keys_for(batch);
                let triples: Vec<[&str; 3]> =
                    keys.iter().map(|k| [k.kind.as_str(), k.account.as_str(), k.id.as_str()]).collect();
                let mut existing = $crate::store::plan::Existing::default();
                for chunk in triples.chunks(CHUNK) {
                    let rows = sqlx::query($crate::store::sql::LOAD.$dialect)
                        .bind($crate::store::imp::json_rows(chunk)?)
                        .fetch_all(&mut **tx)
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
                        .fetch_all(&mut **tx)
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
                use $crate::store::imp::json_rows;
                use $crate::store::plan::LinkEdit;
                use $crate::store::sql;
                let rows = plan.rows.iter().map($crate::store::codec::encode).collect::<Result<Vec<_>, _>>()?;
                let t = std::time::Instant::now();
                for chunk in rows.chunks(CHUNK) {
                    Self::upsert_chunk(tx, chunk).await?;
                }
                tracing::trace!(ms = t.elapsed().as_millis() as u64, "upsert");
                let events: Vec<serde_json::Value> = plan
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
                let t = std::time::Instant::now();
                for chunk in events.chunks(CHUNK) {
                    sqlx::query(sql::INSERT_EVENTS.$dialect)
                        .bind(json_rows(chunk)?)
                        .bind(now.timestamp_micros())
                        .execute(&mut **tx)
                        .await?;
                }
                tracing::trace!(ms = t.elapsed().as_millis() as u64, "events");
                let link = |h: &invoiceflow_rules::Holder, k: &invoiceflow_rules::RecordKey| {
                    [h.kind.as_str().to_owned(), h.id.to_string(), k.account.to_string(), k.id.to_string()]
                };
                let removes: Vec<_> = plan
                    .links
                    .iter()
                    .filter_map(|l| match l {
                        LinkEdit::Remove(h, k) => Some(link(h, k)),
                        LinkEdit::Add(..) => None,
                    })
                    .collect();
                let adds: Vec<_> = plan
                    .links
                    .iter()
                    .filter_map(|l| match l {
                        LinkEdit::Add(h, k) => Some(link(h, k)),
                        LinkEdit::Remove(..) => None,
                    })
                    .collect();
                for chunk in removes.chunks(CHUNK) {
                    sqlx::query(sql::REMOVE_LINKS.$dialect).bind(json_rows(chunk)?).execute(&mut **tx).await?;
                }
                let t = std::time::Instant::now();
                for chunk in adds.chunks(CHUNK) {
                    sqlx::query(sql::ADD_LINKS.$dialect).bind(json_rows(chunk)?).execute(&mut **tx).await?;
                }
                tracing::trace!(ms = t.elapsed().as_millis() as u64, "links");
                if !plan.deposits.is_empty() {
                    let cleared: Vec<[&str; 2]> =
                        plan.deposits.iter().map(|(d, _)| [d.account.as_str(), d.id.as_str()]).collect();
                    sqlx::query(sql::CLEAR_DEPOSITS.$dialect).bind(json_rows(&cleared)?).execute(&mut **tx).await?;
                    let added: Vec<[&str; 3]> = plan
                        .deposits
                        .iter()
                        .flat_map(|(d, payments)| {
                            payments.iter().map(move |p| [d.account.as_str(), d.id.as_str(), p.as_str()])
                        })
                        .collect();
                    for chunk in added.chunks(CHUNK) {
                        sqlx::query(sql::ADD_DEPOSITS.$dialect).bind(json_rows(chunk)?).execute(&mut **tx).await?;
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

            /// Adds (`linked`) or removes a link by hand, recording the event when it changed anything.
            async fn set_link(
                &self,
                holder: &invoiceflow_rules::Holder,
                key: &invoiceflow_rules::RecordKey,
                linked: bool,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::LinkChange, $crate::store::StoreError> {
                let sql = if linked { $crate::store::sql::LINK.$dialect } else { $crate::store::sql::UNLINK.$dialect };
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(sql)
                    .bind(holder.kind.as_str())
                    .bind(holder.id.as_str())
                    .bind(key.account.as_str())
                    .bind(key.id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if done {
                    Self::link_event(&mut tx, holder, key, linked, now).await?;
                }
                tx.commit().await?;
                Ok(if done { $crate::store::LinkChange::Done } else { $crate::store::LinkChange::AlreadySo })
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
                Ok(())
            }

            async fn writer(&self) -> Result<$writer, $crate::store::StoreError> {
                Ok($writer { tx: self.begin_write().await? })
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
                        sqlx::query($crate::store::sql::HOLDER_INVOICES.$dialect)
                            .bind(account)
                            .bind(after_account)
                            .bind(after_id)
                            .bind(limit)
                            .bind(h.kind.as_str())
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
                use sqlx::Row as _;
                let corrupt = |reason: String| $crate::store::StoreError::Corrupt { what: "link".into(), reason };
                let pairs: Vec<[&str; 2]> = keys
                    .iter()
                    .filter(|k| k.kind == invoiceflow_rules::RecordKind::Invoice)
                    .map(|k| [k.account.as_str(), k.id.as_str()])
                    .collect();
                let mut out = Vec::new();
                for chunk in pairs.chunks(CHUNK) {
                    let rows = sqlx::query($crate::store::sql::HOLDERS_OF.$dialect)
                        .bind($crate::store::imp::json_rows(chunk)?)
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        let key = invoiceflow_rules::RecordKey::new(
                            invoiceflow_rules::RecordKind::Invoice,
                            invoiceflow_rules::AccountName::new(row.try_get::<String, _>(0)?)
                                .map_err(|e| corrupt(e.to_string()))?,
                            invoiceflow_rules::RecordId::new(row.try_get::<String, _>(1)?)
                                .map_err(|e| corrupt(e.to_string()))?,
                        );
                        let kind: String = row.try_get(2)?;
                        let kind = invoiceflow_rules::HolderKind::parse(&kind)
                            .ok_or_else(|| corrupt(format!("holder kind {kind}")))?;
                        let id = invoiceflow_rules::HolderId::new(row.try_get::<String, _>(3)?)
                            .map_err(|e| corrupt(e.to_string()))?;
                        out.push((key, invoiceflow_rules::Holder { kind, id }));
                    }
                }
                Ok(out)
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
                    .fetch_all(&self.pool)
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
        }
    };
}

/// Rows per statement: large enough to amortise a round trip, small enough for one JSON parameter.
pub(crate) const CHUNK: usize = 1000;

pub(crate) use sql_store;

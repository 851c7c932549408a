//! The embedded default: a SQLite file, created on first use, in WAL mode, written in immediate
//! transactions so that concurrent writers queue on the busy timeout instead of failing.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::imp::{CHUNK, RowChunk, sql_store};

/// An index of `records` that a bulk import may set aside: how to drop it, and how to create it
/// exactly as the migrations do (a test compares the two).
pub(crate) struct DeferredIndex {
    pub(crate) name: &'static str,
    pub(crate) drop: &'static str,
    pub(crate) create: &'static str,
}

macro_rules! deferred_index {
    ($name:literal ON $definition:literal) => {
        DeferredIndex {
            name: $name,
            drop: concat!("DROP INDEX IF EXISTS ", $name),
            create: concat!("CREATE INDEX IF NOT EXISTS ", $name, " ON ", $definition),
        }
    };
}

/// The secondary indexes of `records`: each costs a random-order insert per record, so a large
/// import into a small table is faster without them and a sort to rebuild them at the end.
pub(crate) const DEFERRED_INDEXES: [DeferredIndex; 5] = [
    deferred_index!("records_by_status_due" ON "records (status, due_date, account, id)"),
    deferred_index!("records_by_status_txn" ON "records (status, txn_date, account, id)"),
    deferred_index!("records_by_deal" ON "records (deal_id) WHERE deal_id IS NOT NULL"),
    deferred_index!("records_by_contact" ON "records (contact_id) WHERE contact_id IS NOT NULL"),
    deferred_index!("records_by_company" ON "records (company_id) WHERE company_id IS NOT NULL"),
];

/// The page cache (`PRAGMA cache_size`, negative: KiB): 64 MiB, where SQLite's default is 2 MiB,
/// so index pages written in random order stay in memory during a large import.
macro_rules! cache_kib {
    () => {
        "-65536"
    };
}

/// The page cache during a bulk import (sequential writes only).
macro_rules! bulk_cache_kib {
    () => {
        "-16384"
    };
}

/// A WAL file smaller than this (1,000 pages) is left to the writer's own checkpoints.
const QUIET_WAL_BYTES: u64 = 4 << 20;

/// The smallest import that sets indexes aside.
pub const BULK_MIN_RECORDS: u64 = 100_000;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Read-only connections for the engine's hot reads (changes, records, cursors), which WAL
    /// lets run while the one writer writes.
    reads: SqlitePool,
    /// The connection that copies the WAL back into the database beside the writer
    /// ([`Self::upkeep`]), opened on first use.
    checkpoints: SqlitePool,
    /// The WAL file, watched by [`Self::upkeep`].
    wal: Option<PathBuf>,
    /// When the WAL was last seen modified (nanoseconds since the epoch).
    wal_modified: Arc<AtomicI64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the file a `sqlite://PATH` URL names.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the file cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("cache_size", cache_kib!())
            // Checkpoint the WAL every 16,384 pages (64 MiB) instead of 1,000: index pages written
            // in random order (invoices by deal) are then copied back once per checkpoint, not each
            // time they change. The WAL file may grow to about that size.
            .pragma("wal_autocheckpoint", "16384")
            // A bulk import's index rebuild takes seconds by design: not a warning for the user.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        // One connection: SQLite has one writer anyway, and every connection keeps a page cache
        // of its own (a pool rotates through its connections, so each would grow to full size).
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        // Created by the writer first: a read-only connection cannot create the file. A small
        // page cache each: they read what was just written, which the OS caches anyway.
        let reads = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .connect_lazy_with(options.clone().read_only(true).pragma("cache_size", "-8192"));
        // Closed after a minute without writes: an idle engine keeps no memory for it.
        let checkpoints = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(options.clone().pragma("cache_size", "-1024"));
        let wal = (options.get_filename() != std::path::Path::new(":memory:")).then(|| {
            let mut name = options.get_filename().as_os_str().to_owned();
            name.push("-wal");
            PathBuf::from(name)
        });
        Ok(Self { pool, reads, checkpoints, wal, wal_modified: Arc::default() })
    }

    /// `Store::maintain`: a passive checkpoint on a connection of its own, when the WAL is large
    /// and was written since the last look. The writer's automatic checkpoint runs inside the
    /// commit that crosses its threshold, and every write waits while it copies the WAL back
    /// (45 ms at the HTTP benchmark's pace, once per 64 MiB of WAL). Run beside the writer, this
    /// one blocks nobody — it copies what no reader still needs and leaves the rest for the
    /// next — so the automatic one finds little left to copy. True when it checkpointed.
    async fn upkeep(&self) -> Result<bool, StoreError> {
        let Some(meta) = self.wal.as_ref().and_then(|wal| std::fs::metadata(wal).ok()) else { return Ok(false) };
        // Smaller, the WAL has never held more than a few hundred pages: nothing to get ahead of.
        if meta.len() < QUIET_WAL_BYTES {
            return Ok(false);
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .unwrap_or(0);
        if self.wal_modified.swap(modified, Ordering::Relaxed) == modified {
            return Ok(false);
        }
        let (busy, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&self.checkpoints).await?;
        tracing::trace!(busy, frames, copied, "WAL checkpoint");
        Ok(true)
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Record rows go to [`Self::upsert_chunk`] as one JSON array.
    const ROWS_AS_JSON: bool = true;

    async fn upsert_chunk(
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        rows: &RowChunk,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(super::sql::SQLITE_UPSERT);
        let query = match rows {
            RowChunk::Json(json) => query.bind(json.as_str()),
            RowChunk::Rows(rows) => query.bind(super::imp::json_rows(rows)?),
        };
        query.execute(&mut **tx).await?;
        Ok(())
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/sqlite")
    }

    /// `Store::begin_bulk`: drops the [`DEFERRED_INDEXES`] for an import of `records` records when
    /// that is at least [`BULK_MIN_RECORDS`] and at least as many as are stored.
    async fn set_indexes_aside(&self, records: u64) -> Result<bool, StoreError> {
        if records < BULK_MIN_RECORDS {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        // The largest rowid: the number of records, give or take deletions, without a count.
        let stored: i64 = sqlx::query_scalar("SELECT coalesce(max(rowid), 0) FROM records").fetch_one(&mut *tx).await?;
        // Rebuilding costs a sort of everything stored; maintaining, an insert per changed record.
        if u64::try_from(stored).unwrap_or(0).saturating_mul(2) > records {
            return Ok(false);
        }
        for index in DEFERRED_INDEXES {
            sqlx::query(index.drop).execute(&mut *tx).await?;
        }
        // Without random-order indexes, every page is written once and left: a large cache only
        // holds memory.
        sqlx::query(concat!("PRAGMA cache_size = ", bulk_cache_kib!())).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(records, stored, "bulk import: secondary indexes set aside until the end");
        Ok(true)
    }

    /// `Store::end_bulk`: creates whichever [`DEFERRED_INDEXES`] are missing.
    async fn restore_indexes(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for index in DEFERRED_INDEXES {
            tracing::debug!(index = index.name, "ensuring index");
            sqlx::query(index.create).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        sqlx::query(concat!("PRAGMA cache_size = ", cache_kib!())).execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_store!(SqliteStore, SqliteWriter, sqlx::Sqlite, sqlite);
super::quickbooks::quickbooks_store!(SqliteStore, sqlite);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store as _;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        (dir, store)
    }

    async fn index_sql(store: &SqliteStore, name: &str) -> Option<String> {
        sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = $1")
            .bind(name)
            .fetch_optional(&store.pool)
            .await
            .expect("schema")
    }

    #[tokio::test]
    async fn deferred_indexes_are_rebuilt_as_the_migrations_create_them() {
        let (_dir, store) = store().await;
        let mut migrated = Vec::new();
        for index in DEFERRED_INDEXES {
            let sql = index_sql(&store, index.name).await.expect("the migrations create it");
            assert_eq!(sql, index.create.replace("IF NOT EXISTS ", ""), "{}", index.name);
            migrated.push(sql);
        }
        assert!(store.begin_bulk(BULK_MIN_RECORDS).await.expect("begin"));
        for index in DEFERRED_INDEXES {
            assert_eq!(index_sql(&store, index.name).await, None, "{} set aside", index.name);
        }
        store.end_bulk().await.expect("end");
        for (index, sql) in DEFERRED_INDEXES.iter().zip(migrated) {
            assert_eq!(index_sql(&store, index.name).await, Some(sql));
        }
    }

    /// Regression: with a plain join, SQLite's planner scanned every firing of the workflow
    /// (every enrollment of the rule) and the keys for each: a reminder pass over 10,000 invoices
    /// spent a minute there. Each key must be one index probe.
    #[tokio::test]
    async fn keyed_lookups_probe_the_index_once_per_key() {
        let (_dir, store) = store().await;
        for (sql, table) in [(crate::store::sql::DECIDED.sqlite, "f"), (crate::store::sql::ENROLLED.sqlite, "e")] {
            use sqlx::Row as _;
            let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind(r#"[["invoice","acme","7"]]"#)
                .bind("payment_due")
                .fetch_all(&store.pool)
                .await
                .expect("plan")
                .iter()
                .map(|row| row.get("detail"))
                .collect();
            assert_eq!(plan.len(), 2, "{plan:?}");
            assert!(plan[0].starts_with("SCAN k"), "the keys outside: {plan:?}");
            assert!(
                plan[1].starts_with(&format!("SEARCH {table} USING")) && plan[1].contains("record_id=?"),
                "one probe per key on the whole key: {plan:?}"
            );
        }
    }

    #[tokio::test]
    async fn upkeep_checkpoints_a_large_wal_while_it_is_written() {
        let (_dir, store) = store().await;
        let write = |n: i64| {
            sqlx::query(
                "INSERT INTO cursors (name, seq) VALUES ('upkeep', $1) ON CONFLICT (name) DO UPDATE SET seq = $1",
            )
            .bind(n)
            .execute(&store.pool)
        };
        write(1).await.expect("write");
        assert!(!store.maintain().await.expect("upkeep"), "a small WAL is the writer's business");
        // Over 4 MiB of pages through the WAL.
        sqlx::query("CREATE TABLE filler (b BLOB)").execute(&store.pool).await.expect("table");
        sqlx::query("INSERT INTO filler VALUES (zeroblob(5000000))").execute(&store.pool).await.expect("filler");
        assert!(store.maintain().await.expect("upkeep"), "large and written: checkpointed");
        let (_, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&store.checkpoints).await.expect("check");
        assert!(frames > 1000 && copied == frames, "everything was copied back: {copied} of {frames}");
        assert!(!store.maintain().await.expect("upkeep"), "nothing written since: quiet");
        // A file's mtime moves in the kernel's coarse clock ticks (a few ms): one tick apart.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        write(2).await.expect("write");
        assert!(store.maintain().await.expect("upkeep"), "written again");
    }

    #[tokio::test]
    async fn small_imports_and_interrupted_bulk_imports() {
        let (_dir, store) = store().await;
        assert!(!store.begin_bulk(BULK_MIN_RECORDS - 1).await.expect("begin"), "too small to set aside");
        assert!(index_sql(&store, "records_by_deal").await.is_some());
        assert!(store.begin_bulk(BULK_MIN_RECORDS).await.expect("begin"));
        // Killed before end_bulk: the next open (which migrates) restores the indexes.
        store.migrate().await.expect("migrate");
        assert!(index_sql(&store, "records_by_deal").await.is_some());
    }

    #[tokio::test]
    async fn upgrading_a_store_fills_the_dates_the_workflows_count_from() {
        use invoiceflow_rules::parse::{Item, ParseContext, parse_value};
        let dir = tempfile::tempdir().expect("temp dir");
        // The schema before the reminder workflows: migrations 0001 to 0003.
        let earlier = dir.path().join("earlier");
        std::fs::create_dir(&earlier).expect("dir");
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
        for entry in std::fs::read_dir(&all).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if name.as_str() < "0004" {
                std::fs::copy(&path, earlier.join(&name)).expect("copy");
            }
        }
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.expect("connect");
        let migrator = sqlx::migrate::Migrator::new(earlier.as_path()).await.expect("earlier migrations");
        migrator.run(&store.pool).await.expect("migrate to 0003");
        // An invoice as the earlier version stored it.
        let account = invoiceflow_rules::AccountName::new("acme").expect("account");
        let usd = |_: &invoiceflow_rules::AccountName| invoiceflow_rules::Currency::USD;
        let ctx = ParseContext { account: &account, home_currency: &usd, received_at: chrono::DateTime::UNIX_EPOCH };
        let value = serde_json::json!({"type": "invoice", "id": "7", "customer": "Acme", "amount": "10.00",
            "balance": "10.00", "currency": "USD", "txn_date": "2026-11-10", "due_date": "2026-12-10",
            "updated_at": "2026-11-10T00:00:00Z"});
        let Some(Item::Record(invoiceflow_rules::parse::Incoming::Upsert(record))) =
            parse_value(value, &ctx).into_iter().next()
        else {
            panic!("parsed")
        };
        let row = crate::store::codec::encode(&crate::store::Stored { record, status: "awaiting_send".into() })
            .expect("encode");
        sqlx::query(
            "INSERT INTO records (kind, account, id, status, due_date, updated_at, currency, body) \
             VALUES ('invoice', 'acme', '7', 'awaiting_send', '2026-12-10', 0, 'USD', $1)",
        )
        .bind(&row.body)
        .execute(&store.pool)
        .await
        .expect("insert");
        store.migrate().await.expect("upgrade");
        let query = crate::store::AnchorQuery {
            kind: invoiceflow_rules::RecordKind::Invoice,
            status: "awaiting_send",
            anchor: crate::store::AnchorColumn::TxnDate,
            date: "2026-11-10".parse().expect("date"),
            after: None,
            limit: 10,
        };
        let found = store.anchored(&query).await.expect("anchored");
        assert_eq!(found.len(), 1, "the invoice date was filled from the stored record");
        let by_due = crate::store::AnchorQuery {
            anchor: crate::store::AnchorColumn::DueDate,
            date: "2026-12-10".parse().expect("date"),
            ..query
        };
        assert_eq!(store.anchored(&by_due).await.expect("anchored").len(), 1, "and it is still found by due date");
    }
}

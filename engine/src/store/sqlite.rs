//! The embedded default: a SQLite file, created on first use, in WAL mode, written in immediate
//! transactions so that concurrent writers queue on the busy timeout instead of failing.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::imp::{CHUNK, sql_store};

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
            // 64 MiB of page cache (SQLite's default is 2 MiB): index pages written in random
            // order (links by deal) stay in memory during a large import.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoint the WAL every 16,384 pages (64 MiB) instead of 1,000: index pages written
            // in random order (links by deal) are then copied back once per checkpoint, not each
            // time they change. The WAL file may grow to about that size.
            .pragma("wal_autocheckpoint", "16384");
        // One connection: SQLite has one writer anyway, and every connection keeps a page cache
        // of its own (a pool rotates through its connections, so each would grow to full size).
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn upsert_chunk(
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        rows: &[super::codec::Row],
    ) -> Result<(), StoreError> {
        sqlx::query(super::sql::SQLITE_UPSERT).bind(super::imp::json_rows(rows)?).execute(&mut **tx).await?;
        Ok(())
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/sqlite")
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_store!(SqliteStore, SqliteWriter, sqlx::Sqlite, sqlite);

//! The multi-node store: PostgreSQL. Writes that read-then-write records (import batches,
//! refresh, links) take one transaction-scoped advisory lock, so nodes never interleave them.

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

use super::StoreError;
use super::imp::{CHUNK, RowChunk, sql_store};

/// The advisory lock key that serialises record writes across nodes ("invf" in ASCII).
const WRITE_LOCK: i64 = 0x696e_7666;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL reads and writes side by side.
    reads: PgPool,
}

impl PgStore {
    /// Connects to a `postgres://…` URL.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the server is unreachable or refuses.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (tests use a private `search_path`).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the server is unreachable or refuses.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        // Batch statements join a JSON array against large tables. A generic plan cached while a
        // table was empty would keep scanning it whole as it grows: plan each execution instead.
        let options = options
            .options([("plan_cache_mode", "force_custom_plan")])
            .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1));
        let pool = PgPoolOptions::new().max_connections(8).connect_with(options).await?;
        Ok(Self { reads: pool.clone(), pool })
    }

    /// `Store::maintain`: PostgreSQL looks after itself (autovacuum, its own checkpoints).
    #[allow(clippy::unused_async)]
    async fn upkeep(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Record rows go to [`Self::upsert_chunk`] as rows to bind.
    const ROWS_AS_JSON: bool = false;

    async fn upsert_chunk(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        rows: &RowChunk,
    ) -> Result<(), StoreError> {
        let rows = match rows {
            RowChunk::Rows(rows) => rows.as_slice(),
            RowChunk::Json(_) => {
                return Err(StoreError::Corrupt { what: "batch".into(), reason: "rows encoded for SQLite".into() });
            }
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(super::sql::postgres_upsert(rows.len())));
        for row in rows {
            query = query
                .bind(row.kind)
                .bind(row.account.as_str())
                .bind(row.id.as_str())
                .bind(row.status.as_str())
                .bind(row.due_date.as_deref())
                .bind(row.txn_date.as_deref())
                .bind(row.updated_at)
                .bind(row.currency)
                .bind(row.body.as_str())
                .bind(row.deal_id.as_deref())
                .bind(row.contact_id.as_deref())
                .bind(row.company_id.as_deref());
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/postgres")
    }

    /// `Store::begin_bulk`: nothing. Several nodes share the database, and one node's import must
    /// not slow the others' queries down.
    #[allow(clippy::unused_async)]
    async fn set_indexes_aside(&self, _records: u64) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// `Store::end_bulk`: nothing.
    #[allow(clippy::unused_async)]
    async fn restore_indexes(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Runs one administrative statement (schema set-up in tests and tools); never user input.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the server refuses it.
    pub async fn raw_execute(&self, sql: &str) -> Result<(), StoreError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_store!(PgStore, PgWriter, sqlx::Postgres, postgres);
super::quickbooks::quickbooks_store!(PgStore, postgres);

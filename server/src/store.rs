//! The store: one sqlx `AnyPool` over SQLite (default, a file in the data dir) or PostgreSQL (by
//! URL). Queries are runtime-checked and written in the SQL both accept: `$1, $2, ...` placeholders
//! in order, TEXT/BIGINT/DOUBLE PRECISION columns, timestamps as unix milliseconds (BIGINT),
//! booleans as BIGINT 0/1, ids and JSON as TEXT. Aggregates over BIGINT must be cast back
//! (`CAST(SUM(x) AS BIGINT)`) because PostgreSQL returns NUMERIC, which `Any` cannot decode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

use crate::error::Result;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database handle shared by every module.
#[derive(Clone, Debug)]
pub struct Store {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connect and run migrations. For SQLite the file is created if missing and WAL is enabled.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let pool = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)?;
                }
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(false);
                let url = opts.to_url_lossy();
                let any = AnyConnectOptions::from_url(&url)?;
                AnyPoolOptions::new().max_connections(4).connect_with(any).await?
            }
            Backend::Postgres => {
                let any = AnyConnectOptions::from_str(url)?;
                AnyPoolOptions::new()
                    .max_connections(10)
                    .connect_with(any)
                    .await?
            }
        };
        if backend == Backend::Sqlite {
            // Pragmas set through the URL do not survive the Any layer everywhere; set them again.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
            sqlx::query("PRAGMA busy_timeout=10000").execute(&pool).await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Begin a write transaction (every writing transaction of the server uses this). On SQLite it
    /// is `BEGIN IMMEDIATE`: a plain
    /// (deferred) `BEGIN` takes a read snapshot at its first `SELECT`, and upgrading it to a writer
    /// while another connection writes (the dispatcher storing manifests, ingest storing status)
    /// fails at once with `database is locked` (SQLite cannot wait: the snapshot would be stale),
    /// whatever the busy timeout. `IMMEDIATE` takes the write lock first, waiting up to the busy
    /// timeout. PostgreSQL needs nothing special (row locks, MVCC).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Now as unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds to a UTC time.
pub fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

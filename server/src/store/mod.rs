//! Layer `store`: ALL SQL of the server, one module per group of tables. It may import `domain`
//! and the foundation (`error`, `config`, `metrics`); nothing above it. It is the only layer that
//! names `sqlx`: services hold transactions through the [`Tx`] and [`Conn`] types.
//!
//! One sqlx `AnyPool` over SQLite (default, a file in the data dir) or PostgreSQL (by URL).
//! Queries are runtime-checked and written in the SQL both accept: `$1, $2, ...` placeholders in
//! order (or [`push_values`] for multi-row batches), TEXT/BIGINT/DOUBLE PRECISION columns,
//! timestamps as unix milliseconds (BIGINT), booleans as BIGINT 0/1, ids and JSON as TEXT.
//! Aggregates over BIGINT must be cast back (`CAST(SUM(x) AS BIGINT)`) because PostgreSQL returns
//! NUMERIC, which `Any` cannot decode. A constraint violation becomes a named 409/422 through
//! [`constraint::named`].

pub mod alarms;
pub mod areas;
pub mod audit;
pub mod autonomy;
pub mod backup;
pub mod boards;
pub mod bulletins;
pub mod cap;
pub mod commands;
pub mod constraint;
pub mod devices;
pub mod feedback;
pub mod history;
pub mod ingest;
pub mod installs;
pub mod lease;
pub mod lexicon;
pub mod live;
pub mod loudness;
pub mod manifests;
pub mod media;
pub mod notifications;
pub mod organisations;
pub mod ota;
pub mod outbox;
pub mod policies;
pub mod public;
pub mod reports;
pub mod review;
pub mod schedules;
pub mod scope;
pub mod secrets;
pub mod speech;
pub mod submissions;
pub mod tracking;
pub mod users;
pub mod wake_relay;
pub mod write_gate;

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

/// A transaction ([`Store::begin_write`], [`Store::begin_snapshot`]); pass `&mut *tx` where a
/// [`Conn`] is wanted. On SQLite a write transaction holds its turn of the process's
/// [`write_gate::WriteGate`] until it ends.
#[derive(Debug)]
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    // Dropped after `inner` (fields drop in order): the turn ends with the transaction.
    _turn: Option<write_gate::Turn>,
}

impl Tx {
    /// Commit.
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    /// Roll back.
    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.inner
    }
}

/// A database connection (inside a transaction or from the pool).
pub type Conn = sqlx::AnyConnection;

/// The database handle shared by every module.
#[derive(Clone, Debug)]
pub struct Store {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
    /// SQLite: the order in which this process's writers get the database's one write lock.
    pub gate: write_gate::WriteGate,
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
                let path = sqlite_path(url);
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    create_private_dir(dir)?;
                }
                private_sqlite_files(std::path::Path::new(path))?;
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
        Ok(Store {
            pool,
            backend,
            gate: write_gate::WriteGate::default(),
        })
    }

    /// Begin a write transaction (every writing transaction of the server uses this). On SQLite it
    /// is `BEGIN IMMEDIATE`: a plain
    /// (deferred) `BEGIN` takes a read snapshot at its first `SELECT`, and upgrading it to a writer
    /// while another connection writes (the dispatcher storing manifests, ingest storing status)
    /// fails at once with `database is locked` (SQLite cannot wait: the snapshot would be stale),
    /// whatever the busy timeout. `IMMEDIATE` takes the write lock first, waiting up to the busy
    /// timeout. Before it the transaction takes its turn of this process's writers
    /// ([`write_gate`]: first come first served, instead of SQLite's unordered polling). PostgreSQL
    /// needs nothing special (row locks, MVCC).
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.gate.turn().await?;
                Tx {
                    inner: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => Tx {
                inner: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// A turn ahead of the queued writers for one short statement outside a transaction (the
    /// leader lease, `store::lease`); `None` on PostgreSQL. Hold it while the statement runs.
    pub async fn first_turn(&self) -> Result<Option<write_gate::Turn>> {
        Ok(match self.backend {
            Backend::Sqlite => Some(self.gate.first().await?),
            Backend::Postgres => None,
        })
    }

    /// Begin a read-only transaction whose statements all see one snapshot of the database, for
    /// a read made of several queries that must agree with each other (rows another transaction
    /// commits together are seen together or not at all). On SQLite a deferred `BEGIN` does that
    /// (WAL: the snapshot is taken at the first read); PostgreSQL's default `READ COMMITTED` takes a
    /// snapshot per statement, so it is `REPEATABLE READ`.
    pub async fn begin_snapshot(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        Ok(Tx { inner, _turn: None })
    }

    /// Whether the database answers a trivial query (`/healthz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// The file of a `sqlite:` URL (`sqlite://path?mode=rwc` → `path`).
fn sqlite_path(url: &str) -> &str {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or(path)
}

/// For a SQLite URL, the lock that makes this process the file's only server: an exclusive
/// lock on `<file>.lock`, held while the returned file is open (the kernel drops it when the
/// process dies, even by `kill -9`). A second server on the same file fails to start here with
/// a message naming the file. `None` for PostgreSQL (several instances share it: the leader lease
/// decides which one dispatches) and for in-memory databases.
pub fn lock_sqlite(url: &str) -> Result<Option<std::fs::File>> {
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let path = sqlite_path(url);
    if path.is_empty() || path.starts_with(':') {
        return Ok(None);
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        create_private_dir(dir)?;
    }
    let lock = format!("{path}.lock");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(crate::error::Error::Conflict(format!(
            "another nguon-server already uses the SQLite database {path} (its lock {lock} is held); \
             stop it first: one SQLite file serves one instance, several instances need PostgreSQL"
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// The `status` column of row `id` in `table` (a fixed table name, never input), read after a
/// conditional status update matched no row; 404 naming `what` and `id` when the row is gone.
pub async fn status_of(conn: &mut Conn, table: &str, what: &str, id: &str) -> Result<String> {
    use sqlx::Row;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT status FROM {table} WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| crate::error::Error::NotFound(format!("{what} `{id}`")))?;
    Ok(row.try_get::<String, _>("status")?)
}

/// Now as unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds to a UTC time.
pub fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `$1, $2, ..., $n` starting at `$start`: the placeholders of an `IN (...)` list.
pub fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(…),(…)` placeholders for a multi-row insert. On SQLite they are anonymous `?`: SQLite looks
/// up each named parameter (`$n`) by a linear scan, which makes a 10,000-parameter statement
/// quadratic (≈300 ms per 1,000 rows instead of a few ms).
pub fn push_values(sql: &mut String, rows: usize, cols: usize, backend: Backend) {
    use std::fmt::Write;
    if backend == Backend::Sqlite {
        let row = format!("({})", vec!["?"; cols].join(","));
        for r in 0..rows {
            if r > 0 {
                sql.push(',');
            }
            sql.push_str(&row);
        }
        return;
    }
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            let _ = write!(sql, "${}", r * cols + c + 1);
        }
        sql.push(')');
    }
}

/// Create `dir` (and its parents) readable by the server's user only (0700 on Unix); an
/// existing directory is narrowed to 0700 too.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    b.create(dir)?;
    Ok(())
}

/// The SQLite database file created 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` files the database file's mode), and an existing one and its `-wal`/`-shm` narrowed to
/// 0600 (databases made before this rule were 0644).
fn private_sqlite_files(db: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if db.as_os_str().is_empty() || db.to_str().is_some_and(|p| p.starts_with(':')) {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Backend, placeholders, push_values};

    #[test]
    fn placeholders_number_from_the_start_given() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn batch_values_are_anonymous_on_sqlite_and_numbered_on_postgres() {
        let mut s = String::new();
        push_values(&mut s, 2, 3, Backend::Sqlite);
        assert_eq!(s, "(?,?,?),(?,?,?)");
        let mut p = String::new();
        push_values(&mut p, 2, 2, Backend::Postgres);
        assert_eq!(p, "($1,$2),($3,$4)");
    }
}

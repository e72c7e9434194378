//! The database side of `nguon-server backup` / `restore` (services::backup): a consistent copy of
//! a live SQLite database (`VACUUM INTO`, one read transaction, so the server keeps running), the
//! schema level (the highest applied migration) of a database or a copy, the highest migration
//! this binary knows, and whether a restore target is empty. Nothing here runs migrations: a
//! backup must not change the database it reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use crate::error::Result;

/// The SQLite file named by a `sqlite:` URL (`None` for PostgreSQL or an in-memory database).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

/// The highest migration version this binary applies, and its description.
pub fn latest_known() -> (i64, String) {
    super::MIGRATOR
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .max_by_key(|(v, _)| *v)
        .unwrap_or((0, String::new()))
}

/// Description of migration `version` if this binary knows it.
pub fn known_description(version: i64) -> Option<String> {
    super::MIGRATOR
        .iter()
        .find(|m| m.version == version)
        .map(|m| m.description.to_string())
}

/// Write a consistent copy of the live SQLite database `db` to `dest` (which must not exist).
/// `VACUUM INTO` reads one snapshot (WAL: writers go on meanwhile) and writes a compact file.
pub async fn sqlite_snapshot(db: &Path, dest: &Path) -> Result<()> {
    let mut c = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await?;
    sqlx::query("VACUUM INTO $1")
        .bind(dest.display().to_string())
        .execute(&mut c)
        .await?;
    c.close().await?;
    Ok(())
}

/// The schema level (highest applied migration, 0 if none) of the database at `url`; for a
/// SQLite file use [`sqlite_url`].
pub async fn level(url: &str) -> Result<i64> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    let exists = table_count(&mut c, url, Some("_sqlx_migrations")).await? > 0;
    let v = if exists {
        sqlx::query("SELECT CAST(MAX(version) AS BIGINT) AS v FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut c)
            .await?
            .try_get::<Option<i64>, _>("v")?
            .unwrap_or(0)
    } else {
        0
    };
    c.close().await?;
    Ok(v)
}

/// Number of tables in the database at `url` (a restore goes only into an empty one).
pub async fn tables(url: &str) -> Result<i64> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    let n = table_count(&mut c, url, None).await?;
    c.close().await?;
    Ok(n)
}

async fn table_count(c: &mut sqlx::AnyConnection, url: &str, name: Option<&str>) -> Result<i64> {
    let sql = match (url.starts_with("sqlite:"), name.is_some()) {
        (true, false) => "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sqlite_master WHERE type = 'table'",
        (true, true) => {
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sqlite_master WHERE type = 'table' AND name = $1"
        }
        (false, false) => {
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM information_schema.tables WHERE table_schema = 'public'"
        }
        (false, true) => {
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = $1"
        }
    };
    let mut q = sqlx::query(sql);
    if let Some(n) = name {
        q = q.bind(n.to_string());
    }
    Ok(q.fetch_one(c).await?.try_get("n")?)
}

/// A read-only URL of the SQLite file `path` (for [`level`] on a copy).
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=ro", path.display())
}

/// Whether `url` names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_file_is_read_from_the_url() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/nguon/nguon.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/nguon/nguon.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://data/nguon.db"),
            Some(PathBuf::from("data/nguon.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }

    #[tokio::test]
    async fn a_snapshot_of_a_migrated_database_has_its_level_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nguon.db");
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let store = crate::store::Store::connect(&url).await.unwrap();
        crate::store::secrets::insert_once(&store, "probe", "v")
            .await
            .unwrap();
        let copy = dir.path().join("copy.db");
        sqlite_snapshot(&db, &copy).await.unwrap();
        let (latest, _) = latest_known();
        assert_eq!(level(&sqlite_url(&copy)).await.unwrap(), latest);
        assert!(tables(&sqlite_url(&copy)).await.unwrap() > 10);
        let empty = dir.path().join("empty.db");
        std::fs::File::create(&empty).unwrap();
        assert_eq!(level(&sqlite_url(&empty)).await.unwrap(), 0);
        assert_eq!(tables(&sqlite_url(&empty)).await.unwrap(), 0);
    }
}

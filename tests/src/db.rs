//! Databases for system tests: a fresh PostgreSQL database per test when
//! `NGUON_TEST_DATABASE_URL` is set (created from that URL's server, dropped with the guard),
//! otherwise the server's SQLite default inside the test's data dir.

use sqlx::Connection;

/// A database for one test. `url()` is `None` for the SQLite default.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: Option<String>,
    name: Option<String>,
    url: Option<String>,
}

/// The PostgreSQL URL the environment asks for, if any.
pub fn postgres_from_env() -> Option<String> {
    std::env::var("NGUON_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The machine's PostgreSQL for tests that need one when `NGUON_TEST_DATABASE_URL` is not set.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The external broker the environment asks for, if any.
pub fn mqtt_from_env() -> Option<String> {
    std::env::var("NGUON_TEST_MQTT_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

fn with_db(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user@host:port/dbname → replace the last path segment.
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let head = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

impl TestDatabase {
    /// A fresh database on the server of `NGUON_TEST_DATABASE_URL`, or the SQLite default.
    pub async fn fresh() -> anyhow::Result<TestDatabase> {
        let Some(url) = postgres_from_env() else {
            return Ok(TestDatabase::sqlite());
        };
        Self::fresh_postgres(&url).await
    }

    /// The server's SQLite default (in its data dir), whatever the environment says.
    pub fn sqlite() -> TestDatabase {
        TestDatabase {
            admin_url: None,
            name: None,
            url: None,
        }
    }

    /// A fresh database on the PostgreSQL server of `url` (a test that needs PostgreSQL whatever
    /// the environment says: `NGUON_TEST_DATABASE_URL`, else the machine's
    /// [`DEFAULT_POSTGRES`]).
    pub async fn fresh_postgres(url: &str) -> anyhow::Result<TestDatabase> {
        let admin_url = with_db(url, "postgres");
        let name = format!("nguon_sys_{}", crate::net::random_suffix());
        let mut c = sqlx::PgConnection::connect(&admin_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach PostgreSQL at {admin_url}: {e}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        let _ = c.close().await;
        Ok(TestDatabase {
            url: Some(with_db(url, &name)),
            admin_url: Some(admin_url),
            name: Some(name),
        })
    }

    /// Another handle on the database of `url` that does not drop it (a second server on the
    /// same database).
    pub fn shared(url: &str) -> TestDatabase {
        TestDatabase {
            admin_url: None,
            name: None,
            url: Some(url.to_string()),
        }
    }

    /// The URL for `NGUON_DATABASE_URL`, or `None` to use the server's SQLite default.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// A short name of the backend, for logs.
    pub fn backend(&self) -> &'static str {
        if self.url.is_some() { "postgres" } else { "sqlite" }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Some(admin_url), Some(name)) = (self.admin_url.clone(), self.name.clone()) else {
            return;
        };
        // Best effort on a thread of its own: we may be inside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_one_in_the_url() {
        assert_eq!(
            with_db("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_db("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_db("postgres://u@h", "x"), "postgres://u@h/x");
    }
}

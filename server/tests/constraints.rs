//! A database constraint violation becomes a named 409/422 on both backends
//! (`store::constraint::named`), instead of an opaque 500.

use nguon_server::Error;
use nguon_server::store::Backend;
use nguon_server::store::constraint::named;

use crate::common::spawn_app;

#[tokio::test]
async fn constraint_violations_become_named_conflicts_and_refusals() {
    let app = spawn_app().await;
    let store = &app.state().store;
    let mut c = store.pool.acquire().await.unwrap();
    let sqlite = store.backend == Backend::Sqlite;
    if sqlite {
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *c)
            .await
            .unwrap();
    }
    for sql in [
        "CREATE TEMPORARY TABLE t_parent (code TEXT PRIMARY KEY)",
        "CREATE TEMPORARY TABLE t_child (id TEXT PRIMARY KEY, parent TEXT NOT NULL REFERENCES t_parent (code), \
         volume BIGINT CHECK (volume BETWEEN 0 AND 100))",
        "INSERT INTO t_parent (code) VALUES ('p1')",
        "INSERT INTO t_child (id, parent, volume) VALUES ('c1', 'p1', 50)",
    ] {
        sqlx::query(sql).execute(&mut *c).await.unwrap();
    }
    let fail = async |c: &mut sqlx::AnyConnection, sql: &'static str, subject: &str| -> Error {
        let e = sqlx::query(sql).execute(&mut *c).await.expect_err(sql);
        named(e, subject)
    };

    let e = fail(&mut c, "INSERT INTO t_parent (code) VALUES ('p1')", "area `p1`").await;
    assert_eq!(e.status(), 409, "{e}");
    assert!(e.to_string().starts_with("area `p1` already exists"), "{e}");

    let e = fail(
        &mut c,
        "INSERT INTO t_child (id, parent, volume) VALUES ('c2', 'nowhere', 1)",
        "device `c2`",
    )
    .await;
    assert!(matches!(e.status().as_u16(), 409 | 422), "{e}");
    if !sqlite {
        assert_eq!(e.status(), 422);
        assert_eq!(
            e.to_string(),
            "device `c2` refers to `parent` `nowhere`, which does not exist in `t_parent`"
        );
    }

    let e = fail(&mut c, "DELETE FROM t_parent WHERE code = 'p1'", "area `p1`").await;
    assert_eq!(e.status(), 409, "{e}");
    if !sqlite {
        assert_eq!(
            e.to_string(),
            "area `p1` is still used by `t_child`; remove or change those first"
        );
    }

    let e = fail(
        &mut c,
        "INSERT INTO t_child (id, parent, volume) VALUES ('c3', 'p1', 500)",
        "device `c3`",
    )
    .await;
    assert_eq!(e.status(), 422, "{e}");
    assert!(
        e.to_string().starts_with("device `c3`: a value breaks the rule"),
        "{e}"
    );

    let e = fail(
        &mut c,
        "INSERT INTO t_child (id, parent, volume) VALUES ('c4', NULL, 1)",
        "device `c4`",
    )
    .await;
    assert_eq!(e.status(), 422, "{e}");
    assert!(e.to_string().contains("parent` is required"), "{e}");

    // Anything else stays what it was (a logged 500).
    let e = fail(&mut c, "SELECT * FROM no_such_table", "x").await;
    assert_eq!(e.status(), 500);

    if sqlite {
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *c)
            .await
            .unwrap();
    }
}

//! Table `areas`: the tree loader ([`tree`]) behind every walk of the area tree, the reads of
//! the API and console (one area, the scoped list, all areas), and the writes of the area use
//! cases (upsert, delete, what still depends on an area). Functions named `…_in` run on the
//! caller's connection (pass `&mut *tx` inside a use case's transaction).

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::area::{Area, AreaFields, AreaTree, Dependents};
use crate::domain::scope::Caller;
use crate::error::Result;
use crate::store::{Conn, Store, now_ms};

const COLUMNS: &str = "code, name, parent, level, created_at, updated_at";

fn row_to_area(r: &AnyRow) -> Result<Area> {
    Ok(Area {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        parent: r.try_get("parent")?,
        level: r.try_get("level")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The whole area tree, in one query (rows in code order).
pub async fn tree(store: &Store) -> Result<AreaTree> {
    tree_in(&mut *store.pool.acquire().await?).await
}

/// [`tree`] on the caller's connection.
pub async fn tree_in(conn: &mut Conn) -> Result<AreaTree> {
    let rows = sqlx::query("SELECT code, parent FROM areas ORDER BY code")
        .fetch_all(&mut *conn)
        .await?;
    let mut pairs = Vec::with_capacity(rows.len());
    for r in rows {
        pairs.push((
            r.try_get::<String, _>("code")?,
            r.try_get::<Option<String>, _>("parent")?,
        ));
    }
    Ok(AreaTree::new(pairs))
}

/// The given roots plus all their descendants (each once). Roots need not exist. A wrapper over
/// the one walk of the area tree ([`AreaTree::subtree`]).
pub async fn subtree(store: &Store, roots: &[String]) -> Result<Vec<String>> {
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    Ok(tree(store).await?.subtree(roots))
}

/// The area itself followed by its parent, grandparent, ... up to the root (empty if unknown). A
/// wrapper over the one walk of the area tree ([`AreaTree::ancestors`]).
pub async fn ancestors(store: &Store, code: &str) -> Result<Vec<String>> {
    Ok(tree(store).await?.ancestors(code))
}

/// Load one area.
pub async fn get(store: &Store, code: &str) -> Result<Option<Area>> {
    get_in(&mut *store.pool.acquire().await?, code).await
}

/// [`get`] on the caller's connection.
pub async fn get_in(conn: &mut Conn, code: &str) -> Result<Option<Area>> {
    let sql = format!("SELECT {COLUMNS} FROM areas WHERE code = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(code.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(row_to_area).transpose()
}

/// Whether an area exists.
pub async fn exists(store: &Store, code: &str) -> Result<bool> {
    exists_in(&mut *store.pool.acquire().await?, code).await
}

/// [`exists`] on the caller's connection.
pub async fn exists_in(conn: &mut Conn, code: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT code FROM areas WHERE code = $1")
        .bind(code.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The areas inside the caller's scope, ordered by code.
pub async fn list(store: &Store, caller: &Caller) -> Result<Vec<Area>> {
    let scope = crate::store::scope::scope_sql(caller, "code", 1);
    let sql = format!("SELECT {COLUMNS} FROM areas WHERE {} ORDER BY code", scope.sql);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&store.pool).await?;
    rows.iter().map(row_to_area).collect()
}

/// Every area by code (the console's pages).
pub async fn all(store: &Store) -> Result<BTreeMap<String, Area>> {
    let sql = format!("SELECT {COLUMNS} FROM areas ORDER BY code");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let a = row_to_area(r)?;
        out.insert(a.code.clone(), a);
    }
    Ok(out)
}

/// The codes of an area's direct children, ordered.
pub async fn children(store: &Store, code: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT code FROM areas WHERE parent = $1 ORDER BY code")
        .bind(code.to_string())
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("code")?))
        .collect()
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// Inserted.
    Created,
    /// An existing area whose name, parent or level changed.
    Updated,
    /// Identical to the stored area.
    Unchanged,
}

/// Insert or update one area by code (no validation).
pub async fn upsert(conn: &mut Conn, a: &AreaFields) -> Result<Upserted> {
    let existing = sqlx::query("SELECT name, parent, level FROM areas WHERE code = $1")
        .bind(a.code.clone())
        .fetch_optional(&mut *conn)
        .await?;
    let now = now_ms();
    match existing {
        None => {
            sqlx::query("INSERT INTO areas (code, name, parent, level, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(a.code.clone())
                .bind(a.name.clone())
                .bind(a.parent.clone())
                .bind(a.level.clone())
                .bind(now)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Ok(Upserted::Created)
        }
        Some(r) => {
            let (n, p, l): (String, Option<String>, String) =
                (r.try_get("name")?, r.try_get("parent")?, r.try_get("level")?);
            if n == a.name && p == a.parent && l == a.level {
                return Ok(Upserted::Unchanged);
            }
            sqlx::query(
                "UPDATE areas SET name = $1, parent = $2, level = $3, updated_at = $4 WHERE code = $5",
            )
            .bind(a.name.clone())
            .bind(a.parent.clone())
            .bind(a.level.clone())
            .bind(now)
            .bind(a.code.clone())
            .execute(&mut *conn)
            .await?;
            Ok(Upserted::Updated)
        }
    }
}

async fn count(conn: &mut Conn, sql: &'static str, code: &str) -> Result<i64> {
    Ok(sqlx::query(sql)
        .bind(code.to_string())
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?)
}

/// What still refers to an area: child areas, devices, schedule targets, owned media.
pub async fn dependents_in(conn: &mut Conn, code: &str) -> Result<Dependents> {
    Ok(Dependents {
        children: count(conn, "SELECT COUNT(*) AS n FROM areas WHERE parent = $1", code).await?,
        devices: count(conn, "SELECT COUNT(*) AS n FROM devices WHERE area = $1", code).await?,
        schedules: count(
            conn,
            "SELECT COUNT(*) AS n FROM schedule_targets WHERE kind = 'area' AND target = $1",
            code,
        )
        .await?,
        media: count(conn, "SELECT COUNT(*) AS n FROM media WHERE area = $1", code).await?,
    })
}

/// Delete one area.
pub async fn delete_in(conn: &mut Conn, code: &str) -> Result<()> {
    sqlx::query("DELETE FROM areas WHERE code = $1")
        .bind(code.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

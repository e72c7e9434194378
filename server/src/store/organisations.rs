//! Table `organisations` (issue 15): the bodies that answer feedback and submit content.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::organisation::{NewOrganisation, Organisation};
use crate::error::Result;
use crate::store::constraint::NameViolation;
use crate::store::{Conn, Store};

fn org(r: &AnyRow) -> Result<Organisation> {
    Ok(Organisation {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        area: r.try_get("area")?,
        email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Every organisation, by name.
pub async fn list(store: &Store) -> Result<Vec<Organisation>> {
    let rows = sqlx::query(
        "SELECT id, name, kind, area, email, created_at, updated_at FROM organisations ORDER BY name",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(org).collect()
}

/// One organisation.
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Option<Organisation>> {
    let r = sqlx::query(
        "SELECT id, name, kind, area, email, created_at, updated_at FROM organisations WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    r.as_ref().map(org).transpose()
}

/// One organisation on the pool.
pub async fn get(store: &Store, id: &str) -> Result<Option<Organisation>> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, id).await
}

/// Insert one (409 naming it if the name is taken).
pub async fn insert(conn: &mut Conn, id: &str, o: &NewOrganisation, now: i64) -> Result<Organisation> {
    sqlx::query(
        "INSERT INTO organisations (id, name, kind, area, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(o.name.clone())
    .bind(o.kind.clone())
    .bind(o.area.clone())
    .bind(o.email.clone())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .name_violation(&format!("organisation `{}`", o.name))?;
    Ok(Organisation {
        id: id.to_string(),
        name: o.name.clone(),
        kind: o.kind.clone(),
        area: o.area.clone(),
        email: o.email.clone(),
        created_at: now,
        updated_at: now,
    })
}

//! Tables `policies`, `policy_stages` and `policy_links` (issue 15), and the read of what a
//! link reached: proof of play (`plays`, on air) of the linked content and proof of display
//! (`displays`) of a linked bulletin, optionally within a period, and whether a linked bulletin
//! is public (approved and on the boards). Writes take the caller's transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::policy::{Link, LinkKind, Policy, Reached, Stage, StageDates};
use crate::error::{Error, Result};
use crate::store::{Conn, Store};

fn row_to_policy(r: &AnyRow) -> Result<Policy> {
    let stage: String = r.try_get("stage")?;
    let groups: String = r.try_get("groups_json")?;
    let areas: String = r.try_get("areas_json")?;
    Ok(Policy {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        issuer: r.try_get("issuer")?,
        doc_number: r.try_get("doc_number")?,
        doc_url: r.try_get("doc_url")?,
        field: r.try_get("field")?,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        summary: r.try_get("summary")?,
        direct_impact: r.try_get::<i64, _>("direct_impact")? != 0,
        stage: Stage::parse(&stage)
            .map_err(|_| Error::internal(format!("policy stage `{stage}` in the database")))?,
        stages: Vec::new(),
        published: r.try_get::<i64, _>("published")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

async fn stages(conn: &mut Conn, id: &str) -> Result<Vec<StageDates>> {
    let rows = sqlx::query("SELECT stage, starts_on, ends_on FROM policy_stages WHERE policy_id = $1")
        .bind(id.to_string())
        .fetch_all(conn)
        .await?;
    let mut out = rows
        .iter()
        .filter_map(|r| {
            let s: String = r.try_get("stage").ok()?;
            Some(StageDates {
                stage: Stage::parse(&s).ok()?,
                starts_on: r.try_get("starts_on").ok()?,
                ends_on: r.try_get("ends_on").ok()?,
            })
        })
        .collect::<Vec<_>>();
    out.sort_by_key(|s| s.stage);
    Ok(out)
}

/// One policy with its stage dates, on `conn`.
pub async fn load(conn: &mut Conn, id: &str) -> Result<Option<Policy>> {
    let Some(row) = sqlx::query("SELECT * FROM policies WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut p = row_to_policy(&row)?;
    p.stages = stages(conn, id).await?;
    Ok(Some(p))
}

/// [`load`] on a pooled connection.
pub async fn get(store: &Store, id: &str) -> Result<Option<Policy>> {
    let mut conn = store.pool.acquire().await?;
    load(&mut conn, id).await
}

/// Every policy (newest first), with stage dates; `published_only` keeps the public ones.
pub async fn all(store: &Store, published_only: bool) -> Result<Vec<Policy>> {
    let sql = if published_only {
        "SELECT * FROM policies WHERE published = 1 ORDER BY created_at DESC, id"
    } else {
        "SELECT * FROM policies ORDER BY created_at DESC, id"
    };
    let rows = sqlx::query(sql).fetch_all(&store.pool).await?;
    let mut conn = store.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut p = row_to_policy(&r)?;
        p.stages = stages(&mut conn, &p.id).await?;
        out.push(p);
    }
    Ok(out)
}

/// Insert (`new`) or replace a policy and its stage dates, in the caller's transaction.
pub async fn save(conn: &mut Conn, p: &Policy, new: bool) -> Result<()> {
    let sql = if new {
        "INSERT INTO policies (title, issuer, doc_number, doc_url, field, groups_json, areas_json, summary, \
         direct_impact, stage, published, updated_at, id, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    } else {
        "UPDATE policies SET title = $1, issuer = $2, doc_number = $3, doc_url = $4, field = $5, groups_json = $6, \
         areas_json = $7, summary = $8, direct_impact = $9, stage = $10, published = $11, updated_at = $12 \
         WHERE id = $13 AND created_by = $14 AND created_at = $15"
    };
    sqlx::query(sql)
        .bind(p.title.clone())
        .bind(p.issuer.clone())
        .bind(p.doc_number.clone())
        .bind(p.doc_url.clone())
        .bind(p.field.clone())
        .bind(serde_json::to_string(&p.groups).unwrap_or_default())
        .bind(serde_json::to_string(&p.areas).unwrap_or_default())
        .bind(p.summary.clone())
        .bind(i64::from(p.direct_impact))
        .bind(p.stage.as_str())
        .bind(i64::from(p.published))
        .bind(p.updated_at)
        .bind(p.id.clone())
        .bind(p.created_by.clone())
        .bind(p.created_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM policy_stages WHERE policy_id = $1")
        .bind(p.id.clone())
        .execute(&mut *conn)
        .await?;
    for s in &p.stages {
        sqlx::query(
            "INSERT INTO policy_stages (policy_id, stage, starts_on, ends_on) VALUES ($1, $2, $3, $4)",
        )
        .bind(p.id.clone())
        .bind(s.stage.as_str())
        .bind(s.starts_on.clone())
        .bind(s.ends_on.clone())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The content links of a policy, in stage order.
pub async fn links(store: &Store, id: &str) -> Result<Vec<Link>> {
    let rows = sqlx::query(
        "SELECT stage, kind, ref_id FROM policy_links WHERE policy_id = $1 ORDER BY created_at, ref_id",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (s, k): (String, String) = (r.try_get("stage")?, r.try_get("kind")?);
        out.push(Link {
            stage: Stage::parse(&s)?,
            kind: LinkKind::parse(&k)?,
            ref_id: r.try_get("ref_id")?,
        });
    }
    out.sort_by_key(|l| l.stage);
    Ok(out)
}

/// The policies (id, stage) a piece of content is linked to.
pub async fn linked_to(store: &Store, kind: LinkKind, ref_id: &str) -> Result<Vec<(String, Stage)>> {
    let rows = sqlx::query("SELECT policy_id, stage FROM policy_links WHERE kind = $1 AND ref_id = $2")
        .bind(kind.as_str())
        .bind(ref_id.to_string())
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("policy_id")?,
                Stage::parse(&r.try_get::<String, _>("stage")?)?,
            ))
        })
        .collect()
}

/// Link content to a policy stage; `false` when the link exists already.
pub async fn add_link(conn: &mut Conn, id: &str, l: &Link, actor: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO policy_links (policy_id, stage, kind, ref_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (policy_id, stage, kind, ref_id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(l.stage.as_str())
    .bind(l.kind.as_str())
    .bind(l.ref_id.clone())
    .bind(actor.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Remove a link; `false` when there was none.
pub async fn remove_link(conn: &mut Conn, id: &str, l: &Link) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM policy_links WHERE policy_id = $1 AND stage = $2 AND kind = $3 AND ref_id = $4",
    )
    .bind(id.to_string())
    .bind(l.stage.as_str())
    .bind(l.kind.as_str())
    .bind(l.ref_id.clone())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether the content a link names exists.
pub async fn content_exists(store: &Store, kind: LinkKind, ref_id: &str) -> Result<bool> {
    let sql = match kind {
        LinkKind::Bulletin => "SELECT 1 AS x FROM bulletins WHERE id = $1",
        LinkKind::Media => "SELECT 1 AS x FROM media WHERE sha256 = $1",
        LinkKind::Command => "SELECT 1 AS x FROM commands WHERE id = $1",
        LinkKind::Cap => "SELECT 1 AS x FROM cap_messages WHERE id = $1",
    };
    Ok(sqlx::query(sql)
        .bind(ref_id.to_string())
        .fetch_optional(&store.pool)
        .await?
        .is_some())
}

/// The on-air proof of play matching a link, by the play's column and the value list SQL.
const ON_AIR: &str = "outcome IN ('played', 'played_late', 'resumed', 'interrupted')";

/// What a link reached: its plays on air and displays (within `[from, to)` unix ms when given)
/// and whether a linked bulletin is public now.
pub async fn reached(store: &Store, l: &Link, period: Option<(i64, i64)>) -> Result<Reached> {
    let (from, to) = period.unwrap_or((i64::MIN, i64::MAX));
    let which = match l.kind {
        LinkKind::Bulletin => {
            "schedule_id IN (SELECT schedule_id FROM bulletin_speech WHERE bulletin_id = $1 AND schedule_id IS NOT NULL)"
        }
        LinkKind::Media => "sha256 = $1",
        LinkKind::Command => "item_id = $1",
        LinkKind::Cap => {
            "item_id IN (SELECT command_id FROM cap_message_commands WHERE message_id = $1 \
             UNION SELECT command_id FROM cap_messages WHERE id = $1 AND command_id IS NOT NULL)"
        }
    };
    let sql = format!(
        "SELECT device_id, COUNT(*) AS n FROM plays WHERE {which} AND {ON_AIR} AND occurrence_at >= $2 AND occurrence_at < $3 GROUP BY device_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(l.ref_id.clone())
        .bind(from)
        .bind(to)
        .fetch_all(&store.pool)
        .await?;
    let mut out = Reached::default();
    for r in rows {
        out.plays += r.try_get::<i64, _>("n")?;
        out.devices.insert(r.try_get("device_id")?);
    }
    if l.kind == LinkKind::Bulletin {
        let rows = sqlx::query(
            "SELECT device_id, COUNT(*) AS n FROM displays WHERE bulletin_id = $1 AND shown_from >= $2 AND shown_from < $3 GROUP BY device_id",
        )
        .bind(l.ref_id.clone())
        .bind(from)
        .bind(to)
        .fetch_all(&store.pool)
        .await?;
        for r in rows {
            out.displays += r.try_get::<i64, _>("n")?;
            out.boards.insert(r.try_get("device_id")?);
        }
        out.public = sqlx::query(
            "SELECT 1 AS x FROM bulletins b WHERE b.id = $1 AND b.status = 'approved' \
             AND (b.published_at IS NULL OR b.published_at < $2) \
             AND EXISTS (SELECT 1 FROM bulletin_targets t WHERE t.bulletin_id = b.id)",
        )
        .bind(l.ref_id.clone())
        .bind(to)
        .fetch_optional(&store.pool)
        .await?
        .is_some();
    }
    Ok(out)
}

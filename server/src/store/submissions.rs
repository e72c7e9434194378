//! The SQL of contributors' submissions (issue 15): organisation membership, submissions with
//! their files and notices, the editorial steps as one conditional `UPDATE … WHERE status IN (…)`
//! (of two editors at once one wins, the other gets a 409 naming what it found), the notices'
//! outbox the notifier e-mails, and the counts of the monthly tracking and the report.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::submission::{NewSubmission, Notice, Status, Submission, SubmissionFile};
use crate::error::Result;
use crate::store::{Conn, Store, placeholders};

/// The organisation of a user, if it is a member of one.
pub async fn member_org(conn: &mut Conn, user_id: &str) -> Result<Option<String>> {
    let r = sqlx::query("SELECT organisation_id FROM organisation_members WHERE user_id = $1")
        .bind(user_id.to_string())
        .fetch_optional(conn)
        .await?;
    r.map(|r| Ok(r.try_get("organisation_id")?)).transpose()
}

/// Make `user_id` a member of `org` (leaving any other).
pub async fn set_member(conn: &mut Conn, user_id: &str, org: &str, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM organisation_members WHERE user_id = $1")
        .bind(user_id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO organisation_members (user_id, organisation_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(user_id.to_string())
    .bind(org.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Insert a submission (status `submitted`).
pub async fn insert(
    conn: &mut Conn,
    id: &str,
    org: &str,
    author: &str,
    s: &NewSubmission,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO submissions (id, organisation_id, author, title, body, policy_id, areas, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'submitted', $8, $9)",
    )
    .bind(id.to_string())
    .bind(org.to_string())
    .bind(author.to_string())
    .bind(s.title.clone())
    .bind(s.body.clone())
    .bind(s.policy_id.clone())
    .bind(serde_json::to_string(&s.areas).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Insert a file row (a file sent twice in one submission is kept once).
pub async fn insert_file(conn: &mut Conn, id: &str, f: &SubmissionFile, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO submission_files (submission_id, sha256, kind, filename, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (submission_id, sha256) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(f.sha256.clone())
    .bind(f.kind.clone())
    .bind(f.filename.clone())
    .bind(f.bytes)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replace the editable fields.
pub async fn update_fields(conn: &mut Conn, id: &str, s: &NewSubmission, now: i64) -> Result<()> {
    sqlx::query("UPDATE submissions SET title = $1, body = $2, policy_id = $3, areas = $4, updated_at = $5 WHERE id = $6")
        .bind(s.title.clone())
        .bind(s.body.clone())
        .bind(s.policy_id.clone())
        .bind(serde_json::to_string(&s.areas).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "id, organisation_id, author, title, body, policy_id, areas, status, note, reviewer, bulletin_id, \
     created_at, updated_at, decided_at";

fn row(r: &AnyRow) -> Result<Submission> {
    let areas: String = r.try_get("areas")?;
    Ok(Submission {
        id: r.try_get("id")?,
        organisation_id: r.try_get("organisation_id")?,
        author: r.try_get("author")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        policy_id: r.try_get("policy_id")?,
        areas: serde_json::from_str(&areas).unwrap_or_default(),
        status: Status::parse(&r.try_get::<String, _>("status")?, "status")?,
        note: r.try_get("note")?,
        reviewer: r.try_get("reviewer")?,
        bulletin_id: r.try_get("bulletin_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        decided_at: r.try_get("decided_at")?,
        files: Vec::new(),
        notices: Vec::new(),
    })
}

async fn files_of(conn: &mut Conn, id: &str) -> Result<Vec<SubmissionFile>> {
    let rows = sqlx::query("SELECT sha256, kind, filename, bytes FROM submission_files WHERE submission_id = $1 ORDER BY created_at, sha256")
        .bind(id.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SubmissionFile {
                sha256: r.try_get("sha256")?,
                kind: r.try_get("kind")?,
                filename: r.try_get("filename")?,
                bytes: r.try_get("bytes")?,
            })
        })
        .collect()
}

/// One submission with its files and notices.
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Option<Submission>> {
    let sql = format!("SELECT {COLUMNS} FROM submissions WHERE id = $1");
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut s = row(&r)?;
    s.files = files_of(conn, id).await?;
    let rows = sqlx::query("SELECT status, message, state, created_at FROM submission_notices WHERE submission_id = $1 ORDER BY created_at, id")
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    s.notices = rows
        .iter()
        .map(|r| {
            Ok(Notice {
                status: Status::parse(&r.try_get::<String, _>("status")?, "status")?,
                message: r.try_get("message")?,
                state: r.try_get("state")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(s))
}

/// One submission on the pool.
pub async fn get(store: &Store, id: &str) -> Result<Option<Submission>> {
    let mut conn = store.pool.acquire().await?;
    get_in(&mut conn, id).await
}

/// Submissions, newest first (at most 500): of one organisation and/or one status if given.
pub async fn list(store: &Store, org: Option<&str>, status: Option<Status>) -> Result<Vec<Submission>> {
    let mut sql = format!("SELECT {COLUMNS} FROM submissions WHERE 1 = 1");
    let mut binds = Vec::new();
    if let Some(o) = org {
        binds.push(o.to_string());
        sql.push_str(&format!(" AND organisation_id = ${}", binds.len()));
    }
    if let Some(s) = status {
        binds.push(s.as_str().to_string());
        sql.push_str(&format!(" AND status = ${}", binds.len()));
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT 500");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&store.pool).await?;
    let mut conn = store.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut s = row(r)?;
        s.files = files_of(&mut conn, &s.id).await?;
        out.push(s);
    }
    Ok(out)
}

/// Move submission `id` from one of `from` to `to` with the reason and reviewer; the status found
/// otherwise.
pub async fn apply(
    conn: &mut Conn,
    id: &str,
    from: &[Status],
    to: Status,
    note: Option<&str>,
    reviewer: Option<&str>,
    now: i64,
) -> Result<std::result::Result<(), Status>> {
    let decided = matches!(to, Status::Approved | Status::Rejected).then_some(now);
    let sql = format!(
        "UPDATE submissions SET status = $1, note = $2, reviewer = COALESCE($3, reviewer), decided_at = COALESCE($4, decided_at), \
         updated_at = $5 WHERE id = $6 AND status IN ({})",
        placeholders(7, from.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str().to_string())
        .bind(note.map(str::to_string))
        .bind(reviewer.map(str::to_string))
        .bind(decided)
        .bind(now)
        .bind(id.to_string());
    for s in from {
        q = q.bind(s.as_str().to_string());
    }
    if q.execute(&mut *conn).await?.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let found = crate::store::status_of(conn, "submissions", "submission", id).await?;
    Ok(Err(Status::parse(&found, "status")?))
}

/// Record the draft bulletin made of an approved submission.
pub async fn set_bulletin(conn: &mut Conn, id: &str, bulletin: &str) -> Result<()> {
    sqlx::query("UPDATE submissions SET bulletin_id = $1 WHERE id = $2")
        .bind(bulletin.to_string())
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Queue a notice (`pending` when there is an address, else `none`).
pub async fn insert_notice(
    conn: &mut Conn,
    submission: &str,
    org: &str,
    status: Status,
    message: &str,
    email: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO submission_notices (id, submission_id, organisation_id, status, message, email, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(submission.to_string())
    .bind(org.to_string())
    .bind(status.as_str().to_string())
    .bind(message.to_string())
    .bind(email.map(str::to_string))
    .bind(if email.is_some() { "pending" } else { "none" }.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A notice to e-mail.
#[derive(Debug, Clone)]
pub struct DueNotice {
    /// Id.
    pub id: String,
    /// Address.
    pub email: String,
    /// Text.
    pub message: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// Pending notices, oldest first (at most `limit`).
pub async fn due_notices(store: &Store, limit: i64) -> Result<Vec<DueNotice>> {
    let rows = sqlx::query(
        "SELECT id, email, message, attempts FROM submission_notices WHERE state = 'pending' ORDER BY created_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueNotice {
                id: r.try_get("id")?,
                email: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
                message: r.try_get("message")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

/// Record an attempt: `sent`, or `failed` once `attempts` reaches `max`, else still pending.
pub async fn notice_attempt(store: &Store, id: &str, ok: bool, max: i64, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE submission_notices SET attempts = attempts + 1, \
         state = CASE WHEN $1 = 1 THEN 'sent' WHEN attempts + 1 >= $2 THEN 'failed' ELSE 'pending' END, \
         sent_at = CASE WHEN $3 = 1 THEN $4 ELSE sent_at END WHERE id = $5",
    )
    .bind(i64::from(ok))
    .bind(max)
    .bind(i64::from(ok))
    .bind(now)
    .bind(id.to_string())
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// `(organisation_id, status)` of every submission made in `[from, to)`.
pub async fn made_between(store: &Store, from: i64, to: i64) -> Result<Vec<(String, Status)>> {
    let rows = sqlx::query(
        "SELECT organisation_id, status FROM submissions WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("organisation_id")?,
                Status::parse(&r.try_get::<String, _>("status")?, "status")?,
            ))
        })
        .collect()
}

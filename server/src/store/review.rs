//! The one conditional status update of a review (media and bulletins): a record moves to `to`
//! if and only if its status is one of `from`, in one `UPDATE … WHERE status IN (…)`, so of two
//! concurrent reviews exactly one moves it and the caller sees whether it won.

use crate::domain::review::ReviewStatus;
use crate::error::Result;
use crate::store::{Conn, placeholders};

/// What is reviewed: the table and its key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewed {
    /// `media`, keyed by `sha256`.
    Media,
    /// `bulletins`, keyed by `id`.
    Bulletin,
}

impl Reviewed {
    fn table_and_key(self) -> (&'static str, &'static str) {
        match self {
            Reviewed::Media => ("media", "sha256"),
            Reviewed::Bulletin => ("bulletins", "id"),
        }
    }
}

/// Move the record `key` of `what` to `to` with `note` if its status is one of `from`. `false`
/// when no row moved (unknown, or in another status: the caller reads which).
pub async fn set_status(
    conn: &mut Conn,
    what: Reviewed,
    key: &str,
    from: &[ReviewStatus],
    to: ReviewStatus,
    note: Option<&str>,
    now: i64,
) -> Result<bool> {
    let (table, column) = what.table_and_key();
    let sql = format!(
        "UPDATE {table} SET status = $1, status_note = $2, updated_at = $3 WHERE {column} = $4 AND status IN ({})",
        placeholders(5, from.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(note.map(str::to_string))
        .bind(now)
        .bind(key.to_string());
    for f in from {
        q = q.bind(f.as_str());
    }
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

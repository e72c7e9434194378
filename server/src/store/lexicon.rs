//! Table `tts_lexicon`: the operators' abbreviations for text-to-speech (term → expansion), which
//! extend or override the built-in table of `domain::speech::normalize`.

use sqlx::Row;

use crate::error::Result;
use crate::store::{Conn, Store};

/// The operators' entries `(term, expansion)`, by term.
pub async fn entries(store: &Store) -> Result<Vec<(String, String)>> {
    let mut conn = store.pool.acquire().await?;
    entries_in(&mut conn).await
}

/// [`entries`] read on `conn` (inside a use case's transaction).
pub async fn entries_in(conn: &mut Conn) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT term, expansion FROM tts_lexicon ORDER BY term")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("term")?, r.try_get("expansion")?)))
        .collect()
}

/// Replace the operators' table with `entries` (inside the use case's transaction).
pub async fn replace(conn: &mut Conn, entries: &[(String, String)], now: i64) -> Result<()> {
    sqlx::query("DELETE FROM tts_lexicon").execute(&mut *conn).await?;
    for (term, expansion) in entries {
        sqlx::query("INSERT INTO tts_lexicon (term, expansion, updated_at) VALUES ($1, $2, $3)")
            .bind(term.clone())
            .bind(expansion.clone())
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

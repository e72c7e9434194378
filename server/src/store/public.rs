//! What the public site and its feeds read (issue 15): bulletins that are approved AND on the
//! boards (`bulletin_targets`) and already valid, with their variants, files and audio (the
//! speech or recording published with them, approved media only), and the public hit counters
//! (`public_hits`: one row per path and day, no cookie, no address). Nothing here can return a
//! draft, a bulletin in review, a rejected one or one taken off the boards: the one condition is
//! [`PUBLIC`].

use sqlx::Row;

use crate::domain::bulletin::{FileRef, Variant};
use crate::error::Result;
use crate::store::{Store, bulletins, placeholders};

/// The condition on `bulletins b` that makes a bulletin public at `$now` (the placeholder is
/// substituted): approved, on the boards of some area, and its window started.
const PUBLIC: &str = "b.status = 'approved' AND b.published_at IS NOT NULL \
     AND EXISTS (SELECT 1 FROM bulletin_targets t0 WHERE t0.bulletin_id = b.id) \
     AND (b.valid_from IS NULL OR b.valid_from <= {now})";

/// A public bulletin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicBulletin {
    /// Id.
    pub id: String,
    /// Category.
    pub category: String,
    /// `normal`, `priority`, `emergency`.
    pub priority: String,
    /// Published (unix ms).
    pub published_at: i64,
    /// Valid until (unix ms), if set.
    pub valid_until: Option<i64>,
    /// Areas whose boards show it.
    pub areas: Vec<String>,
    /// Variants, `vi` first.
    pub variants: Vec<Variant>,
    /// Files (images, video, attachments).
    pub files: Vec<FileRef>,
    /// Audio to listen to: (language, sha256, size in bytes, duration ms), one per language.
    pub audio: Vec<PublicAudio>,
}

/// One audio rendition of a public bulletin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicAudio {
    /// Language.
    pub language: String,
    /// Media sha256 (served at `/media/{sha256}`).
    pub sha256: String,
    /// Bytes.
    pub size: i64,
    /// Duration, ms.
    pub duration_ms: i64,
    /// Container as probed (`mp3`, `wav`, `ogg`, ...).
    pub container: String,
}

/// Public bulletins at `now`, newest first, at most `limit`: those shown in any of `areas` when
/// given (else everywhere), or only `ids` when given.
pub async fn bulletins(
    store: &Store,
    areas: Option<&[String]>,
    ids: Option<&[String]>,
    now: i64,
    limit: i64,
) -> Result<Vec<PublicBulletin>> {
    let mut cond = PUBLIC.replace("{now}", "$1");
    let mut n = 2;
    if let Some(a) = areas {
        if a.is_empty() {
            return Ok(Vec::new());
        }
        cond.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM bulletin_targets t WHERE t.bulletin_id = b.id AND t.area IN ({}))",
            placeholders(n, a.len())
        ));
        n += a.len();
    }
    if let Some(i) = ids {
        if i.is_empty() {
            return Ok(Vec::new());
        }
        cond.push_str(&format!(" AND b.id IN ({})", placeholders(n, i.len())));
        n += i.len();
    }
    let sql = format!(
        "SELECT b.id, b.category, b.priority, b.published_at, b.valid_until FROM bulletins b WHERE {cond} \
         ORDER BY b.published_at DESC, b.id LIMIT ${n}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
    for a in areas.unwrap_or_default() {
        q = q.bind(a.clone());
    }
    for i in ids.unwrap_or_default() {
        q = q.bind(i.clone());
    }
    let rows = q.bind(limit).fetch_all(&store.pool).await?;
    let mut conn = store.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id")?;
        let audio = sqlx::query(
            "SELECT s.language, s.media_sha256, m.size, m.duration_ms, m.container FROM bulletin_speech s \
             JOIN media m ON m.sha256 = s.media_sha256 WHERE s.bulletin_id = $1 AND m.status = 'approved' \
             ORDER BY CASE WHEN s.language = 'vi' THEN 0 ELSE 1 END, s.language, s.area",
        )
        .bind(id.clone())
        .fetch_all(&mut *conn)
        .await?;
        let mut langs = Vec::new();
        let mut audios = Vec::new();
        for a in audio {
            let language: String = a.try_get("language")?;
            if langs.contains(&language) {
                continue;
            }
            langs.push(language.clone());
            audios.push(PublicAudio {
                language,
                sha256: a.try_get("media_sha256")?,
                size: a.try_get("size")?,
                duration_ms: a.try_get("duration_ms")?,
                container: a.try_get("container")?,
            });
        }
        out.push(PublicBulletin {
            variants: bulletins::variants(&mut conn, &id).await?,
            files: bulletins::files(&mut conn, &id).await?,
            areas: bulletins::published_areas(&mut conn, &id).await?,
            audio: audios,
            id,
            category: r.try_get("category")?,
            priority: r.try_get("priority")?,
            published_at: r.try_get::<Option<i64>, _>("published_at")?.unwrap_or(0),
            valid_until: r.try_get("valid_until")?,
        });
    }
    Ok(out)
}

/// The ids of every public bulletin at `now` (the short links resolve among them).
pub async fn public_ids(store: &Store, now: i64) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT b.id FROM bulletins b WHERE {}",
        PUBLIC.replace("{now}", "$1")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("id")?))
        .collect()
}

/// The bulletins linked to policy `id` (any stage).
pub async fn policy_bulletin_ids(store: &Store, id: &str) -> Result<Vec<String>> {
    sqlx::query("SELECT DISTINCT ref_id FROM policy_links WHERE policy_id = $1 AND kind = 'bulletin'")
        .bind(id.to_string())
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("ref_id")?))
        .collect()
}

/// Count one hit of `path` on `day` (`YYYY-MM-DD`).
pub async fn hit(store: &Store, day: &str, path: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO public_hits (day, path, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (day, path) DO UPDATE SET hits = public_hits.hits + 1",
    )
    .bind(day.to_string())
    .bind(path.to_string())
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// Hits per path over the days `from..=to` (`YYYY-MM-DD`), most first.
pub async fn hits(store: &Store, from: &str, to: &str) -> Result<Vec<(String, i64)>> {
    sqlx::query(
        "SELECT path, CAST(SUM(hits) AS BIGINT) AS n FROM public_hits WHERE day >= $1 AND day <= $2 \
         GROUP BY path ORDER BY n DESC, path",
    )
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(&store.pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("path")?, r.try_get("n")?)))
    .collect()
}

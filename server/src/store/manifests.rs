//! The `manifests` table (each device's latest signed desired manifest) and the reads the
//! dispatcher makes around it: the fleet ([`fleet`]: devices and the area tree), the stored
//! versions ([`stored`]) and the largest sequence number stored ([`largest_seq`]); the current
//! signed manifests of some devices ([`current`]), sent again to devices that hold an older one.
//!
//! A manifest is written in two steps: [`record`] stores it unconfirmed (`published_at` 0) before
//! it is published, and [`confirmed`] stamps `published_at` once the broker acknowledged that very
//! message (matched by its sequence number). An unconfirmed manifest is due again at the next
//! batch (`domain::manifest::next_version`).

use std::collections::HashMap;

use sqlx::Row;

use crate::domain::manifest::{Fleet, FleetDevice, Stored};
use crate::error::Result;
use crate::store::{Conn, Store, placeholders, push_values};

/// Devices and areas, in two queries.
pub async fn fleet(store: &Store) -> Result<Fleet> {
    let tree = crate::store::areas::tree(store).await?;
    let mut devices = Vec::new();
    for r in sqlx::query("SELECT id, area, enabled, volume FROM devices ORDER BY id")
        .fetch_all(&store.pool)
        .await?
    {
        devices.push(FleetDevice {
            id: r.try_get("id")?,
            area: r.try_get("area")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            volume: r
                .try_get::<Option<i64>, _>("volume")?
                .map(|v| v.clamp(0, 100) as u8),
        });
    }
    Ok(Fleet::new(devices, tree))
}

/// Every stored manifest's version, content hash and confirmation time, by device id.
pub async fn stored(store: &Store) -> Result<HashMap<String, Stored>> {
    let mut out = HashMap::new();
    for r in sqlx::query("SELECT device_id, version, content_hash, published_at FROM manifests")
        .fetch_all(&store.pool)
        .await?
    {
        out.insert(
            r.try_get("device_id")?,
            Stored {
                version: r.try_get("version")?,
                hash: r.try_get("content_hash")?,
                published_at: r.try_get("published_at")?,
            },
        );
    }
    Ok(out)
}

/// A device's current signed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Device id.
    pub device_id: String,
    /// Manifest version.
    pub version: i64,
    /// The message's sequence number.
    pub seq: i64,
    /// The signed envelope exactly as it was published.
    pub body: String,
    /// When the broker confirmed its publish (unix ms), 0 if not (yet).
    pub published_at: i64,
}

/// The current signed manifest of each of `devices` that has one.
pub async fn current(store: &Store, devices: &[String]) -> Result<Vec<Current>> {
    let mut out = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(500) {
        let sql = format!(
            "SELECT device_id, version, seq, body, published_at FROM manifests WHERE device_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            q = q.bind(d.clone());
        }
        for r in q.fetch_all(&store.pool).await? {
            out.push(Current {
                device_id: r.try_get("device_id")?,
                version: r.try_get("version")?,
                seq: r.try_get("seq")?,
                body: r.try_get("body")?,
                published_at: r.try_get("published_at")?,
            });
        }
    }
    Ok(out)
}

/// A signed manifest to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Device id.
    pub device_id: String,
    /// Manifest version.
    pub version: i64,
    /// Content hash.
    pub hash: String,
    /// The signed envelope exactly as it is published.
    pub body: String,
    /// The message's sequence number.
    pub seq: i64,
}

/// Record manifests as unconfirmed (`published_at` 0), replacing each device's previous one.
pub async fn record(conn: &mut Conn, backend: crate::store::Backend, rows: &[Record]) -> Result<()> {
    for chunk in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO manifests (device_id, version, content_hash, body, seq, published_at) VALUES ",
        );
        push_values(&mut sql, chunk.len(), 6, backend);
        sql.push_str(
            " ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, content_hash = excluded.content_hash, \
             body = excluded.body, seq = excluded.seq, published_at = excluded.published_at",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.device_id.clone())
                .bind(r.version)
                .bind(r.hash.clone())
                .bind(r.body.clone())
                .bind(r.seq)
                .bind(0_i64);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stamp `published_at` on the manifests whose publish the broker confirmed, given as
/// `(device id, sequence number)`: a manifest replaced since (another sequence number) keeps its
/// own state. (Sequence numbers are unique, so matching both lists is matching the pairs; the
/// device ids let the primary key find the rows.)
pub async fn confirmed(conn: &mut Conn, published: &[(String, i64)], at: i64) -> Result<()> {
    for chunk in published.chunks(500) {
        let sql = format!(
            "UPDATE manifests SET published_at = $1 WHERE device_id IN ({}) AND seq IN ({})",
            placeholders(2, chunk.len()),
            placeholders(2 + chunk.len(), chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at);
        for (d, _) in chunk {
            q = q.bind(d.clone());
        }
        for (_, s) in chunk {
            q = q.bind(*s);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The largest sequence number stored in a server → device message (manifests and commands), so
/// numbering can resume above it after a restart.
pub async fn largest_seq(store: &Store) -> Result<Option<u64>> {
    let mut out: Option<u64> = None;
    for sql in [
        "SELECT MAX(seq) AS m FROM manifests",
        "SELECT MAX(seq) AS m FROM commands",
    ] {
        let row = sqlx::query(sql).fetch_one(&store.pool).await?;
        if let Some(m) = row.try_get::<Option<i64>, _>("m")? {
            out = out.max(Some(m.max(0) as u64));
        }
    }
    Ok(out)
}

//! Tables `cap_messages` (every CAP message received or written, unique by sender and
//! identifier, grouped into nguon alerts by `alert_id`) and `area_cap` (an area's geocodes and
//! whether Exercise alerts may play there), and the positions of the loudspeakers CAP polygons
//! and circles are matched against.

use sqlx::Row;

use crate::error::Result;
use crate::store::{Conn, Store, now_ms};

/// One stored CAP message; the API lists it as it is, without the document (served at
/// `GET /api/v1/alerts/{id}.cap`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Message {
    /// Id of the message (uuid; approve/reject take it).
    pub id: String,
    /// The nguon alert it belongs to (its own id for an `Alert`).
    pub alert_id: String,
    /// `<identifier>`.
    pub identifier: String,
    /// `<sender>`.
    pub sender: String,
    /// `<sent>` as written.
    pub sent: String,
    /// `<status>`.
    pub status: String,
    /// `<msgType>`.
    pub msg_type: String,
    /// The first info's headline (or event).
    pub headline: String,
    /// `pending_approval`, `issued`, `not_played`, `rejected`, `cancelled`, `replaced`.
    pub state: String,
    /// The command it issued.
    pub command_id: Option<String>,
    /// Loudspeakers it targets.
    pub target_devices: i64,
    /// Areas those are in, comma-separated.
    pub target_areas: String,
    /// The document as received (not listed).
    #[serde(skip_serializing)]
    pub xml: String,
    /// Unix ms.
    pub received_at: i64,
    /// Username of the caller (or `cap-feed` for a polled feed).
    pub received_by: String,
    /// The approver who decided, if any.
    pub decided_by: Option<String>,
    /// Unix ms.
    pub decided_at: Option<i64>,
    /// When the Ack to it was written, Unix ms.
    pub acked_at: Option<i64>,
}

const COLUMNS: &str = "id, alert_id, identifier, sender, sent, status, msg_type, headline, state, command_id, \
     target_devices, target_areas, xml, received_at, received_by, decided_by, decided_at, acked_at";

fn message(r: &sqlx::any::AnyRow) -> Result<Message> {
    Ok(Message {
        id: r.try_get("id")?,
        alert_id: r.try_get("alert_id")?,
        identifier: r.try_get("identifier")?,
        sender: r.try_get("sender")?,
        sent: r.try_get("sent")?,
        status: r.try_get("status")?,
        msg_type: r.try_get("msg_type")?,
        headline: r.try_get("headline")?,
        state: r.try_get("state")?,
        command_id: r.try_get("command_id")?,
        target_devices: r.try_get("target_devices")?,
        target_areas: r.try_get("target_areas")?,
        xml: r.try_get("xml")?,
        received_at: r.try_get("received_at")?,
        received_by: r.try_get("received_by")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        acked_at: r.try_get("acked_at")?,
    })
}

/// Record a message inside the use case's transaction.
pub async fn insert_in(conn: &mut Conn, m: &Message) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO cap_messages ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    )))
    .bind(m.id.clone())
    .bind(m.alert_id.clone())
    .bind(m.identifier.clone())
    .bind(m.sender.clone())
    .bind(m.sent.clone())
    .bind(m.status.clone())
    .bind(m.msg_type.clone())
    .bind(m.headline.clone())
    .bind(m.state.clone())
    .bind(m.command_id.clone())
    .bind(m.target_devices)
    .bind(m.target_areas.clone())
    .bind(m.xml.clone())
    .bind(m.received_at)
    .bind(m.received_by.clone())
    .bind(m.decided_by.clone())
    .bind(m.decided_at)
    .bind(m.acked_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Set a message's state (and the command it issued, the decider), inside a transaction.
pub async fn set_state_in(
    conn: &mut Conn,
    id: &str,
    state: &str,
    command_id: Option<&str>,
    decided_by: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE cap_messages SET state = $1 WHERE id = $2")
        .bind(state.to_string())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(c) = command_id {
        sqlx::query("UPDATE cap_messages SET command_id = $1 WHERE id = $2")
            .bind(c.to_string())
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    if let Some(d) = decided_by {
        sqlx::query("UPDATE cap_messages SET decided_by = $1, decided_at = $2 WHERE id = $3")
            .bind(d.to_string())
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Mark the Ack of a message written.
pub async fn set_acked(store: &Store, id: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE cap_messages SET acked_at = $1 WHERE id = $2 AND acked_at IS NULL")
        .bind(at)
        .bind(id.to_string())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// One message by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<Message>> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cap_messages WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&store.pool)
    .await?;
    r.as_ref().map(message).transpose()
}

/// The message `identifier` of `sender`, if received.
pub async fn by_identifier(store: &Store, sender: &str, identifier: &str) -> Result<Option<Message>> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cap_messages WHERE sender = $1 AND identifier = $2"
    )))
    .bind(sender.to_string())
    .bind(identifier.to_string())
    .fetch_optional(&store.pool)
    .await?;
    r.as_ref().map(message).transpose()
}

/// The message that issued command `command_id`, if any.
pub async fn by_command(store: &Store, command_id: &str) -> Result<Option<Message>> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cap_messages WHERE command_id = $1 ORDER BY received_at LIMIT 1"
    )))
    .bind(command_id.to_string())
    .fetch_optional(&store.pool)
    .await?;
    r.as_ref().map(message).transpose()
}

/// Every message of alert `alert_id`, oldest first.
pub async fn of_alert(store: &Store, alert_id: &str) -> Result<Vec<Message>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cap_messages WHERE alert_id = $1 ORDER BY received_at, id"
    )))
    .bind(alert_id.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(message).collect()
}

/// The latest `limit` messages, newest first (`state` only, when given).
pub async fn recent(store: &Store, state: Option<&str>, limit: i64) -> Result<Vec<Message>> {
    let rows =
        match state {
            Some(s) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM cap_messages WHERE state = $1 ORDER BY received_at DESC, id LIMIT $2"
            )))
            .bind(s.to_string())
            .bind(limit)
            .fetch_all(&store.pool)
            .await?,
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM cap_messages ORDER BY received_at DESC, id LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&store.pool)
                .await?
            }
        };
    rows.iter().map(message).collect()
}

/// Issued messages not yet acknowledged, received after `since` (Unix ms).
pub async fn unacked(store: &Store, since: i64) -> Result<Vec<Message>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM cap_messages WHERE state = 'issued' AND acked_at IS NULL \
         AND command_id IS NOT NULL AND received_at > $1 ORDER BY received_at"
    )))
    .bind(since)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(message).collect()
}

/// An area's CAP settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AreaCap {
    /// Geocodes as `valueName=value` (e.g. `ISO3166-2=VN-02`).
    #[serde(default)]
    pub geocodes: Vec<String>,
    /// Whether CAP alerts with status `Exercise` play in this area (and below it).
    #[serde(default)]
    pub exercise: bool,
    /// The languages its loudspeakers read, in order (the area's languages, `area_languages`, as
    /// `GET`/`PUT /api/v1/areas/{code}/languages` set them: inherited, `vi` by default): of an
    /// alert's `<info>`s, those in these languages, Vietnamese first (`domain::cap::lang`).
    /// `GET` answers the list in force; a `PUT` without it leaves the list as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
}

/// Every area's CAP settings: (area, settings).
pub async fn area_caps(store: &Store) -> Result<Vec<(String, AreaCap)>> {
    let rows = sqlx::query("SELECT area, geocodes, exercise FROM area_cap ORDER BY area")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let g: String = r.try_get("geocodes")?;
            Ok((
                r.try_get("area")?,
                AreaCap {
                    geocodes: g.lines().map(String::from).filter(|l| !l.is_empty()).collect(),
                    exercise: r.try_get::<i64, _>("exercise")? != 0,
                    languages: None,
                },
            ))
        })
        .collect()
}

/// Replace an area's CAP settings inside a transaction.
pub async fn put_area_cap(conn: &mut Conn, area: &str, c: &AreaCap) -> Result<()> {
    sqlx::query("DELETE FROM area_cap WHERE area = $1")
        .bind(area.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO area_cap (area, geocodes, exercise, updated_at) VALUES ($1, $2, $3, $4)")
        .bind(area.to_string())
        .bind(c.geocodes.join("\n"))
        .bind(c.exercise as i64)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A loudspeaker with a position.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Device id.
    pub id: String,
    /// Its area.
    pub area: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// Every enabled loudspeaker that has a latitude and a longitude.
pub async fn placed_loudspeakers(store: &Store) -> Result<Vec<Placed>> {
    let rows = sqlx::query(
        "SELECT id, area, lat, lon FROM devices WHERE enabled = 1 AND kind = 'loudspeaker' \
         AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY id",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Placed {
                id: r.try_get("id")?,
                area: r.try_get("area")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
            })
        })
        .collect()
}

/// The devices command `id` covered, as recorded when it was issued.
pub async fn command_targets(store: &Store, id: &str) -> Result<Vec<crate::store::commands::TargetDevice>> {
    let rows = sqlx::query(
        "SELECT device_id, area, online FROM command_targets WHERE command_id = $1 ORDER BY device_id",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(crate::store::commands::TargetDevice {
                device_id: r.try_get("device_id")?,
                area: r.try_get("area")?,
                online: r.try_get::<i64, _>("online")? != 0,
            })
        })
        .collect()
}

/// The device ids command `id` covers (the command sender publishes an `alert` command to each).
pub async fn command_device_ids(store: &Store, id: &str) -> Result<Vec<String>> {
    Ok(command_targets(store, id)
        .await?
        .into_iter()
        .map(|t| t.device_id)
        .collect())
}

/// Record that message `message_id` issued play-now `command_id` for the targets that hear
/// `infos` (indices of its `<info>`s, comma-separated), inside a transaction.
pub async fn add_command_in(conn: &mut Conn, message_id: &str, command_id: &str, infos: &str) -> Result<()> {
    sqlx::query("INSERT INTO cap_message_commands (message_id, command_id, infos) VALUES ($1, $2, $3)")
        .bind(message_id.to_string())
        .bind(command_id.to_string())
        .bind(infos.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every play-now message `m` issued, its `command_id` first (one per group of targets hearing
/// the same infos); just `command_id` for a message recorded before the groups.
pub async fn commands_of(store: &Store, m: &Message) -> Result<Vec<String>> {
    let mut out: Vec<String> = m.command_id.iter().cloned().collect();
    let rows =
        sqlx::query("SELECT command_id FROM cap_message_commands WHERE message_id = $1 ORDER BY command_id")
            .bind(m.id.clone())
            .fetch_all(&store.pool)
            .await?;
    for r in rows {
        let c: String = r.try_get("command_id")?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

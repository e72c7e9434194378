//! The notifications' SQL (issue 12 §6): the subscriptions (`alarm_subscriptions`), the
//! notification outbox (`alarm_notifications`, one row per alarm and subscription, written in the
//! transaction that raised the alarm by [`enqueue`]) and every attempt to send one
//! (`alarm_notification_attempts`).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::alarm::{Alarm, AlarmKind};
use crate::domain::notify::{Subscription, SubscriptionFields, wants};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::store::scope::scope_sql;
use crate::store::{Conn, Store, placeholders};

const COLUMNS: &str = "id, area, role, channel, target, secret, kinds, enabled, created_by";

/// A stored subscription: what the API shows and its fields (secret included).
#[derive(Debug, Clone)]
pub struct Stored {
    /// As shown (without the secret).
    pub shown: Subscription,
    /// As validated and stored.
    pub fields: SubscriptionFields,
}

fn stored(r: &AnyRow) -> Result<Stored> {
    let kinds_json: String = r.try_get("kinds")?;
    let names: Vec<String> = serde_json::from_str(&kinds_json).unwrap_or_default();
    let kinds: Vec<AlarmKind> = names
        .iter()
        .filter_map(|k| AlarmKind::parse(k, "kinds").ok())
        .collect();
    let role: String = r.try_get("role")?;
    let fields = SubscriptionFields {
        area: r.try_get("area")?,
        role: Role::parse(&role).unwrap_or(Role::Operator),
        channel: r.try_get("channel")?,
        target: r.try_get("target")?,
        kinds: kinds.clone(),
        secret: r.try_get("secret")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
    };
    Ok(Stored {
        shown: Subscription {
            id: r.try_get("id")?,
            area: fields.area.clone(),
            role,
            channel: fields.channel.clone(),
            target: fields.target.clone(),
            kinds,
            enabled: fields.enabled,
            created_by: r.try_get("created_by")?,
            secret: None,
        },
        fields,
    })
}

fn kinds_json(kinds: &[AlarmKind]) -> String {
    serde_json::to_string(&kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

/// The subscriptions of areas in the caller's scope, by area then id.
pub async fn list(store: &Store, caller: &Caller) -> Result<Vec<Subscription>> {
    let scope = scope_sql(caller, "area", 1);
    let sql = format!(
        "SELECT {COLUMNS} FROM alarm_subscriptions WHERE {} ORDER BY area, id",
        scope.sql
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in scope.binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&store.pool).await?;
    rows.iter().map(|r| stored(r).map(|s| s.shown)).collect()
}

/// One subscription.
pub async fn get_in(conn: &mut Conn, id: &str) -> Result<Option<Stored>> {
    let sql = format!("SELECT {COLUMNS} FROM alarm_subscriptions WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

/// Insert a subscription.
pub async fn insert(conn: &mut Conn, id: &str, f: &SubscriptionFields, by: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO alarm_subscriptions (id, area, role, channel, target, secret, kinds, enabled, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id.to_string())
    .bind(f.area.clone())
    .bind(f.role.as_str())
    .bind(f.channel.clone())
    .bind(f.target.clone())
    .bind(f.secret.clone())
    .bind(kinds_json(&f.kinds))
    .bind(f.enabled as i64)
    .bind(by.to_string())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replace a subscription's fields.
pub async fn update(conn: &mut Conn, id: &str, f: &SubscriptionFields, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE alarm_subscriptions SET area = $1, role = $2, channel = $3, target = $4, secret = $5, kinds = $6, \
         enabled = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(f.area.clone())
    .bind(f.role.as_str())
    .bind(f.channel.clone())
    .bind(f.target.clone())
    .bind(f.secret.clone())
    .bind(kinds_json(&f.kinds))
    .bind(f.enabled as i64)
    .bind(now)
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Delete a subscription (its pending notifications are given up).
pub async fn delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM alarm_subscriptions WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE alarm_notifications SET state = 'failed' WHERE subscription_id = $1 AND state = 'pending'",
    )
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queue a notification of `alarm` for every enabled subscription of an area in `areas` (the
/// alarm's area and its ancestors) that wants its kind; how many were queued.
pub async fn enqueue(conn: &mut Conn, alarm: &Alarm, areas: &[String], now: i64) -> Result<usize> {
    if areas.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM alarm_subscriptions WHERE enabled = 1 AND area IN ({})",
        placeholders(1, areas.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in areas {
        q = q.bind(a.clone());
    }
    let subs: Vec<Stored> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(stored)
        .collect::<Result<_>>()?;
    let mut n = 0;
    for s in subs
        .iter()
        .filter(|s| wants(s.fields.role, &s.fields.kinds, alarm.kind))
    {
        sqlx::query(
            "INSERT INTO alarm_notifications (id, alarm_id, subscription_id, channel, target, state, attempts, next_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(alarm.id.clone())
        .bind(s.shown.id.clone())
        .bind(s.fields.channel.clone())
        .bind(s.fields.target.clone())
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        n += 1;
    }
    Ok(n)
}

/// A notification due to be sent.
#[derive(Debug, Clone)]
pub struct Due {
    /// Notification id.
    pub id: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// URL or address.
    pub target: String,
    /// The webhook's HMAC key.
    pub secret: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// The alarm.
    pub alarm: Alarm,
}

/// The pending notifications due at `now`, oldest first (at most `limit`).
pub async fn due(store: &Store, now: i64, limit: i64) -> Result<Vec<Due>> {
    let rows = sqlx::query(
        "SELECT n.id AS nid, n.channel AS nchannel, n.target AS ntarget, n.attempts, s.secret, n.alarm_id \
         FROM alarm_notifications n JOIN alarm_subscriptions s ON s.id = n.subscription_id \
         WHERE n.state = 'pending' AND n.next_at <= $1 ORDER BY n.next_at, n.id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut conn = store.pool.acquire().await?;
    for r in rows {
        let alarm_id: String = r.try_get("alarm_id")?;
        let Some(alarm) = crate::store::alarms::get_in(&mut conn, &alarm_id).await? else {
            continue;
        };
        out.push(Due {
            id: r.try_get("nid")?,
            channel: r.try_get("nchannel")?,
            target: r.try_get("ntarget")?,
            secret: r.try_get("secret")?,
            attempts: r.try_get::<i64, _>("attempts")?.max(0) as u32,
            alarm,
        });
    }
    Ok(out)
}

/// What one attempt gave.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// Delivered.
    pub ok: bool,
    /// HTTP status (webhook).
    pub status: Option<i64>,
    /// Why not.
    pub error: Option<String>,
}

/// Record attempt number `n` of notification `id`; then it is `sent`, pending again at
/// `retry_at`, or `failed` (no `retry_at`).
pub async fn record(
    conn: &mut Conn,
    id: &str,
    n: u32,
    a: &Attempt,
    retry_at: Option<i64>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO alarm_notification_attempts (notification_id, attempt, at, ok, status, error) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(i64::from(n))
    .bind(now)
    .bind(a.ok as i64)
    .bind(a.status)
    .bind(a.error.clone())
    .execute(&mut *conn)
    .await?;
    let (state, next) = match (a.ok, retry_at) {
        (true, _) => ("sent", now),
        (false, Some(t)) => ("pending", t),
        (false, None) => ("failed", now),
    };
    sqlx::query(
        "UPDATE alarm_notifications SET state = $1, attempts = $2, next_at = $3, \
         sent_at = CASE WHEN $4 = 1 THEN $5 ELSE sent_at END WHERE id = $6",
    )
    .bind(state)
    .bind(i64::from(n))
    .bind(next)
    .bind(a.ok as i64)
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One notification of an alarm with its attempts, for the API.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Subscription.
    pub subscription_id: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// URL or address.
    pub target: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Status of each attempt (HTTP status, or 0 for an error), in order.
    pub statuses: Vec<i64>,
}

/// The notifications of alarm `id` with their attempts.
pub async fn deliveries(store: &Store, id: &str) -> Result<Vec<Delivery>> {
    let rows = sqlx::query(
        "SELECT id, subscription_id, channel, target, state, attempts FROM alarm_notifications WHERE alarm_id = $1 \
         ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let nid: String = r.try_get("id")?;
        let statuses = sqlx::query(
            "SELECT status FROM alarm_notification_attempts WHERE notification_id = $1 ORDER BY attempt",
        )
        .bind(nid)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|a| Ok(a.try_get::<Option<i64>, _>("status")?.unwrap_or(0)))
        .collect::<Result<Vec<i64>>>()?;
        out.push(Delivery {
            subscription_id: r.try_get("subscription_id")?,
            channel: r.try_get("channel")?,
            target: r.try_get("target")?,
            state: r.try_get("state")?,
            attempts: r.try_get("attempts")?,
            statuses,
        });
    }
    Ok(out)
}

/// 404 unless the subscription exists.
pub fn found(s: Option<Stored>, id: &str) -> Result<Stored> {
    s.ok_or_else(|| Error::NotFound(format!("subscription {id}")))
}

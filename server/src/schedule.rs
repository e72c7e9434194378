//! Schedules: a playlist of approved media, a target set (areas with their descendants, and single
//! devices), a priority and a rule (`once` at a local time, or a 5-field cron pattern) evaluated in
//! an IANA time zone. The rule is evaluated in local time with croner + chrono-tz and converted to
//! UTC, so occurrences follow daylight-saving changes (see `docs/scheduling.md` for the gap and
//! overlap behaviour). Creating, enabling, disabling or deleting a schedule writes the schedule
//! and a dispatch outbox row in one transaction, then wakes the dispatcher.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::{Cron, Direction};
use nguon_protocol::{OnPreempt, Priority};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::dispatch;
use crate::domain::change::Change;
use crate::domain::scope::Role;
use crate::http::auth::{Admin, Caller};
pub use crate::http::json::ApiJson;
use crate::store::outbox;
use crate::store::{from_ms, now_ms};
use crate::{AppState, Error, Result, Store};

/// Most occurrences one schedule contributes to one evaluation window.
pub const MAX_OCCURRENCES: usize = 2_000;
/// Overlap warnings listed in a response (the total is always given).
const MAX_WARNINGS: usize = 20;

/// A validated 5-field cron pattern (minute hour day-of-month month day-of-week).
#[derive(Debug, Clone)]
pub struct CronRule {
    text: String,
    cron: Cron,
}

impl CronRule {
    /// Parse, refusing anything but exactly five fields; the error names the problem.
    pub fn parse(s: &str) -> std::result::Result<CronRule, String> {
        let text = s.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = text.split(' ').filter(|f| !f.is_empty()).count();
        if n != 5 {
            return Err(format!(
                "cron pattern `{s}` has {n} fields; expected 5 (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = Cron::from_str(&text).map_err(|e| format!("cron pattern `{s}`: {e}"))?;
        Ok(CronRule { text, cron })
    }
    /// The normalised pattern.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// When a schedule plays, as sent by a client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleSpec {
    /// Once, at a local date-time in the schedule's time zone (`2026-12-01T06:30:00`).
    Once {
        /// Local date-time without offset.
        at: String,
    },
    /// A 5-field cron pattern evaluated in the schedule's time zone.
    Cron {
        /// E.g. `30 6 * * 1-5`.
        cron: String,
    },
}

/// A validated rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// One local instant.
    Once(NaiveDateTime),
    /// A cron pattern.
    Cron(Box<CronRule>),
}

impl Rule {
    /// Validate a client rule.
    pub fn parse(spec: &RuleSpec) -> Result<Rule> {
        match spec {
            RuleSpec::Once { at } => {
                let t = [
                    "%Y-%m-%dT%H:%M:%S%.f",
                    "%Y-%m-%dT%H:%M",
                    "%Y-%m-%d %H:%M:%S",
                    "%Y-%m-%d %H:%M",
                ]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(at, f).ok())
                .ok_or_else(|| {
                    Error::bad(
                        "invalid_rule",
                        format!(
                            "`rule.at`: `{at}` is not a local date-time like 2026-12-01T06:30:00 (no offset)"
                        ),
                    )
                })?;
                Ok(Rule::Once(t))
            }
            RuleSpec::Cron { cron } => CronRule::parse(cron)
                .map(|c| Rule::Cron(Box::new(c)))
                .map_err(|m| Error::bad("invalid_cron", m)),
        }
    }

    /// The client form.
    pub fn spec(&self) -> RuleSpec {
        match self {
            Rule::Once(t) => RuleSpec::Once {
                at: t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            },
            Rule::Cron(c) => RuleSpec::Cron { cron: c.text.clone() },
        }
    }

    /// Instants in `[from, to)`, evaluated in local time in `tz` and converted to UTC, at most `limit`.
    pub fn occurrences(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        match self {
            Rule::Once(t) => {
                let at = local_to_utc(tz, *t);
                if at >= from && at < to {
                    vec![at]
                } else {
                    Vec::new()
                }
            }
            Rule::Cron(c) => c
                .cron
                .iter_from(from.with_timezone(&tz), Direction::Forward)
                .map(|t| t.with_timezone(&Utc))
                .take_while(|t| *t < to)
                .take(limit)
                .collect(),
        }
    }
}

/// A local date-time to UTC the way croner treats fixed times: in a fall-back overlap the first
/// (earlier) instant; in a spring-forward gap the first valid minute after the gap.
pub fn local_to_utc(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = t;
    for _ in 0..(26 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(x) => return x.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
            LocalResult::None => {
                probe = probe.with_second(0).unwrap_or(probe) + Duration::minutes(1);
            }
        }
    }
    Utc.from_utc_datetime(&t)
}

/// Who a schedule is for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Area codes; each includes its descendants.
    #[serde(default)]
    pub areas: Vec<String>,
    /// Device ids.
    #[serde(default)]
    pub devices: Vec<String>,
}

/// `POST /api/v1/schedules` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// Human title.
    pub title: String,
    /// Ordered playlist of approved media, by sha256.
    pub media: Vec<String>,
    /// Target areas and devices.
    pub targets: Targets,
    /// `normal` (default), `priority` or `emergency`.
    #[serde(default)]
    #[schema(value_type = String, example = "normal")]
    pub priority: Priority,
    /// When it plays.
    pub rule: RuleSpec,
    /// IANA time zone of the rule (default: the server's `time_zone`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Not before (RFC 3339).
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Not after (RFC 3339).
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Volume 0–100 (default 80).
    #[serde(default)]
    pub volume: Option<u8>,
    /// Playlist repetitions ≥ 1 (default 1).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// `interrupt` (default) or `resume`.
    #[serde(default)]
    #[schema(value_type = String, example = "interrupt")]
    pub on_preempt: OnPreempt,
}

/// A stored schedule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Schedule {
    /// Id (uuid).
    pub id: String,
    /// Title.
    pub title: String,
    /// Playlist.
    pub media: Vec<String>,
    /// Targets.
    pub targets: Targets,
    /// Priority.
    #[schema(value_type = String)]
    pub priority: Priority,
    /// Rule.
    pub rule: RuleSpec,
    /// IANA time zone.
    pub time_zone: String,
    /// Not before.
    pub valid_from: Option<DateTime<Utc>>,
    /// Not after.
    pub valid_until: Option<DateTime<Utc>>,
    /// Volume.
    pub volume: u8,
    /// Repetitions.
    pub repeat: u32,
    /// Preemption behaviour.
    #[schema(value_type = String)]
    pub on_preempt: OnPreempt,
    /// Whether it is dispatched.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    #[schema(ignore)]
    /// Validated rule.
    pub(crate) parsed_rule: Option<Rule>,
    #[serde(skip)]
    #[schema(ignore)]
    /// Parsed time zone.
    pub(crate) tz: Option<Tz>,
}

impl Schedule {
    /// Occurrence instants in `[from, to)` inside the validity window.
    pub fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let (Some(rule), Some(tz)) = (&self.parsed_rule, self.tz) else {
            return Vec::new();
        };
        let from = self.valid_from.map_or(from, |v| v.max(from));
        let to = self
            .valid_until
            .map_or(to, |v| (v + Duration::milliseconds(1)).min(to));
        if to <= from {
            return Vec::new();
        }
        rule.occurrences(tz, from, to, MAX_OCCURRENCES)
    }
}

/// One occurrence in UTC and local time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Occurrence {
    /// UTC instant.
    pub utc: DateTime<Utc>,
    /// The same instant in the schedule's time zone (RFC 3339 with offset).
    pub local: String,
}

/// An overlap at the same priority on the same device.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overlap {
    /// Device.
    pub device: String,
    /// The other schedule.
    pub schedule_id: String,
    /// Start of this schedule's occurrence (UTC).
    pub at: DateTime<Utc>,
    /// Start of the other schedule's occurrence (UTC).
    pub other_at: DateTime<Utc>,
}

/// Warnings on creation.
#[derive(Debug, Clone, Serialize, ToSchema, Default)]
pub struct Warnings {
    /// The first overlaps found in the look-ahead window.
    pub overlaps: Vec<Overlap>,
    /// How many (device, occurrence pair) overlaps there are in total.
    pub overlap_count: usize,
}

/// The `201` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Created {
    /// The schedule.
    pub schedule: Schedule,
    /// Next occurrences (up to 10) in the look-ahead window.
    pub next_occurrences: Vec<Occurrence>,
    /// Overlap warnings.
    pub warnings: Warnings,
}

fn occurrence(tz: Tz, t: DateTime<Utc>) -> Occurrence {
    Occurrence {
        utc: t,
        local: t.with_timezone(&tz).to_rfc3339(),
    }
}

/// Media rows needed by schedules: `(size, duration_ms, approved)`.
pub(crate) async fn media_info(store: &Store, shas: &[String]) -> Result<HashMap<String, (i64, i64, bool)>> {
    let mut out = HashMap::new();
    for sha in shas {
        if out.contains_key(sha) {
            continue;
        }
        if let Some(m) = crate::media::get(store, sha).await? {
            out.insert(sha.clone(), (m.size, m.duration_ms, m.status == "approved"));
        }
    }
    Ok(out)
}

/// 422 `media_not_approved` naming the first sha that is missing or not approved.
pub(crate) async fn require_approved(
    store: &Store,
    shas: &[String],
) -> Result<HashMap<String, (i64, i64, bool)>> {
    if shas.is_empty() {
        return Err(Error::unprocessable(
            "media_required",
            "`media` must list at least one sha256",
        ));
    }
    let info = media_info(store, shas).await?;
    for sha in shas {
        match info.get(sha) {
            Some((_, _, true)) => {}
            Some(_) => {
                return Err(Error::unprocessable(
                    "media_not_approved",
                    format!("media {sha} is not approved"),
                ));
            }
            None => {
                return Err(Error::unprocessable(
                    "media_not_approved",
                    format!("media {sha} does not exist"),
                ));
            }
        }
    }
    Ok(info)
}

/// A request that passed every check of [`check`].
struct Checked {
    title: String,
    rule: Rule,
    tz_name: String,
    tz: Tz,
    volume: u8,
    repeat: u32,
    areas: BTreeSet<String>,
    devices: BTreeSet<String>,
    media_rows: HashMap<String, (i64, i64, bool)>,
}

/// Validate a schedule request: title, rule, time zone, validity, volume, repeat, existing
/// targets and approved media. The one validation of creation and edit (API and console).
async fn check(state: &AppState, req: &NewSchedule) -> Result<Checked> {
    let title = req.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(Error::bad("invalid_title", "`title` must be 1–200 characters"));
    }
    let rule = Rule::parse(&req.rule)?;
    let tz_name = req
        .time_zone
        .clone()
        .unwrap_or_else(|| state.settings.time_zone.clone());
    let tz: Tz = tz_name.parse().map_err(|_| {
        Error::bad(
            "invalid_time_zone",
            format!("`time_zone`: `{tz_name}` is not an IANA time zone"),
        )
    })?;
    if let (Some(a), Some(b)) = (req.valid_from, req.valid_until)
        && b <= a
    {
        return Err(Error::bad(
            "invalid_validity",
            "`valid_until` must be after `valid_from`",
        ));
    }
    let volume = req.volume.unwrap_or(80);
    if volume > 100 {
        return Err(Error::bad("invalid_volume", "`volume` must be 0–100"));
    }
    let repeat = req.repeat.unwrap_or(1);
    if !(1..=100).contains(&repeat) {
        return Err(Error::bad("invalid_repeat", "`repeat` must be 1–100"));
    }
    if req.targets.areas.is_empty() && req.targets.devices.is_empty() {
        return Err(Error::unprocessable(
            "targets_required",
            "`targets` must name at least one area or device",
        ));
    }
    let areas: BTreeSet<String> = req.targets.areas.iter().cloned().collect();
    let devices: BTreeSet<String> = req.targets.devices.iter().cloned().collect();
    for a in &areas {
        if !crate::area::exists(&state.store, a).await? {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("area `{a}` does not exist"),
            ));
        }
    }
    for d in &devices {
        let found = sqlx::query("SELECT id FROM devices WHERE id = $1")
            .bind(d.clone())
            .fetch_optional(&state.store.pool)
            .await?;
        if found.is_none() {
            return Err(Error::unprocessable(
                "unknown_device",
                format!("device `{d}` does not exist"),
            ));
        }
    }
    let media_rows = require_approved(&state.store, &req.media).await?;
    Ok(Checked {
        title,
        rule,
        tz_name,
        tz,
        volume,
        repeat,
        areas,
        devices,
        media_rows,
    })
}

/// Validate and store a schedule (and its outbox row, in one transaction), then wake the dispatcher.
pub async fn create(state: &AppState, req: NewSchedule) -> Result<Created> {
    let Checked {
        title,
        rule,
        tz_name,
        tz,
        volume,
        repeat,
        areas,
        devices,
        media_rows,
    } = check(state, &req).await?;
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let schedule = Schedule {
        id: id.clone(),
        title,
        media: req.media.clone(),
        targets: Targets {
            areas: areas.iter().cloned().collect(),
            devices: devices.iter().cloned().collect(),
        },
        priority: req.priority,
        rule: rule.spec(),
        time_zone: tz_name,
        valid_from: req.valid_from,
        valid_until: req.valid_until,
        volume,
        repeat,
        on_preempt: req.on_preempt,
        enabled: true,
        created_at: from_ms(now),
        updated_at: from_ms(now),
        parsed_rule: Some(rule),
        tz: Some(tz),
    };
    let change = Change::targets(&schedule.targets.areas, &schedule.targets.devices);
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "INSERT INTO schedules (id, title, media, priority, rule, time_zone, valid_from, valid_until, volume, \
         repeat_count, on_preempt, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13)",
    )
    .bind(id.clone())
    .bind(schedule.title.clone())
    .bind(serde_json::to_string(&schedule.media).map_err(|e| Error::internal_from("json", e))?)
    .bind(schedule.priority.as_str())
    .bind(serde_json::to_string(&schedule.rule).map_err(|e| Error::internal_from("json", e))?)
    .bind(schedule.time_zone.clone())
    .bind(schedule.valid_from.map(|t| t.timestamp_millis()))
    .bind(schedule.valid_until.map(|t| t.timestamp_millis()))
    .bind(volume as i64)
    .bind(repeat as i64)
    .bind(on_preempt_str(schedule.on_preempt))
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_targets(&mut tx, &id, &schedule.targets).await?;
    outbox::insert(&mut tx, &change).await?;
    tx.commit().await?;
    state.wake.dispatch();

    let now_t = Utc::now();
    let end = now_t + Duration::hours(state.settings.lookahead_hours as i64);
    let occ = schedule.occurrences(now_t, end);
    let next_occurrences = occ.iter().take(10).map(|t| occurrence(tz, *t)).collect();
    let duration = playlist_ms(&schedule.media, |s| media_rows.get(s).map(|m| m.1)) * repeat as i64;
    let warnings = overlaps(state, &schedule, &occ, duration, now_t, end)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "overlap check failed");
            Warnings::default()
        });
    Ok(Created {
        schedule,
        next_occurrences,
        warnings,
    })
}

async fn insert_targets(conn: &mut sqlx::AnyConnection, id: &str, targets: &Targets) -> Result<()> {
    for (kind, list) in [("area", &targets.areas), ("device", &targets.devices)] {
        for t in list {
            sqlx::query("INSERT INTO schedule_targets (schedule_id, kind, target) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(kind)
                .bind(t.clone())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// The union of two target sets (what a change re-publishes: old and new devices).
fn union(a: &Targets, b: &Targets) -> Targets {
    let areas: BTreeSet<String> = a.areas.iter().chain(&b.areas).cloned().collect();
    let devices: BTreeSet<String> = a.devices.iter().chain(&b.devices).cloned().collect();
    Targets {
        areas: areas.into_iter().collect(),
        devices: devices.into_iter().collect(),
    }
}

/// Replace a schedule's content (same validation as [`create`]) and its enabled flag; the old
/// and the new targets' manifests are re-published (outbox row in the same transaction).
/// Returns (before, after).
pub async fn update(
    state: &AppState,
    id: &str,
    req: NewSchedule,
    enabled: Option<bool>,
) -> Result<(Schedule, Schedule)> {
    let before = get_one(&state.store, id).await?;
    let c = check(state, &req).await?;
    let targets = Targets {
        areas: c.areas.iter().cloned().collect(),
        devices: c.devices.iter().cloned().collect(),
    };
    let change = {
        let u = union(&before.targets, &targets);
        Change::targets(&u.areas, &u.devices)
    };
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "UPDATE schedules SET title = $1, media = $2, priority = $3, rule = $4, time_zone = $5, valid_from = $6, \
         valid_until = $7, volume = $8, repeat_count = $9, on_preempt = $10, enabled = $11, updated_at = $12 WHERE id = $13",
    )
    .bind(c.title.clone())
    .bind(serde_json::to_string(&req.media).map_err(|e| Error::internal_from("json", e))?)
    .bind(req.priority.as_str())
    .bind(serde_json::to_string(&c.rule.spec()).map_err(|e| Error::internal_from("json", e))?)
    .bind(c.tz_name.clone())
    .bind(req.valid_from.map(|t| t.timestamp_millis()))
    .bind(req.valid_until.map(|t| t.timestamp_millis()))
    .bind(c.volume as i64)
    .bind(c.repeat as i64)
    .bind(on_preempt_str(req.on_preempt))
    .bind(i64::from(enabled.unwrap_or(before.enabled)))
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM schedule_targets WHERE schedule_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    insert_targets(&mut tx, id, &targets).await?;
    outbox::insert(&mut tx, &change).await?;
    tx.commit().await?;
    state.wake.dispatch();
    let after = get_one(&state.store, id).await?;
    Ok((before, after))
}

/// Enable or disable a schedule (manifests re-published); returns (before, after).
pub async fn set_enabled(state: &AppState, id: &str, enabled: bool) -> Result<(Schedule, Schedule)> {
    let before = get_one(&state.store, id).await?;
    let change = Change::targets(&before.targets.areas, &before.targets.devices);
    let mut tx = state.store.begin_write().await?;
    sqlx::query("UPDATE schedules SET enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(enabled as i64)
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    outbox::insert(&mut tx, &change).await?;
    tx.commit().await?;
    state.wake.dispatch();
    let after = get_one(&state.store, id).await?;
    Ok((before, after))
}

/// Delete a schedule (its future occurrences leave the manifests); returns what was deleted.
pub async fn delete(state: &AppState, id: &str) -> Result<Schedule> {
    let before = get_one(&state.store, id).await?;
    let change = Change::targets(&before.targets.areas, &before.targets.devices);
    let mut tx = state.store.begin_write().await?;
    sqlx::query("DELETE FROM schedule_targets WHERE schedule_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    outbox::insert(&mut tx, &change).await?;
    tx.commit().await?;
    state.wake.dispatch();
    Ok(before)
}

/// The schedule as a request body (what the edit form starts from).
pub fn as_request(s: &Schedule) -> NewSchedule {
    NewSchedule {
        title: s.title.clone(),
        media: s.media.clone(),
        targets: s.targets.clone(),
        priority: s.priority,
        rule: s.rule.clone(),
        time_zone: Some(s.time_zone.clone()),
        valid_from: s.valid_from,
        valid_until: s.valid_until,
        volume: Some(s.volume),
        repeat: Some(s.repeat),
        on_preempt: s.on_preempt,
    }
}

/// 403 unless every target of `s` is inside the caller's scope (the rule for reading, editing
/// and deleting a schedule; creation checks the requested targets).
pub async fn check_scope(state: &AppState, caller: &Caller, s: &Schedule) -> Result<()> {
    crate::services::auth::check_targets(state, caller, &s.targets.areas, &s.targets.devices)
        .await
        .map_err(|_| Error::Forbidden(format!("schedule `{}` targets areas outside your scope", s.id)))
}

/// A human sentence for a rule in Vietnamese or English (`en`), e.g. "Thứ Hai–Thứ Sáu lúc 06:30"
/// / "Monday–Friday at 06:30"; an invalid rule gives the validation message.
pub fn describe(spec: &RuleSpec, en: bool) -> String {
    let rule = match Rule::parse(spec) {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    match rule {
        Rule::Once(t) => {
            if en {
                format!("Once, on {}", t.format("%d/%m/%Y at %H:%M"))
            } else {
                format!("Một lần, ngày {}", t.format("%d/%m/%Y lúc %H:%M"))
            }
        }
        Rule::Cron(c) => describe_cron(c.as_str(), en),
    }
}

fn describe_cron(text: &str, en: bool) -> String {
    let f: Vec<&str> = text.split(' ').collect();
    let fallback = || {
        if en {
            format!("By the pattern `{text}` (minute hour day month weekday)")
        } else {
            format!("Theo mẫu `{text}` (phút giờ ngày tháng thứ)")
        }
    };
    let (Ok(min), Ok(hour)) = (f[0].parse::<u32>(), f[1].parse::<u32>()) else {
        return fallback();
    };
    let at = format!("{hour:02}:{min:02}");
    let day_name = |d: &str| -> Option<&'static str> {
        let i: usize = d.parse().ok()?;
        let vi = [
            "Chủ nhật",
            "Thứ Hai",
            "Thứ Ba",
            "Thứ Tư",
            "Thứ Năm",
            "Thứ Sáu",
            "Thứ Bảy",
            "Chủ nhật",
        ];
        let enn = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        Some(if en { enn.get(i)? } else { vi.get(i)? })
    };
    let days = if f[4] == "*" {
        None
    } else {
        let mut parts = Vec::new();
        for p in f[4].split(',') {
            let named = match p.split_once('-') {
                Some((a, b)) => day_name(a).zip(day_name(b)).map(|(a, b)| format!("{a}–{b}")),
                None => day_name(p).map(str::to_string),
            };
            match named {
                Some(n) => parts.push(n),
                None => return fallback(),
            }
        }
        Some(parts.join(", "))
    };
    match (f[2], f[3], days) {
        ("*", "*", None) => {
            if en {
                format!("Every day at {at}")
            } else {
                format!("Hằng ngày lúc {at}")
            }
        }
        ("*", "*", Some(d)) => {
            if en {
                format!("{d} at {at}")
            } else {
                format!("{d} lúc {at}")
            }
        }
        (dom, "*", None) if dom.parse::<u32>().is_ok() => {
            if en {
                format!("Day {dom} of every month at {at}")
            } else {
                format!("Ngày {dom} hằng tháng lúc {at}")
            }
        }
        (dom, mon, None) if dom.parse::<u32>().is_ok() && mon.parse::<u32>().is_ok() => {
            if en {
                format!("Every year on {dom:0>2}/{mon:0>2} at {at}")
            } else {
                format!("Hằng năm ngày {dom:0>2}/{mon:0>2} lúc {at}")
            }
        }
        _ => fallback(),
    }
}

fn playlist_ms(media: &[String], dur: impl Fn(&str) -> Option<i64>) -> i64 {
    media.iter().map(|s| dur(s).unwrap_or(0)).sum::<i64>().max(1)
}

fn on_preempt_str(o: OnPreempt) -> &'static str {
    match o {
        OnPreempt::Interrupt => "interrupt",
        OnPreempt::Resume => "resume",
    }
}

async fn overlaps(
    state: &AppState,
    new: &Schedule,
    occ: &[DateTime<Utc>],
    duration: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Warnings> {
    let mut w = Warnings::default();
    if occ.is_empty() {
        return Ok(w);
    }
    let others: Vec<Schedule> = load_all(&state.store, true)
        .await?
        .into_iter()
        .filter(|s| s.id != new.id && s.priority == new.priority)
        .collect();
    if others.is_empty() {
        return Ok(w);
    }
    let fleet = dispatch::Fleet::load(&state.store).await?;
    let mine = fleet.devices_for(&new.targets);
    let all_media: Vec<String> = others.iter().flat_map(|s| s.media.iter().cloned()).collect();
    let info = media_info(&state.store, &all_media).await?;
    for other in &others {
        let od = playlist_ms(&other.media, |s| info.get(s).map(|m| m.1)) * other.repeat as i64;
        let oocc = other.occurrences(from - Duration::milliseconds(od), to);
        let mut pairs = Vec::new();
        for a in occ {
            let a_end = *a + Duration::milliseconds(duration);
            for b in &oocc {
                let b_end = *b + Duration::milliseconds(od);
                if *a < b_end && *b < a_end {
                    pairs.push((*a, *b));
                }
            }
        }
        if pairs.is_empty() {
            continue;
        }
        let theirs = fleet.devices_for(&other.targets);
        for d in mine.intersection(&theirs) {
            for (a, b) in &pairs {
                w.overlap_count += 1;
                if w.overlaps.len() < MAX_WARNINGS {
                    w.overlaps.push(Overlap {
                        device: d.clone(),
                        schedule_id: other.id.clone(),
                        at: *a,
                        other_at: *b,
                    });
                }
            }
        }
    }
    Ok(w)
}

fn row_to_schedule(r: &sqlx::any::AnyRow) -> Result<Schedule> {
    let media: String = r.try_get("media")?;
    let rule: String = r.try_get("rule")?;
    let priority: String = r.try_get("priority")?;
    let on_preempt: String = r.try_get("on_preempt")?;
    let tz_name: String = r.try_get("time_zone")?;
    let spec: RuleSpec = serde_json::from_str(&rule).map_err(Error::context("stored rule"))?;
    let parsed_rule = Rule::parse(&spec).ok();
    Ok(Schedule {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        media: serde_json::from_str(&media).map_err(Error::context("stored media"))?,
        targets: Targets::default(),
        priority: priority.parse().unwrap_or_default(),
        rule: spec,
        tz: tz_name.parse().ok(),
        time_zone: tz_name,
        valid_from: r.try_get::<Option<i64>, _>("valid_from")?.map(from_ms),
        valid_until: r.try_get::<Option<i64>, _>("valid_until")?.map(from_ms),
        volume: r.try_get::<i64, _>("volume")?.clamp(0, 100) as u8,
        repeat: r.try_get::<i64, _>("repeat_count")?.max(1) as u32,
        on_preempt: if on_preempt == "resume" {
            OnPreempt::Resume
        } else {
            OnPreempt::Interrupt
        },
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: from_ms(r.try_get("created_at")?),
        updated_at: from_ms(r.try_get("updated_at")?),
        parsed_rule,
    })
}

const COLUMNS: &str = "id, title, media, priority, rule, time_zone, valid_from, valid_until, volume, repeat_count, \
                       on_preempt, enabled, created_at, updated_at";

/// Every schedule (or only enabled ones) with its targets: two queries.
pub async fn load_all(store: &Store, only_enabled: bool) -> Result<Vec<Schedule>> {
    let sql = if only_enabled {
        format!("SELECT {COLUMNS} FROM schedules WHERE enabled = 1 ORDER BY created_at DESC, id")
    } else {
        format!("SELECT {COLUMNS} FROM schedules ORDER BY created_at DESC, id")
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&store.pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut index = HashMap::new();
    for r in &rows {
        let s = row_to_schedule(r)?;
        index.insert(s.id.clone(), out.len());
        out.push(s);
    }
    let targets = sqlx::query("SELECT schedule_id, kind, target FROM schedule_targets ORDER BY target")
        .fetch_all(&store.pool)
        .await?;
    for t in targets {
        let sid: String = t.try_get("schedule_id")?;
        let Some(&i) = index.get(&sid) else { continue };
        let kind: String = t.try_get("kind")?;
        let target: String = t.try_get("target")?;
        if kind == "area" {
            out[i].targets.areas.push(target);
        } else {
            out[i].targets.devices.push(target);
        }
    }
    Ok(out)
}

/// The schedules every target of which (areas, and devices' areas) is inside the caller's scope,
/// newest first, filtered in SQL (see [`Caller::scope_sql`]).
pub async fn load_visible(store: &Store, caller: &Caller) -> Result<Vec<Schedule>> {
    if caller.scope_areas.is_none() {
        return load_all(store, false).await;
    }
    let scope = crate::store::scope::scope_sql(
        caller,
        "COALESCE(CASE WHEN t.kind = 'device' THEN d.area ELSE t.target END, '')",
        1,
    );
    let hidden = format!(
        "NOT EXISTS (SELECT 1 FROM schedule_targets t LEFT JOIN devices d ON t.kind = 'device' AND d.id = t.target \
         WHERE t.schedule_id = s.id AND NOT ({}))",
        scope.sql
    );
    let sql = format!("SELECT {COLUMNS} FROM schedules s WHERE {hidden} ORDER BY created_at DESC, id");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &scope.binds {
        q = q.bind(b.clone());
    }
    let rows = q.fetch_all(&store.pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut index = HashMap::new();
    for r in &rows {
        let s = row_to_schedule(r)?;
        index.insert(s.id.clone(), out.len());
        out.push(s);
    }
    let sql = format!(
        "SELECT x.schedule_id, x.kind, x.target FROM schedule_targets x JOIN schedules s ON s.id = x.schedule_id \
         WHERE {hidden} ORDER BY x.target"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &scope.binds {
        q = q.bind(b.clone());
    }
    for t in q.fetch_all(&store.pool).await? {
        let sid: String = t.try_get("schedule_id")?;
        let Some(&i) = index.get(&sid) else { continue };
        let kind: String = t.try_get("kind")?;
        let target: String = t.try_get("target")?;
        if kind == "area" {
            out[i].targets.areas.push(target);
        } else {
            out[i].targets.devices.push(target);
        }
    }
    Ok(out)
}

/// One schedule with its targets.
pub async fn get_one(store: &Store, id: &str) -> Result<Schedule> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM schedules WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&store.pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("schedule {id}")))?;
    let mut s = row_to_schedule(&row)?;
    let targets =
        sqlx::query("SELECT kind, target FROM schedule_targets WHERE schedule_id = $1 ORDER BY target")
            .bind(id.to_string())
            .fetch_all(&store.pool)
            .await?;
    for t in targets {
        let kind: String = t.try_get("kind")?;
        let target: String = t.try_get("target")?;
        if kind == "area" {
            s.targets.areas.push(target);
        } else {
            s.targets.devices.push(target);
        }
    }
    Ok(s)
}

/// Create a schedule.
#[utoipa::path(post, path = "/api/v1/schedules", request_body = NewSchedule, tag = "schedules",
    responses((status = 201, body = Created), (status = 400, description = "invalid rule, time zone or value"),
              (status = 422, description = "unknown target or media not approved")))]
async fn post_schedule(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewSchedule>,
) -> Result<(StatusCode, Json<Created>)> {
    caller.require(Role::Operator)?;
    crate::services::auth::check_targets(&state, &caller, &req.targets.areas, &req.targets.devices).await?;
    crate::media::require_visible(&state.store, &caller, &req.media).await?;
    let created = create(&state, req).await?;
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        "schedule.create",
        &format!("schedule:{}", created.schedule.id),
        None,
        serde_json::to_value(&created.schedule).ok(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Replace a schedule's content (title, media, targets, priority, rule, validity, volume...);
/// the old and new targets' manifests are re-published.
#[utoipa::path(put, path = "/api/v1/schedules/{id}", request_body = NewSchedule, tag = "schedules",
    params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 403, description = "old or new targets outside your scope"),
              (status = 404), (status = 422, description = "unknown target or media not approved")))]
async fn put_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewSchedule>,
) -> Result<Json<Schedule>> {
    caller.require(Role::Operator)?;
    let s = get_one(&state.store, &id).await?;
    check_scope(&state, &caller, &s).await?;
    crate::services::auth::check_targets(&state, &caller, &req.targets.areas, &req.targets.devices).await?;
    crate::media::require_visible(&state.store, &caller, &req.media).await?;
    let (before, after) = update(&state, &id, req, None).await?;
    audit_change(&state, &caller, "schedule.update", Some(&before), Some(&after)).await;
    Ok(Json(after))
}

/// Write a schedule change to the audit log.
pub(crate) async fn audit_change(
    state: &AppState,
    caller: &Caller,
    action: &str,
    before: Option<&Schedule>,
    after: Option<&Schedule>,
) {
    let id = before.or(after).map(|s| s.id.clone()).unwrap_or_default();
    crate::store::audit::record_outside(
        &state.store,
        &caller.username,
        action,
        &format!("schedule:{id}"),
        before.and_then(|s| serde_json::to_value(s).ok()),
        after.and_then(|s| serde_json::to_value(s).ok()),
    )
    .await;
}

/// List schedules, newest first.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", responses((status = 200, body = [Schedule])))]
async fn list_schedules(caller: Caller, State(state): State<AppState>) -> Result<Json<Vec<Schedule>>> {
    Ok(Json(load_visible(&state.store, &caller).await?))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404)))]
async fn get_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Schedule>> {
    let s = get_one(&state.store, &id).await?;
    check_scope(&state, &caller, &s).await?;
    Ok(Json(s))
}

/// `PATCH` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSchedule {
    /// Enable or disable dispatching.
    pub enabled: bool,
}

/// Enable or disable a schedule.
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    request_body = PatchSchedule, responses((status = 200, body = Schedule), (status = 404)))]
async fn patch_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<PatchSchedule>,
) -> Result<Json<Schedule>> {
    caller.require(Role::Operator)?;
    let s = get_one(&state.store, &id).await?;
    check_scope(&state, &caller, &s).await?;
    let (before, after) = set_enabled(&state, &id, p.enabled).await?;
    audit_change(&state, &caller, "schedule.update", Some(&before), Some(&after)).await;
    Ok(Json(after))
}

/// Delete a schedule (its future occurrences leave the manifests).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
async fn delete_schedule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    caller.require(Role::Operator)?;
    let s = get_one(&state.store, &id).await?;
    check_scope(&state, &caller, &s).await?;
    let before = delete(&state, &id).await?;
    audit_change(&state, &caller, "schedule.delete", Some(&before), None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `from`/`to` of the occurrences query (RFC 3339; default now .. now + look-ahead).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Range {
    /// Start (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive); at most 366 days after `from`.
    pub to: Option<DateTime<Utc>>,
}

/// Occurrences of a schedule in a range, UTC and local.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/occurrences", tag = "schedules",
    params(("id" = String, Path), Range), responses((status = 200, body = [Occurrence]), (status = 404)))]
async fn get_occurrences(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(r): Query<Range>,
) -> Result<Json<Vec<Occurrence>>> {
    let s = get_one(&state.store, &id).await?;
    let from = r.from.unwrap_or_else(Utc::now);
    let to =
        r.to.unwrap_or(from + Duration::hours(state.settings.lookahead_hours as i64));
    if to <= from || to - from > Duration::days(366) {
        return Err(Error::bad(
            "invalid_range",
            "`to` must be after `from` and at most 366 days later",
        ));
    }
    let tz = s.tz.unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    Ok(Json(
        s.occurrences(from, to)
            .into_iter()
            .map(|t| occurrence(tz, t))
            .collect(),
    ))
}

/// OpenAPI description of this module's endpoints (merged in `openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        post_schedule,
        put_schedule,
        list_schedules,
        get_schedule,
        patch_schedule,
        delete_schedule,
        get_occurrences
    ),
    components(schemas(
        NewSchedule,
        Targets,
        RuleSpec,
        Schedule,
        Created,
        Occurrence,
        Overlap,
        Warnings,
        PatchSchedule
    ))
)]
pub struct Doc;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list_schedules).post(post_schedule))
        .route(
            "/api/v1/schedules/{id}",
            get(get_schedule)
                .put(put_schedule)
                .patch(patch_schedule)
                .delete(delete_schedule),
        )
        .route("/api/v1/schedules/{id}/occurrences", get(get_occurrences))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_weekday_cron_in_ho_chi_minh_fires_at_2330_utc_the_previous_day() {
        let r = Rule::Cron(Box::new(CronRule::parse("30 6 * * 1-5").unwrap()));
        let tz: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        // 2026-11-30 is a Monday.
        let got = r.occurrences(tz, utc("2026-11-28T00:00:00Z"), utc("2026-12-06T00:00:00Z"), 100);
        let want: Vec<_> = [
            "2026-11-29T23:30:00Z",
            "2026-11-30T23:30:00Z",
            "2026-12-01T23:30:00Z",
            "2026-12-02T23:30:00Z",
            "2026-12-03T23:30:00Z",
        ]
        .iter()
        .map(|s| utc(s))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn berlin_spring_forward_gap_moves_0230_to_0300_and_fall_back_plays_once() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let r = Rule::Cron(Box::new(CronRule::parse("30 2 * * *").unwrap()));
        let got = r.occurrences(tz, utc("2026-03-28T00:00:00Z"), utc("2026-03-31T00:00:00Z"), 100);
        // 28th 02:30 CET = 01:30Z; 29th 02:30 does not exist → 03:00 CEST = 01:00Z; 30th 02:30 CEST = 00:30Z.
        assert_eq!(
            got,
            vec![
                utc("2026-03-28T01:30:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z")
            ]
        );
        let r = Rule::Cron(Box::new(CronRule::parse("0 9 * * *").unwrap()));
        let got = r.occurrences(tz, utc("2026-10-24T00:00:00Z"), utc("2026-10-27T00:00:00Z"), 100);
        assert_eq!(
            got,
            vec![
                utc("2026-10-24T07:00:00Z"),
                utc("2026-10-25T08:00:00Z"),
                utc("2026-10-26T08:00:00Z")
            ]
        );
        let r = Rule::Cron(Box::new(CronRule::parse("30 2 * * *").unwrap()));
        let got = r.occurrences(tz, utc("2026-10-24T12:00:00Z"), utc("2026-10-26T00:00:00Z"), 100);
        // 02:30 happens twice on the 25th (CEST 00:30Z, then CET 01:30Z): played once, the first.
        assert_eq!(got, vec![utc("2026-10-25T00:30:00Z")]);
    }

    #[test]
    fn once_rules_follow_the_same_gap_and_overlap_rules() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(
            local_to_utc(tz, t("2026-03-29T02:30:00")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            local_to_utc(tz, t("2026-10-25T02:30:00")),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn bad_cron_patterns_name_the_problem() {
        assert!(CronRule::parse("30 6 * *").unwrap_err().contains("4 fields"));
        assert!(CronRule::parse("0 30 6 * * 1").unwrap_err().contains("6 fields"));
        assert!(CronRule::parse("61 6 * * *").is_err());
    }
}

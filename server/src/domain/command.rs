//! Immediate commands (play now, stop, volume, sync) as clients ask for them
//! ([`CommandRequest`]) and as devices get them (`nguon_protocol::Command`): the checks and the
//! translation ([`build`]), the audit name ([`action`]), where each target's commands travel
//! ([`Addressed`]) and how long a command may be acted on ([`COMMAND_TTL_SECS`], or the validity
//! window of an emergency or priority play-now: [`Built::catch_up`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use nguon_protocol::{
    AreaCode, Audience, Command, DeviceId, ManifestItem, MediaRef, OnPreempt, Priority, topic,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::media::MediaInfo;
use crate::error::{Error, Result};

/// How long a command may be acted on after it is issued; one not published by then is never
/// sent. A play-now with a validity window lasts that window instead.
pub const COMMAND_TTL_SECS: i64 = 300;
/// Shortest validity window a play-now may ask for (`valid_for_s`).
pub const MIN_WINDOW_SECS: i64 = 10;
/// Longest validity window a play-now may ask for.
pub const MAX_WINDOW_SECS: i64 = 86_400;

/// A command as a client asks for it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CommandRequest {
    /// Play approved media now.
    PlayNow {
        /// Playlist by sha256 (each approved).
        media: Vec<String>,
        /// Priority (default `priority`; `emergency` preempts everything).
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        priority: Option<Priority>,
        /// Volume 0–100 (default 80).
        #[serde(default)]
        volume: Option<u8>,
        /// Title shown in telemetry.
        #[serde(default)]
        title: Option<String>,
        /// Validity window in seconds (10–86400): a device that (re)connects inside it plays the
        /// message from the beginning, reported `played_late`. Default: the server's late window
        /// of the priority (emergency 1800, priority 600, normal 0 = no catch-up).
        #[serde(default)]
        valid_for_s: Option<u32>,
        /// The end of the validity window as an instant (RFC 3339), instead of `valid_for_s`.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
        /// Emergency only: repeat until the window ends or a stop, by a preset of Decision
        /// 18/2021/QĐ-TTg (`"every_2h"`, `"twice_5min_then_every_30min"`) or a custom pattern
        /// `{"offsets_s": [0, …], "every_s": N}` (`domain::repetition`). Absent: played once.
        #[serde(default)]
        #[schema(value_type = Option<Object>)]
        repetition: Option<serde_json::Value>,
    },
    /// Stop one item, or everything.
    Stop {
        /// Item to stop.
        #[serde(default)]
        item_id: Option<String>,
    },
    /// Set the default volume.
    Volume {
        /// 0–100.
        level: u8,
    },
    /// Re-read desired state and report telemetry now.
    Sync,
}

/// The `202` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Issued {
    /// Command id (= envelope id; acks carry it).
    pub command_id: String,
    /// Topic it is published on.
    pub topic: String,
    /// Issue instant.
    pub issued_at: DateTime<Utc>,
    /// After this instant it is neither sent nor acted on (for an emergency or priority play-now:
    /// the end of its validity window, until which devices that were offline still play it).
    pub expires_at: DateTime<Utc>,
    /// Loudspeakers it covers (tracked at `GET /api/v1/commands/{id}`).
    pub targets: u64,
    /// Of those, how many were online when it was issued.
    pub online: u64,
}

/// Where a command for an audience travels: `d/{id}/cmd` for one device, `a/{code}/cmd` for an
/// area (the broker fans it out to the devices subscribed to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    /// `device` or `area` (`commands.target_kind`).
    pub kind: &'static str,
    /// The device id or area code.
    pub target: String,
    /// The topic.
    pub topic: String,
}

impl Addressed {
    /// The address of `audience`.
    pub fn of(audience: &Audience) -> Addressed {
        match audience {
            Audience::Device(d) => Addressed {
                kind: "device",
                target: d.as_str().to_string(),
                topic: topic::cmd(d),
            },
            Audience::Area(a) => Addressed {
                kind: "area",
                target: a.as_str().to_string(),
                topic: topic::area_cmd(a),
            },
        }
    }

    /// The audience back from a stored `(target_kind, target)`.
    pub fn audience(kind: &str, target: &str) -> Result<Audience> {
        let bad =
            |e: nguon_protocol::IdError| Error::internal(format!("stored command target `{target}`: {e}"));
        match kind {
            "device" => Ok(Audience::Device(DeviceId::parse(target).map_err(bad)?)),
            "area" => Ok(Audience::Area(AreaCode::parse(target).map_err(bad)?)),
            other => Err(Error::internal(format!("stored command target kind `{other}`"))),
        }
    }
}

/// The machine name of a command (`commands.action`, the audit action's last part).
pub fn action(c: &Command) -> &'static str {
    match c {
        Command::PlayNow { .. } => "play_now",
        Command::Stop { .. } => "stop",
        Command::Volume { .. } => "volume",
        Command::Sync => "sync",
        Command::LiveStart { .. } => "live_start",
        Command::LiveStop { .. } => "live_stop",
    }
}

/// A command as built for devices, with how long it lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The command.
    pub command: Command,
    /// After this instant it is neither sent nor acted on.
    pub expires_at: DateTime<Utc>,
    /// A play-now with a validity window: until `expires_at` it is part of each target device's
    /// desired state (the manifest carries it with `play_until`), so a device that was offline
    /// when it was sent still plays it.
    pub catch_up: bool,
}

/// The validity window a play-now asks for (`valid_for_s` or `expires_at`, not both), or the
/// default window of its priority; zero means none.
fn window(
    valid_for_s: Option<u32>,
    expires_at: Option<DateTime<Utc>>,
    default: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<chrono::Duration> {
    let bad = |m: String| Error::bad("invalid_validity", m);
    let w = match (valid_for_s, expires_at) {
        (Some(_), Some(_)) => {
            return Err(bad("give `valid_for_s` or `expires_at`, not both".into()));
        }
        (Some(s), None) => chrono::Duration::seconds(s as i64),
        (None, Some(t)) => {
            if t <= now {
                return Err(bad(format!("`expires_at` {t} has passed")));
            }
            t - now
        }
        (None, None) => return Ok(default),
    };
    let (lo, hi) = (
        chrono::Duration::seconds(MIN_WINDOW_SECS),
        chrono::Duration::seconds(MAX_WINDOW_SECS),
    );
    if w < lo || w > hi {
        let which = if valid_for_s.is_some() {
            "valid_for_s"
        } else {
            "expires_at"
        };
        return Err(bad(format!(
            "`{which}`: the validity window must be {MIN_WINDOW_SECS} s to {MAX_WINDOW_SECS} s, not {} s",
            w.num_seconds()
        )));
    }
    Ok(w)
}

/// The command devices get for `req`, issued `now` with id `id`. For play-now, `media` holds
/// every requested file, already checked to be approved; devices fetch them under `public_url`;
/// `default_window` gives the validity window of a priority when the request names none.
pub fn build(
    req: CommandRequest,
    id: uuid::Uuid,
    now: DateTime<Utc>,
    media: &HashMap<String, MediaInfo>,
    public_url: &str,
    default_window: impl Fn(Priority) -> chrono::Duration,
) -> Result<Built> {
    let ttl = now + chrono::Duration::seconds(COMMAND_TTL_SECS);
    let plain = |command| Built {
        command,
        expires_at: ttl,
        catch_up: false,
    };
    Ok(match req {
        CommandRequest::PlayNow {
            media: shas,
            priority,
            volume,
            title,
            valid_for_s,
            expires_at,
            repetition: _,
        } => {
            let priority = priority.unwrap_or(Priority::Priority);
            let w = window(valid_for_s, expires_at, default_window(priority), now)?;
            let catch_up = w > chrono::Duration::zero();
            let volume = volume.unwrap_or(80);
            if volume > 100 {
                return Err(Error::bad("invalid_volume", "`volume` must be 0–100"));
            }
            let mut seen = HashSet::new();
            let mut refs = Vec::with_capacity(shas.len());
            let mut delivered = Vec::with_capacity(shas.len());
            for sha in &shas {
                let m = media
                    .get(sha)
                    .ok_or_else(|| Error::internal(format!("media {sha} was not looked up")))?;
                // Devices fetch and play an upload's normalised rendition.
                let d = m.delivered(sha);
                delivered.push(d.sha256.clone());
                if seen.insert(sha.clone()) {
                    refs.push(MediaRef {
                        size: d.size.max(0) as u64,
                        url: format!("{public_url}/media/{}", d.sha256),
                        duration_ms: d.duration_ms.max(0) as u64,
                        sha256: d.sha256,
                    });
                }
            }
            let command = Command::PlayNow {
                item: ManifestItem {
                    id: id.to_string(),
                    schedule_id: String::new(),
                    title: title.unwrap_or_else(|| "play now".into()),
                    starts_at: now,
                    priority,
                    volume,
                    media: delivered,
                    repeat: 1,
                    on_preempt: OnPreempt::Interrupt,
                    play_until: catch_up.then_some(now + w),
                    repetition: None,
                    relay: None,
                },
                media: refs,
            };
            if catch_up {
                Built {
                    command,
                    expires_at: now + w,
                    catch_up,
                }
            } else {
                plain(command)
            }
        }
        CommandRequest::Stop { item_id } => plain(Command::Stop { item_id }),
        CommandRequest::Volume { level } => {
            if level > 100 {
                return Err(Error::bad("invalid_volume", "`level` must be 0–100"));
            }
            plain(Command::Volume { level })
        }
        CommandRequest::Sync => plain(Command::Sync),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;
    use nguon_protocol::{AreaCode, Audience, Command, DeviceId, Priority};

    use super::{Addressed, CommandRequest, action, build};
    use crate::domain::media::MediaInfo;
    use crate::error::Error;

    #[test]
    fn play_now_lists_each_file_once_with_its_url_and_defaults() {
        let sha = "ab".repeat(32);
        let media = HashMap::from([(
            sha.clone(),
            MediaInfo {
                size: 10,
                duration_ms: 2000,
                approved: true,
                rendition: None,
            },
        )]);
        let id = uuid::Uuid::new_v4();
        let req = CommandRequest::PlayNow {
            media: vec![sha.clone(), sha.clone()],
            priority: None,
            volume: None,
            title: None,
            valid_for_s: None,
            expires_at: None,
            repetition: None,
        };
        let c = build(req, id, Utc::now(), &media, "http://srv", no_window)
            .unwrap()
            .command;
        assert_eq!(action(&c), "play_now");
        let Command::PlayNow { item, media } = c else {
            panic!("not play_now")
        };
        assert_eq!(
            (item.id, item.volume, item.priority),
            (id.to_string(), 80, Priority::Priority)
        );
        assert_eq!(item.media.len(), 2, "the playlist keeps its order and repeats");
        assert_eq!(media.len(), 1);
        assert_eq!(media[0].url, format!("http://srv/media/{sha}"));
    }

    #[test]
    fn play_now_sends_the_normalised_rendition_of_an_upload() {
        let sha = "ab".repeat(32);
        let rendition = "cd".repeat(32);
        let media = HashMap::from([(
            sha.clone(),
            MediaInfo {
                size: 10,
                duration_ms: 2000,
                approved: true,
                rendition: Some(crate::domain::media::Delivered {
                    sha256: rendition.clone(),
                    size: 400,
                    duration_ms: 2001,
                }),
            },
        )]);
        let req = CommandRequest::PlayNow {
            media: vec![sha.clone()],
            priority: None,
            volume: None,
            title: None,
            valid_for_s: None,
            expires_at: None,
            repetition: None,
        };
        let c = build(
            req,
            uuid::Uuid::nil(),
            Utc::now(),
            &media,
            "http://srv",
            no_window,
        )
        .unwrap()
        .command;
        let Command::PlayNow { item, media } = c else {
            panic!("not play_now")
        };
        assert_eq!(item.media, std::slice::from_ref(&rendition));
        assert_eq!(
            (media[0].sha256.as_str(), media[0].size),
            (rendition.as_str(), 400)
        );
        assert_eq!(media[0].url, format!("http://srv/media/{rendition}"));
    }

    #[test]
    fn volumes_above_100_are_refused() {
        let none = HashMap::new();
        let e = build(
            CommandRequest::Volume { level: 101 },
            uuid::Uuid::nil(),
            Utc::now(),
            &none,
            "",
            no_window,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadRequest {
                    code: "invalid_volume",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    fn no_window(_: Priority) -> chrono::Duration {
        chrono::Duration::zero()
    }

    fn emergency(valid_for_s: Option<u32>, expires_at: Option<chrono::DateTime<Utc>>) -> CommandRequest {
        CommandRequest::PlayNow {
            media: Vec::new(),
            priority: Some(Priority::Emergency),
            volume: None,
            title: None,
            valid_for_s,
            expires_at,
            repetition: None,
        }
    }

    #[test]
    fn an_emergency_play_now_lasts_its_window_and_carries_it_as_play_until() {
        let now = Utc::now();
        let none = HashMap::new();
        let windows = |p: Priority| match p {
            Priority::Emergency => chrono::Duration::minutes(30),
            Priority::Priority => chrono::Duration::minutes(10),
            Priority::Normal => chrono::Duration::zero(),
        };
        let id = uuid::Uuid::new_v4();
        let b = build(emergency(None, None), id, now, &none, "", windows).unwrap();
        assert!(b.catch_up);
        assert_eq!(b.expires_at, now + chrono::Duration::minutes(30));
        let Command::PlayNow { item, .. } = &b.command else {
            panic!("not play_now")
        };
        assert_eq!(item.play_until, Some(b.expires_at));
        // Set per command, either way.
        let b = build(emergency(Some(120), None), id, now, &none, "", windows).unwrap();
        assert_eq!(b.expires_at, now + chrono::Duration::seconds(120));
        let at = now + chrono::Duration::minutes(5);
        let b = build(emergency(None, Some(at)), id, now, &none, "", windows).unwrap();
        assert_eq!(b.expires_at, at);
        // Normal: no window by default, the command TTL.
        let normal = CommandRequest::PlayNow {
            media: Vec::new(),
            priority: Some(Priority::Normal),
            volume: None,
            title: None,
            valid_for_s: None,
            expires_at: None,
            repetition: None,
        };
        let b = build(normal, id, now, &none, "", windows).unwrap();
        assert!(!b.catch_up);
        assert_eq!(
            b.expires_at,
            now + chrono::Duration::seconds(super::COMMAND_TTL_SECS)
        );
        // Refused: both, too short, too long, in the past.
        for bad in [
            emergency(Some(60), Some(at)),
            emergency(Some(5), None),
            emergency(Some(86_401), None),
            emergency(None, Some(now - chrono::Duration::seconds(1))),
        ] {
            let e = build(bad, id, now, &none, "", windows).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::BadRequest {
                        code: "invalid_validity",
                        ..
                    }
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_stored_target_gives_back_its_audience() {
        let a = Audience::Area(AreaCode::parse("08").unwrap());
        let d = Audience::Device(DeviceId::parse("lc-1").unwrap());
        for aud in [a, d] {
            let to = Addressed::of(&aud);
            assert_eq!(Addressed::audience(to.kind, &to.target).unwrap(), aud);
        }
        assert!(Addressed::audience("planet", "x").is_err());
    }
}

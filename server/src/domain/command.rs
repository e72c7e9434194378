//! Immediate commands (play now, stop, volume, sync) as clients ask for them
//! ([`CommandRequest`]) and as devices get them (`nguon_protocol::Command`): the checks and the
//! translation ([`build`]), the audit name ([`action`]), where each target's commands travel
//! ([`Addressed`]) and how long a command may be acted on ([`COMMAND_TTL_SECS`]).

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
/// sent.
pub const COMMAND_TTL_SECS: i64 = 300;

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

/// The command devices get for `req`, issued `now` with id `id`. For play-now, `media` holds
/// every requested file, already checked to be approved; devices fetch them under `public_url`.
pub fn build(
    req: CommandRequest,
    id: uuid::Uuid,
    now: DateTime<Utc>,
    media: &HashMap<String, MediaInfo>,
    public_url: &str,
) -> Result<Command> {
    Ok(match req {
        CommandRequest::PlayNow {
            media: shas,
            priority,
            volume,
            title,
        } => {
            let volume = volume.unwrap_or(80);
            if volume > 100 {
                return Err(Error::bad("invalid_volume", "`volume` must be 0–100"));
            }
            let mut seen = HashSet::new();
            let mut refs = Vec::with_capacity(shas.len());
            for sha in &shas {
                let m = media
                    .get(sha)
                    .ok_or_else(|| Error::internal(format!("media {sha} was not looked up")))?;
                if seen.insert(sha.clone()) {
                    refs.push(MediaRef {
                        sha256: sha.clone(),
                        size: m.size.max(0) as u64,
                        url: format!("{public_url}/media/{sha}"),
                        duration_ms: m.duration_ms.max(0) as u64,
                    });
                }
            }
            Command::PlayNow {
                item: ManifestItem {
                    id: id.to_string(),
                    schedule_id: String::new(),
                    title: title.unwrap_or_else(|| "play now".into()),
                    starts_at: now,
                    priority: priority.unwrap_or(Priority::Priority),
                    volume,
                    media: shas,
                    repeat: 1,
                    on_preempt: OnPreempt::Interrupt,
                },
                media: refs,
            }
        }
        CommandRequest::Stop { item_id } => Command::Stop { item_id },
        CommandRequest::Volume { level } => {
            if level > 100 {
                return Err(Error::bad("invalid_volume", "`level` must be 0–100"));
            }
            Command::Volume { level }
        }
        CommandRequest::Sync => Command::Sync,
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
            },
        )]);
        let id = uuid::Uuid::new_v4();
        let req = CommandRequest::PlayNow {
            media: vec![sha.clone(), sha.clone()],
            priority: None,
            volume: None,
            title: None,
        };
        let c = build(req, id, Utc::now(), &media, "http://srv").unwrap();
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
    fn volumes_above_100_are_refused() {
        let none = HashMap::new();
        let e = build(
            CommandRequest::Volume { level: 101 },
            uuid::Uuid::nil(),
            Utc::now(),
            &none,
            "",
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

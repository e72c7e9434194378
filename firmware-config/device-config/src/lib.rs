//! nguon-device-config: the device configuration (`agent.toml`), one typed schema that
//! `nguon-agent` loads and `nguon-provision` writes and checks. Every error names the file, the
//! key and what was expected; unknown keys are rejected.
//!
//! A crate of its own so that the agent reads its configuration without the provisioning tool's
//! dependencies (password hashing, archives, CSV, progress bars); `nguon-provision` re-exports it
//! as `nguon_provision::config`.
//!
//! ```toml
//! [device]
//! id = "lc-08003-001"
//! kind = "loudspeaker"                 # loudspeaker | board
//! areas = ["10", "08003", "08003-01"]  # area codes whose command topics the device follows
//! time_zone = "Asia/Ho_Chi_Minh"
//!
//! [mqtt]
//! url = "mqtt://127.0.0.1:1883"        # mqtts://host:8883 for TLS
//! # or, a broker cluster's nodes, tried in turn when a connection fails or is lost:
//! # urls = ["mqtt://10.0.0.11:1883", "mqtt://10.0.0.12:1883", "mqtt://10.0.0.13:1883"]
//! username = "lc-08003-001"
//! password_file = "/etc/nguon/mqtt-password"   # or: password = "..."
//! reconnect_max_unreachable_secs = 10  # longest reconnect wait while the broker is unreachable
//! subscribe_qos = 1                    # 0 on a NATS cluster (docs/deployment.md)
//!
//! [server]
//! base_url = "http://127.0.0.1:8080"
//! public_key = "base64 of the server's ed25519 public key"
//!
//! [identity]
//! signing_key_file = "/etc/nguon/device.key"   # base64 ed25519 seed; signs reports
//!
//! [storage]
//! data_dir = "/var/lib/nguon-agent"
//! cache_max_mb = 2048
//!
//! [audio]
//! output = "alsa"                      # alsa | alsa:<device> | wav:<dir> | null
//! default_volume = 80
//! silence_dbfs = -50                   # a complete play quieter than this is reported silent
//! channels = 2                         # 1 for a mono amplifier: plays are mixed down to it
//! sample_rate = 48000                  # optional: the one rate the output runs at (resampled)
//!
//! [quiet_hours]                        # optional; suppresses only `normal` items
//! start = "22:00"
//! end = "05:00"
//!
//! [telemetry]
//! heartbeat_secs = 60
//!
//! [media]                              # optional; see `media`
//! prefetch_spread_secs = 300           # fetch a later item's media within this window (0: at once)
//! mirrors = ["https://cache-1.example.vn"]   # media mirrors tried before server.base_url
//!
//! [amplifier]                          # optional; see `amplifier`
//! hook = ["/usr/local/bin/amp-relay"]  # or: gpio = { chip = "/dev/gpiochip0", line = 17 }
//! preroll_ms = 1500
//! postroll_ms = 2000
//! ```
#![deny(missing_docs)]

pub mod amplifier;
pub mod broker;
pub mod media;

pub use amplifier::{AmplifierSection, GpioLine};
pub use broker::{BrokerUrl, parse_broker_url};
pub use media::MediaSection;

use std::path::{Path, PathBuf};

use chrono::NaiveTime;
use nguon_protocol::{AreaCode, DeviceId, KeyPair, verifying_key_from_b64};
use serde::{Deserialize, Serialize};

/// A configuration problem: which file, which key, what was wrong.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{file}: `{key}`: {message}")]
pub struct ConfigError {
    /// The file (or `<inline>`).
    pub file: String,
    /// Dotted key path, e.g. `mqtt.url`; `(document)` for syntax errors.
    pub key: String,
    /// What was expected.
    pub message: String,
}

/// Device kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// IT-enabled loudspeaker cluster (cụm loa).
    Loudspeaker,
    /// Electronic bulletin board (bảng tin điện tử).
    Board,
}

impl DeviceKind {
    /// The wire/CSV name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Loudspeaker => "loudspeaker",
            DeviceKind::Board => "board",
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "loudspeaker" => Ok(DeviceKind::Loudspeaker),
            "board" => Ok(DeviceKind::Board),
            other => Err(format!("unknown kind `{other}`, expected loudspeaker or board")),
        }
    }
}

/// `[device]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// Device id (also the MQTT client id).
    pub id: DeviceId,
    /// Kind.
    pub kind: DeviceKind,
    /// Area codes whose `a/{area}/cmd` topics the device follows (its own area and its ancestors).
    #[serde(default)]
    pub areas: Vec<AreaCode>,
    /// IANA time zone for quiet hours.
    #[serde(default = "default_tz")]
    pub time_zone: String,
}

fn default_tz() -> String {
    "Asia/Ho_Chi_Minh".into()
}

/// `[mqtt]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host:port` or `mqtts://host:port`: one broker (or one name over a cluster's nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Several brokers (the nodes of a cluster), instead of `url`: the agent connects to the first
    /// and, whenever a connection fails or is lost, tries the next one (see [`broker`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Username (normally the device id).
    pub username: String,
    /// Password inline (prefer `password_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// File holding the password (first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// CA bundle for `mqtts://` (default: system roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Keep-alive in seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u16,
    /// The longest wait between connection attempts while the broker cannot be reached at the
    /// TCP level (refused, timed out, unreachable), 1–60 s. A broker that accepts and then breaks
    /// the session still gets waits growing to 60 s.
    #[serde(default = "default_reconnect_max_unreachable")]
    pub reconnect_max_unreachable_secs: u16,
    /// The QoS of the agent's subscriptions (its manifest, commands, receipts), 0 or 1; default 1.
    /// 0 where a broker cluster ties QoS 1 subscriptions to one node's state (NATS: a JetStream
    /// consumer that dies with its node while the connection stays up, docs/deployment.md). The
    /// session is clean either way, so QoS 1 adds nothing across reconnects; what a lost message
    /// carried comes back another way: events are sent until a receipt names them, and a
    /// manifest older than the server's is sent again when the heartbeat reports its version.
    #[serde(default = "default_subscribe_qos")]
    pub subscribe_qos: u8,
}

/// The default of `mqtt.subscribe_qos`.
pub fn default_subscribe_qos() -> u8 {
    1
}

fn default_keep_alive() -> u16 {
    30
}

/// The default of `mqtt.reconnect_max_unreachable_secs`.
pub fn default_reconnect_max_unreachable() -> u16 {
    10
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Base URL of nguon-server (media downloads, clock estimate).
    pub base_url: String,
    /// Base64 ed25519 public key of the server (`GET /api/v1/keys/server`).
    pub public_key: String,
}

/// `[identity]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// File holding the base64 ed25519 seed that signs this device's reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Where the agent keeps its store and media cache.
    pub data_dir: PathBuf,
    /// Media cache limit in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_max_mb: u64,
}

fn default_cache_mb() -> u64 {
    2048
}

/// Where audio goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    /// ALSA through rodio; `None` is the default device.
    Alsa(Option<String>),
    /// WAV files in a directory: exactly the samples that would reach the speaker.
    Wav(PathBuf),
    /// Discard (timing and reports still happen).
    Null,
}

impl std::str::FromStr for AudioOutput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "null" => Ok(AudioOutput::Null),
            "alsa" => Ok(AudioOutput::Alsa(None)),
            _ => {
                if let Some(dev) = s.strip_prefix("alsa:") {
                    if dev.is_empty() {
                        return Err("`alsa:` needs a device name after the colon".into());
                    }
                    Ok(AudioOutput::Alsa(Some(dev.to_string())))
                } else if let Some(dir) = s.strip_prefix("wav:") {
                    if dir.is_empty() {
                        return Err("`wav:` needs a directory after the colon".into());
                    }
                    Ok(AudioOutput::Wav(PathBuf::from(dir)))
                } else {
                    Err(format!(
                        "`{s}` is not an audio output; expected alsa, alsa:<device>, wav:<dir> or null"
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for AudioOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioOutput::Alsa(None) => f.write_str("alsa"),
            AudioOutput::Alsa(Some(d)) => write!(f, "alsa:{d}"),
            AudioOutput::Wav(p) => write!(f, "wav:{}", p.display()),
            AudioOutput::Null => f.write_str("null"),
        }
    }
}

/// `[audio]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    /// `alsa`, `alsa:<device>`, `wav:<dir>` or `null`.
    pub output: String,
    /// Volume 0–100 used when an item does not set one.
    #[serde(default = "default_volume")]
    pub default_volume: u8,
    /// Silence threshold in dBFS (−120 to 0): an item that plays to its end with the RMS of
    /// every 1-second window below it is reported `silent` (the server's silence alarm).
    #[serde(default = "default_silence_dbfs")]
    pub silence_dbfs: i32,
    /// Channels the output has, 1 or 2: a file of more is mixed down (ITU-R BS.775, then the
    /// mean of the pair for mono).
    #[serde(default = "default_channels", skip_serializing_if = "is_stereo")]
    pub channels: u16,
    /// The one sample rate the output runs at (8000–192000 Hz), for a codec or sink that takes
    /// no other: every play is resampled to it. Unset: each file plays at its own rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
}

fn default_channels() -> u16 {
    2
}

fn is_stereo(c: &u16) -> bool {
    *c == 2
}

fn default_volume() -> u8 {
    80
}

fn default_silence_dbfs() -> i32 {
    -50
}

/// `[quiet_hours]`, local `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursSection {
    /// Start `HH:MM`.
    pub start: String,
    /// End `HH:MM`.
    pub end: String,
}

/// `[telemetry]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// Heartbeat interval in seconds (5–3600).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u32,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            heartbeat_secs: default_heartbeat(),
        }
    }
}

fn default_heartbeat() -> u32 {
    60
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// `[device]`
    pub device: DeviceSection,
    /// `[mqtt]`
    pub mqtt: MqttSection,
    /// `[server]`
    pub server: ServerSection,
    /// `[identity]`
    #[serde(default)]
    pub identity: IdentitySection,
    /// `[storage]`
    pub storage: StorageSection,
    /// `[audio]`
    pub audio: AudioSection,
    /// `[quiet_hours]`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHoursSection>,
    /// `[telemetry]`
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// `[amplifier]`: the amplifier relay (none: the agent switches nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplifier: Option<AmplifierSection>,
    /// `[media]`: when the schedule's media is fetched (not written while at its defaults).
    #[serde(default, skip_serializing_if = "MediaSection::is_default")]
    pub media: MediaSection,
}

fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("`{s}` is not a time; expected HH:MM (24 h)"))
}

impl DeviceConfig {
    /// Read and validate a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parse and validate text; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let err = |key: String, message: String| ConfigError {
            file: file.to_string(),
            key,
            message,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| err("(document)".into(), e.to_string()))?;
        let cfg: DeviceConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().to_string();
            err(if key == "." { "(document)".into() } else { key }, msg)
        })?;
        cfg.validate().map_err(|(k, m)| err(k.to_string(), m))?;
        Ok(cfg)
    }

    /// Semantic checks beyond types; returns the dotted key and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.device.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err((
                "device.time_zone",
                format!("`{}` is not an IANA time zone", self.device.time_zone),
            ));
        }
        broker::validate(&self.mqtt)?;
        if self.mqtt.username.is_empty() {
            return Err(("mqtt.username", "must not be empty".into()));
        }
        match (&self.mqtt.password, &self.mqtt.password_file) {
            (None, None) => return Err(("mqtt.password", "set `password` or `password_file`".into())),
            (Some(_), Some(_)) => {
                return Err((
                    "mqtt.password",
                    "set only one of `password` and `password_file`".into(),
                ));
            }
            _ => {}
        }
        if self.mqtt.keep_alive_secs < 5 {
            return Err(("mqtt.keep_alive_secs", "must be at least 5".into()));
        }
        if !(1..=60).contains(&self.mqtt.reconnect_max_unreachable_secs) {
            return Err((
                "mqtt.reconnect_max_unreachable_secs",
                format!(
                    "{} is not between 1 and 60 (seconds)",
                    self.mqtt.reconnect_max_unreachable_secs
                ),
            ));
        }
        if self.mqtt.subscribe_qos > 1 {
            return Err((
                "mqtt.subscribe_qos",
                format!("{} is not 0 or 1", self.mqtt.subscribe_qos),
            ));
        }
        let b = &self.server.base_url;
        if !(b.starts_with("http://") || b.starts_with("https://")) || b.len() < 10 {
            return Err((
                "server.base_url",
                format!("`{b}` is not an http:// or https:// URL"),
            ));
        }
        verifying_key_from_b64(&self.server.public_key).map_err(|e| {
            (
                "server.public_key",
                format!("not a base64 ed25519 public key ({e})"),
            )
        })?;
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(("storage.data_dir", "must not be empty".into()));
        }
        if self.storage.cache_max_mb < 16 {
            return Err(("storage.cache_max_mb", "must be at least 16".into()));
        }
        self.audio
            .output
            .parse::<AudioOutput>()
            .map_err(|m| ("audio.output", m))?;
        if self.audio.default_volume > 100 {
            return Err((
                "audio.default_volume",
                format!("{} is above 100", self.audio.default_volume),
            ));
        }
        if !(-120..=0).contains(&self.audio.silence_dbfs) {
            return Err((
                "audio.silence_dbfs",
                format!("{} is not between -120 and 0 (dBFS)", self.audio.silence_dbfs),
            ));
        }
        if !(1..=2).contains(&self.audio.channels) {
            return Err((
                "audio.channels",
                format!("{} is not 1 (mono) or 2 (stereo)", self.audio.channels),
            ));
        }
        if let Some(r) = self.audio.sample_rate
            && !(8_000..=192_000).contains(&r)
        {
            return Err((
                "audio.sample_rate",
                format!("{r} Hz is not between 8000 and 192000"),
            ));
        }
        if let Some(q) = &self.quiet_hours {
            parse_hhmm(&q.start).map_err(|m| ("quiet_hours.start", m))?;
            parse_hhmm(&q.end).map_err(|m| ("quiet_hours.end", m))?;
        }
        if !(5..=3600).contains(&self.telemetry.heartbeat_secs) {
            return Err(("telemetry.heartbeat_secs", "must be between 5 and 3600".into()));
        }
        if let Some(a) = &self.amplifier {
            a.validate()?;
        }
        self.media.validate()?;
        Ok(())
    }

    /// The audio output (validated).
    pub fn audio_output(&self) -> AudioOutput {
        self.audio.output.parse().expect("validated")
    }

    /// The first broker address (validated).
    pub fn broker(&self) -> BrokerUrl {
        self.brokers().swap_remove(0)
    }

    /// Every broker address, in the order they are tried (validated: at least one).
    pub fn brokers(&self) -> Vec<BrokerUrl> {
        self.mqtt
            .all_urls()
            .map(|u| parse_broker_url(u).expect("validated"))
            .collect()
    }

    /// Quiet hours (validated).
    pub fn quiet_hours(&self) -> Option<nguon_protocol::QuietHours> {
        self.quiet_hours.as_ref().map(|q| nguon_protocol::QuietHours {
            start: parse_hhmm(&q.start).expect("validated"),
            end: parse_hhmm(&q.end).expect("validated"),
        })
    }

    /// The MQTT password, reading `password_file` relative to the config file's directory when
    /// the path is relative.
    pub fn mqtt_password(&self, config_dir: &Path) -> Result<String, ConfigError> {
        if let Some(p) = &self.mqtt.password {
            return Ok(p.clone());
        }
        let path = config_dir.join(self.mqtt.password_file.as_ref().expect("validated"));
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: "mqtt.password_file".into(),
            message: format!("cannot read: {e}"),
        })?;
        Ok(text.lines().next().unwrap_or("").trim().to_string())
    }

    /// The report-signing key, if configured (relative paths resolve against `config_dir`).
    pub fn signing_key(&self, config_dir: &Path) -> Result<Option<KeyPair>, ConfigError> {
        let Some(p) = &self.identity.signing_key_file else {
            return Ok(None);
        };
        let path = config_dir.join(p);
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: "identity.signing_key_file".into(),
            message: format!("cannot read: {e}"),
        })?;
        KeyPair::from_b64(&text).map(Some).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: "identity.signing_key_file".into(),
            message: format!("not a base64 ed25519 secret key ({e})"),
        })
    }

    /// Serialise to TOML (what `nguon-provision` writes).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> String {
        let k = KeyPair::generate();
        format!(
            r#"
[device]
id = "lc-1"
kind = "loudspeaker"
areas = ["10", "08003"]
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "lc-1"
password = "pw"
[server]
base_url = "http://127.0.0.1:8080"
public_key = "{}"
[storage]
data_dir = "/tmp/x"
[audio]
output = "wav:/tmp/wav"
"#,
            k.public_b64()
        )
    }

    #[test]
    fn a_good_file_parses_and_round_trips() {
        let c = DeviceConfig::parse(&good(), "a.toml").unwrap();
        assert_eq!(c.audio_output(), AudioOutput::Wav("/tmp/wav".into()));
        assert_eq!(c.telemetry.heartbeat_secs, 60);
        assert_eq!(c.mqtt.reconnect_max_unreachable_secs, 10);
        assert_eq!(DeviceConfig::parse(&c.to_toml(), "b.toml").unwrap(), c);
    }

    #[test]
    fn several_broker_urls_parse_round_trip_and_keep_their_order() {
        let text = good().replace(
            "url = \"mqtt://127.0.0.1:1883\"",
            "urls = [\"mqtt://127.0.0.1:21101\", \"mqtts://b.example\"]\nca_file = \"ca.pem\"",
        );
        let c = DeviceConfig::parse(&text, "a.toml").unwrap();
        let b = c.brokers();
        assert_eq!((b[0].port, b[1].port, b[1].tls), (21101, 8883, true));
        assert_eq!(c.broker(), b[0]);
        assert_eq!(DeviceConfig::parse(&c.to_toml(), "b.toml").unwrap(), c);
        let e = DeviceConfig::parse(&text.replace("mqtts://b.example", "b.example"), "a.toml").unwrap_err();
        assert_eq!(e.key, "mqtt.urls", "{e}");
        let e = DeviceConfig::parse(&good().replace("url = ", "urls = []\nx = "), "a.toml").unwrap_err();
        assert_eq!(e.key, "mqtt.x", "{e}");
        let e = DeviceConfig::parse(
            &good().replace("url = \"mqtt://127.0.0.1:1883\"", "urls = []"),
            "a.toml",
        )
        .unwrap_err();
        assert_eq!(e.key, "mqtt.url", "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = DeviceConfig::parse(&good().replace("[audio]", "[audio]\nloud = 1"), "a.toml").unwrap_err();
        assert_eq!(e.file, "a.toml");
        assert!(e.key.contains("audio"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");

        let e =
            DeviceConfig::parse(&good().replace("mqtt://127.0.0.1:1883", "http://x"), "a.toml").unwrap_err();
        assert_eq!(e.key, "mqtt.url");

        let e =
            DeviceConfig::parse(&good().replace("\"lc-1\"\nkind", "\"lc/1\"\nkind"), "a.toml").unwrap_err();
        assert_eq!(e.key, "device.id", "{e}");

        let e = DeviceConfig::parse(&good().replace("[audio]", "[audio]\nsilence_dbfs = 3"), "a.toml")
            .unwrap_err();
        assert_eq!(e.key, "audio.silence_dbfs", "{e}");
        let e =
            DeviceConfig::parse(&good().replace("[audio]", "[audio]\nchannels = 6"), "a.toml").unwrap_err();
        assert_eq!(e.key, "audio.channels", "{e}");
        let e = DeviceConfig::parse(
            &good().replace("[audio]", "[audio]\nsample_rate = 1000"),
            "a.toml",
        )
        .unwrap_err();
        assert_eq!(e.key, "audio.sample_rate", "{e}");
        let ok = DeviceConfig::parse(
            &good().replace("[audio]", "[audio]\nchannels = 1\nsample_rate = 48000"),
            "a.toml",
        )
        .unwrap();
        assert_eq!((ok.audio.channels, ok.audio.sample_rate), (1, Some(48_000)));

        for bad in ["0", "61"] {
            let e = DeviceConfig::parse(
                &good().replace(
                    "password = \"pw\"",
                    &format!("password = \"pw\"\nreconnect_max_unreachable_secs = {bad}"),
                ),
                "a.toml",
            )
            .unwrap_err();
            assert_eq!(e.key, "mqtt.reconnect_max_unreachable_secs", "{e}");
        }
        let c = DeviceConfig::parse(
            &good().replace(
                "password = \"pw\"",
                "password = \"pw\"\nreconnect_max_unreachable_secs = 3",
            ),
            "a.toml",
        )
        .unwrap();
        assert_eq!(c.mqtt.reconnect_max_unreachable_secs, 3);

        let e = DeviceConfig::parse(&good().replace("wav:/tmp/wav", "speaker"), "a.toml").unwrap_err();
        assert_eq!(e.key, "audio.output");
        assert!(e.to_string().starts_with("a.toml: `audio.output`:"), "{e}");
    }

    #[test]
    fn the_media_section_defaults_to_a_300_s_spread_takes_0_to_3600_and_names_a_bad_key() {
        let c = DeviceConfig::parse(&good(), "a.toml").unwrap();
        assert_eq!(c.media.prefetch_spread_secs, 300);
        assert!(!c.to_toml().contains("[media]"), "defaults are not written");
        for ok in [0, 10, 3600] {
            let c = DeviceConfig::parse(
                &format!("{}\n[media]\nprefetch_spread_secs = {ok}\n", good()),
                "a.toml",
            )
            .unwrap();
            assert_eq!(c.media.prefetch_spread_secs, ok);
            assert_eq!(DeviceConfig::parse(&c.to_toml(), "b.toml").unwrap(), c);
        }
        let c = DeviceConfig::parse(
            &format!("{}\n[media]\nmirrors = [\"http://cache-1:8080\"]\n", good()),
            "a.toml",
        )
        .unwrap();
        assert_eq!(c.media.mirrors, ["http://cache-1:8080"]);
        assert_eq!(DeviceConfig::parse(&c.to_toml(), "b.toml").unwrap(), c);
        for (body, key) in [
            ("prefetch_spread_secs = 3601", "media.prefetch_spread_secs"),
            ("prefetch_spread_secs = -1", "media.prefetch_spread_secs"),
            ("spread = 1", "media.spread"),
            ("mirrors = [\"cache-1\"]", "media.mirrors"),
        ] {
            let e = DeviceConfig::parse(&format!("{}\n[media]\n{body}\n", good()), "a.toml").unwrap_err();
            assert_eq!(e.key, key, "{body}: {e}");
        }
    }

    #[test]
    fn the_amplifier_section_takes_a_gpio_line_or_a_hook_with_defaults_and_names_bad_keys() {
        let c = DeviceConfig::parse(
            &format!(
                "{}\n[amplifier]\ngpio = {{ chip = \"/dev/gpiochip0\", line = 17, active_low = true }}\n",
                good()
            ),
            "a.toml",
        )
        .unwrap();
        let a = c.amplifier.clone().unwrap();
        let g = a.gpio.clone().unwrap();
        assert_eq!(
            (g.chip.to_str(), g.line, g.active_low),
            (Some("/dev/gpiochip0"), 17, true)
        );
        assert_eq!((a.preroll_ms, a.postroll_ms, a.hook), (1500, 2000, None));
        assert_eq!(DeviceConfig::parse(&c.to_toml(), "b.toml").unwrap(), c);

        let hook = |body: &str| DeviceConfig::parse(&format!("{}\n[amplifier]\n{body}\n", good()), "a.toml");
        let c = hook("hook = [\"/bin/relay\", \"-x\"]\npreroll_ms = 800\npostroll_ms = 0").unwrap();
        let a = c.amplifier.unwrap();
        assert_eq!(a.hook.unwrap(), ["/bin/relay", "-x"]);
        assert_eq!((a.preroll_ms, a.postroll_ms), (800, 0));
        for (body, key) in [
            ("preroll_ms = 100", "amplifier"),
            ("hook = []", "amplifier.hook"),
            ("hook = [\" \"]", "amplifier.hook"),
            (
                "hook = [\"/bin/r\"]\ngpio = { chip = \"/dev/gpiochip0\", line = 1 }",
                "amplifier.hook",
            ),
            ("gpio = { chip = \"gpiochip0\", line = 1 }", "amplifier.gpio.chip"),
            ("gpio = { chip = \"/dev/gpiochip0\" }", "amplifier.gpio"),
            (
                "gpio = { chip = \"/dev/gpiochip0\", line = -1 }",
                "amplifier.gpio.line",
            ),
            (
                "gpio = { chip = \"/dev/gpiochip0\", line = 1, polarity = 1 }",
                "amplifier.gpio.polarity",
            ),
            ("hook = [\"/bin/r\"]\npreroll_ms = 10001", "amplifier.preroll_ms"),
            (
                "hook = [\"/bin/r\"]\npostroll_ms = 600001",
                "amplifier.postroll_ms",
            ),
            ("hook = [\"/bin/r\"]\nrelay = 1", "amplifier.relay"),
        ] {
            let e = hook(body).unwrap_err();
            assert_eq!(e.key, key, "{body}: {e}");
        }
    }
}

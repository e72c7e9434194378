//! Server settings: built-in defaults, then an optional TOML file (`--config FILE` or
//! `NGUON_CONFIG`), then `NGUON_*` environment variables. Validated at start; every error names
//! the key. Secrets are typed so they never print.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod alarms;
pub mod autonomy;
mod cap;
pub mod cluster;
pub mod cluster_tls;
pub mod feedback;
pub mod ha;
pub mod init;
pub mod ota;
pub mod relay;
mod secret;
pub use cap::CapSettings;
pub use secret::Secret;

/// A settings problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration `{key}` ({source_name}): {message}")]
pub struct ConfigError {
    /// Dotted key or env var.
    pub key: String,
    /// Where the value came from (file path or `environment`).
    pub source_name: String,
    /// The problem.
    pub message: String,
}

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// HTTP listen address (`NGUON_HTTP_ADDR`, default `127.0.0.1:8080`). Port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Embedded broker listen address (`NGUON_MQTT_ADDR`, default `127.0.0.1:1883`).
    pub mqtt_addr: SocketAddr,
    /// External broker URL (`NGUON_MQTT_URL`), `mqtt://[user:pass@]host:port` or `mqtts://...`
    /// (TLS), several separated by commas (a cluster's nodes, tried in turn); set → nothing embedded.
    pub mqtt_url: Option<Secret>,
    /// File holding the password of the server's user on an external broker, used when
    /// `mqtt_url` carries none (`NGUON_MQTT_PASSWORD_FILE`; `nguon-server init` makes it).
    pub mqtt_password_file: Option<PathBuf>,
    /// CA certificate (PEM) that signs an external `mqtts://` broker's certificate
    /// (`NGUON_MQTT_CA_FILE`); default: the system's roots.
    pub mqtt_ca_file: Option<PathBuf>,
    /// TLS listener of the embedded broker (`NGUON_MQTT_TLS_ADDR`, e.g. `0.0.0.0:8883`); off when
    /// unset. Needs `mqtt_tls_cert` and `mqtt_tls_key`.
    pub mqtt_tls_addr: Option<SocketAddr>,
    /// Certificate chain (PEM) of the TLS listener (`NGUON_MQTT_TLS_CERT`).
    pub mqtt_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the TLS listener (`NGUON_MQTT_TLS_KEY`).
    pub mqtt_tls_key: Option<PathBuf>,
    /// Connections the embedded broker accepts in total (`NGUON_MQTT_MAX_CONNECTIONS`, default
    /// 5000).
    pub mqtt_max_connections: usize,
    /// Connections the embedded broker accepts from one IP address (`NGUON_MQTT_MAX_CONNECTIONS_PER_IP`,
    /// default 1000: devices behind one carrier NAT share an address).
    pub mqtt_max_connections_per_ip: usize,
    /// How long a new connection to the embedded broker may take to send its CONNECT (TLS
    /// handshake included), in milliseconds (`NGUON_MQTT_CONNECT_TIMEOUT_MS`, default 10000).
    pub mqtt_connect_timeout_ms: u64,
    /// The longest keep-alive the embedded broker honours, s (`NGUON_MQTT_MAX_KEEPALIVE_SECS`,
    /// default 600): a connection silent for 1.5 times its keep-alive (at most this) is closed.
    pub mqtt_max_keepalive_secs: u64,
    /// Database URL (`NGUON_DATABASE_URL`); default `sqlite://<data_dir>/nguon.db`.
    pub database_url: Option<Secret>,
    /// Data directory (`NGUON_DATA_DIR`, default `./data`): database, media, signing key.
    pub data_dir: PathBuf,
    /// Bootstrap admin bearer token (`NGUON_ADMIN_TOKEN`); generated and printed once if absent.
    pub admin_token: Option<Secret>,
    /// Base URL devices use to fetch media (`NGUON_PUBLIC_URL`); default `http://<http_addr>`.
    pub public_url: Option<String>,
    /// Look-ahead window of manifests in hours (`NGUON_LOOKAHEAD_HOURS`, default 72).
    pub lookahead_hours: u32,
    /// Default IANA time zone for schedules (`NGUON_TIME_ZONE`, default Asia/Ho_Chi_Minh).
    pub time_zone: String,
    /// Upload size limit in MB (`NGUON_MAX_UPLOAD_MB`, default 200).
    pub max_upload_mb: u64,
    /// Debounce of manifest publishing in milliseconds (`NGUON_DISPATCH_DEBOUNCE_MS`, default 200).
    pub dispatch_debounce_ms: u64,
    /// How long a publish waits for the broker's ack before it counts as failed, in milliseconds
    /// (`NGUON_MQTT_ACK_TIMEOUT_MS`, default 10000, 100 to 600000).
    pub mqtt_ack_timeout_ms: u64,
    /// Seed demo data at start (`NGUON_DEMO`, or `--demo`).
    pub demo: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`NGUON_TRUSTED_PROXIES`, addresses
    /// separated by commas; default none: the TCP peer is the client).
    pub trusted_proxies: Vec<IpAddr>,
    /// Login attempts a minute per client address (`NGUON_LOGIN_PER_IP_PER_MINUTE`, default 10).
    pub login_per_ip_per_minute: u32,
    /// Login attempts a minute from all addresses together (`NGUON_LOGIN_PER_MINUTE`, default 120).
    pub login_per_minute: u32,
    /// `/api/v1/` requests a minute per client address (`NGUON_API_PER_IP_PER_MINUTE`, default
    /// 1200); board feeds are not counted.
    pub api_per_ip_per_minute: u32,
    /// PEM certificate chain for HTTPS on `http_addr` (`NGUON_TLS_CERT`); with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (`NGUON_TLS_KEY`); with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Accept state, telemetry and events from devices that have no report key
    /// (`NGUON_ALLOW_UNSIGNED_DEVICES`, default false). Off, a device without a key is refused:
    /// anyone holding some device's broker credentials could otherwise speak for it. The console
    /// shows a warning while it is on.
    pub allow_unsigned_devices: bool,
    /// Largest signed manifest one device may be sent, in bytes (`NGUON_MAX_MANIFEST_BYTES`,
    /// default 1 MiB, 16 KiB to [`MAX_MANIFEST_LIMIT`]). The dispatcher shortens an over-cap
    /// device's look-ahead window; a schedule that would still exceed it is refused with a 422.
    pub max_manifest_bytes: u64,
    /// The late policy: how long after its start an emergency item (a schedule's occurrence, or
    /// the default validity window of an emergency play-now) may still be played by a device
    /// that reaches it late, in seconds (`NGUON_LATE_WINDOW_EMERGENCY_S`, default 1800; 0 to
    /// 86400). See docs/scheduling.md, "Late policy".
    pub late_window_emergency_s: u32,
    /// The same for priority items (`NGUON_LATE_WINDOW_PRIORITY_S`, default 600).
    pub late_window_priority_s: u32,
    /// The same for normal items (`NGUON_LATE_WINDOW_NORMAL_S`, default 0: a normal item reached
    /// more than the device's grace period late is `missed`).
    pub late_window_normal_s: u32,
    /// Shortest interval between the replays of a repeating emergency, in seconds
    /// (`NGUON_MIN_REPEAT_EVERY_S`, default 60, 1 to 86400; lower only for tests).
    pub min_repeat_every_s: u32,
    /// The four-eyes rule (`NGUON_FOUR_EYES`, default true): whoever uploaded, wrote, edited or
    /// submitted content may not approve it, admins included (the bootstrap admin token, which is
    /// no person, is exempt). Off, an approver may approve their own content.
    pub four_eyes: bool,
    /// Map tiles for the console's device map (`NGUON_MAP_TILES_URL`, an `http(s)://` URL with
    /// `{z}`, `{x}` and `{y}`; default none: points and area outlines on a plain background, which
    /// works without internet).
    pub map_tiles_url: Option<String>,
    /// Text-to-speech engines and voices (`[tts]`; see docs/speech.md).
    pub tts: TtsSettings,
    /// Alarm thresholds and notification retries (`[alarms]`, see `config/alarms.rs`).
    pub alarms: alarms::AlarmSettings,
    /// The SMTP relay of e-mail notifications (`[smtp]`; none: no e-mail).
    pub smtp: Option<alarms::SmtpSettings>,
    /// CAP 1.2 intake (`[cap]`; see docs/cap.md).
    pub cap: CapSettings,
    /// The embedded broker as a node of a broker cluster (`[broker_cluster]`, see
    /// `config/cluster.rs`); none: one node.
    pub broker_cluster: Option<cluster::BrokerCluster>,
    /// Leader lease and shared ingest of several instances (`[ha]`, see `config/ha.rs`).
    pub ha: ha::HaSettings,
    /// Process lifetime: the drain at a stop (`[server]`, see `config/ha.rs`).
    pub server: ha::ServerSettings,
    /// Citizens' feedback (`[feedback]`; see docs/feedback.md).
    pub feedback: feedback::FeedbackSettings,
    /// Commune autonomy (`[autonomy]`; docs/autonomy.md).
    pub autonomy: autonomy::AutonomySettings,
    /// Relays of external streams (`[relay]`; docs/relay.md).
    pub relay: relay::RelaySettings,
    /// Signed agent updates (`[ota]`; docs/ota.md).
    pub ota: ota::OtaSettings,
}

/// `[tts]`: the engines besides the built-in espeak-ng, the voices (each on one engine, with an
/// accent), and the voice used when neither the request nor the area names one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsSettings {
    /// The espeak-ng program (`NGUON_TTS_ESPEAK`, default `espeak-ng`).
    pub espeak_program: String,
    /// Engines besides `espeak-ng` (`[[tts.engines]]`).
    pub engines: Vec<TtsEngineSettings>,
    /// Voices (`[[tts.voices]]`); default: espeak-ng's `vi` (north), `vi-vn-x-central`,
    /// `vi-vn-x-south`. Those three stay available for the fallback when others are listed.
    pub voices: Vec<TtsVoiceSettings>,
    /// Voice used when neither the request nor the area names one (`NGUON_TTS_DEFAULT_VOICE`).
    pub default_voice: String,
}

impl Default for TtsSettings {
    fn default() -> Self {
        TtsSettings {
            espeak_program: "espeak-ng".into(),
            engines: Vec::new(),
            voices: Vec::new(),
            default_voice: "vi".into(),
        }
    }
}

/// One engine: `kind = "command"` (a program that reads the text and writes a WAV file, e.g.
/// Piper) or `kind = "http"` (a cloud service). Placeholders in `args`, `headers` and `body`:
/// `{text}`, `{voice}`, `{speed}` (words per minute), `{rate}` (speed ÷ 150), `{length_scale}`
/// (150 ÷ speed), `{pitch}`, `{output}` (command: the WAV to write), `{api_key}` (http).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsEngineSettings {
    /// Name the voices refer to.
    pub name: String,
    /// `command` or `http`.
    pub kind: String,
    /// Version string, part of the cache key: change it when the model or service changes.
    pub version: String,
    /// Longest one synthesis may take, ms (default 60000).
    pub timeout_ms: u64,
    /// command: the program.
    pub program: Option<PathBuf>,
    /// command: its arguments.
    pub args: Vec<String>,
    /// command: the text goes on stdin (default); false: only through `{text}` in `args`.
    pub text_on_stdin: bool,
    /// http: the URL.
    pub url: Option<String>,
    /// http: `POST` (default) or `GET`.
    pub method: String,
    /// http: request headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// http: a JSON body template (string leaves are filled in; a leaf that is exactly
    /// `{speed}`, `{rate}`, `{length_scale}` or `{pitch}` becomes a number). None: the text is the body.
    pub body: Option<serde_json::Value>,
    /// http: the environment variable holding the API key (a secret, never in the file).
    pub api_key_env: Option<String>,
    /// The API key read from `api_key_env` at start.
    #[serde(skip)]
    pub api_key: Option<Secret>,
    /// http: `audio` (the body is the audio), `json_base64` (a JSON field holds base64 audio) or
    /// `json_url` (a JSON field holds a URL to fetch the audio from).
    pub response: String,
    /// http: JSON pointer of that field, e.g. `/audio` or `/async`.
    pub response_pointer: Option<String>,
    /// http: further tries after a failed one (default 2).
    pub retries: u32,
    /// http: fall back to espeak-ng (same accent) when the service fails (default true).
    pub fallback: bool,
}

impl Default for TtsEngineSettings {
    fn default() -> Self {
        TtsEngineSettings {
            name: String::new(),
            kind: String::new(),
            version: String::new(),
            timeout_ms: 60_000,
            program: None,
            args: Vec::new(),
            text_on_stdin: true,
            url: None,
            method: "POST".into(),
            headers: Default::default(),
            body: None,
            api_key_env: None,
            api_key: None,
            response: "audio".into(),
            response_pointer: None,
            retries: 2,
            fallback: true,
        }
    }
}

/// One voice: a name operators pick, the engine and the engine's own voice id, its accent
/// (`north`, `central`, `south`: number words follow it) and default speed and pitch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsVoiceSettings {
    /// Name operators pick, e.g. `bac-nu`.
    pub name: String,
    /// Label in the console, e.g. `Nữ miền Bắc`.
    pub label: String,
    /// Engine name (default `espeak-ng`).
    pub engine: String,
    /// The engine's voice id (default: the name).
    pub engine_voice: String,
    /// `north` (default), `central` or `south`.
    pub accent: String,
    /// Default words per minute (80–450, default 150).
    pub speed: u32,
    /// Default pitch (0–99, default 50).
    pub pitch: u32,
}

impl Default for TtsVoiceSettings {
    fn default() -> Self {
        TtsVoiceSettings {
            name: String::new(),
            label: String::new(),
            engine: "espeak-ng".into(),
            engine_voice: String::new(),
            accent: "north".into(),
            speed: 150,
            pitch: 50,
        }
    }
}

impl TtsSettings {
    /// Check names, kinds, references and limits; read each engine's API key from `env`.
    fn check(&mut self, env: &[(String, String)]) -> Result<(), (String, String)> {
        let mut names = std::collections::HashSet::from(["espeak-ng".to_string()]);
        for (i, e) in self.engines.iter_mut().enumerate() {
            let key = |f: &str| format!("tts.engines[{i}].{f}");
            if e.name.trim().is_empty() || !names.insert(e.name.clone()) {
                return Err((key("name"), format!("`{}` is empty or used twice", e.name)));
            }
            if !(100..=600_000).contains(&e.timeout_ms) {
                return Err((key("timeout_ms"), "must be between 100 and 600000".into()));
            }
            match e.kind.as_str() {
                "command" if e.program.is_none() => {
                    return Err((key("program"), "a command engine needs a program".into()));
                }
                "command" => {}
                "http" => {
                    let url = e.url.as_deref().unwrap_or("");
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err((key("url"), format!("`{url}` is not an http(s) URL")));
                    }
                    if !matches!(e.method.as_str(), "POST" | "GET") {
                        return Err((key("method"), "must be POST or GET".into()));
                    }
                    if !matches!(e.response.as_str(), "audio" | "json_base64" | "json_url") {
                        return Err((key("response"), "must be audio, json_base64 or json_url".into()));
                    }
                    if e.response != "audio"
                        && e.response_pointer.as_deref().is_none_or(|p| !p.starts_with('/'))
                    {
                        return Err((
                            key("response_pointer"),
                            "a JSON pointer such as /audio is needed".into(),
                        ));
                    }
                    if e.retries > 10 {
                        return Err((key("retries"), "must be at most 10".into()));
                    }
                    if let Some(var) = &e.api_key_env {
                        let v = env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
                        match v.filter(|v| !v.is_empty()) {
                            Some(v) => e.api_key = Some(Secret::new(v)),
                            None => return Err((key("api_key_env"), format!("`{var}` is not set"))),
                        }
                    }
                }
                other => return Err((key("kind"), format!("`{other}` must be command or http"))),
            }
        }
        let mut voices = std::collections::HashSet::new();
        for (i, v) in self.voices.iter_mut().enumerate() {
            let key = |f: &str| format!("tts.voices[{i}].{f}");
            if v.name.trim().is_empty() || !voices.insert(v.name.clone()) {
                return Err((key("name"), format!("`{}` is empty or used twice", v.name)));
            }
            if !names.contains(&v.engine) {
                return Err((key("engine"), format!("no engine `{}`", v.engine)));
            }
            if !matches!(v.accent.as_str(), "north" | "central" | "south") {
                return Err((key("accent"), "must be north, central or south".into()));
            }
            if !(80..=450).contains(&v.speed) {
                return Err((key("speed"), "must be 80–450 words per minute".into()));
            }
            if v.pitch > 99 {
                return Err((key("pitch"), "must be 0–99".into()));
            }
            if v.engine_voice.is_empty() {
                v.engine_voice = v.name.clone();
            }
        }
        Ok(())
    }
}

/// The highest `max_manifest_bytes`: the broker's limit for a `desired` message
/// (`nguon_protocol::acl::MAX_DESIRED`: 4 MiB packets, less room for the header).
pub const MAX_MANIFEST_LIMIT: u64 = nguon_protocol::acl::MAX_DESIRED as u64;

impl Default for Settings {
    fn default() -> Self {
        Self {
            http_addr: "127.0.0.1:8080".parse().expect("literal"),
            mqtt_addr: "127.0.0.1:1883".parse().expect("literal"),
            mqtt_url: None,
            mqtt_password_file: None,
            mqtt_ca_file: None,
            mqtt_tls_addr: None,
            mqtt_tls_cert: None,
            mqtt_tls_key: None,
            mqtt_max_connections: 5_000,
            mqtt_max_connections_per_ip: 1_000,
            mqtt_connect_timeout_ms: 10_000,
            mqtt_max_keepalive_secs: 600,
            database_url: None,
            data_dir: PathBuf::from("./data"),
            admin_token: None,
            public_url: None,
            lookahead_hours: 72,
            late_window_emergency_s: 1800,
            late_window_priority_s: 600,
            late_window_normal_s: 0,
            min_repeat_every_s: 60,
            time_zone: "Asia/Ho_Chi_Minh".into(),
            max_upload_mb: 200,
            dispatch_debounce_ms: 200,
            mqtt_ack_timeout_ms: 10_000,
            demo: false,
            trusted_proxies: Vec::new(),
            login_per_ip_per_minute: 10,
            login_per_minute: 120,
            api_per_ip_per_minute: 1200,
            tls_cert: None,
            tls_key: None,
            allow_unsigned_devices: false,
            max_manifest_bytes: 1 << 20,
            tts: TtsSettings::default(),
            cap: CapSettings::default(),
            feedback: feedback::FeedbackSettings::default(),
            autonomy: autonomy::AutonomySettings::default(),
            relay: relay::RelaySettings::default(),
            ota: ota::OtaSettings::default(),
            four_eyes: true,
            map_tiles_url: None,
            alarms: alarms::AlarmSettings::default(),
            smtp: None,
            broker_cluster: None,
            ha: ha::HaSettings::default(),
            server: ha::ServerSettings::default(),
        }
    }
}

impl Settings {
    /// Defaults, then the TOML file if any, then `NGUON_*` variables from `env`, then validation.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut s = match file {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    key: "(file)".into(),
                    source_name: name.clone(),
                    message: format!("cannot read: {e}"),
                })?;
                let de = toml::Deserializer::parse(&text).map_err(|e| ConfigError {
                    key: "(document)".into(),
                    source_name: name.clone(),
                    message: e.to_string(),
                })?;
                serde_path_to_error::deserialize(de).map_err(|e| ConfigError {
                    key: e.path().to_string(),
                    source_name: name.clone(),
                    message: e.into_inner().message().to_string(),
                })?
            }
            None => Settings::default(),
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (k, v) in env.iter().cloned() {
            let Some(name) = k.strip_prefix("NGUON_") else {
                continue;
            };
            let bad = |m: String| ConfigError {
                key: k.clone(),
                source_name: "environment".into(),
                message: m,
            };
            match name {
                "HTTP_ADDR" => s.http_addr = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?,
                "MQTT_ADDR" => s.mqtt_addr = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?,
                "MQTT_URL" => s.mqtt_url = non_empty(v).map(Secret::new),
                "MQTT_CA_FILE" => s.mqtt_ca_file = non_empty(v).map(PathBuf::from),
                "MQTT_PASSWORD_FILE" => s.mqtt_password_file = non_empty(v).map(PathBuf::from),
                "MQTT_TLS_ADDR" => {
                    s.mqtt_tls_addr = match non_empty(v.clone()) {
                        Some(a) => Some(a.parse().map_err(|e| bad(format!("`{v}`: {e}")))?),
                        None => None,
                    }
                }
                "MQTT_TLS_CERT" => s.mqtt_tls_cert = non_empty(v).map(PathBuf::from),
                "MQTT_TLS_KEY" => s.mqtt_tls_key = non_empty(v).map(PathBuf::from),
                "MQTT_MAX_CONNECTIONS" => {
                    s.mqtt_max_connections = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "MQTT_MAX_CONNECTIONS_PER_IP" => {
                    s.mqtt_max_connections_per_ip = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "MQTT_CONNECT_TIMEOUT_MS" => {
                    s.mqtt_connect_timeout_ms = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "MQTT_MAX_KEEPALIVE_SECS" => {
                    s.mqtt_max_keepalive_secs = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "DATABASE_URL" => s.database_url = non_empty(v).map(Secret::new),
                "DATA_DIR" => s.data_dir = PathBuf::from(v),
                "ADMIN_TOKEN" => s.admin_token = non_empty(v).map(Secret::new),
                "PUBLIC_URL" => s.public_url = non_empty(v),
                "LOOKAHEAD_HOURS" => s.lookahead_hours = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?,
                "TIME_ZONE" => s.time_zone = v,
                "MAX_UPLOAD_MB" => s.max_upload_mb = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?,
                "DISPATCH_DEBOUNCE_MS" => {
                    s.dispatch_debounce_ms = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "MQTT_ACK_TIMEOUT_MS" => {
                    s.mqtt_ack_timeout_ms = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "DEMO" => s.demo = matches!(v.as_str(), "1" | "true" | "yes"),
                "TRUSTED_PROXIES" => {
                    s.trusted_proxies = v
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(|a| a.parse().map_err(|e| bad(format!("`{a}`: {e}"))))
                        .collect::<Result<_, _>>()?
                }
                "LOGIN_PER_IP_PER_MINUTE" => {
                    s.login_per_ip_per_minute = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "LOGIN_PER_MINUTE" => {
                    s.login_per_minute = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "API_PER_IP_PER_MINUTE" => {
                    s.api_per_ip_per_minute = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "TLS_CERT" => s.tls_cert = non_empty(v).map(PathBuf::from),
                "TLS_KEY" => s.tls_key = non_empty(v).map(PathBuf::from),
                "ALLOW_UNSIGNED_DEVICES" => {
                    s.allow_unsigned_devices = match v.as_str() {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" | "" => false,
                        _ => return Err(bad(format!("`{v}`: expected true or false"))),
                    }
                }
                "MAX_MANIFEST_BYTES" => {
                    s.max_manifest_bytes = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "LATE_WINDOW_EMERGENCY_S" => {
                    s.late_window_emergency_s = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "LATE_WINDOW_PRIORITY_S" => {
                    s.late_window_priority_s = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "LATE_WINDOW_NORMAL_S" => {
                    s.late_window_normal_s = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "MIN_REPEAT_EVERY_S" => {
                    s.min_repeat_every_s = v.parse().map_err(|e| bad(format!("`{v}`: {e}")))?
                }
                "TTS_ESPEAK" => s.tts.espeak_program = v,
                "TTS_DEFAULT_VOICE" => s.tts.default_voice = v,
                "FOUR_EYES" => {
                    s.four_eyes = match v.as_str() {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => return Err(bad(format!("`{v}`: expected true or false"))),
                    }
                }
                "MAP_TILES_URL" => s.map_tiles_url = non_empty(v),
                // Other NGUON_* variables belong to other programs (agent, tests) or to `--config`.
                _ => {}
            }
        }
        let source_name = || {
            file.map(|p| p.display().to_string())
                .unwrap_or_else(|| "settings".into())
        };
        s.tts.check(&env).map_err(|(key, message)| ConfigError {
            key,
            source_name: source_name(),
            message,
        })?;
        alarms::apply(&mut s, &env, &source_name())?;
        let external = s.mqtt_url.is_some();
        cluster::apply(&mut s.broker_cluster, &env, external).map_err(|(key, message)| ConfigError {
            key,
            source_name: source_name(),
            message,
        })?;
        ha::apply(&mut s, &env, &source_name())?;
        s.cap
            .check(&env)
            .and_then(|()| s.feedback.check(&env))
            .and_then(|()| s.autonomy.check(&env))
            .and_then(|()| s.relay.check(&env))
            .and_then(|()| s.ota.check(&env))
            .map_err(|(key, message)| ConfigError {
                key,
                source_name: source_name(),
                message,
            })?;
        s.validate().map_err(|(key, message)| ConfigError {
            key: key.into(),
            source_name: file
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "settings".into()),
            message,
        })?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(u) = &self.map_tiles_url {
            let origin_ok =
                (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(['"', '\'', ' ', ';']);
            if !origin_ok || !["{z}", "{x}", "{y}"].iter().all(|p| u.contains(p)) {
                return Err((
                    "map_tiles_url",
                    format!("`{u}` is not an http(s) URL with {{z}}, {{x}} and {{y}}"),
                ));
            }
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err((
                "time_zone",
                format!("`{}` is not an IANA time zone", self.time_zone),
            ));
        }
        if !(1..=24 * 31).contains(&self.lookahead_hours) {
            return Err(("lookahead_hours", "must be between 1 and 744".into()));
        }
        if self.max_upload_mb == 0 {
            return Err(("max_upload_mb", "must be at least 1".into()));
        }
        if !(16 * 1024..=MAX_MANIFEST_LIMIT).contains(&self.max_manifest_bytes) {
            return Err((
                "max_manifest_bytes",
                format!("must be between 16384 and {MAX_MANIFEST_LIMIT}"),
            ));
        }
        for (key, v) in [
            ("late_window_emergency_s", self.late_window_emergency_s),
            ("late_window_priority_s", self.late_window_priority_s),
            ("late_window_normal_s", self.late_window_normal_s),
        ] {
            if v > 86_400 {
                return Err((key, "must be between 0 and 86400 seconds".into()));
            }
        }
        if !(1..=86_400).contains(&self.min_repeat_every_s) {
            return Err(("min_repeat_every_s", "must be between 1 and 86400 seconds".into()));
        }
        if !(100..=600_000).contains(&self.mqtt_ack_timeout_ms) {
            return Err(("mqtt_ack_timeout_ms", "must be between 100 and 600000".into()));
        }
        if let Some(u) = &self.database_url {
            let u = u.expose();
            if !(u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(("database_url", "expected sqlite://PATH or postgres://...".into()));
            }
        }
        const SCHEMES: [&str; 4] = ["mqtt://", "tcp://", "mqtts://", "ssl://"];
        if let Some(u) = &self.mqtt_url
            && !(u.expose().split(',')).all(|u| SCHEMES.iter().any(|p| u.trim().starts_with(p)))
        {
            return Err((
                "mqtt_url",
                "expected mqtt://[user:password@]host:port or mqtts://[user:password@]host:port".into(),
            ));
        }
        self.validate_broker()?;
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(("public_url", format!("`{u}` is not an http(s) URL")));
        }
        for (key, v) in [
            ("login_per_ip_per_minute", self.login_per_ip_per_minute),
            ("login_per_minute", self.login_per_minute),
            ("api_per_ip_per_minute", self.api_per_ip_per_minute),
        ] {
            if v == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(("tls_key", "must be set with tls_cert".into())),
            (None, Some(_)) => return Err(("tls_cert", "must be set with tls_key".into())),
            _ => {}
        }
        Ok(())
    }

    fn validate_broker(&self) -> Result<(), (&'static str, String)> {
        if !(1..=100_000).contains(&self.mqtt_max_connections) {
            return Err(("mqtt_max_connections", "must be between 1 and 100000".into()));
        }
        if !(1..=self.mqtt_max_connections).contains(&self.mqtt_max_connections_per_ip) {
            return Err((
                "mqtt_max_connections_per_ip",
                "must be between 1 and mqtt_max_connections".into(),
            ));
        }
        if !(100..=120_000).contains(&self.mqtt_connect_timeout_ms) {
            return Err(("mqtt_connect_timeout_ms", "must be between 100 and 120000".into()));
        }
        if !(10..=3_600).contains(&self.mqtt_max_keepalive_secs) {
            return Err(("mqtt_max_keepalive_secs", "must be between 10 and 3600".into()));
        }
        if self.mqtt_tls_addr.is_some() {
            for (key, path) in [
                ("mqtt_tls_cert", &self.mqtt_tls_cert),
                ("mqtt_tls_key", &self.mqtt_tls_key),
            ] {
                match path {
                    None => return Err((key, "required when mqtt_tls_addr is set".into())),
                    Some(p) if !p.is_file() => {
                        return Err((key, format!("`{}` is not a readable file", p.display())));
                    }
                    Some(_) => {}
                }
            }
        } else if self.mqtt_tls_cert.is_some() || self.mqtt_tls_key.is_some() {
            return Err((
                "mqtt_tls_addr",
                "set it to use mqtt_tls_cert and mqtt_tls_key".into(),
            ));
        }
        if let Some(p) = &self.mqtt_ca_file
            && !p.is_file()
        {
            return Err((
                "mqtt_ca_file",
                format!("`{}` is not a readable file", p.display()),
            ));
        }
        Ok(())
    }

    /// The late window of `priority` (see [`Settings::late_window_emergency_s`]).
    pub fn late_window(&self, priority: nguon_protocol::Priority) -> chrono::Duration {
        let s = match priority {
            nguon_protocol::Priority::Emergency => self.late_window_emergency_s,
            nguon_protocol::Priority::Priority => self.late_window_priority_s,
            nguon_protocol::Priority::Normal => self.late_window_normal_s,
        };
        chrono::Duration::seconds(s as i64)
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_string(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("nguon.db").display()),
        }
    }
}

fn non_empty(v: String) -> Option<String> {
    if v.is_empty() { None } else { Some(v) }
}

#[cfg(test)]
mod tests;

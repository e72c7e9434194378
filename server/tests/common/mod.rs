//! Shared helpers for the server's black-box tests: [`spawn_app`] starts the real application
//! in-process on port 0 with a fresh data dir (and a fresh database, a free broker port), and
//! [`make_audio`] builds real audio files with espeak-ng, sox, lame, oggenc, flac and ffmpeg.
//!
//! Backends come from the environment:
//! - `NGUON_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test` → a fresh database
//!   `nguon_t_<random>` per test (dropped when the [`TestApp`] drops, best effort); otherwise a
//!   SQLite file in the temp data dir.
//! - `NGUON_TEST_MQTT_URL=mqtt://127.0.0.1:1883` → that broker, nothing embedded (use unique device
//!   ids: tests share it); otherwise the embedded broker on a free port.
#![allow(dead_code)]

pub mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use nguon_server::config::Secret;
use nguon_server::{AppState, Application, Settings};
use serde_json::Value;

/// The bearer token every test app uses.
pub const TOKEN: &str = "test-admin-token-0123456789";

/// A running server for one test.
pub struct TestApp {
    /// HTTP address (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    /// Base URL, `http://127.0.0.1:<port>`.
    pub base: String,
    /// Admin bearer token.
    pub token: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// MQTT broker host (embedded or external).
    pub mqtt_host: String,
    /// MQTT broker port.
    pub mqtt_port: u16,
    /// Whether the broker is external and shared by parallel tests.
    pub external_mqtt: bool,
    /// The embedded broker's internal user's password (it may read any topic through the gate).
    pub mqtt_internal_password: Option<String>,
    /// The data dir (temp).
    pub data_dir: PathBuf,
    /// The settings the app was built with.
    pub settings: Settings,
    state: AppState,
    _dir: tempfile::TempDir,
    db: Option<TestDb>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct TestDb {
    admin_url: String,
    name: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort, on a separate thread with its own runtime (we may be inside a runtime).
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::AnyConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        // `db` drops after this, dropping the database.
    }
}

fn init_once() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        sqlx::any::install_default_drivers();
        if std::env::var("NGUON_TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    std::env::var("NGUON_TEST_LOG").unwrap_or_default(),
                ))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A short random lowercase hex string (for unique ids and database names).
pub fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random");
    hex::encode(b)
}

/// Whether the tests run against an external broker (`NGUON_TEST_MQTT_URL`), shared by all tests.
pub fn external_mqtt() -> bool {
    std::env::var_os("NGUON_TEST_MQTT_URL").is_some()
}

/// Start the app with test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Start the app with test defaults, then `tweak` the settings (e.g. a small upload limit).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let (prepared, settings) = prepare(tweak).await;
    launch(prepared, settings).await
}

/// What [`prepare`] made for one test app: its temp dir and database.
pub struct Prepared {
    dir: tempfile::TempDir,
    db: Option<TestDb>,
    external_mqtt: bool,
}

/// The test settings (temp data dir, fresh database, broker from the environment), then `tweak`.
pub async fn prepare(tweak: impl FnOnce(&mut Settings)) -> (Prepared, Settings) {
    init_once();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        mqtt_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        data_dir: dir.path().join("data"),
        admin_token: Some(Secret::new(TOKEN)),
        dispatch_debounce_ms: 20,
        // Tests call the API and log in from one address far faster than a person; the throttle
        // tests (`hardening_throttle.rs`) set their own budgets.
        login_per_ip_per_minute: 100_000,
        login_per_minute: 100_000,
        api_per_ip_per_minute: 1_000_000,
        // Most tests register devices without a report key and publish bare JSON state; the
        // tests of signed reports turn this back off (the product default, see config.rs).
        allow_unsigned_devices: true,
        ..Settings::default()
    };
    let mut db = None;
    if let Ok(url) = std::env::var("NGUON_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        let name = format!("nguon_t_{}", random_suffix());
        {
            use sqlx::Connection;
            let mut c = sqlx::AnyConnection::connect(&url)
                .await
                .expect("connect NGUON_TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .expect("create test database");
            let _ = c.close().await;
        }
        let base = match url.rfind('/') {
            Some(i) if i > "postgres://".len() => url[..i].to_string(),
            _ => url.clone(),
        };
        let (base, query) = match url.split_once('?') {
            Some((_, q)) => (
                base.split('?').next().unwrap_or(&base).to_string(),
                format!("?{q}"),
            ),
            None => (base, String::new()),
        };
        settings.database_url = Some(Secret::new(format!("{base}/{name}{query}")));
        db = Some(TestDb { admin_url: url, name });
    }
    let mut external_mqtt = false;
    if let Ok(url) = std::env::var("NGUON_TEST_MQTT_URL")
        && !url.is_empty()
    {
        settings.mqtt_url = Some(Secret::new(url));
        external_mqtt = true;
    }
    tweak(&mut settings);
    (
        Prepared {
            dir,
            db,
            external_mqtt,
        },
        settings,
    )
}

/// Build and run the app for `settings` made by [`prepare`].
pub async fn launch(prepared: Prepared, settings: Settings) -> TestApp {
    let Prepared {
        dir,
        db,
        external_mqtt,
    } = prepared;
    let (mqtt_host, mqtt_port) = match &settings.mqtt_url {
        Some(u) => parse_mqtt_url(u.expose()),
        None => (settings.mqtt_addr.ip().to_string(), settings.mqtt_addr.port()),
    };
    let app = Application::build(settings.clone()).await.expect("build app");
    let port = app.http_port();
    let (mqtt_host, mqtt_port) = match app.mqtt_addr() {
        Some(a) => (a.ip().to_string(), a.port()),
        None => (mqtt_host, mqtt_port),
    };
    let state = app.state().clone();
    let mqtt_internal_password = app.mqtt_internal_password().map(str::to_string);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if let Err(e) = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await
        {
            eprintln!("test app stopped with error: {e}");
        }
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let client = reqwest::Client::builder().build().expect("http client");
    TestApp {
        addr,
        base: format!("http://{addr}"),
        token: TOKEN.to_string(),
        client,
        mqtt_host,
        mqtt_port,
        external_mqtt,
        mqtt_internal_password,
        data_dir: settings.data_dir.clone(),
        settings,
        state,
        _dir: dir,
        db,
        shutdown: Some(tx),
        task: Some(task),
    }
}

pub(crate) fn parse_mqtt_url(url: &str) -> (String, u16) {
    let rest = url.trim_start_matches("mqtt://").trim_start_matches("tcp://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(1883)),
        None => (rest.to_string(), 1883),
    }
}

impl TestApp {
    /// Stop the app as a crash would: its task aborted (nothing graceful, the lease not released),
    /// its data and database kept; the SQLite lock goes with the dropped server.
    pub async fn crash(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// The app's shared state (store, settings, public key...).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// `(actor, action)` of the audit entries about `entity` (`area:02690`, `policy:…`), oldest
    /// first.
    pub async fn audit_actions(&self, entity: &str) -> Vec<(String, String)> {
        sqlx::query_as("SELECT actor, action FROM audit_log WHERE entity = $1 ORDER BY at, id")
            .bind(entity.to_string())
            .fetch_all(&self.state.store.pool)
            .await
            .unwrap()
    }

    /// The server's public signing key (what devices verify every server message with).
    pub fn server_key(&self) -> ed25519_dalek::VerifyingKey {
        nguon_protocol::verifying_key_from_b64(&self.state.server_public_key)
            .expect("the server's public key")
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A unique id with `prefix` (safe on a shared external broker).
    pub fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", random_suffix())
    }

    /// GET with the admin token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    /// GET with the bearer token `bearer`.
    pub async fn get_as(&self, bearer: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("GET")
    }

    /// POST a JSON body with the bearer token `bearer`.
    pub async fn post_json_as(&self, bearer: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// GET without any token.
    pub async fn get_anon(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// POST a JSON body with the admin token.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// PATCH a JSON body with the admin token.
    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    /// PUT a JSON body with the admin token.
    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    /// DELETE with the admin token.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("DELETE")
    }

    /// POST a raw body with a content type, with the admin token.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.post_as(path, Some(&self.token), content_type, body).await
    }

    /// POST a raw body with a content type, with `bearer` (`None`: without credentials).
    pub async fn post_as(
        &self,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut r = self.client.post(self.url(path));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// Upload `bytes` as multipart field `file` named `filename` to `path` (e.g. `/api/v1/media`).
    pub async fn upload(&self, path: &str, bytes: Vec<u8>, filename: &str) -> reqwest::Response {
        self.upload_with_title(path, bytes, filename, None).await
    }

    /// Like [`TestApp::upload`] with an optional `title` field.
    pub async fn upload_with_title(
        &self,
        path: &str,
        bytes: Vec<u8>,
        filename: &str,
        title: Option<&str>,
    ) -> reqwest::Response {
        let fields: Vec<(&str, &str)> = title.map(|t| ("title", t)).into_iter().collect();
        let (ct, body) = multipart(&fields, &[("file", filename, "application/octet-stream", &bytes)]);
        self.post_raw(path, &ct, body).await
    }

    /// Upload a file from disk to `/api/v1/media`.
    pub async fn upload_media(&self, file: &Path) -> reqwest::Response {
        let bytes = std::fs::read(file).expect("read test file");
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("audio.bin")
            .to_string();
        self.upload("/api/v1/media", bytes, &name).await
    }

    /// Files currently under `data_dir/<sub>` (e.g. `media`, `tmp`).
    pub fn files_in(&self, sub: &str) -> Vec<PathBuf> {
        match std::fs::read_dir(self.data_dir.join(sub)) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Status and JSON body of a response (Null if the body is not JSON).
pub async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Test audio

/// A test audio file: container/codec, sample rate, channels and MP3 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioSpec {
    /// `wav`, `mp3`, `mp3-vbr`, `mp3-noxing`, `mp3-vbr-noxing`, `ogg`, `flac`, `m4a`.
    pub format: &'static str,
    /// Sample rate in Hz.
    pub rate: u32,
    /// Channels (1 or 2).
    pub channels: u16,
}

/// Shorthand for [`AudioSpec`].
pub const fn spec(format: &'static str, rate: u32, channels: u16) -> AudioSpec {
    AudioSpec {
        format,
        rate,
        channels,
    }
}

fn audio_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("nguon-test-audio-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("audio temp dir");
        d
    })
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The spoken base clip (espeak-ng, Vietnamese, 22.05 kHz mono WAV), made once per process.
pub fn base_speech() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let p = audio_dir().join("speech.wav");
    if !p.exists() {
        let tmp = audio_dir().join("speech.tmp.wav");
        run(Command::new("espeak-ng")
            .args(["-v", "vi", "-w"])
            .arg(&tmp)
            .arg("Thông báo của Ủy ban nhân dân xã. Đề nghị bà con chú ý phòng chống mưa lũ và sạt lở đất."));
        std::fs::rename(&tmp, &p).expect("rename");
    }
    p
}

/// Make (once per process) an audio file of `spec` and return its path.
pub fn make_audio(spec: AudioSpec) -> PathBuf {
    static MADE: OnceLock<Mutex<HashMap<AudioSpec, PathBuf>>> = OnceLock::new();
    let made = MADE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = made.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.get(&spec) {
        return p.clone();
    }
    let base = base_speech();
    let dir = audio_dir();
    let stem = format!("{}-{}-{}", spec.format, spec.rate, spec.channels);
    let wav = dir.join(format!("{}-{}.pcm.wav", spec.rate, spec.channels));
    if !wav.exists() {
        let tmp = dir.join(format!("{}-{}.pcm.tmp.wav", spec.rate, spec.channels));
        run(Command::new("sox")
            .arg(&base)
            .args([
                "-r",
                &spec.rate.to_string(),
                "-c",
                &spec.channels.to_string(),
                "-b",
                "16",
            ])
            .arg(&tmp));
        std::fs::rename(&tmp, &wav).expect("rename");
    }
    let out = match spec.format {
        "wav" => {
            let p = dir.join(format!("{stem}.wav"));
            std::fs::copy(&wav, &p).expect("copy wav");
            p
        }
        "mp3" | "mp3-vbr" | "mp3-noxing" | "mp3-vbr-noxing" => {
            let p = dir.join(format!("{stem}.mp3"));
            let mut c = Command::new("lame");
            c.arg("--silent");
            // Keep the sample rate (lame would otherwise resample for low bitrates).
            let khz = format!("{}", spec.rate as f64 / 1000.0);
            c.args(["--resample", &khz]);
            if spec.format.contains("vbr") {
                c.args(["-V", "4"]);
            } else {
                c.args(["-b", if spec.rate >= 32000 { "128" } else { "64" }]);
            }
            if spec.format.contains("noxing") {
                c.arg("-t");
            }
            run(c.arg(&wav).arg(&p));
            p
        }
        "ogg" => {
            let p = dir.join(format!("{stem}.ogg"));
            run(Command::new("oggenc").arg("-Q").arg("-o").arg(&p).arg(&wav));
            p
        }
        "flac" => {
            let p = dir.join(format!("{stem}.flac"));
            run(Command::new("flac").args(["-s", "-f", "-o"]).arg(&p).arg(&wav));
            p
        }
        "m4a" => {
            let p = dir.join(format!("{stem}.m4a"));
            run(Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error", "-i"])
                .arg(&wav)
                .args(["-c:a", "aac", "-b:a", "64k"])
                .arg(&p));
            p
        }
        other => panic!("unknown test audio format {other}"),
    };
    guard.insert(spec, out.clone());
    out
}

/// Duration in milliseconds according to ffprobe: the container duration, or, when ffprobe
/// says it only estimated that from the bitrate (VBR MP3 without a Xing header), the sum of the
/// durations of all packets ffprobe reads (`-show_entries packet=duration_time`).
pub fn ffprobe_duration_ms(path: &Path) -> i64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if String::from_utf8_lossy(&out.stderr).contains("Estimating duration from bitrate") {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "a:0",
                "-show_entries",
                "packet=duration_time",
                "-of",
                "csv=p=0",
            ])
            .arg(path)
            .output()
            .expect("run ffprobe");
        let total: f64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
            .sum();
        return (total * 1000.0).round() as i64;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let secs: f64 = s
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe duration `{s}`"));
    (secs * 1000.0).round() as i64
}

/// A minimal valid 1×1 PNG.
pub fn tiny_png() -> Vec<u8> {
    vec![
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00,
        0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
        0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ]
}

/// The sheets of the XLSX workbook at `path` (the app's admin token), each as rows of cells
/// written as text, by sheet name.
pub async fn xlsx_sheets(app: &TestApp, path: &str) -> std::collections::HashMap<String, Vec<Vec<String>>> {
    use calamine::Reader;
    let bytes = app.get(path).await.bytes().await.unwrap();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    wb.worksheets()
        .into_iter()
        .map(|(name, range)| {
            let rows = range
                .rows()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect();
            (name, rows)
        })
        .collect()
}

/// A `multipart/form-data` request: `fields` (name, value), then `files` (field name, file name,
/// content type, bytes); its content type (with the boundary) and body.
pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("----nguon-test-{}", random_suffix());
    let mut body = Vec::with_capacity(files.iter().map(|f| f.3.len()).sum::<usize>() + 512);
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    for (k, f, ct, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{f}\"\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

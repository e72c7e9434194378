//! A small typed client of nguon-server's HTTP API, as the system tests, the province command and
//! the benchmarks use it. Responses are JSON values: the helpers pick the fields they need and
//! say which one is missing when the server's shape differs.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The API client.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// A client of `base` (`http://127.0.0.1:<port>`) with the admin bearer token.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(4)
            .build()
            .expect("http client");
        Api {
            base: base.into().trim_end_matches('/').to_string(),
            token: token.into(),
            http,
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn finish(what: String, resp: reqwest::Result<reqwest::Response>) -> anyhow::Result<Value> {
        let resp = resp.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("{what}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await;
        Self::finish(format!("GET {path}"), r).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// PATCH a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await;
        Self::finish(what, r).await
    }

    /// POST a raw body with its content type (a CAP document: `application/cap+xml`).
    pub async fn post_body(&self, path: &str, content_type: &str, body: String) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        Self::finish(format!("POST {path}"), r).await
    }

    /// Whether `/healthz` answers 200.
    pub async fn healthy(&self) -> bool {
        matches!(self.http.get(self.url("/healthz")).send().await, Ok(r) if r.status().is_success())
    }

    /// Wait until `/healthz` answers, up to `within`.
    pub async fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        crate::net::eventually(
            "the server's /healthz",
            within,
            Duration::from_millis(100),
            || async {
                if self.healthy().await {
                    Ok(())
                } else {
                    Err("not healthy".into())
                }
            },
        )
        .await
    }

    /// The server's public signing key (base64), from `GET /api/v1/keys/server`.
    pub async fn server_key(&self) -> anyhow::Result<String> {
        let v = self.get("/api/v1/keys/server").await?;
        field_str(&v, "public_key")
    }

    /// Upload a media file (multipart field `file`); returns the response (with `sha256`).
    pub async fn upload(&self, file: &Path, title: Option<&str>) -> anyhow::Result<Value> {
        let bytes = std::fs::read(file)?;
        let filename = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("audio.bin")
            .to_string();
        let boundary = format!("----nguon-sys-{}", crate::net::random_suffix());
        let mut body = Vec::with_capacity(bytes.len() + 512);
        if let Some(t) = title {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{t}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .http
            .post(self.url("/api/v1/media"))
            .bearer_auth(&self.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await;
        Self::finish(format!("upload {}", file.display()), r).await
    }

    /// Upload and approve a file; returns its sha256.
    pub async fn upload_approved(&self, file: &Path, title: &str) -> anyhow::Result<String> {
        let v = self.upload(file, Some(title)).await?;
        let sha = field_str(&v, "sha256")?;
        // The same content uploaded again is deduplicated and may already be approved.
        if v.get("status").and_then(Value::as_str) != Some("approved") {
            self.post(&format!("/api/v1/media/{sha}/approve"), &json!({}))
                .await?;
        }
        Ok(sha)
    }

    /// What loudspeakers are sent for the media item `sha` (issue 18): its loudness-normalised
    /// rendition's sha256 and bytes, or `sha` itself and `None` when the original is played.
    pub async fn delivered(&self, sha: &str) -> anyhow::Result<(String, Option<Vec<u8>>)> {
        let v = self.get(&format!("/api/v1/media/{sha}")).await?;
        let Some(r) = v.pointer("/loudness/rendition/sha256").and_then(Value::as_str) else {
            return Ok((sha.to_string(), None));
        };
        let resp = self
            .http
            .get(self.url(&format!("/media/{r}")))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok((r.to_string(), Some(resp.bytes().await?.to_vec())))
    }

    /// Schedule `sha` once at `at` (local time of the server's zone, `YYYY-MM-DDTHH:MM:SS`) for
    /// `areas`; returns the schedule (with `id`).
    pub async fn schedule_once(
        &self,
        title: &str,
        sha: &str,
        areas: &[&str],
        at_local: &str,
        priority: &str,
    ) -> anyhow::Result<Value> {
        self.post(
            "/api/v1/schedules",
            &json!({
                "title": title,
                "media": [sha],
                "targets": {"areas": areas},
                "priority": priority,
                "rule": {"kind": "once", "at": at_local},
                "volume": 100,
            }),
        )
        .await
    }

    /// Import a fleet registry (`POST /api/v1/fleet/import`).
    pub async fn import_fleet(&self, registry: &nguon_provision::Registry) -> anyhow::Result<Value> {
        self.post("/api/v1/fleet/import", &serde_json::to_value(registry)?)
            .await
    }

    /// Every device (`GET /api/v1/devices`), as a list.
    pub async fn devices(&self) -> anyhow::Result<Vec<Value>> {
        Ok(list(self.get("/api/v1/devices?limit=1000").await?))
    }

    /// Proofs of play (`GET /api/v1/plays`), optionally filtered by query string (`device=…`).
    pub async fn plays(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        let path = if query.is_empty() {
            "/api/v1/plays?limit=1000".to_string()
        } else {
            format!("/api/v1/plays?limit=1000&{query}")
        };
        Ok(list(self.get(&path).await?))
    }

    /// Emergency play-now to an area (`POST /api/v1/areas/{area}/commands`).
    pub async fn emergency(&self, area: &str, sha: &str, title: &str) -> anyhow::Result<Value> {
        self.post(
            &format!("/api/v1/areas/{area}/commands"),
            &json!({"action": "play_now", "priority": "emergency", "media": [sha], "title": title, "volume": 100}),
        )
        .await
    }
}

/// A list answer: the array itself, or the first array among `items`, `data`, `devices`, `plays`.
pub fn list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(mut m) => {
            for k in ["items", "data", "devices", "plays", "results"] {
                if let Some(Value::Array(a)) = m.remove(k) {
                    return a;
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A string field, with an error naming it.
pub fn field_str(v: &Value, key: &str) -> anyhow::Result<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("answer has no string `{key}`: {v}"))
}

/// Whether a device document says it is online (`online: true`, or `status: "online"`).
pub fn is_online(d: &Value) -> bool {
    d.get("online").and_then(Value::as_bool).unwrap_or(false)
        || d.get("status").and_then(Value::as_str) == Some("online")
}

/// The device id of a play or device document (`device`, `device_id` or `id`).
pub fn device_of(v: &Value) -> Option<String> {
    ["device", "device_id"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

//! The run's settings: command-line options merged over the ones remembered in `state.json`, and
//! checked (province code, server URL and key, broker URL).

use nguon_protocol::{AreaCode, verifying_key_from_b64};

use super::BulkOptions;
use crate::config::broker::parse_broker_list;
use crate::error::{ProvisionError, Result};
use crate::state::Settings;

pub(super) fn setting(option: &'static str, message: impl Into<String>) -> ProvisionError {
    ProvisionError::Setting {
        option,
        message: message.into(),
    }
}

/// Merge command-line options over the remembered settings and check them.
pub(super) fn resolve_settings(opts: &BulkOptions, old: Option<&Settings>) -> Result<Settings> {
    let pick = |new: &Option<String>, old: Option<&String>| -> Option<String> {
        new.clone().or_else(|| old.filter(|s| !s.is_empty()).cloned())
    };
    let province_code = pick(&opts.province_code, old.map(|s| &s.province_code)).ok_or_else(|| {
        setting(
            "--province-code",
            "required on the first run (e.g. 10 for Lào Cai)",
        )
    })?;
    AreaCode::parse(province_code.clone()).map_err(|e| setting("--province-code", e.to_string()))?;
    if province_code.len() != 2 || !province_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(setting(
            "--province-code",
            format!("`{province_code}` is not a 2-digit province code"),
        ));
    }
    let province_name =
        pick(&opts.province_name, old.map(|s| &s.province_name)).unwrap_or_else(|| province_code.clone());
    let server_url = pick(&opts.server_url, old.map(|s| &s.server_url)).ok_or_else(|| {
        setting(
            "--server-url",
            "required on the first run (e.g. https://nguon.laocai.gov.vn)",
        )
    })?;
    let host = server_url
        .strip_prefix("https://")
        .or_else(|| server_url.strip_prefix("http://"))
        .map(|r| r.split(['/', ':']).next().unwrap_or(""))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            setting(
                "--server-url",
                format!("`{server_url}` is not an http:// or https:// URL"),
            )
        })?
        .to_string();
    let server_public_key =
        pick(&opts.server_public_key, old.map(|s| &s.server_public_key)).ok_or_else(|| {
            setting(
                "--server-public-key",
                "required on the first run (the server's GET /api/v1/keys/server, or --server-key-file)",
            )
        })?;
    verifying_key_from_b64(&server_public_key).map_err(|e| {
        setting(
            "--server-public-key",
            format!("not a base64 ed25519 public key ({e})"),
        )
    })?;
    let broker_url =
        pick(&opts.broker_url, old.map(|s| &s.broker_url)).unwrap_or_else(|| format!("mqtt://{host}:1883"));
    parse_broker_list(&broker_url).map_err(|m| setting("--broker-url", m))?;
    Ok(Settings {
        province_code,
        province_name,
        server_url,
        server_public_key: server_public_key.trim().to_string(),
        broker_url,
    })
}

//! One device: its freshly generated credentials and keys, its areas, and its agent
//! configuration.

use std::collections::BTreeMap;

use nguon_protocol::{AreaCode, DeviceId, KeyPair};
use sha2::{Digest, Sha256};

use super::settings::setting;
use crate::bundle::{self, DeviceSecrets};
use crate::config::{
    AudioSection, DeviceConfig, DeviceKind, DeviceSection, IdentitySection, MqttSection, ServerSection,
    StorageSection, TelemetrySection,
};
use crate::credential;
use crate::error::Result;
use crate::state::{CommuneState, DeviceRecord, Settings, village_code};

/// A new device's freshly generated material.
pub(super) struct Fresh {
    pub(super) secrets: DeviceSecrets,
    pub(super) password_hash: String,
    pub(super) public_key: String,
    pub(super) board_token_hash: Option<String>,
}

pub(super) fn generate(kind: DeviceKind) -> Fresh {
    let password = credential::generate_password();
    let password_hash = credential::hash_password(&password);
    let key = KeyPair::generate();
    let board_token = (kind == DeviceKind::Board).then(|| {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).expect("operating system random generator");
        hex::encode(b)
    });
    let board_token_hash = board_token.as_deref().map(board_token_hash);
    Fresh {
        secrets: DeviceSecrets {
            password,
            signing_key: key.secret_b64(),
            board_token,
        },
        password_hash,
        public_key: key.public_b64(),
        board_token_hash,
    }
}

/// Lowercase hex sha256 of a board token (what the registry and the server keep).
pub fn board_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The agent configuration for a device.
pub fn device_config(
    id: &str,
    rec: &DeviceRecord,
    areas: Vec<String>,
    settings: &Settings,
) -> Result<DeviceConfig> {
    let bad = |m: String| setting("station list", format!("device {id}: {m}"));
    let brokers = device_brokers(id, &settings.broker_url)?;
    let cfg = DeviceConfig {
        device: DeviceSection {
            id: DeviceId::parse(id).map_err(|e| bad(e.to_string()))?,
            kind: rec.kind,
            areas: areas
                .into_iter()
                .map(AreaCode::parse)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?,
            time_zone: "Asia/Ho_Chi_Minh".into(),
        },
        mqtt: MqttSection {
            url: (brokers.len() == 1).then(|| brokers[0].clone()),
            urls: if brokers.len() > 1 { brokers } else { Vec::new() },
            username: id.to_string(),
            password: None,
            password_file: Some(bundle::PASSWORD_FILE.into()),
            ca_file: None,
            keep_alive_secs: 30,
            reconnect_max_unreachable_secs: crate::config::default_reconnect_max_unreachable(),
            subscribe_qos: crate::config::default_subscribe_qos(),
        },
        server: ServerSection {
            base_url: settings.server_url.clone(),
            public_key: settings.server_public_key.clone(),
        },
        identity: IdentitySection {
            signing_key_file: Some(bundle::KEY_FILE.into()),
        },
        storage: StorageSection {
            data_dir: bundle::DEVICE_DATA_DIR.into(),
            cache_max_mb: 2048,
        },
        audio: AudioSection {
            output: rec.audio_output.clone(),
            default_volume: 80,
            silence_dbfs: -50,
            channels: 2,
            sample_rate: None,
        },
        quiet_hours: None,
        telemetry: TelemetrySection::default(),
        amplifier: None,
        media: crate::config::MediaSection::default(),
    };
    cfg.validate().map_err(|(k, m)| bad(format!("{k}: {m}")))?;
    Ok(cfg)
}

/// The device's broker list: `--broker-url` (one URL, or several separated by commas: a broker
/// cluster's nodes) rotated by a hash of the device id, so that a fleet starts spread over the
/// nodes and each device's list stays the same from one run to the next.
fn device_brokers(id: &str, broker_url: &str) -> Result<Vec<String>> {
    use sha2::Digest;
    let urls =
        crate::config::broker::parse_broker_list(broker_url).map_err(|m| setting("--broker-url", m))?;
    let h = sha2::Sha256::digest(id.as_bytes());
    let spread = u16::from_be_bytes([h[0], h[1]]) as usize;
    Ok(crate::config::broker::rotated(&urls, spread))
}

pub(super) fn areas_of(
    settings: &Settings,
    communes: &BTreeMap<String, CommuneState>,
    rec: &DeviceRecord,
) -> Vec<String> {
    let n = communes
        .get(&rec.commune_code)
        .and_then(|c| c.villages.get(&rec.village))
        .copied()
        .expect("every device's village is numbered");
    vec![
        settings.province_code.clone(),
        rec.commune_code.clone(),
        village_code(&rec.commune_code, n),
    ]
}

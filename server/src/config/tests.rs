//! Tests of the settings: environment over defaults, keys named in errors, files.

use super::*;

#[test]
fn env_overrides_defaults_and_bad_values_name_the_variable() {
    let s = Settings::load(None, [("NGUON_HTTP_ADDR".into(), "127.0.0.1:0".into())]).unwrap();
    assert_eq!(s.http_addr.port(), 0);
    let e = Settings::load(None, [("NGUON_LOOKAHEAD_HOURS".into(), "lots".into())]).unwrap_err();
    assert_eq!(e.key, "NGUON_LOOKAHEAD_HOURS");
    let e = Settings::load(None, [("NGUON_TIME_ZONE".into(), "Mars/Base".into())]).unwrap_err();
    assert_eq!(e.key, "time_zone");
    let s = Settings::load(None, [("NGUON_MQTT_ACK_TIMEOUT_MS".into(), "2500".into())]).unwrap();
    assert_eq!(s.mqtt_ack_timeout_ms, 2500);
    let e = Settings::load(None, [("NGUON_MQTT_ACK_TIMEOUT_MS".into(), "0".into())]).unwrap_err();
    assert_eq!(e.key, "mqtt_ack_timeout_ms");
}

#[test]
fn broker_limits_and_tls_settings_are_checked_by_name() {
    let env = |k: &str, v: &str| Settings::load(None, [(k.to_string(), v.to_string())]);
    assert_eq!(
        env("NGUON_MQTT_MAX_CONNECTIONS", "0").unwrap_err().key,
        "mqtt_max_connections"
    );
    assert_eq!(
        env("NGUON_MQTT_MAX_CONNECTIONS_PER_IP", "9999").unwrap_err().key,
        "mqtt_max_connections_per_ip"
    );
    assert_eq!(
        env("NGUON_MQTT_CONNECT_TIMEOUT_MS", "5").unwrap_err().key,
        "mqtt_connect_timeout_ms"
    );
    assert_eq!(
        env("NGUON_MQTT_TLS_ADDR", "127.0.0.1:8883").unwrap_err().key,
        "mqtt_tls_cert"
    );
    assert_eq!(
        env("NGUON_MQTT_TLS_KEY", "/nonexistent").unwrap_err().key,
        "mqtt_tls_addr"
    );
    assert_eq!(
        env("NGUON_MQTT_URL", "http://broker").unwrap_err().key,
        "mqtt_url"
    );
    let s = env("NGUON_MQTT_URL", "mqtts://u:p@broker.example:8883").unwrap();
    assert!(s.mqtt_url.is_some());
    assert!(env("NGUON_MQTT_URL", "mqtt://a:1883,mqtt://b:1883").is_ok());
    assert_eq!(env("NGUON_MQTT_URL", "mqtt://a,b:1").unwrap_err().key, "mqtt_url");
    assert_eq!(
        env("NGUON_MQTT_MAX_KEEPALIVE_SECS", "60")
            .unwrap()
            .mqtt_max_keepalive_secs,
        60
    );
}

#[test]
fn unsigned_devices_are_refused_unless_allowed_and_the_manifest_cap_is_bounded() {
    let s = Settings::load(None, []).unwrap();
    assert!(!s.allow_unsigned_devices, "refused by default");
    assert_eq!(s.max_manifest_bytes, 1 << 20);
    let s = Settings::load(None, [("NGUON_ALLOW_UNSIGNED_DEVICES".into(), "true".into())]).unwrap();
    assert!(s.allow_unsigned_devices);
    let e = Settings::load(None, [("NGUON_ALLOW_UNSIGNED_DEVICES".into(), "maybe".into())]).unwrap_err();
    assert_eq!(e.key, "NGUON_ALLOW_UNSIGNED_DEVICES");
    let e = Settings::load(None, [("NGUON_MAX_MANIFEST_BYTES".into(), "8000000".into())]).unwrap_err();
    assert_eq!(e.key, "max_manifest_bytes");
}

#[test]
fn a_file_with_an_unknown_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nguon.toml");
    std::fs::write(&p, "http_addr = \"127.0.0.1:9000\"\nhttp_port = 1\n").unwrap();
    let e = Settings::load(Some(&p), []).unwrap_err();
    assert_eq!(e.key, "http_port", "{e}");
    std::fs::write(&p, "http_addr = \"127.0.0.1:9000\"\n").unwrap();
    assert_eq!(Settings::load(Some(&p), []).unwrap().http_addr.port(), 9000);
}

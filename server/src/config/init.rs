//! The settings file `nguon-server init` writes: the settings in effect that a province's setup
//! needs again at every start (data directory, addresses, broker, the server's MQTT password file),
//! never a secret. Rendered from [`Settings`], so a file written by init and read back renders the
//! same text (a second init finds nothing to change).

use std::path::{Path, PathBuf};

use super::{ConfigError, Settings};

/// `value` as a TOML string.
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Whether a URL's `user:password@` part holds a password.
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// `path` made absolute against the current directory (settings files outlive the shell that ran
/// init).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The file's text for `s`, with `password_file` as `mqtt_password_file`. Refuses an `mqtt_url`
/// that carries a password: init keeps that password in its own file.
pub fn render(s: &Settings, password_file: &Path) -> Result<String, ConfigError> {
    let refuse = |key: &str, message: String| ConfigError {
        key: key.into(),
        source_name: "settings".into(),
        message,
    };
    let mut out = String::from(
        "# nguon-server settings written by `nguon-server init` (docs/operations.md, \"Set up a\n\
         # province\"). NGUON_* environment variables override them. No secrets here: the admin\n\
         # token and a database password go in the environment (/etc/nguon/server.env).\n",
    );
    let mut line = |key: &str, value: &str| out.push_str(&format!("{key} = {}\n", quoted(value)));
    line("data_dir", &absolute(&s.data_dir).display().to_string());
    line("http_addr", &s.http_addr.to_string());
    if let Some(u) = &s.public_url {
        line("public_url", u);
    }
    if let Some(u) = &s.database_url
        && !has_password(u.expose())
    {
        line("database_url", u.expose());
    }
    match &s.mqtt_url {
        Some(u) if has_password(u.expose()) => {
            return Err(refuse(
                "mqtt_url",
                "carries a password: init keeps the server's MQTT password in mqtt_password_file; \
                 leave it out of the URL (e.g. mqtt://nguon-server@broker:1883)"
                    .into(),
            ));
        }
        Some(u) => line("mqtt_url", u.expose()),
        None => line("mqtt_addr", &s.mqtt_addr.to_string()),
    }
    line(
        "mqtt_password_file",
        &absolute(password_file).display().to_string(),
    );
    if let Some(u) = &s.database_url
        && has_password(u.expose())
    {
        out.push_str("# database_url: from NGUON_DATABASE_URL (it holds a password)\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_reads_back_into_the_same_settings_and_holds_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let env = |k: &str, v: &str| (k.to_string(), v.to_string());
        let base = [
            env("NGUON_DATA_DIR", &dir.path().join("data").display().to_string()),
            env("NGUON_HTTP_ADDR", "0.0.0.0:8081"),
            env("NGUON_MQTT_URL", "mqtt://nguon-server@127.0.0.1:21210"),
            env("NGUON_ADMIN_TOKEN", "a-long-admin-token-0123456789"),
        ];
        let s = Settings::load(None, base.clone()).unwrap();
        let pw = dir.path().join("data/mqtt-password");
        let text = render(&s, &pw).unwrap();
        assert!(!text.contains("0123456789"), "{text}");
        let file = dir.path().join("nguon.toml");
        std::fs::write(&file, &text).unwrap();
        let back = Settings::load(Some(&file), []).unwrap();
        assert_eq!(back.http_addr.port(), 8081);
        assert_eq!(back.mqtt_password_file.as_deref(), Some(pw.as_path()));
        assert_eq!(
            render(&back, &pw).unwrap(),
            text,
            "read back, it renders the same"
        );

        let mut with_db = base.to_vec();
        with_db.push(env("NGUON_DATABASE_URL", "postgres://nguon:pw@db/nguon"));
        let text = render(&Settings::load(None, with_db).unwrap(), &pw).unwrap();
        assert!(!text.contains("pw@") && text.contains("# database_url"), "{text}");
        let bad = Settings::load(None, [env("NGUON_MQTT_URL", "mqtt://u:p@h:1883")]).unwrap();
        assert_eq!(render(&bad, &pw).unwrap_err().key, "mqtt_url");
    }
}

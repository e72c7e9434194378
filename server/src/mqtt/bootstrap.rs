//! `nguon-server init`: what a province needs before the server's first start and before
//! provisioning, made offline and idempotently from the server's own settings: the signing key
//! (`<data_dir>/server.key`, never overwritten) and its public half (`server.pub`, for
//! `nguon-provision --server-key-file`), the server's password on an external broker
//! (`mqtt_password_file`, default `<data_dir>/mqtt-password`, for
//! `nguon-provision --server-mqtt-password-file`), and a settings file. A second run finds
//! everything in place and changes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Settings, init};
use crate::error::{Error, Result};

/// What init did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It did not exist: written.
    Created,
    /// It existed and was right: untouched.
    Kept,
    /// A derived file (`server.pub`) that did not match the key: rewritten.
    Rewritten,
    /// The settings file exists with other content: untouched (init never rewrites it).
    KeptDiffers,
}

/// One file init looked after.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it is.
    pub what: &'static str,
    /// Where.
    pub path: PathBuf,
    /// What happened.
    pub action: Action,
}

/// What init did.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// Key, public key, MQTT password, settings file, in that order.
    pub steps: Vec<Step>,
    /// The server's public key (base64).
    pub public_key: String,
}

impl InitReport {
    /// Whether any file was written.
    pub fn changed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Created | Action::Rewritten))
    }

    /// The path of step `what`.
    pub fn path(&self, what: &str) -> &Path {
        self.steps
            .iter()
            .find(|s| s.what == what)
            .map(|s| s.path.as_path())
            .unwrap_or(Path::new(""))
    }
}

/// Names of the steps.
pub const KEY: &str = "signing key";
/// The public key file.
pub const PUBLIC_KEY: &str = "public key";
/// The server's MQTT password.
pub const MQTT_PASSWORD: &str = "MQTT password";
/// The settings file.
pub const SETTINGS: &str = "settings";

/// Write `bytes` to `path` through a temp file and a rename, with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("init-tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let io = |e: std::io::Error| Error::internal(format!("{}: cannot write: {e}", path.display()));
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A random password: 48 hex digits (192 bits) from the OS generator.
fn generate_password() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("operating system random generator");
    hex::encode(b)
}

/// Run init for `settings`, writing the settings file at `config` (default
/// `<data_dir>/nguon.toml`). Every setting is checked before anything is written.
pub fn init(settings: &Settings, config: Option<&Path>) -> Result<InitReport> {
    let data_dir = init::absolute(&settings.data_dir);
    let password_file = init::absolute(
        &settings
            .mqtt_password_file
            .clone()
            .unwrap_or_else(|| data_dir.join("mqtt-password")),
    );
    let config_file = init::absolute(&config.map_or_else(|| data_dir.join("nguon.toml"), Path::to_path_buf));
    let text = init::render(settings, &password_file).map_err(|e| Error::internal(e.to_string()))?;
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(Error::internal(format!(
            "data_dir `{}`: exists and is not a directory",
            data_dir.display()
        )));
    }
    for (what, p) in [(MQTT_PASSWORD, &password_file), (SETTINGS, &config_file)] {
        if p.is_dir() {
            return Err(Error::internal(format!(
                "{what} `{}`: is a directory",
                p.display()
            )));
        }
    }
    crate::store::create_private_dir(&data_dir)
        .map_err(|e| Error::internal(format!("data_dir `{}`: cannot create: {e}", data_dir.display())))?;
    let mut steps = Vec::new();

    let key_path = data_dir.join("server.key");
    let existed = key_path.exists();
    let key = super::keys::load_or_create(&data_dir)?;
    steps.push(Step {
        what: KEY,
        path: key_path,
        action: if existed { Action::Kept } else { Action::Created },
    });

    let public_key = key.public_b64();
    let pub_path = data_dir.join("server.pub");
    let pub_text = format!("{public_key}\n");
    let action = match std::fs::read_to_string(&pub_path) {
        Ok(t) if t == pub_text => Action::Kept,
        Ok(_) => Action::Rewritten,
        Err(_) => Action::Created,
    };
    if action != Action::Kept {
        write_new(&pub_path, pub_text.as_bytes(), 0o644)?;
    }
    steps.push(Step {
        what: PUBLIC_KEY,
        path: pub_path,
        action,
    });

    let action = if password_file.exists() {
        // A password made earlier (by init, or by nguon-provision's
        // secrets/server-mqtt-password) is adopted as it is.
        super::link::read_password_file(&password_file)?;
        Action::Kept
    } else {
        if let Some(parent) = password_file.parent() {
            crate::store::create_private_dir(parent)
                .map_err(|e| Error::internal(format!("{}: cannot create: {e}", parent.display())))?;
        }
        write_new(
            &password_file,
            format!("{}\n", generate_password()).as_bytes(),
            0o600,
        )?;
        Action::Created
    };
    steps.push(Step {
        what: MQTT_PASSWORD,
        path: password_file,
        action,
    });

    let action = match std::fs::read_to_string(&config_file) {
        Ok(t) if t == text => Action::Kept,
        Ok(_) => Action::KeptDiffers,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = config_file.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::internal(format!("{}: cannot create: {e}", parent.display())))?;
            }
            write_new(&config_file, text.as_bytes(), 0o640)?;
            Action::Created
        }
        Err(e) => {
            return Err(Error::internal(format!(
                "settings file `{}`: cannot read: {e}",
                config_file.display()
            )));
        }
    };
    steps.push(Step {
        what: SETTINGS,
        path: config_file,
        action,
    });
    Ok(InitReport { steps, public_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, extra: &[(&str, &str)]) -> Settings {
        let mut env = vec![
            (
                "NGUON_DATA_DIR".to_string(),
                dir.join("data").display().to_string(),
            ),
            (
                "NGUON_MQTT_URL".into(),
                "mqtt://nguon-server@127.0.0.1:21211".into(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Settings::load(None, env).unwrap()
    }

    fn actions(r: &InitReport) -> Vec<Action> {
        r.steps.iter().map(|s| s.action).collect()
    }

    #[test]
    fn a_second_run_changes_nothing_and_the_key_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), &[]);
        let first = init(&s, None).unwrap();
        assert_eq!(actions(&first), [Action::Created; 4]);
        assert!(first.changed());
        let key = std::fs::read(first.path(KEY)).unwrap();
        let pw = std::fs::read(first.path(MQTT_PASSWORD)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(first.path(KEY)), 0o600);
            assert_eq!(mode(first.path(MQTT_PASSWORD)), 0o600);
        }
        let second = init(&s, None).unwrap();
        assert_eq!(actions(&second), [Action::Kept; 4]);
        assert!(!second.changed());
        assert_eq!(second.public_key, first.public_key);
        assert_eq!(std::fs::read(second.path(KEY)).unwrap(), key);
        assert_eq!(std::fs::read(second.path(MQTT_PASSWORD)).unwrap(), pw);
        // The settings file it wrote, given back with --config, still changes nothing, and the
        // server reads the password from it.
        let cfg = first.path(SETTINGS).to_path_buf();
        let back = Settings::load(Some(&cfg), []).unwrap();
        assert_eq!(actions(&init(&back, Some(&cfg)).unwrap()), [Action::Kept; 4]);
        let read =
            crate::mqtt::link::read_password_file(back.mqtt_password_file.as_deref().unwrap()).unwrap();
        assert_eq!(format!("{read}\n").into_bytes(), pw);

        // A tampered public key file is rewritten from the key; the key stays.
        std::fs::write(first.path(PUBLIC_KEY), "wrong\n").unwrap();
        let third = init(&s, None).unwrap();
        assert_eq!(third.steps[1].action, Action::Rewritten);
        assert_eq!(std::fs::read(third.path(KEY)).unwrap(), key);
        // Other settings than the file's: the file is kept as it is and said so.
        let other = settings(dir.path(), &[("NGUON_HTTP_ADDR", "127.0.0.1:21212")]);
        let fourth = init(&other, None).unwrap();
        assert_eq!(fourth.steps[3].action, Action::KeptDiffers);
        assert!(!fourth.changed());
    }

    #[test]
    fn a_password_made_by_provisioning_is_adopted_and_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let pw_file = dir.path().join("laocai/secrets/server-mqtt-password");
        std::fs::create_dir_all(pw_file.parent().unwrap()).unwrap();
        std::fs::write(&pw_file, "FromProvisioning123\n").unwrap();
        let s = settings(
            dir.path(),
            &[("NGUON_MQTT_PASSWORD_FILE", &pw_file.display().to_string())],
        );
        let r = init(&s, None).unwrap();
        assert_eq!(r.steps[2].action, Action::Kept);
        assert_eq!(
            std::fs::read_to_string(&pw_file).unwrap(),
            "FromProvisioning123\n"
        );
        let text = std::fs::read_to_string(r.path(SETTINGS)).unwrap();
        assert!(text.contains(&pw_file.display().to_string()), "{text}");

        // An empty password file, a corrupt key, a data dir that is a file: named, nothing written.
        std::fs::write(&pw_file, "\n").unwrap();
        let e = init(&s, None).unwrap_err().to_string();
        assert!(
            e.contains("mqtt_password_file") && e.contains("server-mqtt-password"),
            "{e}"
        );
        let d2 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d2.path().join("data")).unwrap();
        std::fs::write(d2.path().join("data/server.key"), "not a key").unwrap();
        let e = init(&settings(d2.path(), &[]), None).unwrap_err().to_string();
        assert!(e.contains("server.key") && e.contains("not a server key"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d2.path().join("data/server.key")).unwrap(),
            "not a key"
        );
        let d3 = tempfile::tempdir().unwrap();
        std::fs::write(d3.path().join("data"), "").unwrap();
        let e = init(&settings(d3.path(), &[]), None).unwrap_err().to_string();
        assert!(e.contains("data_dir") && e.contains("not a directory"), "{e}");
        let bad = settings(d3.path(), &[("NGUON_MQTT_URL", "mqtt://nguon-server:pw@h:1883")]);
        let e = init(&bad, None).unwrap_err().to_string();
        assert!(e.contains("mqtt_url") && e.contains("password"), "{e}");
    }
}

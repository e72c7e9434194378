//! `nguon-server backup <dir>` and `nguon-server restore <dir>`: everything a province needs to
//! come back on a new machine, taken while the server runs.
//!
//! A backup directory holds `db/nguon.db` (SQLite: a `VACUUM INTO` copy, one consistent snapshot
//! while the server keeps writing) or `db/nguon.pgdump` (PostgreSQL: `pg_dump --format=custom`),
//! `data/…` (every file of the data directory but the live database and `tmp/`: the signing key
//! `server.key`, the media library `media/<sha256>`, bulletin files `files/<sha256>`, …) and,
//! written last, `manifest.json` ([`manifest::Manifest`]: version, schema level, each file's
//! size, sha256 and mode). The database is copied first and the files after it: files are
//! content-addressed and written before the row naming them commits, and never deleted, so
//! every file the saved database names is in the backup.
//!
//! A restore checks the whole backup before writing anything: a manifest from a newer format or
//! a newer schema than this binary knows is refused, and so is any file whose size or sha256
//! differs (named). It writes only into a fresh target (no database tables yet, no differing
//! file), and the next start of the server runs the migrations a backup from an older version
//! lacks.

pub mod manifest;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store;
use manifest::{Database, Entry, Manifest};

/// What a backup or restore did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Which database.
    pub database: Database,
    /// Its schema level.
    pub schema_version: i64,
    /// Files (database included).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

const SQLITE_FILE: &str = "db/nguon.db";
const PG_FILE: &str = "db/nguon.pgdump";

fn refuse(code: &'static str, message: String) -> Error {
    Error::unprocessable(code, message)
}

/// Back up the database and data directory of `settings` into `dir` (new or empty).
pub async fn backup(settings: &Settings, dir: &Path) -> Result<Summary> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(refuse(
            "backup_target",
            format!(
                "{}: not empty; a backup goes into a new or empty directory",
                dir.display()
            ),
        ));
    }
    store::create_private_dir(&dir.join("db"))?;
    let url = settings.database_url();
    let mut files = Vec::new();
    let (database, level) = if store::backup::is_sqlite(&url) {
        let db = store::backup::sqlite_path(&url).ok_or_else(|| {
            refuse(
                "backup_database",
                "database_url: an in-memory database cannot be backed up".into(),
            )
        })?;
        if !db.exists() {
            return Err(refuse(
                "backup_database",
                format!("{}: no database there (database_url / data_dir)", db.display()),
            ));
        }
        let dest = dir.join(SQLITE_FILE);
        store::backup::sqlite_snapshot(&db, &dest).await?;
        files.push(entry_of(dir, SQLITE_FILE)?);
        let level = store::backup::level(&store::backup::sqlite_url(&dest)).await?;
        (Database::Sqlite, level)
    } else {
        let level = store::backup::level(&url).await?;
        let dest = dir.join(PG_FILE);
        run_tool(
            Command::new("pg_dump")
                .arg("--format=custom")
                .arg("--no-owner")
                .arg("--file")
                .arg(&dest)
                .arg("--dbname")
                .arg(&url),
            "pg_dump",
        )?;
        files.push(entry_of(dir, PG_FILE)?);
        (Database::Postgres, level)
    };
    let skip = Skip::new(settings, &url, dir);
    copy_tree(
        &settings.data_dir,
        &settings.data_dir,
        &dir.join("data"),
        &skip,
        &mut files,
    )?;
    let m = Manifest {
        format: manifest::FORMAT,
        nguon_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        database,
        schema_version: level,
        schema_description: store::backup::known_description(level).unwrap_or_default(),
        files,
    };
    m.write(dir)?;
    Ok(summary(&m))
}

/// Restore the backup in `dir` into the database and data directory of `settings`.
pub async fn restore(settings: &Settings, dir: &Path) -> Result<Summary> {
    let m = Manifest::read(dir)?;
    let (latest, latest_desc) = store::backup::latest_known();
    if m.schema_version > latest {
        return Err(refuse(
            "backup_schema",
            format!(
                "{}: the backup's schema is at migration {} ({}), newer than this nguon-server {} knows (up to {latest}, {latest_desc}); restore it with nguon-server {} or newer",
                dir.join(manifest::NAME).display(),
                m.schema_version,
                m.schema_description,
                env!("CARGO_PKG_VERSION"),
                m.nguon_version
            ),
        ));
    }
    let url = settings.database_url();
    let target = if store::backup::is_sqlite(&url) {
        Database::Sqlite
    } else {
        Database::Postgres
    };
    if target != m.database {
        return Err(refuse(
            "backup_database",
            format!(
                "database_url: the backup holds a {:?} database but this server is configured for {target:?}; restore into the same kind",
                m.database
            ),
        ));
    }
    m.verify(dir)?;
    let mut data = Vec::new();
    for e in &m.files {
        match e.path.split_once('/') {
            Some(("data", rest)) => data.push((e, settings.data_dir.join(manifest::safe_relative(rest)?))),
            _ if e.path == SQLITE_FILE || e.path == PG_FILE => {}
            _ => {
                return Err(refuse(
                    "backup_manifest",
                    format!(
                        "manifest.json: unexpected file {:?} (neither db/ nor data/)",
                        e.path
                    ),
                ));
            }
        }
    }
    // Nothing is written until every check passed: the target must be fresh.
    for (e, to) in &data {
        if to.exists() && manifest::hash_file(to)?.1 != e.sha256 {
            return Err(refuse(
                "restore_target",
                format!(
                    "{}: exists with other content; restore into a fresh data directory",
                    to.display()
                ),
            ));
        }
    }
    let sqlite_target = store::backup::sqlite_path(&url);
    match (&sqlite_target, m.database) {
        (Some(db), _) if db.exists() && store::backup::tables(&store::backup::sqlite_url(db)).await? > 0 => {
            return Err(refuse(
                "restore_target",
                format!(
                    "{}: already holds a database; restore into a fresh data directory",
                    db.display()
                ),
            ));
        }
        (None, Database::Sqlite) => {
            return Err(refuse("restore_target", "database_url: not a SQLite file".into()));
        }
        (_, Database::Postgres) if store::backup::tables(&url).await? > 0 => {
            return Err(refuse(
                "restore_target",
                "database_url: the PostgreSQL database already has tables; restore into an empty database (createdb)".into(),
            ));
        }
        _ => {}
    }
    store::create_private_dir(&settings.data_dir)?;
    for (e, to) in &data {
        if !to.exists() {
            install(&dir.join(&e.path), to, e.mode)?;
        }
    }
    match sqlite_target {
        Some(db) => {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = db.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
            if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
                store::create_private_dir(parent)?;
            }
            install(&dir.join(SQLITE_FILE), &db, 0o600)?;
        }
        None => run_tool(
            Command::new("pg_restore")
                .arg("--no-owner")
                .arg("--exit-on-error")
                .arg("--single-transaction")
                .arg("--dbname")
                .arg(&url)
                .arg(dir.join(PG_FILE)),
            "pg_restore",
        )?,
    }
    let level = match store::backup::sqlite_path(&url) {
        Some(db) => store::backup::level(&store::backup::sqlite_url(&db)).await?,
        None => store::backup::level(&url).await?,
    };
    if level != m.schema_version {
        return Err(Error::internal(format!(
            "restored database is at migration {level}, the manifest says {}",
            m.schema_version
        )));
    }
    Ok(summary(&m))
}

fn summary(m: &Manifest) -> Summary {
    Summary {
        database: m.database,
        schema_version: m.schema_version,
        files: m.files.len(),
        bytes: m.files.iter().map(|e| e.size).sum(),
    }
}

fn run_tool(cmd: &mut Command, name: &str) -> Result<()> {
    let out = cmd.output().map_err(|e| {
        refuse(
            "backup_tool",
            format!("{name}: cannot run ({e}); install the PostgreSQL client tools (postgresql-client, same major version as the server or newer)"),
        )
    })?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "{name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn entry_of(dir: &Path, rel: &str) -> Result<Entry> {
    let path = dir.join(rel);
    let (size, sha256) = manifest::hash_file(&path)?;
    Ok(Entry {
        path: rel.to_string(),
        size,
        sha256,
        mode: manifest::mode_of(&std::fs::metadata(&path)?),
    })
}

/// What a backup leaves out of the data directory: the live database files (copied through
/// the database), `tmp/` (uploads in progress) and the backup itself if it lies inside.
struct Skip {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Skip {
    fn new(settings: &Settings, url: &str, backup: &Path) -> Skip {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let mut files = Vec::new();
        if let Some(db) = store::backup::sqlite_path(url) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = canon(&db).into_os_string();
                p.push(suffix);
                files.push(PathBuf::from(p));
            }
        }
        Skip {
            files,
            dirs: vec![canon(&settings.data_dir.join("tmp")), canon(backup)],
        }
    }
}

fn copy_tree(root: &Path, from: &Path, to: &Path, skip: &Skip, out: &mut Vec<Entry>) -> Result<()> {
    let Ok(read) = std::fs::read_dir(from) else {
        return Ok(());
    };
    let mut entries: Vec<_> = read.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let canon = path.canonicalize().unwrap_or_else(|_| path.clone());
        let kind = e.file_type()?;
        if kind.is_dir() {
            if !skip.dirs.contains(&canon) {
                copy_tree(root, &path, &to.join(e.file_name()), skip, out)?;
            }
        } else if kind.is_file() && !skip.files.contains(&canon) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = format!("data/{}", rel.to_string_lossy().replace('\\', "/"));
            store::create_private_dir(to)?;
            let dest = to.join(e.file_name());
            let (size, sha256) = copy_hashing(&path, &dest)?;
            let mode = manifest::mode_of(&e.metadata()?);
            set_mode(&dest, mode)?;
            out.push(Entry {
                path: rel,
                size,
                sha256,
                mode,
            });
        } else if !kind.is_dir() && !kind.is_file() {
            tracing::warn!(path = %path.display(), "backup: not a regular file, left out");
        }
    }
    Ok(())
}

/// Copy `from` to `to`, returning the size and sha256 of what was written.
fn copy_hashing(from: &Path, to: &Path) -> Result<(u64, String)> {
    let ctx =
        |e: std::io::Error| Error::internal_from(format!("copy {} to {}", from.display(), to.display()), e);
    let mut src = std::fs::File::open(from).map_err(ctx)?;
    let mut dst = std::fs::File::create(to).map_err(ctx)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(ctx)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(ctx)?;
        size += n as u64;
    }
    dst.sync_all().map_err(ctx)?;
    Ok((size, hex::encode(h.finalize())))
}

/// Copy a checked file into place: a temp file beside it, renamed.
fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        store::create_private_dir(parent)?;
    }
    let mut tmp = to.to_path_buf().into_os_string();
    tmp.push(".restore-tmp");
    let tmp = PathBuf::from(tmp);
    copy_hashing(from, &tmp)?;
    set_mode(&tmp, mode)?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

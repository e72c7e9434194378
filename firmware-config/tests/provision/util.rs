//! Test helpers: a temp workspace with a station list, bulk options, and a snapshot of every file
//! in an output directory for byte-for-byte comparisons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nguon_protocol::KeyPair;
use nguon_provision::BulkOptions;

/// A temp dir holding `stations.csv` and the output directory `out`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(csv: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("stations.csv"), csv).expect("write csv");
        Self { dir }
    }

    pub fn write_csv(&self, csv: impl AsRef<[u8]>) {
        std::fs::write(self.csv(), csv).expect("write csv");
    }

    pub fn csv(&self) -> PathBuf {
        self.dir.path().join("stations.csv")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Options for a first run.
    pub fn options(&self) -> BulkOptions {
        BulkOptions {
            stations: self.csv(),
            out: self.out(),
            server_url: Some("http://127.0.0.1:8080".into()),
            server_public_key: Some(KeyPair::from_seed([7; 32]).public_b64()),
            broker_url: Some("mqtt://127.0.0.1:1883".into()),
            province_code: Some("10".into()),
            province_name: Some("Lào Cai".into()),
            ..BulkOptions::default()
        }
    }
}

/// Every file under `dir` (relative path → bytes).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").display().to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names of files that differ between two snapshots.
pub fn differences(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    out
}

/// Path of the one `new-passwords-*.csv` file written by a run (the latest).
pub fn passwords(out: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for e in std::fs::read_dir(out.join("secrets")).expect("secrets dir") {
        let p = e.expect("entry").path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("new-passwords-")
        {
            continue;
        }
        let mut r = csv::Reader::from_path(&p).expect("secrets csv");
        for rec in r.records() {
            let rec = rec.expect("record");
            map.insert(rec[0].to_string(), rec[6].to_string());
        }
    }
    map
}

pub const HEADER: &str = "commune_code,village,station,kind,lat,lon,audio_output,language\n";

/// A finished command's stdout followed by its stderr, as text.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

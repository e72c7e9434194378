//! Fuzz the upload probe (the server's first look at an uploaded audio file): arbitrary bytes are
//! written to a file and probed; the probe must answer Ok or an error, never panic or hang.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use nguon_server::services::media::probe::probe_file;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("nguon-fuzz-probe-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("upload.bin");
    let mut f = std::fs::File::create(&path).expect("temp file");
    f.write_all(data).expect("write temp file");
    drop(f);
    let _ = probe_file(&path);
});

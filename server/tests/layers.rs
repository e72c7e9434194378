//! The import rule of the server's layers (issue 10, `docs/architecture.md`), checked on the
//! source: every `.rs` file under `server/src` belongs to a layer by its path, and every
//! `crate::<name>` it writes (in `use` lines, `use crate::{a, b::c}` groups, types and
//! expressions; comments and string literals do not count) must be a layer it may import or the
//! foundation (`error`, `config`, `metrics`). Root re-exports (`crate::AppState`,
//! `crate::Error`, ...) are for tests and binaries: inside a layer the full path is written.
//! Textual rules on the same files: `sqlx` only in `store/` and `error.rs`; `axum` never in
//! domain, store, services, mqtt or workers; `rumqttc`/`rumqttd`/`rmqtt`/`handy_grpc` only in `mqtt/`; no file over
//! 800 lines (also checked on the whole workspace); a `//!` header on every file. Every file is
//! in a layer: there are no exceptions (the lists of not-yet-moved files and tolerated imports
//! that issue 10 worked down are gone).

use std::path::{Path, PathBuf};

/// Modules every layer may import.
const FOUNDATION: &[&str] = &["error", "config", "metrics"];

/// Each layer (a directory under `src/`) and the layers it may import besides itself and the
/// foundation.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("store", &["domain"]),
    ("services", &["store", "domain"]),
    ("mqtt", &["store", "domain"]),
    ("workers", &["mqtt", "store", "domain"]),
    ("http", &["services", "store", "domain"]),
    ("console", &["http", "services", "store", "domain"]),
    ("board", &["http", "services", "store", "domain"]),
    ("public", &["http", "services", "store", "domain"]),
];

/// Longest file allowed.
const MAX_LINES: usize = 800;

/// Where a file sits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// In a layer directory.
    Layer(&'static str),
    /// `error.rs`, `config.rs`, `metrics.rs`.
    Foundation,
    /// `lib.rs`, `main.rs`, `bin/`: may import anything.
    Wiring,
    /// A root file that is in no layer.
    Stray,
}

fn place(rel: &str) -> Place {
    let first = rel.split('/').next().unwrap_or(rel);
    if rel.contains('/') {
        if first == "bin" {
            return Place::Wiring;
        }
        // Sections of the settings in their own files (`config/alarms.rs`): foundation too.
        if FOUNDATION.contains(&first) {
            return Place::Foundation;
        }
        return LAYERS
            .iter()
            .find(|(l, _)| *l == first)
            .map_or(Place::Stray, |(l, _)| Place::Layer(l));
    }
    let module = rel.trim_end_matches(".rs");
    if FOUNDATION.contains(&module) {
        Place::Foundation
    } else if module == "lib" || module == "main" {
        Place::Wiring
    } else {
        Place::Stray
    }
}

// ---------------------------------------------------------------------------------------------
// The extractor

/// The source with comments and the contents of string and char literals replaced by spaces
/// (newlines kept, so offsets and line numbers stay those of the file).
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && ident(b[i - 1]);
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (c == 'r' || (c == 'b' && b.get(i + 1) == Some(&'r'))) && {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            b.get(j) == Some(&'"')
        } {
            // Raw string: r"…", r#"…"#, br#"…"#.
            let start = i;
            i += if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while b[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1; // opening quote
            for _ in start..i {
                out.push(' ');
            }
            while i < b.len() {
                if b[i] == '"' && (1..=hashes).all(|k| b.get(i + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}', '"') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&'\\') {
                (i + 3..b.len()).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for _ in i..=e {
                        out.push(' ');
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte].matches('\n').count() + 1
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every identifier token `word` in the code, by line.
fn token_lines(code: &str, word: &str) -> Vec<usize> {
    let bytes = code.as_bytes();
    code.match_indices(word)
        .filter(|(at, _)| {
            let before = *at == 0 || !is_ident_byte(bytes[at - 1]);
            let after = bytes.get(at + word.len()).is_none_or(|&c| !is_ident_byte(c));
            before && after
        })
        .map(|(at, _)| line_of(code, at))
        .collect()
}

/// The first segment of every `crate::…` path in the source, with its line: `crate::a::b` gives
/// `a`; `crate::{a, b::c, d::{e}}` gives `a`, `b`, `d`. Comments, strings, `pub(crate)` and
/// `$crate` do not count.
fn crate_refs(src: &str) -> Vec<(usize, String)> {
    let code = code_only(src);
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate") {
        if at > 0 && (is_ident_byte(bytes[at - 1]) || bytes[at - 1] == b'$') {
            continue;
        }
        let mut i = at + "crate".len();
        if bytes.get(i).is_some_and(|&c| is_ident_byte(c)) {
            continue;
        }
        while bytes.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if !code[i..].starts_with("::") {
            continue;
        }
        i += 2;
        while bytes.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if bytes.get(i) == Some(&b'{') {
            group_heads(&code, i, &mut out);
        } else if let Some((name, start)) = ident_at(&code, i) {
            out.push((line_of(&code, start), name));
        }
    }
    out
}

fn ident_at(code: &str, i: usize) -> Option<(String, usize)> {
    let bytes = code.as_bytes();
    let mut j = i;
    while bytes.get(j).is_some_and(|&c| is_ident_byte(c)) {
        j += 1;
    }
    (j > i).then(|| (code[i..j].to_string(), i))
}

/// The first identifier of each top-level item of the `{…}` group opening at `open`.
fn group_heads(code: &str, open: usize, out: &mut Vec<(usize, String)>) {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut expect_head = true;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                if depth == 1 {
                    expect_head = true;
                }
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
                i += 1;
            }
            b',' if depth == 1 => {
                expect_head = true;
                i += 1;
            }
            c if depth == 1 && expect_head && is_ident_byte(c) => {
                let (name, start) = ident_at(code, i).expect("an identifier");
                i = start + name.len();
                expect_head = false;
                if name != "self" {
                    out.push((line_of(code, start), name));
                }
            }
            _ => i += 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rules

/// Every broken rule in `files` (`(path relative to src, contents)`), as `file:line: problem`.
fn check(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, src) in files {
        let place = place(rel);
        let lines = src.lines().count();
        if lines > MAX_LINES {
            problems.push(format!("{rel}: {lines} lines (at most {MAX_LINES})"));
        }
        if !src.trim_start().starts_with("//!") {
            problems.push(format!("{rel}:1: no `//!` header saying what the file is for"));
        }
        let layer = match place {
            Place::Wiring => continue,
            Place::Stray => {
                problems.push(format!("{rel}: a root module in no layer (move it into one)"));
                continue;
            }
            Place::Foundation => "foundation",
            Place::Layer(l) => l,
        };
        let code = code_only(src);
        let textual: [(&str, bool); 6] = [
            ("sqlx", layer == "store" || rel == "error.rs"),
            (
                "axum",
                !["domain", "store", "services", "mqtt", "workers", "foundation"].contains(&layer),
            ),
            ("rumqttc", layer == "mqtt"),
            ("rumqttd", layer == "mqtt"),
            ("rmqtt", layer == "mqtt"),
            ("handy_grpc", layer == "mqtt"),
        ];
        for (word, allowed) in textual {
            if !allowed {
                for line in token_lines(&code, word) {
                    problems.push(format!("{rel}:{line}: {layer} names `{word}`"));
                }
            }
        }
        let may: &[&str] = LAYERS
            .iter()
            .find(|(l, _)| *l == layer)
            .map_or(&[], |(_, may)| may);
        for (line, name) in crate_refs(src) {
            let name = name.as_str();
            if FOUNDATION.contains(&name) || name == layer {
                continue;
            }
            let is_layer = LAYERS.iter().any(|(l, _)| *l == name);
            if !is_layer {
                problems.push(format!(
                    "{rel}:{line}: `crate::{name}` is not a layer or foundation module \
                     (write the full path, e.g. `crate::services::AppState`, not a root re-export)"
                ));
            } else if layer == "foundation" || !may.contains(&name) {
                problems.push(format!("{rel}:{line}: {layer} imports {name}"));
            }
        }
    }
    // By file in order, then by line number; each once.
    let key = |p: &String| {
        let (file, rest) = p.split_once(':').unwrap_or((p.as_str(), ""));
        let line: usize = rest.split(':').next().and_then(|l| l.parse().ok()).unwrap_or(0);
        (files.iter().position(|(f, _)| f == file), line, p.clone())
    };
    problems.sort_by_key(key);
    problems.dedup();
    problems
}

fn rs_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source directory")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).expect("readable source")));
        }
    }
}

#[test]
fn the_server_source_keeps_the_import_rule_of_its_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&root, &root, &mut files);
    assert!(
        files.len() > 50,
        "read the server's source ({} files)",
        files.len()
    );
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "the layers' rules are broken ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every `.rs` file of the workspace (tests, agent, tools and fuzz targets too, not build output
/// or hidden directories) is at most [`MAX_LINES`] long.
#[test]
fn no_file_of_the_workspace_is_longer_than_800_lines() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut files = Vec::new();
    for member in ["protocol", "server", "edge-agent", "firmware-config", "tests"] {
        workspace_rs(&workspace.join(member), workspace, &mut files);
    }
    assert!(files.len() > 150, "read the workspace ({} files)", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(rel, lines)| format!("{rel}: {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// `(path relative to the workspace, line count)` of the `.rs` files under `dir`, skipping
/// `target` and hidden directories.
fn workspace_rs(dir: &Path, root: &Path, out: &mut Vec<(String, usize)>) {
    for entry in std::fs::read_dir(dir).expect("workspace directory") {
        let p = entry.expect("directory entry").path();
        let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                workspace_rs(&p, root, out);
            }
        } else if name.ends_with(".rs") {
            let rel = p.strip_prefix(root).expect("under the workspace");
            let text = std::fs::read_to_string(&p).expect("readable source");
            out.push((rel.to_string_lossy().to_string(), text.lines().count()));
        }
    }
}

#[test]
fn grouped_uses_paths_in_expressions_and_types_are_all_found() {
    let src = "use crate::{domain, store::outbox::{self, Wake}, http::{auth, form::Fields}};\n\
               use crate::error::Result;\n\
               fn f(s: &crate::services::AppState) -> crate::error::Result<()> {\n\
               \x20   let t = crate::store::now_ms(); let u = crate :: mqtt :: Signer::new;\n\
               \x20   Ok(())\n\
               }\n";
    let refs = crate_refs(src);
    assert_eq!(
        refs,
        vec![
            (1, "domain".to_string()),
            (1, "store".to_string()),
            (1, "http".to_string()),
            (2, "error".to_string()),
            (3, "services".to_string()),
            (3, "error".to_string()),
            (4, "store".to_string()),
            (4, "mqtt".to_string()),
        ]
    );
}

#[test]
fn comments_strings_and_visibility_are_not_imports() {
    let src = "//! See [`crate::workers`].\n\
               /// Uses crate::http, /* nested /* crate::console */ still */ a comment.\n\
               pub(crate) fn f() -> &'static str {\n\
               \x20   let _c = '\"'; let _l: &'static str = \"crate::workers \\\" crate::mqtt\";\n\
               \x20   let _r = r#\"crate::board \"quoted\" \"#; let _b = b'x'; let _q = '\\''; let _s = \"crate::x\";\n\
               \x20   /* crate::console */ $crate::http::x; crate::store::y\n\
               }\n";
    assert_eq!(crate_refs(src), vec![(6, "store".to_string())]);
    let code = code_only(src);
    assert!(token_lines(&code, "workers").is_empty());
    assert_eq!(token_lines("let sqlx_pool = 1; sqlx::query(q)", "sqlx"), vec![1]);
}

#[test]
fn a_bad_import_or_token_is_reported_with_its_file_and_line() {
    let files = vec![
        (
            "services/bad.rs".to_string(),
            "//! A use case.\nuse crate::store::Store;\nuse crate::{domain, workers::Context};\n\
             fn f() { let _ = crate::AppState::clone; sqlx::query(\"\"); }\n"
                .to_string(),
        ),
        (
            "domain/bad.rs".to_string(),
            "//! Pure.\nuse axum::Json;\nuse crate::store::Store;\n".to_string(),
        ),
        (
            "http/noheader.rs".to_string(),
            "use crate::services::AppState;\n".to_string(),
        ),
        ("stray.rs".to_string(), "//! Somewhere.\n".to_string()),
        (
            "console/ok.rs".to_string(),
            "//! A page.\nuse crate::http::form::Fields;\nuse crate::services::AppState;\n".to_string(),
        ),
    ];
    let problems = check(&files);
    let expected = [
        "services/bad.rs:3: services imports workers",
        "services/bad.rs:4: services names `sqlx`",
        "domain/bad.rs:2: domain names `axum`",
        "domain/bad.rs:3: domain imports store",
        "http/noheader.rs:1: no `//!` header",
        "stray.rs: a root module in no layer",
    ];
    for e in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "`{e}` not reported; got:\n{}",
            problems.join("\n")
        );
    }
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("services/bad.rs:4: `crate::AppState` is not a layer")),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), expected.len() + 1, "{problems:#?}");
}

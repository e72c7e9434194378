//! Speech engines behind one trait ([`TtsEngine`]): the default [`EspeakEngine`] (the
//! `espeak-ng` program) and [`CommandEngine`] (any program that reads text and writes a WAV file,
//! e.g. Piper with a voice model the operator installed). The cloud adapter is
//! [`super::cloud::HttpEngine`]. Placeholders in a command's arguments are filled by [`fill`].

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use crate::config::TtsEngineSettings;
use crate::error::{Error, Result};

/// The engine's own voice and the speed and pitch asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVoice {
    /// The engine's voice id (espeak-ng `vi`, a Piper model's speaker, a cloud voice name).
    pub id: String,
    /// Words per minute (80–450; 150 is normal speed).
    pub speed: u32,
    /// Pitch 0–99 (50 is normal).
    pub pitch: u32,
}

impl EngineVoice {
    /// The placeholder values of this voice and `text`.
    pub fn vars(&self, text: &str) -> Vec<(&'static str, String)> {
        vec![
            ("text", text.to_string()),
            ("voice", self.id.clone()),
            ("speed", self.speed.to_string()),
            ("rate", format!("{:.2}", self.speed as f64 / 150.0)),
            ("length_scale", format!("{:.2}", 150.0 / self.speed.max(1) as f64)),
            ("pitch", self.pitch.to_string()),
        ]
    }
}

/// Replace every `{name}` of `vars` in `template`.
pub fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// A speech synthesiser.
pub trait TtsEngine: Send + Sync + 'static {
    /// Engine name (`espeak-ng`, or the name in `[[tts.engines]]`).
    fn name(&self) -> &str;
    /// Version, part of the cache key.
    fn version(&self) -> &str;
    /// Whether espeak-ng stands in when this engine fails.
    fn falls_back(&self) -> bool {
        false
    }
    /// Synthesise already-normalised `text`; the bytes of an audio file (WAV, or any format
    /// symphonia decodes).
    fn synthesize<'a>(
        &'a self,
        text: &'a str,
        voice: &'a EngineVoice,
        scratch: &'a Path,
    ) -> BoxFuture<'a, Result<Vec<u8>>>;
}

/// Run `program` with `args`, `stdin` written to it, within `timeout`; the process is killed
/// when the time is up. Errors name the program and carry its stderr.
async fn run(program: &Path, args: &[String], stdin: Option<&str>, timeout: Duration) -> Result<()> {
    let name = program.display().to_string();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::context(format!("cannot run {name}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
        drop(pipe);
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| Error::internal(format!("{name} took longer than {} ms", timeout.as_millis())))??;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .trim()
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(Error::internal(format!("{name} failed ({}): {tail}", out.status)));
    }
    Ok(())
}

fn temp_wav(scratch: &Path) -> Result<tempfile::NamedTempFile> {
    std::fs::create_dir_all(scratch)?;
    Ok(tempfile::Builder::new()
        .prefix("tts-")
        .suffix(".wav")
        .tempfile_in(scratch)?)
}

/// The default engine: the `espeak-ng` program (text on stdin, WAV written with `-w`, no shell).
#[derive(Debug, Clone)]
pub struct EspeakEngine {
    /// Program path or name (default `espeak-ng`).
    pub program: String,
    version: String,
}

impl EspeakEngine {
    /// The engine for `program`; its version is what `program --version` prints.
    pub fn new(program: &str) -> EspeakEngine {
        let version = std::process::Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown".into());
        EspeakEngine {
            program: program.to_string(),
            version,
        }
    }

    /// espeak-ng's voices: `vi` (Northern), `vi-vn-x-central`, `vi-vn-x-south`.
    pub const VOICES: [(&'static str, &'static str, &'static str); 3] = [
        ("vi", "north", "espeak-ng, miền Bắc"),
        ("vi-vn-x-central", "central", "espeak-ng, miền Trung"),
        ("vi-vn-x-south", "south", "espeak-ng, miền Nam"),
    ];
}

impl TtsEngine for EspeakEngine {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn synthesize<'a>(
        &'a self,
        text: &'a str,
        voice: &'a EngineVoice,
        scratch: &'a Path,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let out = temp_wav(scratch)?;
            let args = [
                "-v",
                &voice.id,
                "-s",
                &voice.speed.to_string(),
                "-p",
                &voice.pitch.to_string(),
                "-w",
                &out.path().display().to_string(),
                "--stdin",
            ]
            .map(str::to_string);
            run(
                Path::new(&self.program),
                &args,
                Some(text),
                Duration::from_secs(300),
            )
            .await?;
            Ok(tokio::fs::read(out.path()).await?)
        })
    }
}

/// A program that reads the text (on stdin, or from `{text}` in its arguments) and writes a WAV
/// file to `{output}`: Piper (`piper --model vi_VN-….onnx --output_file {output}
/// --length_scale {length_scale}`), or any other.
#[derive(Debug, Clone)]
pub struct CommandEngine {
    settings: TtsEngineSettings,
    version: String,
}

impl CommandEngine {
    /// The engine of one `[[tts.engines]]` entry of kind `command`.
    pub fn new(settings: TtsEngineSettings) -> CommandEngine {
        let program = settings
            .program
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let version = format!("{} {}", program, settings.version);
        CommandEngine { settings, version }
    }
}

impl TtsEngine for CommandEngine {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn falls_back(&self) -> bool {
        self.settings.fallback
    }

    fn synthesize<'a>(
        &'a self,
        text: &'a str,
        voice: &'a EngineVoice,
        scratch: &'a Path,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let out = temp_wav(scratch)?;
            let mut vars = voice.vars(text);
            vars.push(("output", out.path().display().to_string()));
            let args: Vec<String> = self.settings.args.iter().map(|a| fill(a, &vars)).collect();
            let program = self
                .settings
                .program
                .as_deref()
                .ok_or_else(|| Error::internal("command engine without a program"))?;
            let stdin = self.settings.text_on_stdin.then_some(text);
            run(
                program,
                &args,
                stdin,
                Duration::from_millis(self.settings.timeout_ms),
            )
            .await?;
            let bytes = tokio::fs::read(out.path()).await?;
            if bytes.is_empty() {
                return Err(Error::internal(format!("{} wrote no audio", program.display())));
            }
            Ok(bytes)
        })
    }
}

//! A decoded play on a blocking thread: opens the first input and decodes its first packet before
//! the start instant, waits for that instant, then writes each packet at its due time, obeying
//! pause / resume / stop from the player; writes the WAV sidecar and reports how the play ended.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::chan::BoxSender;
use chrono::{DateTime, SecondsFormat, Utc};
use nguon_protocol::PlayOutcome;
use tokio::sync::watch;

use super::convert::Converter;
use super::level::Meter;
#[cfg(feature = "playback")]
use super::output::SpeakerOutput;
use super::output::{Output, WavOutput, file_stem};
use super::{Ctrl, Decoder, Input, PlayEnd, PlayEvent, PlayJob, Sink};
use crate::clock::Clock;
use crate::error::AgentError;

enum Flow {
    Go,
    /// Stop; `true`: counted as complete ([`Ctrl::Finish`]).
    Stop(bool),
}

/// Wait until `deadline`, obeying controls; a pause shifts `t0` and the deadline by its length.
fn wait_until(
    rx: &Receiver<Ctrl>,
    deadline: &mut Instant,
    t0: &mut Instant,
    out: &mut dyn Output,
    paused: &mut bool,
) -> Flow {
    loop {
        let now = Instant::now();
        let msg = if now >= *deadline {
            match rx.try_recv() {
                Ok(c) => Ok(c),
                Err(_) => return Flow::Go,
            }
        } else {
            rx.recv_timeout(*deadline - now)
        };
        match msg {
            Ok(Ctrl::Stop) => return Flow::Stop(false),
            Ok(Ctrl::Finish) => return Flow::Stop(true),
            Ok(Ctrl::Resume) => {}
            Ok(Ctrl::Pause) => {
                out.pause();
                let held = Instant::now();
                loop {
                    match rx.recv() {
                        Ok(Ctrl::Resume) => break,
                        Ok(Ctrl::Pause) => {}
                        Ok(Ctrl::Finish) => return Flow::Stop(true),
                        Ok(Ctrl::Stop) | Err(_) => return Flow::Stop(false),
                    }
                }
                out.resume();
                let d = held.elapsed();
                *t0 += d;
                *deadline += d;
                *paused = true;
            }
            Err(RecvTimeoutError::Timeout) => return Flow::Go,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return Flow::Go;
            }
        }
    }
}

/// The JSON written beside each WAV file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct WavSidecar {
    /// Occurrence id.
    pub item_id: String,
    /// First media file.
    pub sha256: String,
    /// Priority.
    pub priority: nguon_protocol::Priority,
    /// Scheduled instant, RFC 3339 with ns.
    pub scheduled_at: String,
    /// Scheduled instant, unix ns.
    pub scheduled_unix_ns: i64,
    /// First sample, RFC 3339 with ns.
    pub first_sample_at: Option<String>,
    /// First sample, unix ns.
    pub first_sample_unix_ns: Option<i64>,
    /// Last sample, RFC 3339 with ns.
    pub ended_at: String,
    /// Outcome as far as the output knows.
    pub outcome: PlayOutcome,
    /// Error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RMS of the loudest 1-second window of the samples written, dBFS (`sink::level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rms_dbfs: Option<f32>,
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn run_decoded(
    sink: &Sink,
    job: PlayJob,
    clock: Clock,
    rx: Receiver<Ctrl>,
    stop: watch::Receiver<bool>,
    events: BoxSender<PlayEvent>,
) {
    let token = job.token;
    let mut first: Option<DateTime<Utc>> = None;
    let mut paused = false;
    let mut meter = Meter::default();
    let result = play_decoded(
        sink,
        &job,
        &clock,
        &rx,
        &stop,
        &events,
        (&mut first, &mut paused, &mut meter),
    );
    let ended_at = clock.now();
    let level = meter.finish();
    let relay = job.inputs.first().and_then(|i| match i {
        Input::Relay(r) => Some(r.report.lock().expect("relay report").clone()),
        _ => None,
    });
    let (completed, error) = match result {
        Ok(c) => (c, None),
        // A stream cut short by a stop fails to read: that is the stop, not an error.
        Err(_) if *stop.borrow() => {
            let finish = rx.try_iter().any(|c| c == Ctrl::Finish);
            (finish && first.is_some(), None)
        }
        Err(e) => (false, Some(e.to_string())),
    };
    if let Sink::Wav(dir) = sink {
        let outcome = match (&error, completed, paused) {
            (Some(_), _, _) => PlayOutcome::Failed,
            (None, true, true) => PlayOutcome::Resumed,
            (None, true, false) => PlayOutcome::Played,
            (None, false, _) => PlayOutcome::Interrupted,
        };
        let side = WavSidecar {
            item_id: job.item.id.clone(),
            sha256: job.item.media.first().cloned().unwrap_or_default(),
            priority: job.item.priority,
            scheduled_at: rfc(job.item.starts_at),
            scheduled_unix_ns: job.item.starts_at.timestamp_nanos_opt().unwrap_or(0),
            first_sample_at: first.map(rfc),
            first_sample_unix_ns: first.and_then(|t| t.timestamp_nanos_opt()),
            ended_at: rfc(ended_at),
            outcome,
            error: error.clone(),
            max_rms_dbfs: level.map(|l| l.max_rms_dbfs),
        };
        let path = dir.join(format!("{}.json", file_stem(&job.item.id)));
        let bytes = serde_json::to_vec_pretty(&side).expect("sidecar serialises");
        if let Err(e) = crate::store::write_atomic(&path, &bytes) {
            tracing::error!(error = %e, "cannot write WAV sidecar");
        }
    }
    let _ = events.send(PlayEvent::Ended {
        token,
        end: PlayEnd {
            first_sample: first,
            ended_at,
            completed,
            paused,
            error,
            level,
            relay,
        },
    });
}

/// What a play keeps whatever way it ends: its first sample, whether it was held, its meter.
type Progress<'a> = (&'a mut Option<DateTime<Utc>>, &'a mut bool, &'a mut Meter);

fn play_decoded(
    sink: &Sink,
    job: &PlayJob,
    clock: &Clock,
    rx: &Receiver<Ctrl>,
    stop: &watch::Receiver<bool>,
    events: &BoxSender<PlayEvent>,
    (first, paused, meter): Progress<'_>,
) -> Result<bool, AgentError> {
    let mut out: Box<dyn Output> = match sink {
        Sink::Wav(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
            Box::new(WavOutput {
                dir: dir.clone(),
                stem: file_stem(&job.item.id),
                gain: job.gain,
                part: 0,
                writer: None,
                scratch: Vec::new(),
            })
        }
        #[cfg(feature = "playback")]
        Sink::Speaker(dev) => Box::new(SpeakerOutput::open(dev, job.gain)?),
        #[cfg(not(feature = "playback"))]
        Sink::Speaker(_) => {
            return Err(AgentError::Audio(
                "this agent was built without the `playback` feature; use wav:<dir> or null".into(),
            ));
        }
        Sink::Null => unreachable!("the null sink does not decode"),
    };
    let mut inputs = job.inputs.iter();
    let Some(f0) = inputs.next() else {
        return Ok(true);
    };
    // A relay's stream comes first; the inputs after it are its fallback.
    let relay = match f0 {
        Input::Relay(r) => Some(r),
        _ => None,
    };
    let mut on_relay = relay.is_some();
    // Prepare before the start: open and decode the first packet (a relay that gives no audio
    // for its fallback time turns to the fallback).
    let (mut dec, mut pending) = match open_first(f0, stop) {
        Ok(x) => x,
        Err(e) if on_relay => {
            on_relay = false;
            fall_back(relay, &e);
            match inputs.next() {
                Some(f) => open_first(f, stop)?,
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let mut t0 = job.start;
    let mut deadline = job.start;
    if let Flow::Stop(_) = wait_until(rx, &mut deadline, &mut t0, out.as_mut(), paused) {
        out.finish(false)?;
        return Ok(false);
    }
    t0 = deadline;
    let mut pos = Duration::ZERO;
    let mut relay_pos = Duration::ZERO;
    let mut conv = Converter::new(job.format);
    loop {
        if job.until.is_some_and(|u| Instant::now() >= u) {
            // The relay's window ended (the fallback is cut there).
            break;
        }
        let (rate, ch, owned);
        let samples: &[f32] = if let Some((r, c, s)) = pending.take() {
            rate = r;
            ch = c;
            owned = s;
            &owned
        } else {
            match dec.next_chunk() {
                Ok(Some((r, c, s))) => {
                    rate = r;
                    ch = c;
                    owned = s.to_vec();
                    &owned
                }
                // The relay's window ended.
                Ok(None) if on_relay => break,
                Ok(None) => match inputs.next() {
                    Some(f) => {
                        dec = Decoder::open_input(f, stop)?;
                        continue;
                    }
                    None => break,
                },
                Err(e) if on_relay && !*stop.borrow() => {
                    on_relay = false;
                    fall_back(relay, &e);
                    match inputs.next() {
                        Some(f) => {
                            dec = Decoder::open_input(f, stop)?;
                            continue;
                        }
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let mut due = (t0 + pos).checked_sub(out.write_ahead()).unwrap_or(t0);
        if first.is_some()
            && let Flow::Stop(done) = wait_until(rx, &mut due, &mut t0, out.as_mut(), paused)
        {
            out.finish(false)?;
            return Ok(done);
        }
        if first.is_none() {
            let at = clock.now();
            *first = Some(at);
            let _ = events.send(PlayEvent::FirstSample { token: job.token, at });
        }
        let frames = samples.len() / ch.max(1) as usize;
        let (orate, och, converted) = conv.push(rate, ch, dec.channel_mask(), samples)?;
        if !converted.is_empty() {
            out.write(orate, och, converted)?;
            meter.push(orate, och, converted, job.gain);
        }
        let d = Duration::from_secs_f64(frames as f64 / rate.max(1) as f64);
        pos += d;
        if on_relay && let Some(r) = relay {
            relay_pos += d;
            r.note(|x| x.stream_ms = relay_pos.as_millis() as u64);
        }
    }
    // Let the last packet's time pass, so "ended" is when the last sample went out.
    let mut due = t0 + pos;
    if let Flow::Stop(done) = wait_until(rx, &mut due, &mut t0, out.as_mut(), paused) {
        out.finish(false)?;
        return Ok(done && first.is_some());
    }
    if let Some((rate, ch, rest)) = conv.finish()?
        && !rest.is_empty()
    {
        out.write(rate, ch, rest)?;
        meter.push(rate, ch, rest, job.gain);
    }
    out.finish(true)?;
    Ok(true)
}

/// A decoder with its first packet (rate, channels, samples), if it had one.
type Opened = (Decoder, Option<(u32, u16, Vec<f32>)>);

/// Open an input and decode its first packet.
fn open_first(input: &Input, stop: &watch::Receiver<bool>) -> Result<Opened, AgentError> {
    let mut dec = Decoder::open_input(input, stop)?;
    let first = dec.next_chunk()?.map(|(r, c, s)| (r, c, s.to_vec()));
    Ok((dec, first))
}

/// A relay's stream failed: say so in its report; the fallback (if any) plays instead.
fn fall_back(relay: Option<&super::RelayInput>, e: &AgentError) {
    if let Some(r) = relay {
        tracing::warn!(url = %r.url, error = %e, "relay failed; the fallback plays");
        r.note(|x| {
            x.failed = true;
            x.error = Some(e.to_string());
        });
    }
}

//! The amplifier relay (issue 12 §5, `[amplifier]` in the configuration): switched on `preroll_ms`
//! before the first sample of an item and off `postroll_ms` after the last, so the amplifier has
//! settled before the audio starts (OBPlayer users lose the first seconds of alerts otherwise).
//!
//! - [`Relay`]: the switch itself, a GPIO output line of the Linux character device (`gpiocdev`,
//!   requested once at start, so a wrong chip or line stops the agent at start with the key named)
//!   or a command hook run with `on` / `off` appended.
//! - [`AmpState`]: the decision, pure: given when the next first sample is due (the player's queue
//!   knows it: now for whatever plays, is held or waits; otherwise the next armed or pending
//!   item's start), whether to switch and when to look again. Items closer together than the
//!   post-roll keep the relay on in between.
//! - [`Amp`]: the player's side: the state, and a task that carries out the switches in order.
//!
//! The scheduled instant stays sample-accurate: the relay switches early, the audio never starts
//! late. Only an item with no lead time (a play-now command, a late item caught up inside its
//! window) waits for the relay: the relay goes on when the item arrives and its first sample goes
//! out when the relay has been on for `preroll_ms` (or when its media is ready, if later). A
//! scheduled item learned less than `preroll_ms` before its start still starts on time; its
//! pre-roll is what was left.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gpiocdev::line::Value;
use nguon_device_config::AmplifierSection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::AgentError;

/// How long a hook may run before the agent stops waiting for it.
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The physical switch.
#[derive(Debug)]
pub struct Relay {
    kind: Kind,
    /// Before the first sample.
    pub preroll: Duration,
    /// After the last sample.
    pub postroll: Duration,
}

#[derive(Debug)]
enum Kind {
    Gpio { request: gpiocdev::Request, line: u32 },
    Hook(Vec<String>),
}

impl Relay {
    /// Open the relay a configuration names (a GPIO line is requested now, as an output, off).
    pub fn open(cfg: &AmplifierSection) -> Result<Relay, AgentError> {
        let kind = match (&cfg.gpio, &cfg.hook) {
            (Some(g), _) => {
                let mut b = gpiocdev::Request::builder();
                b.on_chip(&g.chip)
                    .with_consumer("nguon-agent amplifier")
                    .with_line(g.line);
                if g.active_low {
                    b.as_active_low();
                }
                let request = b.as_output(Value::Inactive).request().map_err(|e| {
                    AgentError::Setup(format!(
                        "amplifier.gpio: line {} of {}: {e}",
                        g.line,
                        g.chip.display()
                    ))
                })?;
                Kind::Gpio {
                    request,
                    line: g.line,
                }
            }
            (None, Some(h)) if !h.is_empty() => Kind::Hook(h.clone()),
            _ => return Err(AgentError::Setup("amplifier: set `gpio` or `hook`".into())),
        };
        Ok(Relay {
            kind,
            preroll: Duration::from_millis(cfg.preroll_ms as u64),
            postroll: Duration::from_millis(cfg.postroll_ms as u64),
        })
    }

    /// Switch; a failure is logged (the audio plays anyway).
    async fn set(&self, on: bool) {
        let word = if on { "on" } else { "off" };
        match &self.kind {
            Kind::Gpio { request, line } => {
                let v = if on { Value::Active } else { Value::Inactive };
                if let Err(e) = request.set_value(*line, v) {
                    tracing::error!(error = %e, line, "cannot switch the amplifier relay {word}");
                }
            }
            Kind::Hook(cmd) => {
                let run = tokio::process::Command::new(&cmd[0])
                    .args(&cmd[1..])
                    .arg(word)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status();
                match tokio::time::timeout(HOOK_TIMEOUT, run).await {
                    Ok(Ok(s)) if s.success() => {}
                    Ok(Ok(s)) => {
                        tracing::error!(hook = %cmd[0], status = %s, "amplifier hook `{word}` failed")
                    }
                    Ok(Err(e)) => {
                        tracing::error!(hook = %cmd[0], error = %e, "cannot run the amplifier hook")
                    }
                    Err(_) => {
                        tracing::error!(hook = %cmd[0], "amplifier hook `{word}` did not end within 10 s")
                    }
                }
            }
        }
    }
}

/// What the relay should do, decided from the time alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmpState {
    preroll: chrono::Duration,
    postroll: chrono::Duration,
    /// Since when it is on (`None`: off).
    on_since: Option<DateTime<Utc>>,
    /// Since when nothing needs it while it is on.
    idle_since: Option<DateTime<Utc>>,
}

impl AmpState {
    /// Off, with these rolls.
    pub fn new(preroll: Duration, postroll: Duration) -> Self {
        Self {
            preroll: chrono::Duration::from_std(preroll).unwrap_or_default(),
            postroll: chrono::Duration::from_std(postroll).unwrap_or_default(),
            on_since: None,
            idle_since: None,
        }
    }

    /// Whether it is on.
    pub fn is_on(&self) -> bool {
        self.on_since.is_some()
    }

    /// `next`: when the next first sample is due (now or earlier for anything playing, held or
    /// waiting; `None`: nothing to play). Returns the switch to make now, if any, and when to
    /// call again (`None`: only when something changes).
    pub fn step(
        &mut self,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (Option<bool>, Option<DateTime<Utc>>) {
        let on_at = next.map(|t| t - self.preroll);
        let Some(_) = self.on_since else {
            return match on_at {
                Some(t) if t <= now => {
                    self.on_since = Some(now);
                    self.idle_since = None;
                    (Some(true), None)
                }
                other => (None, other),
            };
        };
        if on_at.is_some_and(|t| t <= now) {
            // Needed now, or its pre-roll has begun.
            self.idle_since = None;
            return (None, None);
        }
        let off_at = *self.idle_since.get_or_insert(now) + self.postroll;
        if off_at <= now {
            self.on_since = None;
            self.idle_since = None;
            return (Some(false), on_at);
        }
        (None, Some(on_at.map_or(off_at, |t| t.min(off_at))))
    }

    /// For an item that starts as soon as possible: switch on now if off (the switch to make),
    /// and the earliest instant its first sample may go out (on since + pre-roll).
    pub fn ready_at(&mut self, now: DateTime<Utc>) -> (Option<bool>, DateTime<Utc>) {
        self.idle_since = None;
        match self.on_since {
            Some(t) => (None, (t + self.preroll).max(now)),
            None => {
                self.on_since = Some(now);
                (Some(true), now + self.preroll)
            }
        }
    }
}

/// The player's amplifier: the decision and the task that switches the relay, in order.
#[derive(Debug)]
pub struct Amp {
    /// The decision.
    pub state: AmpState,
    tx: mpsc::UnboundedSender<bool>,
    task: JoinHandle<()>,
}

impl Amp {
    /// Start the switching task; the relay is switched off first (a known state after a crash or
    /// a power cut).
    pub fn start(relay: Arc<Relay>) -> Amp {
        let (tx, mut rx) = mpsc::unbounded_channel::<bool>();
        let state = AmpState::new(relay.preroll, relay.postroll);
        let task = tokio::spawn(async move {
            while let Some(on) = rx.recv().await {
                relay.set(on).await;
            }
        });
        let _ = tx.send(false);
        Amp { state, tx, task }
    }

    /// Carry out a switch the state decided.
    pub fn switch(&self, on: Option<bool>) {
        if let Some(on) = on {
            tracing::info!(on, "amplifier relay");
            let _ = self.tx.send(on);
        }
    }

    /// Switch off (if on) and wait for the task to finish its switches.
    pub async fn close(self) {
        if self.state.is_on() {
            let _ = self.tx.send(false);
        }
        drop(self.tx);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn amp() -> AmpState {
        AmpState::new(Duration::from_millis(1500), Duration::from_millis(2000))
    }

    #[test]
    fn the_relay_goes_on_a_preroll_before_the_first_sample_and_off_a_postroll_after_the_last() {
        let mut a = amp();
        // An item at 10 s: wake at 8.5 s, on then.
        assert_eq!(a.step(Some(t(10_000)), t(0)), (None, Some(t(8_500))));
        assert_eq!(a.step(Some(t(10_000)), t(8_500)), (Some(true), None));
        // Playing (due "now"): stays on.
        assert_eq!(a.step(Some(t(11_000)), t(11_000)), (None, None));
        // It ended at 15 s and nothing follows: off at 17 s.
        assert_eq!(a.step(None, t(15_000)), (None, Some(t(17_000))));
        assert_eq!(a.step(None, t(16_999)), (None, Some(t(17_000))));
        assert_eq!(a.step(None, t(17_000)), (Some(false), None));
    }

    #[test]
    fn items_closer_than_the_postroll_keep_it_on_and_farther_ones_switch_it_again() {
        let mut a = amp();
        a.step(Some(t(0)), t(0));
        // Ended at 5 s; next item at 8 s: its pre-roll (6.5 s) begins before the post-roll ends (7 s).
        assert_eq!(a.step(Some(t(8_000)), t(5_000)), (None, Some(t(6_500))));
        assert_eq!(a.step(Some(t(8_000)), t(6_500)), (None, None));
        assert!(a.is_on());
        // Ended at 10 s; next at 20 s: off at 12 s, on again at 18.5 s.
        assert_eq!(a.step(Some(t(20_000)), t(10_000)), (None, Some(t(12_000))));
        assert_eq!(a.step(Some(t(20_000)), t(12_000)), (Some(false), Some(t(18_500))));
        assert_eq!(a.step(Some(t(20_000)), t(18_500)), (Some(true), None));
    }

    #[test]
    fn an_item_without_lead_time_waits_for_the_preroll_and_one_already_covered_does_not() {
        let mut a = amp();
        assert_eq!(a.ready_at(t(1_000)), (Some(true), t(2_500)));
        // The relay has been on long enough: at once.
        assert_eq!(a.ready_at(t(4_000)), (None, t(4_000)));
        // A late item learned 0.5 s before its start: on now, the start is not moved.
        let mut b = amp();
        assert_eq!(b.step(Some(t(500)), t(0)), (Some(true), None));
    }
}

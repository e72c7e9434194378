//! The null sink: no decoding; waits for the start, then the media duration (from the manifest),
//! obeying pause, resume and stop like a real output (fleet simulator).

use crate::chan::BoxSender;

use super::{Ctrl, PlayEnd, PlayEvent, PlayJob};
use crate::clock::Clock;

pub(super) async fn run_null(
    job: PlayJob,
    clock: Clock,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Ctrl>,
    events: BoxSender<PlayEvent>,
) {
    let token = job.token;
    let end = |first, completed, paused| PlayEnd {
        first_sample: first,
        ended_at: clock.now(),
        completed,
        paused,
        error: None,
        level: None,
        relay: None,
    };
    let start = tokio::time::Instant::from_std(job.start);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(start) => break,
            c = rx.recv() => if matches!(c, Some(Ctrl::Stop | Ctrl::Finish) | None) {
                let _ = events.send(PlayEvent::Ended { token, end: end(None, false, false) });
                return;
            },
        }
    }
    let first = clock.now();
    let _ = events.send(PlayEvent::FirstSample { token, at: first });
    let mut remaining = job.duration;
    let mut paused = false;
    loop {
        let t = tokio::time::Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(remaining) => {
                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), true, paused) });
                return;
            }
            c = rx.recv() => match c {
                Some(Ctrl::Pause) => {
                    remaining = remaining.saturating_sub(t.elapsed());
                    loop {
                        match rx.recv().await {
                            Some(Ctrl::Resume) => { paused = true; break; }
                            Some(Ctrl::Pause) => {}
                            Some(Ctrl::Finish) => {
                                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), true, true) });
                                return;
                            }
                            Some(Ctrl::Stop) | None => {
                                let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), false, true) });
                                return;
                            }
                        }
                    }
                }
                Some(Ctrl::Resume) => { remaining = remaining.saturating_sub(t.elapsed()); }
                Some(Ctrl::Finish) => {
                    let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), true, paused) });
                    return;
                }
                Some(Ctrl::Stop) | None => {
                    let _ = events.send(PlayEvent::Ended { token, end: end(Some(first), false, paused) });
                    return;
                }
            }
        }
    }
}

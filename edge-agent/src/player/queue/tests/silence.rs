//! The loudness of a play goes with its report; a complete play below the threshold is silent.

use std::time::Duration as StdDuration;

use super::*;
use crate::sink::level::Level;

fn ended_with(level: Option<f32>, completed: bool) -> ProofOfPlay {
    let mut q = Q::new(rules());
    let token = start_now(&mut q, normal("a", 0), 0);
    q.first_sample(token, t(0));
    let mut e = end(Some(0), 30, completed);
    e.level = level.map(|db| Level {
        max_rms_dbfs: db,
        measured: StdDuration::from_secs(30),
    });
    let a = q.ended(token, &e, t(30));
    report(&a, "a").clone()
}

#[test]
fn a_complete_play_below_the_threshold_is_silent_and_carries_its_level() {
    let p = ended_with(Some(-63.4), true);
    assert_eq!(
        (p.outcome, p.max_rms_dbfs, p.silent),
        (PlayOutcome::Played, Some(-64), true)
    );
    let p = ended_with(Some(-12.2), true);
    assert_eq!((p.max_rms_dbfs, p.silent), (Some(-13), false));
    // Right at the threshold sounds.
    assert!(!ended_with(Some(-50.0), true).silent);
}

#[test]
fn an_interrupted_or_unmeasured_play_is_never_called_silent() {
    let p = ended_with(Some(-90.0), false);
    assert_eq!(
        (p.outcome, p.max_rms_dbfs, p.silent),
        (PlayOutcome::Interrupted, Some(-90), false)
    );
    let p = ended_with(None, true);
    assert_eq!((p.max_rms_dbfs, p.silent), (None, false));
}

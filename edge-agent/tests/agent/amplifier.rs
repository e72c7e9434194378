//! The amplifier relay (issue 12 §5) through a command hook that appends `on|off <unix ns>` to a
//! file, against the WAV sink's sidecars (first and last sample times): on a pre-roll before the
//! first sample, off a post-roll after the last, kept on between items closer than the post-roll,
//! and a play-now without lead time waits for the pre-roll.

use std::path::Path;

use chrono::{DateTime, Utc};
use nguon_protocol::{Command, OnPreempt, PlayOutcome, Priority};

use crate::common::*;
use crate::env::*;

const PREROLL_NS: i64 = 1_500_000_000;
const POSTROLL_NS: i64 = 2_000_000_000;
/// The agent decides "on" at exactly first sample − pre-roll (a tokio timer); the hook's own
/// timestamp comes later by the timer's wake-up latency plus a fork and exec of /bin/sh and of
/// `date`: a few ms on an idle machine, tens to a few hundred on the shared 2-core test box under
/// parallel builds. 300 ms is a fifth of the pre-roll: a relay switched with the audio (1.5 s
/// late, the bug this guards against) or not at all still fails. "Off" needs no tolerance: it is
/// decided after the play's end is known, so its timestamp can only be later.
const TOL_NS: i64 = 300_000_000;

fn relay_log(path: &Path) -> Vec<(String, i64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (w, t) = l.split_once(' ').expect("`on|off ns`");
            (w.to_string(), t.trim().parse().expect("ns"))
        })
        .collect()
}

fn ns(rfc: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc)
        .unwrap()
        .with_timezone(&Utc)
        .timestamp_nanos_opt()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_hook_switches_on_a_preroll_before_the_first_sample_and_off_a_postroll_after_the_last() {
    let env = Env::new("lc-amp");
    let log = env.tmp.path().join("relay.log");
    let hook = env.tmp.path().join("relay.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1 $(date +%s%N)\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cfg = std::fs::read_to_string(&env.config).unwrap();
    cfg.push_str(&format!(
        "\n[amplifier]\nhook = [\"{}\"]\npreroll_ms = 1500\npostroll_ms = 2000\n",
        hook.display()
    ));
    std::fs::write(&env.config, cfg).unwrap();

    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tone = tone_wav(&src, "tone", 1.0);
    let tr = env.media.add(std::fs::read(&tone).unwrap(), 1000);
    // a at T, b 1 s after a ends (closer than the post-roll: the relay stays on), c 5 s after b
    // ends (farther than post-roll + pre-roll: off, then on again).
    let t = Utc::now() + chrono::Duration::seconds(4);
    let ms = chrono::Duration::milliseconds;
    let a = item("amp-a@1", t, Priority::Normal, &tr, OnPreempt::Interrupt);
    let b = item(
        "amp-b@1",
        t + ms(2_000),
        Priority::Normal,
        &tr,
        OnPreempt::Interrupt,
    );
    let c = item(
        "amp-c@1",
        t + ms(8_000),
        Priority::Normal,
        &tr,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    let cl = env.client().await;
    env.desired(
        &cl,
        manifest(1, vec![a.clone(), b.clone(), c.clone()], vec![tr.clone()]),
    )
    .await;
    for it in [&a, &b, &c] {
        assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played, "{}", it.id);
    }
    // Off after c, then a play-now with no lead time.
    until(WAIT, || relay_log(&log).len() >= 5).await;
    let mut now_item = item(
        "amp-now",
        Utc::now(),
        Priority::Emergency,
        &tr,
        OnPreempt::Interrupt,
    );
    now_item.schedule_id = String::new();
    env.command(
        &cl,
        Command::PlayNow {
            item: now_item.clone(),
            media: vec![tr.clone()],
        },
    )
    .await;
    assert_eq!(ended(&mut rx, &now_item.id).await, PlayOutcome::Played);
    until(WAIT, || relay_log(&log).len() >= 7).await;
    agent.shutdown().await;

    let got = relay_log(&log);
    let words: Vec<&str> = got.iter().map(|(w, _)| w.as_str()).collect();
    // Off at start (a known state), then one on/off pair per group of close items.
    assert_eq!(words, ["off", "on", "off", "on", "off", "on", "off"], "{got:?}");
    let side = |id: &str| {
        let s = env.sidecar(id);
        assert_eq!(s.outcome, PlayOutcome::Played, "{id}");
        (
            s.first_sample_unix_ns.unwrap(),
            ns(&s.ended_at),
            s.scheduled_unix_ns,
        )
    };
    let (a_first, _, a_sched) = side(&a.id);
    let (b_first, b_last, _) = side(&b.id);
    let (c_first, c_last, c_sched) = side(&c.id);
    let (n_first, n_last, _) = side(&now_item.id);
    // The audio is not moved: the first sample is not before its instant.
    assert!(a_first >= a_sched && c_first >= c_sched);
    // a and b: one on before a, kept on through b, off a post-roll after b's last sample.
    let (on1, off1) = (got[1].1, got[2].1);
    assert!(
        on1 <= a_first - PREROLL_NS + TOL_NS,
        "on {} ms before a",
        (a_first - on1) / 1_000_000
    );
    assert!(
        off1 > b_first && off1 >= b_last + POSTROLL_NS,
        "off {} ms after b",
        (off1 - b_last) / 1_000_000
    );
    // c: on again a pre-roll before, off a post-roll after.
    let (on2, off2) = (got[3].1, got[4].1);
    assert!(
        on2 <= c_first - PREROLL_NS + TOL_NS,
        "on {} ms before c",
        (c_first - on2) / 1_000_000
    );
    assert!(off2 >= c_last + POSTROLL_NS);
    // Play-now: the relay goes on when it arrives, its first sample a pre-roll later.
    let (on3, off3) = (got[5].1, got[6].1);
    assert!(
        n_first >= on3 + PREROLL_NS - TOL_NS,
        "audio {} ms after on",
        (n_first - on3) / 1_000_000
    );
    assert!(off3 >= n_last + POSTROLL_NS);
}

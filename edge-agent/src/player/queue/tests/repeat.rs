//! Repetition of an emergency message: replays `{id}#k` expanded by the queue, kept across
//! manifests, late replays, cancel and stop.

use nguon_protocol::Repetition;

use super::*;

/// Emergency message `e` at 0 s, window until 400 s: plays at 0, 60, then every 120 s (180, 300).
fn repeating() -> ManifestItem {
    ManifestItem {
        schedule_id: String::new(),
        play_until: Some(t(400)),
        repetition: Some(Repetition {
            offsets_s: vec![0, 60],
            every_s: Some(120),
            preamble: Some("sha-pre".into()),
        }),
        ..item("e", Priority::Emergency, 0, OnPreempt::Interrupt)
    }
}

fn pending(q: &Q) -> Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> {
    q.pending()
        .iter()
        .map(|i| (i.id.clone(), i.starts_at, i.play_until))
        .collect()
}

#[test]
fn a_play_now_with_repetition_queues_its_replays_which_survive_a_manifest_and_play_with_the_preamble() {
    let mut q = Q::new(rules());
    let e = repeating();
    q.add_replays(&e, |_| false);
    q.play_now(e.clone(), false, t(0));
    let want = vec![
        ("e#1".to_string(), t(60), Some(t(180))),
        ("e#2".to_string(), t(180), Some(t(300))),
        ("e#3".to_string(), t(300), Some(t(400))),
    ];
    assert_eq!(pending(&q), want);
    // A manifest that does not carry the message keeps them.
    q.manifest(&manifest(vec![normal("n", 1000)]), |_| false);
    assert_eq!(pending(&q)[..3], want[..]);
    let a = q.tick(t(59));
    let Some(Action::Prepare {
        item: r,
        adhoc: false,
    }) = a.first()
    else {
        panic!("{a:?}")
    };
    assert_eq!(r.media, ["sha-pre", "sha-e"], "the preamble first");
    let tok = armed(&q.prepared(r.clone(), false, Ok("m"), t(59)), "e#1");
    q.tick(t(60));
    q.first_sample(tok, t(60));
    let p = report(&q.ended(tok, &end(Some(60), 70, true), t(70)), "e#1").clone();
    assert_eq!((p.outcome, p.sha256.as_str()), (PlayOutcome::Played, "sha-e"));
    // Reported replays are not queued again by a manifest carrying the message (the message
    // itself is still being prepared).
    q.manifest(&manifest(vec![e.clone()]), |_| false);
    let ids: Vec<String> = pending(&q).into_iter().map(|p| p.0).collect();
    assert_eq!(ids, ["e#2", "e#3"]);
}

#[test]
fn a_device_back_late_plays_the_replay_due_last_and_reports_the_earlier_ones_missed() {
    let mut q = Q::new(rules());
    q.manifest(&manifest(vec![repeating()]), |id| id == "e");
    let a = q.tick(t(200));
    let missed: Vec<&str> = reports(&a).iter().map(|p| p.item_id.as_str()).collect();
    assert_eq!(missed, ["e#1"]);
    assert_eq!(reports(&a)[0].outcome, PlayOutcome::Missed);
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Prepare { item, adhoc: true } if item.id == "e#2")),
        "{a:?}"
    );
}

#[test]
fn a_cancel_or_a_stop_ends_the_replays_and_no_manifest_brings_them_back() {
    let mut q = Q::new(rules());
    let e = repeating();
    q.manifest(&manifest(vec![e.clone()]), |id| id == "e");
    assert_eq!(q.pending().len(), 3);
    let mut m = manifest(vec![e.clone()]);
    m.cancelled = vec!["e".into()];
    q.manifest(&m, |_| false);
    assert!(q.pending().is_empty());
    assert!(q.is_cancelled("e#2"));

    // A stop naming the message, with one replay playing.
    let mut q = Q::new(rules());
    q.manifest(&manifest(vec![e.clone()]), |id| id == "e");
    q.tick(t(59));
    let r1 = q.pending().first().cloned();
    assert_eq!(r1.map(|r| r.id), Some("e#2".to_string()));
    let tok = armed(
        &q.prepared(
            ManifestItem {
                id: "e#1".into(),
                starts_at: t(60),
                ..e.clone()
            },
            false,
            Ok("m"),
            t(59),
        ),
        "e#1",
    );
    q.tick(t(60));
    assert_eq!(q.stop(Some("e")), vec![Action::Stop(tok)]);
    assert!(q.pending().is_empty());
    q.manifest(&manifest(vec![e]), |id| id == "e");
    assert!(q.pending().is_empty(), "{:?}", q.pending());
    assert!(q.tick(t(400)).is_empty());
}

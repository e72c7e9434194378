//! Unit tests of the player's queue: events in with their device time, actions out. No clock, no
//! runtime, no sleep: every instant is written down.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use nguon_protocol::{
    DeviceSettings, Manifest, ManifestItem, OnPreempt, PlayOutcome, Priority, ProofOfPlay, QuietHours,
};

use super::{Action, Queue, Rules};
use crate::sink::PlayEnd;

mod live_rank;
mod repeat;
mod silence;

/// Payload: the name of the prepared media.
type Q = Queue<&'static str>;
type A = Action<&'static str>;

/// 2026-03-02 03:00:00 UTC (10:00 in Asia/Ho_Chi_Minh) plus `s` seconds.
fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 3, 0, 0).unwrap() + Duration::seconds(s)
}

fn rules() -> Rules {
    Rules {
        grace: Duration::seconds(5),
        lead: Duration::milliseconds(1500),
        quiet: None,
        tz: chrono_tz::Asia::Ho_Chi_Minh,
        silence_dbfs: -50.0,
    }
}

fn item(id: &str, priority: Priority, start: i64, on_preempt: OnPreempt) -> ManifestItem {
    ManifestItem {
        id: id.into(),
        schedule_id: format!("s-{id}"),
        title: id.into(),
        starts_at: t(start),
        priority,
        volume: 80,
        media: vec![format!("sha-{id}")],
        repeat: 1,
        on_preempt,
        play_until: None,
        repetition: None,
        relay: None,
    }
}

fn normal(id: &str, start: i64) -> ManifestItem {
    item(id, Priority::Normal, start, OnPreempt::Interrupt)
}

fn manifest(items: Vec<ManifestItem>) -> Manifest {
    Manifest {
        version: 1,
        generated_at: t(-60),
        window_start: t(-60),
        window_end: t(3600),
        items,
        media: Vec::new(),
        settings: DeviceSettings::default(),
        cancelled: Vec::new(),
        agent: None,
    }
}

fn live(id: &str, at: i64) -> ManifestItem {
    ManifestItem {
        schedule_id: String::new(),
        media: Vec::new(),
        ..item(id, Priority::Priority, at, OnPreempt::Interrupt)
    }
}

fn end(first: Option<i64>, at: i64, completed: bool) -> PlayEnd {
    PlayEnd {
        first_sample: first.map(t),
        ended_at: t(at),
        completed,
        paused: false,
        error: None,
        level: None,
        relay: None,
    }
}

/// The reports among `actions`.
fn reports(actions: &[A]) -> Vec<&ProofOfPlay> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The one report among `actions`, which must be about `id`.
fn report<'a>(actions: &'a [A], id: &str) -> &'a ProofOfPlay {
    let r = reports(actions);
    assert_eq!(r.len(), 1, "one report expected: {actions:?}");
    assert_eq!(r[0].item_id, id, "{actions:?}");
    r[0]
}

/// The token of the one `Arm` among `actions`, which must be for `id`.
fn armed(actions: &[A], id: &str) -> u64 {
    let arms: Vec<(u64, &str)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Arm { token, item, .. } => Some((*token, item.id.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(arms.len(), 1, "one arm expected: {actions:?}");
    assert_eq!(arms[0].1, id, "{actions:?}");
    arms[0].0
}

/// Play-now `it` at `now`, have its media ready at once, start it: its token and what its start
/// did to the play before it.
fn start_now_with(q: &mut Q, it: ManifestItem, now: i64) -> (u64, Vec<A>) {
    let a = q.play_now(it.clone(), false, t(now));
    assert_eq!(
        a,
        vec![Action::Prepare {
            item: it.clone(),
            adhoc: true
        }]
    );
    let a = q.prepared(it.clone(), true, Ok("media"), t(now));
    let token = armed(&a, &it.id);
    (token, q.tick(t(now)))
}

/// [`start_now_with`], the token only.
fn start_now(q: &mut Q, it: ManifestItem, now: i64) -> u64 {
    start_now_with(q, it, now).0
}

#[test]
fn a_scheduled_item_is_prepared_at_its_start_minus_the_lead_and_armed_for_its_start() {
    let mut q = Q::new(rules());
    let it = normal("a", 60);
    q.manifest(&manifest(vec![it.clone()]), |_| false);
    assert_eq!(q.next_wake(), Some(t(60) - Duration::milliseconds(1500)));
    assert!(q.tick(t(58)).is_empty(), "not yet at start minus lead");
    let a = q.tick(t(59));
    assert_eq!(
        a,
        vec![Action::Prepare {
            item: it.clone(),
            adhoc: false
        }]
    );
    let a = q.prepared(it.clone(), false, Ok("media"), t(59));
    assert_eq!(
        a,
        vec![Action::Arm {
            token: 1,
            item: it.clone(),
            payload: "media",
            at: Some(t(60)),
        }]
    );
    assert_eq!(q.next_wake(), Some(t(60)));
    assert!(q.now_playing().is_none());
    assert!(q.tick(t(60)).is_empty(), "nothing to preempt");
    assert_eq!(
        q.first_sample(1, t(60)),
        vec![Action::Playing {
            item: it.clone(),
            at: t(60)
        }]
    );
    assert_eq!(q.now_playing().map(|n| n.item_id), Some("a".into()));
    let a = q.ended(1, &end(Some(60), 90, true), t(90));
    let p = report(&a, "a");
    assert_eq!(p.outcome, PlayOutcome::Played);
    assert_eq!((p.started_at, p.ended_at), (Some(t(60)), Some(t(90))));
    assert!(q.now_playing().is_none());
}

#[test]
fn an_emergency_pauses_a_resumable_normal_item_which_resumes_afterwards_and_is_reported_resumed() {
    let mut q = Q::new(rules());
    let n = start_now(&mut q, item("n", Priority::Normal, 0, OnPreempt::Resume), 0);
    q.first_sample(n, t(0));
    let e = start_now(
        &mut q,
        item("e", Priority::Emergency, 10, OnPreempt::Interrupt),
        10,
    );
    // `start_now` ticked: the emergency took over and the normal item was paused.
    assert_eq!(
        q.now_playing(),
        None,
        "the emergency has not written a sample yet"
    );
    q.first_sample(e, t(10));
    assert_eq!(q.now_playing().map(|p| p.item_id), Some("e".into()));
    let a = q.ended(e, &end(Some(10), 20, true), t(20));
    assert_eq!(report(&a, "e").outcome, PlayOutcome::Played);
    assert!(a.contains(&Action::Resume(n)), "{a:?}");
    let a = q.ended(n, &end(Some(0), 40, true), t(40));
    assert_eq!(report(&a, "n").outcome, PlayOutcome::Resumed);
}

#[test]
fn the_preempted_item_is_paused_when_resumable_and_stopped_when_set_to_interrupt() {
    for (on_preempt, expected) in [(OnPreempt::Resume, "pause"), (OnPreempt::Interrupt, "stop")] {
        let mut q = Q::new(rules());
        let n = start_now(&mut q, item("n", Priority::Normal, 0, on_preempt), 0);
        q.play_now(
            item("e", Priority::Emergency, 5, OnPreempt::Interrupt),
            false,
            t(5),
        );
        let a = q.prepared(
            item("e", Priority::Emergency, 5, OnPreempt::Interrupt),
            true,
            Ok("m"),
            t(5),
        );
        armed(&a, "e");
        let a = q.tick(t(5));
        let want = if expected == "pause" {
            Action::Pause(n)
        } else {
            Action::Stop(n)
        };
        assert_eq!(a, vec![want], "{on_preempt:?}");
        if expected == "stop" {
            let a = q.ended(n, &end(Some(0), 5, false), t(5));
            let p = report(&a, "n");
            assert_eq!(p.outcome, PlayOutcome::Interrupted);
            assert_eq!(p.reason.as_deref(), Some("preempted by emergency item e"));
        }
    }
}

#[test]
fn ranks_order_emergency_over_live_over_priority_over_normal() {
    // Each higher one preempts; none preempts an equal or higher one.
    let mut q = Q::new(rules());
    let n = start_now(&mut q, normal("n", 0), 0);
    let (p, a) = start_now_with(&mut q, item("p", Priority::Priority, 1, OnPreempt::Interrupt), 1);
    assert_eq!(a, vec![Action::Stop(n)], "priority preempts normal");
    let a = q.live_start(live("l", 2), "stream", false, t(2));
    let l = armed(&a, "l");
    assert_eq!(q.tick(t(2)), vec![Action::Stop(p)], "live preempts priority");
    let (e, a) = start_now_with(&mut q, item("e", Priority::Emergency, 3, OnPreempt::Interrupt), 3);
    assert_eq!(a, vec![Action::Stop(l)], "emergency preempts live");
    // A second priority item and a normal one only wait behind the emergency.
    let a = q.play_now(
        item("p2", Priority::Priority, 4, OnPreempt::Interrupt),
        false,
        t(4),
    );
    assert_eq!(a.len(), 1);
    let a = q.prepared(
        item("p2", Priority::Priority, 4, OnPreempt::Interrupt),
        true,
        Ok("m"),
        t(4),
    );
    assert!(
        a.is_empty(),
        "a priority item does not preempt an emergency: {a:?}"
    );
    let a = q.ended(e, &end(Some(3), 10, true), t(10));
    assert_eq!(report(&a, "e").outcome, PlayOutcome::Played);
    armed(&a, "p2");
}

#[test]
fn a_live_session_waits_behind_an_emergency_and_is_interrupted_not_paused_by_one() {
    let mut q = Q::new(rules());
    let e = start_now(&mut q, item("e", Priority::Emergency, 0, OnPreempt::Interrupt), 0);
    let a = q.live_start(live("l", 1), "stream", false, t(1));
    assert!(a.is_empty(), "the live session waits behind the emergency: {a:?}");
    let a = q.ended(e, &end(Some(0), 10, true), t(10));
    let l = armed(&a, "l");
    assert!(q.tick(t(10)).is_empty());
    q.first_sample(l, t(10));
    let a = q.play_now(
        item("e2", Priority::Emergency, 20, OnPreempt::Resume),
        false,
        t(20),
    );
    assert_eq!(a.len(), 1);
    let a = q.prepared(
        item("e2", Priority::Emergency, 20, OnPreempt::Resume),
        true,
        Ok("m"),
        t(20),
    );
    let e2 = armed(&a, "e2");
    assert_eq!(
        q.tick(t(20)),
        vec![Action::Stop(l)],
        "a live stream cannot be paused"
    );
    let a = q.ended(l, &end(Some(10), 20, false), t(20));
    let p = report(&a, "l");
    assert_eq!(p.outcome, PlayOutcome::Interrupted);
    assert_eq!(p.reason.as_deref(), Some("preempted by emergency item e2"));
    let a = q.ended(e2, &end(Some(20), 30, true), t(30));
    assert_eq!(reports(&a).len(), 1);
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Arm { .. } | Action::Resume(_))),
        "the relay does not come back: {a:?}"
    );
}

#[test]
fn waiting_items_start_by_rank_then_by_start_time_when_the_player_is_free() {
    let mut q = Q::new(rules());
    let e = start_now(&mut q, item("e", Priority::Emergency, 0, OnPreempt::Interrupt), 0);
    for (id, pr, start) in [
        ("n-early", Priority::Normal, 1),
        ("p-late", Priority::Priority, 3),
        ("p-early", Priority::Priority, 2),
    ] {
        let it = item(id, pr, start, OnPreempt::Interrupt);
        q.play_now(it.clone(), false, t(start));
        assert!(q.prepared(it, true, Ok("m"), t(start)).is_empty(), "{id} waits");
    }
    let a = q.ended(e, &end(Some(0), 10, true), t(10));
    let first = armed(&a, "p-early");
    q.tick(t(10));
    let a = q.ended(first, &end(Some(10), 20, true), t(20));
    let second = armed(&a, "p-late");
    q.tick(t(20));
    let a = q.ended(second, &end(Some(20), 30, true), t(30));
    armed(&a, "n-early");
}

#[test]
fn a_waiting_item_whose_start_passed_starts_at_once_and_one_whose_start_is_ahead_keeps_it() {
    let mut q = Q::new(rules());
    let e = start_now(&mut q, item("e", Priority::Emergency, 0, OnPreempt::Interrupt), 0);
    let past = normal("past", 5);
    let ahead = item("ahead", Priority::Priority, 30, OnPreempt::Interrupt);
    q.manifest(&manifest(vec![past.clone(), ahead.clone()]), |_| false);
    q.tick(t(4));
    assert!(q.prepared(past, false, Ok("m"), t(4)).is_empty(), "waits");
    q.tick(t(29));
    assert!(q.prepared(ahead, false, Ok("m"), t(29)).is_empty(), "waits");
    let a = q.ended(e, &end(Some(0), 29, true), t(29));
    let at = a.iter().find_map(|x| match x {
        Action::Arm { at, .. } => Some(*at),
        _ => None,
    });
    assert_eq!(at, Some(Some(t(30))), "the priority item keeps its start: {a:?}");
    let ahead = armed(&a, "ahead");
    q.tick(t(30));
    let a = q.ended(ahead, &end(Some(30), 40, true), t(40));
    assert!(
        matches!(&a[..], [Action::Report(_), Action::Arm { at: None, .. }]),
        "the normal item, 35 s late, starts at once: {a:?}"
    );
    armed(&a, "past");
}

#[test]
fn a_higher_item_arriving_while_a_lower_one_is_armed_sends_that_one_back_to_waiting_unreported() {
    let mut q = Q::new(rules());
    let n = normal("n", 60);
    q.manifest(&manifest(vec![n.clone()]), |_| false);
    q.tick(t(59));
    let nt = armed(&q.prepared(n.clone(), false, Ok("m"), t(59)), "n");
    // An emergency arrives before the normal item's start.
    let e = item("e", Priority::Emergency, 59, OnPreempt::Interrupt);
    q.play_now(e.clone(), false, t(59));
    let a = q.prepared(e, true, Ok("m"), t(59));
    assert_eq!(
        a[0],
        Action::Stop(nt),
        "the armed normal item is withdrawn: {a:?}"
    );
    let et = armed(&a, "e");
    q.tick(t(59));
    let a = q.ended(nt, &end(None, 59, false), t(59));
    assert!(a.is_empty(), "a withdrawn play is not reported: {a:?}");
    let a = q.ended(et, &end(Some(59), 70, true), t(70));
    assert_eq!(report(&a, "e").outcome, PlayOutcome::Played);
    armed(&a, "n");
}

#[test]
fn quiet_hours_skip_normal_items_but_not_priority_or_emergency_ones() {
    // 22:00–05:00 in Asia/Ho_Chi_Minh (UTC+7); t(0) is 10:00 local, t(13 h) is 23:00 local.
    let mut r = rules();
    r.quiet = Some(QuietHours {
        start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
    });
    let mut q = Q::new(r);
    let night = 13 * 3600;
    let n = normal("n", night);
    let p = item("p", Priority::Priority, night, OnPreempt::Interrupt);
    let e = item("e", Priority::Emergency, night, OnPreempt::Interrupt);
    let day = normal("day", 3600);
    q.manifest(&manifest(vec![n, p.clone(), e.clone(), day.clone()]), |_| false);
    let a = q.tick(t(3600));
    assert_eq!(
        a,
        vec![Action::Prepare {
            item: day,
            adhoc: false
        }]
    );
    let a = q.tick(t(night));
    let skipped = report(&a, "n");
    assert_eq!(skipped.outcome, PlayOutcome::SkippedQuietHours);
    assert!(a.contains(&Action::Prepare {
        item: p,
        adhoc: false
    }));
    assert!(a.contains(&Action::Prepare {
        item: e,
        adhoc: false
    }));
}

#[test]
fn a_manifests_quiet_hours_and_time_zone_replace_the_configured_ones() {
    let mut q = Q::new(rules());
    let mut m = manifest(vec![normal("n", 0)]);
    // 03:00 UTC is inside 02:00–04:00 in UTC, not in Asia/Ho_Chi_Minh (10:00).
    m.settings.quiet_hours = Some(QuietHours {
        start: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
    });
    m.settings.time_zone = Some("UTC".into());
    q.manifest(&m, |_| false);
    let a = q.tick(t(0));
    assert_eq!(report(&a, "n").outcome, PlayOutcome::SkippedQuietHours);
}

#[test]
fn a_scheduled_item_reached_after_the_grace_period_is_reported_missed_and_not_prepared() {
    let mut q = Q::new(rules());
    q.manifest(&manifest(vec![normal("late", 0), normal("in-grace", 10)]), |_| {
        false
    });
    let a = q.tick(t(15));
    let p = report(&a, "late");
    assert_eq!(p.outcome, PlayOutcome::Missed);
    assert_eq!(
        p.reason.as_deref(),
        Some("start passed 15 s ago while the agent was not running")
    );
    assert!(
        a.contains(&Action::Prepare {
            item: normal("in-grace", 10),
            adhoc: false
        }),
        "5 s late is within the grace period: {a:?}"
    );
}

#[test]
fn an_item_whose_media_was_ready_only_after_the_grace_period_is_reported_failed() {
    let mut q = Q::new(rules());
    let it = normal("a", 10);
    q.manifest(&manifest(vec![it.clone()]), |_| false);
    q.tick(t(9));
    let a = q.prepared(it, false, Ok("m"), t(16));
    let p = report(&a, "a");
    assert_eq!(p.outcome, PlayOutcome::Failed);
    assert_eq!(
        p.reason.as_deref(),
        Some("media was not ready until 6 s after the start")
    );
    assert!(!a.iter().any(|x| matches!(x, Action::Arm { .. })));
}

#[test]
fn a_play_now_command_has_no_grace_period_and_starts_as_soon_as_its_media_is_ready() {
    let mut q = Q::new(rules());
    let it = normal("now", 0);
    q.play_now(it.clone(), false, t(0));
    let a = q.prepared(it.clone(), true, Ok("m"), t(600));
    assert!(matches!(&a[..], [Action::Arm { at: None, .. }]), "{a:?}");
}

#[test]
fn media_that_cannot_be_had_is_reported_failed_with_the_reason() {
    let mut q = Q::new(rules());
    let it = normal("a", 0);
    q.play_now(it.clone(), false, t(0));
    let a = q.prepared(it, true, Err("media sha-a: HTTP 404".into()), t(1));
    let p = report(&a, "a");
    assert_eq!(p.outcome, PlayOutcome::Failed);
    assert_eq!(p.reason.as_deref(), Some("media sha-a: HTTP 404"));
}

#[test]
fn an_occurrence_is_reported_once_even_when_the_same_manifest_and_a_play_now_bring_it_again() {
    let mut q = Q::new(rules());
    let it = normal("a", 10);
    let m = manifest(vec![it.clone()]);
    q.manifest(&m, |_| false);
    q.tick(t(9));
    // The same manifest again while the item is being prepared: not queued twice.
    q.manifest(&m, |_| false);
    assert!(q.pending().is_empty());
    let tok = armed(&q.prepared(it.clone(), false, Ok("m"), t(9)), "a");
    assert!(q.play_now(it.clone(), false, t(9)).is_empty(), "active: ignored");
    q.tick(t(10));
    let a = q.ended(tok, &end(Some(10), 20, true), t(20));
    assert_eq!(reports(&a).len(), 1);
    q.manifest(&m, |_| false);
    assert!(q.pending().is_empty(), "reported: not queued again");
    assert!(q.tick(t(21)).is_empty());
    assert!(
        q.play_now(it, false, t(21)).is_empty(),
        "reported: not played again"
    );
    // A late end of the same token (a duplicate event) reports nothing.
    assert!(q.ended(tok, &end(Some(10), 20, true), t(22)).is_empty());
}

#[test]
fn ids_the_driver_says_were_reported_before_a_restart_are_never_queued_or_played() {
    let mut q = Q::new(rules());
    q.manifest(&manifest(vec![normal("old", 10), normal("new", 20)]), |id| {
        id == "old"
    });
    let ids: Vec<&str> = q.pending().iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["new"]);
    assert!(q.play_now(normal("old", 10), true, t(0)).is_empty());
    assert!(q.live_start(live("l", 0), "s", true, t(0)).is_empty());
}

#[test]
fn stop_stops_the_plays_named_and_drops_waiting_items_reporting_them_interrupted_once() {
    let mut q = Q::new(rules());
    let e = start_now(&mut q, item("e", Priority::Emergency, 0, OnPreempt::Interrupt), 0);
    let w = normal("w", 1);
    q.play_now(w.clone(), false, t(1));
    q.prepared(w, true, Ok("m"), t(1));
    let a = q.stop(None);
    assert_eq!(a[0], Action::Stop(e));
    let p = report(&a, "w");
    assert_eq!(p.outcome, PlayOutcome::Interrupted);
    assert_eq!(p.reason.as_deref(), Some("stopped by command before it started"));
    let a = q.ended(e, &end(Some(0), 2, false), t(2));
    let p = report(&a, "e");
    assert_eq!(p.reason.as_deref(), Some("stopped by command"));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Arm { .. })),
        "nothing left: {a:?}"
    );
}

#[test]
fn stop_with_an_id_leaves_other_plays_alone() {
    let mut q = Q::new(rules());
    let a_tok = start_now(&mut q, normal("a", 0), 0);
    assert!(q.stop(Some("b")).is_empty());
    assert_eq!(q.stop(Some("a")), vec![Action::Stop(a_tok)]);
}

#[test]
fn a_second_live_start_replaces_the_first_and_live_stop_finishes_the_running_session() {
    let mut q = Q::new(rules());
    let l1 = armed(&q.live_start(live("l1", 0), "s1", false, t(0)), "l1");
    q.tick(t(0));
    q.first_sample(l1, t(0));
    let a = q.live_start(live("l2", 5), "s2", false, t(5));
    assert_eq!(a[0], Action::Stop(l1));
    assert!(a.len() == 1, "l2 waits for l1 to end (equal rank): {a:?}");
    let a = q.ended(l1, &end(Some(0), 5, false), t(5));
    let p = report(&a, "l1");
    assert_eq!(p.reason.as_deref(), Some("replaced by live session l2"));
    let l2 = armed(&a, "l2");
    q.tick(t(5));
    q.first_sample(l2, t(5));
    assert!(q.live_stop("other").is_empty(), "another session: nothing to do");
    assert_eq!(q.live_stop("l2"), vec![Action::Finish(l2)]);
    let a = q.ended(l2, &end(Some(5), 30, true), t(30));
    assert_eq!(report(&a, "l2").outcome, PlayOutcome::Played);
    assert!(
        q.live_start(live("l2", 31), "s2", false, t(31)).is_empty(),
        "reported: not again"
    );
}

#[test]
fn live_stop_of_a_session_waiting_behind_an_emergency_drops_it_reported_interrupted() {
    let mut q = Q::new(rules());
    start_now(&mut q, item("e", Priority::Emergency, 0, OnPreempt::Interrupt), 0);
    assert!(q.live_start(live("l", 1), "s", false, t(1)).is_empty());
    let a = q.live_stop("l");
    let p = report(&a, "l");
    assert_eq!(p.outcome, PlayOutcome::Interrupted);
    assert_eq!(
        p.reason.as_deref(),
        Some("stopped by live_stop before its first sample")
    );
    assert_eq!((p.started_at, p.ended_at), (None, None));
}

#[test]
fn next_wake_is_the_earliest_of_the_next_preparation_and_the_armed_starts() {
    let mut q = Q::new(rules());
    assert_eq!(q.next_wake(), None);
    let a = normal("a", 10);
    q.manifest(&manifest(vec![a.clone(), normal("b", 100)]), |_| false);
    assert_eq!(q.next_wake(), Some(t(10) - Duration::milliseconds(1500)));
    q.tick(t(9));
    assert_eq!(q.next_wake(), Some(t(100) - Duration::milliseconds(1500)));
    q.prepared(a, false, Ok("m"), t(9));
    assert_eq!(q.next_wake(), Some(t(10)));
}

#[test]
fn a_failed_play_is_reported_failed_with_its_error() {
    let mut q = Q::new(rules());
    let tok = start_now(&mut q, normal("a", 0), 0);
    let mut e = end(Some(0), 3, false);
    e.error = Some("audio: bad packet".into());
    let a = q.ended(tok, &e, t(3));
    let p = report(&a, "a");
    assert_eq!(p.outcome, PlayOutcome::Failed);
    assert_eq!(p.reason.as_deref(), Some("audio: bad packet"));
}

#[test]
fn a_play_whose_first_sample_comes_before_the_timer_fires_is_current_and_is_preempted_not_withdrawn() {
    let mut q = Q::new(rules());
    let n = item("n", Priority::Normal, 60, OnPreempt::Resume);
    q.manifest(&manifest(vec![n.clone()]), |_| false);
    q.tick(t(59));
    let nt = armed(&q.prepared(n.clone(), false, Ok("m"), t(59)), "n");
    let a = q.first_sample(nt, t(60));
    assert_eq!(a, vec![Action::Playing { item: n, at: t(60) }]);
    assert_eq!(q.now_playing().map(|p| p.item_id), Some("n".into()));
    let e = item("e", Priority::Emergency, 60, OnPreempt::Interrupt);
    q.play_now(e.clone(), false, t(60));
    let a = q.prepared(e, true, Ok("m"), t(60));
    assert!(!a.contains(&Action::Stop(nt)), "not sent back to waiting: {a:?}");
    armed(&a, "e");
    assert_eq!(q.tick(t(60)), vec![Action::Pause(nt)]);
}

/// An emergency message with a validity window until `until` (a catch-up item, id = command id).
fn windowed(id: &str, start: i64, until: i64) -> ManifestItem {
    ManifestItem {
        schedule_id: String::new(),
        play_until: Some(t(until)),
        repetition: None,
        ..item(id, Priority::Emergency, start, OnPreempt::Interrupt)
    }
}

#[test]
fn an_item_reached_late_inside_its_window_plays_from_the_beginning_at_once_and_is_reported_played_late() {
    let mut q = Q::new(rules());
    // Reached 22 s after its start (the agent was stopped), window 30 min.
    let it = windowed("e", 0, 1800);
    q.manifest(&manifest(vec![it.clone()]), |_| false);
    let a = q.tick(t(22));
    assert_eq!(
        a,
        vec![Action::Prepare {
            item: it.clone(),
            adhoc: true
        }],
        "prepared to play at once, not missed"
    );
    let a = q.prepared(it.clone(), true, Ok("m"), t(23));
    assert!(matches!(&a[..], [Action::Arm { at: None, .. }]), "{a:?}");
    let tok = armed(&a, "e");
    q.first_sample(tok, t(23));
    let p = report(&q.ended(tok, &end(Some(23), 33, true), t(33)), "e").clone();
    assert_eq!(p.outcome, PlayOutcome::PlayedLate);
    assert_eq!(
        (p.started_at, p.occurrence_at),
        (Some(t(23)), t(0)),
        "the delay is 23 s"
    );
    // The same, on time: played.
    let mut q = Q::new(rules());
    let it = windowed("f", 10, 1800);
    q.manifest(&manifest(vec![it.clone()]), |_| false);
    q.tick(t(9));
    let tok = armed(&q.prepared(it, false, Ok("m"), t(9)), "f");
    q.tick(t(10));
    let a = q.ended(tok, &end(Some(10), 20, true), t(20));
    assert_eq!(report(&a, "f").outcome, PlayOutcome::Played);
}

#[test]
fn an_item_reached_after_its_window_is_missed_and_a_normal_item_keeps_the_grace_rule() {
    let mut q = Q::new(rules());
    q.manifest(&manifest(vec![windowed("over", 0, 600), normal("n", 0)]), |_| {
        false
    });
    let a = q.tick(t(700));
    let r = reports(&a);
    assert_eq!(r.len(), 2, "{a:?}");
    assert!(r.iter().all(|p| p.outcome == PlayOutcome::Missed), "{a:?}");
    assert!(!a.iter().any(|x| matches!(x, Action::Prepare { .. })));
    // Media ready late inside the window: played late rather than failed.
    let mut q = Q::new(rules());
    let it = windowed("slow", 10, 600);
    q.manifest(&manifest(vec![it.clone()]), |_| false);
    q.tick(t(9));
    let a = q.prepared(it, false, Ok("m"), t(40));
    assert!(matches!(&a[..], [Action::Arm { at: None, .. }]), "{a:?}");
}

#[test]
fn a_manifest_cancelling_a_message_stops_it_drops_it_waiting_and_keeps_it_from_starting_again() {
    let mut q = Q::new(rules());
    let e = windowed("e", 0, 1800);
    let tok = start_now(&mut q, e.clone(), 0);
    let mut m = manifest(vec![]);
    m.cancelled = vec!["e".into()];
    let a = q.manifest(&m, |_| false);
    assert_eq!(a, vec![Action::Stop(tok)]);
    let a = q.ended(tok, &end(Some(0), 3, false), t(3));
    let p = report(&a, "e");
    assert_eq!(
        (p.outcome, p.reason.as_deref()),
        (PlayOutcome::Interrupted, Some("cancelled by the server"))
    );
    // The command arriving again (late, on the command topic): not played.
    assert!(q.play_now(e, false, t(4)).is_empty());
    // A cancelled message never prepared: its preparation ends without a play.
    let mut q = Q::new(rules());
    let g = windowed("g", 0, 1800);
    q.play_now(g.clone(), false, t(0));
    let mut m = manifest(vec![]);
    m.cancelled = vec!["g".into()];
    assert!(q.manifest(&m, |_| false).is_empty());
    let a = q.prepared(g, true, Ok("m"), t(1));
    assert_eq!(report(&a, "g").outcome, PlayOutcome::Interrupted);
    assert!(!a.iter().any(|x| matches!(x, Action::Arm { .. })));
    // And it is never queued from a manifest that still lists it.
    let mut m = manifest(vec![windowed("h", 0, 1800)]);
    m.cancelled = vec!["h".into()];
    q.manifest(&m, |_| false);
    assert!(q.pending().is_empty());
}

//! A live session ranks by the priority its `live_start` carries (issue 17): `priority` between
//! emergency and priority items, `emergency` above emergency items.

use nguon_protocol::{OnPreempt, PlayOutcome, Priority};

use super::*;

fn emergency_live(id: &str, at: i64) -> ManifestItem {
    ManifestItem {
        priority: Priority::Emergency,
        ..live(id, at)
    }
}

fn emergency(id: &str, at: i64) -> ManifestItem {
    item(id, Priority::Emergency, at, OnPreempt::Resume)
}

#[test]
fn an_emergency_live_session_interrupts_a_playing_emergency_item() {
    let mut q = Q::new(rules());
    let e = start_now(&mut q, emergency("e", 0), 0);
    q.first_sample(e, t(0));
    let a = q.live_start(emergency_live("l", 2), "stream", false, t(2));
    let l = armed(&a, "l");
    assert_eq!(
        q.tick(t(2)),
        vec![Action::Pause(e)],
        "the emergency item is held (its on_preempt is resume) for the emergency live session"
    );
    q.first_sample(l, t(2));
    assert_eq!(q.now_playing().map(|n| n.priority), Some(Priority::Emergency));
    // The live session ends: the emergency item resumes, and the session is reported at its
    // own priority.
    let a = q.live_stop("l");
    assert_eq!(a, vec![Action::Finish(l)]);
    let a = q.ended(l, &end(Some(2), 9, true), t(9));
    let p = report(&a, "l");
    assert_eq!(p.outcome, PlayOutcome::Played);
    assert_eq!(p.priority, Priority::Emergency);
    assert!(a.contains(&Action::Resume(e)), "{a:?}");
}

#[test]
fn an_emergency_item_waits_behind_an_emergency_live_session_and_nothing_lower_interrupts_it() {
    let mut q = Q::new(rules());
    let a = q.live_start(emergency_live("l", 0), "stream", false, t(0));
    let l = armed(&a, "l");
    assert!(q.tick(t(0)).is_empty());
    q.first_sample(l, t(0));
    for (i, p) in [Priority::Normal, Priority::Priority, Priority::Emergency]
        .into_iter()
        .enumerate()
    {
        let it = item(&format!("i{i}"), p, 1, OnPreempt::Interrupt);
        assert_eq!(q.play_now(it.clone(), false, t(1)).len(), 1);
        let a = q.prepared(it, true, Ok("m"), t(1));
        assert!(
            a.is_empty(),
            "a {p:?} item does not interrupt an emergency live: {a:?}"
        );
        assert!(q.tick(t(1)).is_empty());
    }
    // At its end the emergency item is first.
    assert_eq!(q.live_stop("l"), vec![Action::Finish(l)]);
    let a = q.ended(l, &end(Some(0), 5, true), t(5));
    assert_eq!(report(&a, "l").outcome, PlayOutcome::Played);
    armed(&a, "i2");
}

#[test]
fn an_emergency_item_interrupts_a_priority_live_session_which_preempts_priority_items() {
    let mut q = Q::new(rules());
    let p = start_now(&mut q, item("p", Priority::Priority, 0, OnPreempt::Resume), 0);
    let a = q.live_start(live("l", 1), "stream", false, t(1));
    let l = armed(&a, "l");
    assert_eq!(q.tick(t(1)), vec![Action::Pause(p)], "live preempts priority");
    q.first_sample(l, t(1));
    let (_, a) = start_now_with(&mut q, emergency("e", 2), 2);
    assert_eq!(
        a,
        vec![Action::Stop(l)],
        "an emergency item interrupts a priority live"
    );
    let a = q.ended(l, &end(Some(1), 2, false), t(2));
    let r = report(&a, "l");
    assert_eq!(r.outcome, PlayOutcome::Interrupted);
    assert_eq!(r.priority, Priority::Priority);
    assert_eq!(r.reason.as_deref(), Some("preempted by emergency item e"));
}

#[test]
fn an_emergency_live_session_replaces_a_priority_one() {
    let mut q = Q::new(rules());
    let a = q.live_start(live("l1", 0), "s1", false, t(0));
    let l1 = armed(&a, "l1");
    q.tick(t(0));
    let a = q.live_start(emergency_live("l2", 1), "s2", false, t(1));
    assert_eq!(a[0], Action::Stop(l1));
    armed(&a, "l2");
}

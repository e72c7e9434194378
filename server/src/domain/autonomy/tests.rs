//! Unit tests of commune autonomy: which questions schedules raise, how answers become a plan and
//! what the plan does to the manifests of the commune's devices (and only those).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use nguon_protocol::Priority;

use super::*;
use crate::domain::area::AreaTree;
use crate::domain::change::Change;
use crate::domain::manifest::{FleetDevice, LateWindows, NO_MESSAGES, Window, compute};
use crate::domain::media::MediaInfo;
use crate::domain::schedule::{NewSchedule, draft, validate};

fn fleet() -> Fleet {
    let tree = AreaTree::new([
        ("p".to_string(), None),
        ("c1".to_string(), Some("p".to_string())),
        ("c2".to_string(), Some("p".to_string())),
    ]);
    let dev = |id: &str, area: &str| FleetDevice {
        id: id.into(),
        area: area.into(),
        enabled: true,
        volume: None,
    };
    Fleet::new(vec![dev("a", "c1"), dev("b", "c2")], tree)
}

fn schedule(id: &str, area: &str, at: &str, priority: &str) -> Schedule {
    let req: NewSchedule = serde_json::from_value(serde_json::json!({
        "title": id, "media": ["m1"], "targets": {"areas": [area]}, "priority": priority,
        "rule": {"kind": "once", "at": at}, "time_zone": "UTC"
    }))
    .unwrap();
    let v = validate(&req, "UTC", 60).unwrap();
    draft(id.into(), v, &req, DateTime::UNIX_EPOCH)
}

fn media() -> HashMap<String, MediaInfo> {
    HashMap::from([(
        "m1".to_string(),
        MediaInfo {
            size: 1000,
            duration_ms: 600_000,
            approved: true,
            rendition: None,
        },
    )])
}

fn on(area: &str) -> Setting {
    Setting {
        area: area.into(),
        enabled: true,
        unanswered: Unanswered::Play,
        enabled_since: 0,
        updated_at: 0,
        updated_by: "admin".into(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-12-02T00:00:00Z".parse().unwrap()
}

fn window() -> Window<'static> {
    Window {
        now: now(),
        lookahead: Duration::hours(48),
        public_url: "http://srv",
        late: LateWindows::default(),
        messages: &NO_MESSAGES,
        relay_proxy: true,
    }
}

fn stored(n: &Needed, state: State) -> Request {
    Request {
        id: format!("{}-{}", n.area, n.schedule_id),
        area: n.area.clone(),
        kind: n.kind,
        schedule_id: n.schedule_id.clone(),
        title: String::new(),
        other_id: (!n.other_id.is_empty()).then(|| n.other_id.clone()),
        other_title: None,
        first_at: n.first_at.map(ms),
        state,
        slot_at: None,
        reason: None,
        first: None,
        outcome: None,
        asked_at: now(),
        answered_at: None,
        answered_by: None,
        revision: n.revision,
    }
}

fn ms(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap()
}

fn run(schedules: &[Schedule], plans: &[CommunePlan]) -> BTreeMap<String, Vec<(String, DateTime<Utc>)>> {
    let f = fleet();
    let all: BTreeSet<String> = f.devices_changed(&Change::All);
    let mut out = compute(&f, schedules, &media(), &all, window());
    apply(&f, schedules, &media(), plans, window(), &mut out);
    out.into_iter()
        .map(|(d, c)| {
            (
                d,
                c.items
                    .into_iter()
                    .map(|i| (i.schedule_id, i.starts_at))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn normal_content_from_above_waits_for_the_commune_and_other_communes_are_unaffected() {
    let f = fleet();
    let s = [schedule("tinh", "p", "2026-12-02T08:00:00", "normal")];
    let n = needed(&f, &[on("c1")], &s, &|_| 600_000, now(), Duration::hours(48));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!((n[0].area.as_str(), n[0].kind), ("c1", Kind::Acceptance));
    let at: DateTime<Utc> = "2026-12-02T08:00:00Z".parse().unwrap();
    assert_eq!(n[0].first_at, Some(at.timestamp_millis()));

    // Pending (stored or not yet): not in c1's devices, still in c2's.
    for requests in [vec![], vec![stored(&n[0], State::Pending)]] {
        let p = plan(&[on("c1")], &n, &requests);
        let out = run(&s, &p);
        assert!(out["a"].is_empty(), "{out:?}");
        assert_eq!(out["b"], [("tinh".to_string(), at)]);
    }
    // Accepted: plays as scheduled; declined: never.
    let out = run(&s, &plan(&[on("c1")], &n, &[stored(&n[0], State::Accepted)]));
    assert_eq!(out["a"], [("tinh".to_string(), at)]);
    let out = run(&s, &plan(&[on("c1")], &n, &[stored(&n[0], State::Declined)]));
    assert!(out["a"].is_empty());
    // Re-slotted twelve hours later: only there, at the new time.
    let mut r = stored(&n[0], State::Reslotted);
    r.slot_at = Some(at + Duration::hours(12));
    let out = run(&s, &plan(&[on("c1")], &n, &[r]));
    assert_eq!(out["a"], [("tinh".to_string(), at + Duration::hours(12))]);
    assert_eq!(out["b"], [("tinh".to_string(), at)]);
    // Unanswered: the outcome decides.
    let mut r = stored(&n[0], State::Unanswered);
    r.outcome = Some("skipped".into());
    assert!(run(&s, &plan(&[on("c1")], &n, &[r.clone()]))["a"].is_empty());
    r.outcome = Some("played".into());
    assert_eq!(run(&s, &plan(&[on("c1")], &n, &[r]))["a"].len(), 1);
    // A stale answer (the schedule changed since) does not count: pending again.
    let mut old = stored(&n[0], State::Accepted);
    old.revision -= 1;
    assert!(run(&s, &plan(&[on("c1")], &n, &[old]))["a"].is_empty());
}

#[test]
fn emergency_and_the_communes_own_content_are_never_asked_about_and_off_means_off() {
    let f = fleet();
    let s = [
        schedule("khan", "p", "2026-12-02T08:00:00", "emergency"),
        schedule("xa", "c1", "2026-12-02T09:00:00", "normal"),
    ];
    assert!(needed(&f, &[on("c1")], &s, &|_| 600_000, now(), Duration::hours(48)).is_empty());
    let tinh = [schedule("tinh", "p", "2026-12-02T08:00:00", "normal")];
    let mut off = on("c1");
    off.enabled = false;
    assert!(needed(&f, &[off], &tinh, &|_| 600_000, now(), Duration::hours(48)).is_empty());
    // Content changed before the commune turned its setting on plays as before.
    let mut later = on("c1");
    later.enabled_since = now().timestamp_millis();
    assert!(needed(&f, &[later], &tinh, &|_| 600_000, now(), Duration::hours(48)).is_empty());
}

#[test]
fn a_priority_clash_plays_the_province_first_until_the_commune_orders_it() {
    let f = fleet();
    let s = [
        schedule("tinh", "p", "2026-12-02T08:00:00", "priority"),
        schedule("xa", "c1", "2026-12-02T08:05:00", "normal"),
    ];
    let n = needed(&f, &[on("c1")], &s, &|_| 600_000, now(), Duration::hours(48));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!((n[0].kind, n[0].other_id.as_str()), (Kind::Order, "xa"));
    let t8: DateTime<Utc> = "2026-12-02T08:00:00Z".parse().unwrap();
    // Default: the province's item first, the commune's follows when it ends (08:10).
    let out = run(&s, &plan(&[on("c1")], &n, &[]));
    assert_eq!(
        out["a"],
        [
            ("tinh".to_string(), t8),
            ("xa".to_string(), t8 + Duration::minutes(10))
        ]
    );
    // The commune puts its own first: the province item waits until 08:15.
    let mut r = stored(&n[0], State::Ordered);
    r.first = Some(First::Commune);
    let out = run(&s, &plan(&[on("c1")], &n, &[r]));
    assert_eq!(
        out["a"],
        [
            ("xa".to_string(), t8 + Duration::minutes(5)),
            ("tinh".to_string(), t8 + Duration::minutes(15))
        ]
    );
    assert_eq!(out["b"], [("tinh".to_string(), t8)], "other communes unaffected");
    // No overlap, no question.
    let apart = [
        schedule("tinh", "p", "2026-12-02T08:00:00", "priority"),
        schedule("xa", "c1", "2026-12-02T08:10:00", "normal"),
    ];
    assert!(needed(&f, &[on("c1")], &apart, &|_| 600_000, now(), Duration::hours(48)).is_empty());
    assert_eq!(Priority::default(), Priority::Normal);
}

#[test]
fn answers_are_checked_against_the_question() {
    let q = Request {
        id: "q".into(),
        area: "c1".into(),
        kind: Kind::Acceptance,
        schedule_id: "s".into(),
        title: String::new(),
        other_id: None,
        other_title: None,
        first_at: Some(now() + Duration::hours(1)),
        state: State::Pending,
        slot_at: None,
        reason: None,
        first: None,
        outcome: None,
        asked_at: now(),
        answered_at: None,
        answered_by: None,
        revision: 1,
    };
    let a = |decision, reason: Option<&str>, slot_at, first| Answer {
        decision,
        reason: reason.map(str::to_string),
        slot_at,
        first,
    };
    let err = |x: Answer| answered(&q, &x, "op", now()).unwrap_err().to_string();
    assert!(err(a(Decision::Decline, Some("  "), None, None)).contains("reason"));
    assert!(err(a(Decision::Reslot, None, Some(now() - Duration::hours(1)), None)).contains("future"));
    assert!(err(a(Decision::Order, None, None, Some(First::Commune))).contains("acceptance"));
    let ok = answered(
        &q,
        &a(Decision::Decline, Some(" trùng lịch họp "), None, None),
        "op",
        now(),
    )
    .unwrap();
    assert_eq!(
        (ok.state, ok.reason.as_deref()),
        (State::Declined, Some("trùng lịch họp"))
    );
    assert_eq!(ok.answered_by.as_deref(), Some("op"));
    let order = Request {
        kind: Kind::Order,
        ..q.clone()
    };
    assert!(answered(&order, &a(Decision::Accept, None, None, None), "op", now()).is_err());
    assert_eq!(
        answered(
            &order,
            &a(Decision::Order, None, None, Some(First::Commune)),
            "op",
            now()
        )
        .unwrap()
        .first,
        Some(First::Commune)
    );
    let t = now() + Duration::hours(2);
    assert_eq!(
        first_clash(
            &[t],
            Duration::minutes(10),
            &[t + Duration::minutes(9)],
            Duration::minutes(1)
        ),
        Some(t)
    );
    assert_eq!(
        first_clash(
            &[t],
            Duration::minutes(10),
            &[t + Duration::minutes(10)],
            Duration::minutes(1)
        ),
        None
    );
}

//! Hand-counted checks of `domain::report` on a small province.

use std::collections::{BTreeMap, HashMap};

use nguon_protocol::{PlayOutcome, Priority};

use super::{
    AreaReport, AreaRow, Loaded, PublishedBulletin, ReportDevice, ReportDisplay, ReportPlay, Scheduled, Units,
};
use crate::domain::area::AreaTree;
use crate::domain::scope::{Caller, Role, Via};

const MIN: i64 = 60_000;

fn areas() -> BTreeMap<String, AreaRow> {
    [
        ("p", None, "province"),
        ("d1", Some("p"), "Huyện"),
        ("c1", Some("d1"), "commune"),
        ("v1", Some("c1"), "village"),
        ("c2", Some("p"), "Phường"),
    ]
    .into_iter()
    .map(|(code, parent, level)| {
        (
            code.to_string(),
            AreaRow {
                code: code.into(),
                name: format!("Area {code}"),
                parent: parent.map(str::to_string),
                level: level.into(),
            },
        )
    })
    .collect()
}

fn tree(areas: &BTreeMap<String, AreaRow>) -> AreaTree {
    AreaTree::new(areas.values().map(|a| (a.code.clone(), a.parent.clone())))
}

/// Loudspeakers s1 (c1, online), s2 (village v1 of c1), s3 (c2, online), x (the province:
/// in no row); board b (c2, online). c1 lies in the district d1, c2 in none.
fn devices() -> Vec<ReportDevice> {
    [
        ("s1", "loudspeaker", "c1", true),
        ("s2", "loudspeaker", "v1", false),
        ("s3", "loudspeaker", "c2", true),
        ("b", "board", "c2", true),
        ("x", "loudspeaker", "p", true),
    ]
    .into_iter()
    .map(|(id, kind, area, online)| ReportDevice {
        id: id.into(),
        kind: kind.into(),
        area: area.into(),
        created_at: 0,
        online,
    })
    .collect()
}

fn play(
    device: &str,
    schedule: &str,
    item: &str,
    occ: i64,
    outcome: Option<PlayOutcome>,
    span: (Option<i64>, Option<i64>),
) -> ReportPlay {
    ReportPlay {
        device_id: device.into(),
        schedule_id: schedule.into(),
        item_id: item.into(),
        occurrence_at: occ,
        sha256: item.into(),
        priority: Some(if schedule.is_empty() {
            Priority::Emergency
        } else {
            Priority::Normal
        }),
        outcome,
        started_at: span.0,
        ended_at: span.1,
        language: if schedule == "A" {
            "vi".into()
        } else {
            String::new()
        },
        category: String::new(),
    }
}

fn plays() -> Vec<ReportPlay> {
    use PlayOutcome::*;
    vec![
        // c1: schedule A's occurrence at 100 played twice on s1 (1 + 0.5 min, one delivery),
        // missed and failed on s2, then interrupted there after 2 minutes (a delivery).
        play(
            "s1",
            "A",
            "a@100",
            100,
            Some(Played),
            (Some(100), Some(100 + MIN)),
        ),
        play(
            "s1",
            "A",
            "a@100",
            100,
            Some(Played),
            (Some(200), Some(200 + MIN / 2)),
        ),
        play("s2", "A", "a@100", 100, Some(Missed), (None, None)),
        play("s2", "A", "a@100", 100, Some(Failed), (None, None)),
        play(
            "s2",
            "A",
            "a@100",
            100,
            Some(Interrupted),
            (Some(150), Some(150 + 2 * MIN)),
        ),
        // c1: a schedule that is gone, resumed without an end (an item, no minutes).
        play("s1", "gone", "g@300", 300, Some(Resumed), (Some(300), None)),
        // Emergency `cmd` at 500: on s1 after 1 s and s2 after 4 s (c1: one, 1 s), on s3
        // after 2 s for a minute (c2: one, 2 s).
        play("s1", "", "cmd", 500, Some(Played), (Some(1500), None)),
        play("s2", "", "cmd", 500, Some(Played), (Some(4500), None)),
        play("s3", "", "cmd", 500, Some(Played), (Some(2500), Some(2500 + MIN))),
        // c2: the board plays schedule B for a minute (an item; a board is not scheduled, so no
        // delivery).
        play("b", "B", "b@700", 700, Some(Played), (Some(700), Some(700 + MIN))),
        // Nothing: x is in no row; an outcome this server does not know; skipped.
        play("x", "A", "a@100", 100, Some(Played), (Some(100), Some(100 + MIN))),
        play("s1", "A", "a@100", 100, None, (Some(100), Some(100 + MIN))),
        play("s1", "A", "a@100", 100, Some(SkippedQuietHours), (None, None)),
    ]
}

/// A: twice over c1 (s1, s2); B: three times on s3, the board b and x (only s3 counts);
/// D: no occurrence in the period.
fn scheduled() -> Vec<Scheduled> {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        Scheduled {
            id: "A".into(),
            occurrences: vec![100, 400],
            areas: v(&["c1"]),
            devices: vec![],
        },
        Scheduled {
            id: "B".into(),
            occurrences: vec![700, 800, 900],
            areas: vec![],
            devices: v(&["s3", "b", "x"]),
        },
        Scheduled {
            id: "D".into(),
            occurrences: vec![],
            areas: v(&["p"]),
            devices: v(&["s1"]),
        },
    ]
}

fn caller(scope: Option<&[&str]>) -> Caller {
    Caller {
        user_id: "u".into(),
        username: "u".into(),
        role: Role::Viewer,
        extra_roles: Vec::new(),
        scope_areas: scope.map(|s| s.iter().map(|c| c.to_string()).collect()),
        scope_roots: scope.map(|s| s.iter().map(|c| c.to_string()).collect()),
        via: Via::Session,
        csrf: None,
    }
}

fn report(scope: Option<&[&str]>) -> super::Report {
    let areas = areas();
    let tree = tree(&areas);
    let units = Units::new(&caller(scope), &areas, &tree, &devices());
    let availability: HashMap<String, f64> = units
        .speakers()
        .iter()
        .chain(units.boards())
        .filter_map(|s| match s.id.as_str() {
            "s1" => Some((s.id.clone(), 0.5)),
            "s2" => Some((s.id.clone(), 1.0)),
            "b" => Some((s.id.clone(), 0.25)),
            _ => None, // s3 did not exist in the period
        })
        .collect();
    let loaded = Loaded {
        availability,
        plays: plays(),
        scheduled: scheduled(),
        // The board showed n1 for two minutes (and another board, not ours, n2).
        displays: vec![
            ReportDisplay {
                device_id: "b".into(),
                bulletin_id: "n1".into(),
                shown_from: 0,
                shown_to: 2 * MIN,
                category: "y tế".into(),
                language: "vi".into(),
            },
            ReportDisplay {
                device_id: "elsewhere".into(),
                bulletin_id: "n2".into(),
                shown_from: 0,
                shown_to: MIN,
                ..Default::default()
            },
        ],
        // n1 to the whole province reaches c1 and c2; n2 to the village v1 reaches c1.
        bulletins: vec![
            PublishedBulletin {
                id: "n1".into(),
                targets: vec!["p".into()],
            },
            PublishedBulletin {
                id: "n2".into(),
                targets: vec!["v1".into()],
            },
        ],
    };
    units.aggregate(&loaded, &tree, (0, 1_000_000))
}

fn row(code: &str, name: &str, counts: [i64; 7], minutes: f64) -> AreaReport {
    let [
        devices,
        online,
        availability_devices,
        items,
        scheduled,
        delivered,
        emergencies,
    ] = counts;
    AreaReport {
        code: code.into(),
        name: name.into(),
        devices,
        online,
        availability_devices,
        items,
        minutes,
        scheduled,
        delivered,
        emergencies,
        ..Default::default()
    }
}

#[test]
fn a_small_province_is_counted_by_hand() {
    let rep = report(None);
    assert_eq!((rep.from_ms, rep.to_ms), (0, 1_000_000));
    let codes: Vec<&str> = rep.rows.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["c1", "c2"], "one row per commune, by code");
    let [c1, c2] = [&rep.rows[0], &rep.rows[1]];
    // c1: s1 and s2; items 2 + 1 + 1 + 2 emergency plays; minutes 1 + 0.5 + 2; scheduled
    // 2 × 2; delivered (s1, A, 100) and (s2, A, 100); availability (0.5 + 1) / 2; one
    // emergency first played after 1 s.
    assert_eq!(
        (
            c1.devices,
            c1.online,
            c1.availability_devices,
            c1.items,
            c1.scheduled,
            c1.delivered
        ),
        (2, 1, 2, 6, 4, 2)
    );
    assert_eq!(c1.minutes, 3.5);
    assert_eq!(c1.delivery_rate, Some(0.5));
    assert_eq!(c1.availability, Some(0.75));
    assert_eq!((c1.emergencies, c1.ttfp_seconds), (1, Some(1.0)));
    // c2: s3 (the board is no loudspeaker); items: the emergency and the board's play; one
    // minute each; scheduled 3 (s3 only), delivered 0 (the board's play is not one of the
    // scheduled pairs); no loudspeaker availability.
    assert_eq!(
        (
            c2.devices,
            c2.online,
            c2.availability_devices,
            c2.items,
            c2.scheduled,
            c2.delivered
        ),
        (1, 1, 0, 2, 3, 0)
    );
    assert_eq!(c2.minutes, 2.0);
    assert_eq!(c2.delivery_rate, Some(0.0));
    assert_eq!(c2.availability, None);
    assert_eq!((c2.emergencies, c2.ttfp_seconds), (1, Some(2.0)));
    // The total: sums, rates of the sums, availability the mean over all loudspeakers.
    let t = &rep.total;
    assert_eq!((t.code.as_str(), t.name.as_str()), ("", ""));
    assert_eq!(
        (
            t.devices,
            t.online,
            t.availability_devices,
            t.items,
            t.scheduled,
            t.delivered
        ),
        (3, 2, 2, 8, 7, 2)
    );
    assert_eq!(t.minutes, 5.5);
    assert_eq!(t.delivery_rate, Some(2.0 / 7.0));
    assert_eq!(t.availability, Some(0.75));
    assert_eq!((t.emergencies, t.ttfp_seconds), (2, Some(1.5)));
    // Programmes: c1 a@100, g@300 and cmd; c2 cmd and b@700; four in all.
    assert_eq!((c1.programmes, c2.programmes, t.programmes), (3, 2, 4));
    // Bulletins and boards: n1 and n2 reach c1, n1 reaches c2; the board b showed n1 for 2
    // minutes (the other board is in no row).
    assert_eq!(
        (
            c1.bulletins_published,
            c2.bulletins_published,
            t.bulletins_published
        ),
        (2, 1, 2)
    );
    assert_eq!(
        (
            c2.boards,
            c2.boards_online,
            c2.displays,
            c2.display_minutes,
            c2.bulletins_shown
        ),
        (1, 1, 1, 2.0, 1)
    );
    assert_eq!(
        (c2.board_availability, t.board_availability),
        (Some(0.25), Some(0.25))
    );
    assert_eq!(
        (c1.boards, c1.displays, t.displays, t.bulletins_shown),
        (0, 0, 1, 1)
    );
    // Districts: c2 under none (empty code), c1 under d1.
    assert_eq!((c1.district.as_str(), c2.district.as_str()), ("d1", ""));
    let d: Vec<(&str, &str, i64, i64)> = rep
        .districts
        .iter()
        .map(|d| (d.code.as_str(), d.name.as_str(), d.scheduled, d.delivered))
        .collect();
    assert_eq!(d, [("", "", 3, 0), ("d1", "Area d1", 4, 2)]);
    assert_eq!(rep.districts[1].programmes, 3);
    // Breakdown by language: A's plays are in `vi`, the rest unknown; the display in `vi`.
    let vi = rep
        .breakdown
        .iter()
        .find(|b| b.dimension == "language" && b.key == "vi")
        .unwrap();
    assert_eq!((vi.plays, vi.minutes, vi.displays), (3, 3.5, 1));
    let health = rep
        .breakdown
        .iter()
        .find(|b| b.dimension == "category" && b.key == "y tế")
        .unwrap();
    assert_eq!(
        (health.plays, health.displays, health.display_minutes),
        (0, 1, 2.0)
    );
}

#[test]
fn a_play_counts_as_delivered_only_when_it_was_scheduled() {
    // Only A's occurrence at 400 is counted (created later, say): the play of 100 is an item
    // but no delivery, and the rate never exceeds 1.
    let areas = areas();
    let tree = tree(&areas);
    let units = Units::new(&caller(None), &areas, &tree, &devices());
    let mut sched = scheduled();
    sched[0].occurrences = vec![400];
    let loaded = Loaded {
        plays: plays(),
        scheduled: sched,
        ..Default::default()
    };
    let rep = units.aggregate(&loaded, &tree, (0, 1_000_000));
    let c1 = &rep.rows[0];
    assert_eq!((c1.items, c1.scheduled, c1.delivered), (6, 2, 0));
    assert_eq!(c1.delivery_rate, Some(0.0));
}

#[test]
fn a_scope_keeps_its_communes_else_its_top_areas() {
    // An operator of c2 sees c2 only.
    let rep = report(Some(&["c2"]));
    let mut want = row("c2", "Area c2", [1, 1, 0, 2, 3, 0, 1], 2.0);
    want.delivery_rate = Some(0.0);
    (want.ttfp_seconds, want.ttfp_sum_ms) = (Some(2.0), 2000);
    (want.programmes, want.bulletins_published) = (2, 1);
    (
        want.boards,
        want.boards_online,
        want.displays,
        want.display_minutes,
        want.bulletins_shown,
    ) = (1, 1, 1, 2.0, 1);
    (
        want.board_availability,
        want.board_availability_sum,
        want.board_availability_devices,
    ) = (Some(0.25), 0.25, 1);
    assert_eq!(rep.rows.len(), 1);
    assert_eq!(rep.rows[0], want);
    // A viewer of the village v1 (no commune in scope) gets v1 itself: s2 only (on air:
    // the interrupted play and the emergency).
    let rep = report(Some(&["v1"]));
    let mut want = row("v1", "Area v1", [1, 0, 1, 2, 2, 1, 1], 2.0);
    want.delivery_rate = Some(0.5);
    want.district = "d1".into();
    (want.programmes, want.bulletins_published) = (2, 2);
    (want.availability, want.availability_sum) = (Some(1.0), 1.0);
    (want.ttfp_seconds, want.ttfp_sum_ms) = (Some(4.0), 4000);
    assert_eq!(rep.rows, vec![want.clone()]);
    assert_eq!(
        (rep.total.items, rep.total.scheduled, rep.total.ttfp_seconds),
        (2, 2, Some(4.0))
    );
    // Nothing in scope: no row, an empty total.
    let rep = report(Some(&[]));
    assert!(rep.rows.is_empty());
    assert_eq!(rep.total.delivery_rate, None);
}

#[test]
fn the_rows_level_and_on_air_rules() {
    for level in ["commune", "Ward", "xa", "Xã", "phuong", "PHƯỜNG", "Thị trấn"] {
        assert!(super::is_commune(level), "{level}");
    }
    for level in ["district", "Huyện", "quận", "Thị xã"] {
        assert!(super::is_district(level) && !super::is_commune(level), "{level}");
    }
    for level in ["province", "village", "thôn", ""] {
        assert!(!super::is_commune(level), "{level}");
    }
    use PlayOutcome::*;
    let on: Vec<bool> = [
        Played,
        PlayedLate,
        Resumed,
        Interrupted,
        SkippedQuietHours,
        Missed,
        Failed,
    ]
    .into_iter()
    .map(|o| super::on_air(Some(o)))
    .collect();
    assert_eq!(on, [true, true, true, true, false, false, false]);
    assert!(!super::on_air(None));
}

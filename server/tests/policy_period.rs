//! Issue 15, the report's policy coverage over a seeded half-year: each policy's stage is the
//! one it had at the END of the period, told by its stage dates, not the stage it has today; the
//! expected figures are worked out here from the seed by a rule of its own (latest stage started
//! by 30 June, the earlier stages with it, less those ended before 1 January; communicated when
//! linked content played in the period), and a later change of stage does not change the
//! filed period.

use crate::common;
use crate::dispatch_support;
use crate::policy::{create, link, play_of};

use chrono::{NaiveDate, TimeZone};
use common::{json, spawn_app};
use dispatch_support::{area, device, media, uid};
use serde_json::{Value, json};

const STAGES: [&str; 5] = ["consultation", "issued", "in_force", "guidance", "feedback"];

/// One seeded policy: its current stage, its stage dates (stage, start, end), and the stages
/// whose linked content played (stage, month, day of 2025).
struct Seed {
    title: &'static str,
    now: &'static str,
    dates: Vec<(&'static str, &'static str, Option<&'static str>)>,
    played: Vec<(&'static str, u32, u32)>,
}

fn seeds() -> Vec<Seed> {
    vec![
        // Issued in March, in force only from 1 July; today already in force.
        Seed {
            title: "A học phí",
            now: "in_force",
            dates: vec![
                ("consultation", "2025-01-05", Some("2025-02-28")),
                ("issued", "2025-03-10", None),
                ("in_force", "2025-07-01", None),
            ],
            played: vec![("consultation", 1, 20), ("issued", 4, 2), ("in_force", 6, 25)],
        },
        // Consultation from April; today in guidance, never dated (set after the period).
        Seed {
            title: "B đất đai",
            now: "guidance",
            dates: vec![("consultation", "2025-04-01", None)],
            played: vec![],
        },
        // Consultation over before the period; issued in June, nothing played.
        Seed {
            title: "C bảo hiểm",
            now: "issued",
            dates: vec![
                ("consultation", "2024-09-01", Some("2024-10-31")),
                ("issued", "2025-06-20", None),
            ],
            played: vec![("consultation", 1, 3)],
        },
        // Everything after the period: not counted at all.
        Seed {
            title: "D giao thông",
            now: "issued",
            dates: vec![
                ("consultation", "2025-08-01", None),
                ("issued", "2025-10-01", None),
            ],
            played: vec![],
        },
        // Guidance dated in May while the stored stage is still "issued".
        Seed {
            title: "E nông nghiệp",
            now: "issued",
            dates: vec![
                ("issued", "2025-02-01", None),
                ("guidance", "2025-05-15", Some("2025-12-31")),
            ],
            played: vec![("in_force", 3, 1), ("guidance", 5, 20)],
        },
    ]
}

/// Per stage (reached, communicated), the policies counted, those communicated at every
/// counted stage, and the gaps (title, stage).
type Figures = (Vec<(i64, i64)>, i64, i64, Vec<(String, String)>);

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The figures the seed implies for the half-year `from..=to`: per stage (reached,
/// communicated), the policies counted, those communicated at every counted stage, the gaps.
fn expected(seeds: &[Seed], from: NaiveDate, to: NaiveDate) -> Figures {
    let mut per = vec![(0i64, 0i64); 5];
    let (mut counted, mut full, mut gaps) = (0, 0, Vec::new());
    for s in seeds {
        let idx = |st: &str| STAGES.iter().position(|x| *x == st).unwrap();
        let Some(at) = s
            .dates
            .iter()
            .filter(|(_, start, _)| day(start) <= to)
            .map(|(st, _, _)| idx(st))
            .max()
        else {
            continue;
        };
        let mut all = true;
        let mut any = false;
        for (i, st) in STAGES.iter().enumerate().take(at + 1) {
            let ended_before = s
                .dates
                .iter()
                .any(|(x, _, end)| x == st && end.is_some_and(|e| day(e) < from));
            if ended_before {
                continue;
            }
            any = true;
            per[i].0 += 1;
            let played = s.played.iter().any(|(x, m, d)| {
                x == st && {
                    let p = NaiveDate::from_ymd_opt(2025, *m, *d).unwrap();
                    p >= from && p <= to
                }
            });
            if played {
                per[i].1 += 1;
            } else {
                all = false;
                gaps.push((s.title.to_string(), st.to_string()));
            }
        }
        counted += i64::from(any);
        full += i64::from(any && all);
    }
    gaps.sort();
    (per, counted, full, gaps)
}

fn figures(pc: &Value) -> Figures {
    let per = (0..5)
        .map(|i| {
            (
                pc["stages"][i]["reached"].as_i64().unwrap(),
                pc["stages"][i]["communicated"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut gaps: Vec<(String, String)> = pc["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["title"].as_str().unwrap().to_string(),
                g["stage"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    gaps.sort();
    (
        per,
        pc["policies"].as_i64().unwrap(),
        pc["fully_communicated"].as_i64().unwrap(),
        gaps,
    )
}

#[tokio::test]
async fn the_half_year_report_counts_each_policy_at_the_stage_it_had_at_the_period_end() {
    let app = spawn_app().await;
    let p = uid("tinh");
    area(&app, &p, None).await;
    let xa = uid("xa");
    area(&app, &xa, Some(&p)).await;
    let speaker = uid("loa");
    device(&app, &speaker, &xa, "device-password-1", None).await;
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let seeds = seeds();
    let mut ids = Vec::new();
    for s in &seeds {
        let stages: Vec<Value> = s
            .dates
            .iter()
            .map(|(st, a, b)| json!({"stage": st, "starts_on": a, "ends_on": b}))
            .collect();
        let id = create(
            &app,
            &json!({"title": s.title, "issuer": "UBND tỉnh", "field": "an sinh", "areas": [xa],
                    "stage": s.now, "stages": stages}),
        )
        .await;
        for (st, m, d) in &s.played {
            let sha = media(&app, "approved", 60_000).await;
            link(&app, &id, st, "media", &sha).await;
            let at = tz.with_ymd_and_hms(2025, *m, *d, 7, 0, 0).unwrap();
            play_of(&app, &speaker, &sha, at.timestamp_millis()).await;
        }
        ids.push(id);
    }
    let (from, to) = (day("2025-01-01"), day("2025-06-30"));
    let want = expected(&seeds, from, to);
    // The seed's own rule, and what counting today's stages would give instead: they differ,
    // so this test fails on the old rule.
    assert_eq!(want.0, [(3, 1), (3, 1), (1, 1), (1, 1), (0, 0)], "{want:?}");
    assert_eq!((want.1, want.2), (4, 1));

    let q = format!("from=2025-01-01&to=2025-06-30&area={p}");
    let (s, r) = json(app.get(&format!("/api/v1/reports?{q}")).await).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(figures(&r["policy"]), want, "{}", r["policy"]);

    // The CSV carries the same per-stage figures.
    let csv = app
        .get(&format!("/api/v1/reports?{q}&format=csv&section=policy"))
        .await
        .text()
        .await
        .unwrap();
    for (label, (a, b)) in ["Dự thảo lấy ý kiến", "Ban hành", "Có hiệu lực"]
        .iter()
        .zip(&want.0)
    {
        assert!(
            csv.contains(&format!("{label},{a},{b},")),
            "{label} {a} {b}: {csv}"
        );
    }

    // Later: the stages move on (one undated, one dated after the period). The filed half-year
    // does not change.
    for (id, body) in [
        (&ids[0], json!({"stage": "feedback"})),
        (
            &ids[1],
            json!({"stage": "feedback", "stages": [{"stage": "consultation", "starts_on": "2025-04-01"}, {"stage": "feedback", "starts_on": "2025-11-01"}]}),
        ),
        (&ids[2], json!({"stage": "guidance"})),
    ] {
        let (s, b) = json(app.patch_json(&format!("/api/v1/policies/{id}"), &body).await).await;
        assert_eq!(s, 200, "{b}");
    }
    let (_, undated) = json(app.get(&format!("/api/v1/policies/{}", ids[0])).await).await;
    assert!(
        undated["stages"].to_string().contains("\"feedback\""),
        "a stage set without a date is dated the day it was set: {undated}"
    );
    let (_, again) = json(app.get(&format!("/api/v1/reports?{q}")).await).await;
    assert_eq!(figures(&again["policy"]), want, "{}", again["policy"]);
}

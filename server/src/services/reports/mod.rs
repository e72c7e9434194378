//! The broadcast report for a caller and a period (issues 7 and 13): the store's reads (areas,
//! devices, the status history's availability, the period's proofs of play, the schedules and
//! their enabled history, proof of display, published bulletins) counted by `domain::report`.
//! Only the caller's scope is counted, optionally narrowed to one area's subtree. This is the
//! ONE computation behind the console page, its CSV/XLSX/print views and `GET /api/v1/reports`.

pub mod engagement;
pub mod export;
pub mod policy_export;

use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::area::AreaTree;
use crate::domain::report::counting::{counted_spans, occurrences_in};
use crate::domain::report::period::period_ms;
use crate::domain::report::policy::{PolicyCoverage, PublicReach, policy_coverage, public_reach};
use crate::domain::report::sections::{Form, form, reporting_unit};
use crate::domain::report::{AreaReport, Breakdown, Loaded, Report, Scheduled, Units};
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::{self, reports};

/// The period a report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Period {
    /// First day (`YYYY-MM-DD`, Asia/Ho_Chi_Minh).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// Start, unix ms (inclusive).
    pub from_ms: i64,
    /// End, unix ms (exclusive: midnight after the last day).
    pub to_ms: i64,
    /// The instant the figures were counted up to (`min(now, to_ms)`), unix ms.
    pub counted_until_ms: i64,
}

/// A report as filed: the period, the reporting unit and its form, the figures per commune and
/// district, the total and the breakdown. The JSON of `GET /api/v1/reports`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Filed {
    /// The period.
    pub period: Period,
    /// The area the report was narrowed to (`area=`), if any.
    pub area: Option<String>,
    /// The reporting unit (đơn vị báo cáo).
    pub unit: String,
    /// The heading and signature block of the printed form.
    #[schema(value_type = Object)]
    pub form: Form,
    /// One row per commune.
    #[schema(value_type = Vec<Object>)]
    pub areas: Vec<AreaReport>,
    /// One row per district (code empty: communes under no district).
    #[schema(value_type = Vec<Object>)]
    pub districts: Vec<AreaReport>,
    /// The total over the communes (`delivery_rate` between 0 and 1, null when nothing was
    /// scheduled).
    #[schema(value_type = Object)]
    pub total: AreaReport,
    /// Plays and displays by language and content category.
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Breakdown>,
    /// Policy communication (issue 15): % of direct-impact policies communicated at each stage
    /// they were in during the period, and the gaps.
    #[schema(value_type = Object)]
    pub policy: PolicyCoverage,
    /// Public channel reach (issue 15): page views, feed reads and QR loads of the public site.
    #[schema(value_type = Object)]
    pub reach: PublicReach,
    /// Engagement (issue 15): submissions per organisation; citizens' feedback received,
    /// answered, overdue and the median response time (as `GET /api/v1/reports/engagement`).
    #[schema(value_type = Object)]
    pub engagement: crate::domain::report::engagement::Engagement,
    /// Commune autonomy (issue 16): per commune, the province items it was asked to accept in the
    /// period, how many it accepted, declined, re-slotted or left unanswered, and the median time
    /// to answer.
    pub autonomy: Vec<crate::domain::autonomy::report::CommuneAnswers>,
}

/// The caller narrowed to `area`'s subtree (which must be in the caller's scope; 404 otherwise,
/// as for any area the caller cannot see).
fn narrowed(caller: &Caller, tree: &AreaTree, area: &str) -> Result<Caller> {
    if !tree.contains(area) || !caller.in_scope(area) {
        return Err(Error::NotFound(format!("area {area}")));
    }
    let mut c = caller.clone();
    c.scope_areas = Some(tree.subtree(&[area.to_string()]));
    c.scope_roots = Some(vec![area.to_string()]);
    Ok(c)
}

/// The report over the days `from`..=`to` (Vietnam time) for the caller's scope, or the subtree
/// of `area` within it.
pub async fn file(
    state: &AppState,
    caller: &Caller,
    from: NaiveDate,
    to: NaiveDate,
    area: Option<&str>,
) -> Result<Filed> {
    if to < from {
        return Err(Error::bad(
            "invalid_period",
            format!("`to` ({to}) is before `from` ({from})"),
        ));
    }
    let (a, b) = period_ms(from, to);
    let now = store::now_ms();
    let areas = reports::areas(&state.store).await?;
    let tree = AreaTree::new(areas.values().map(|a| (a.code.clone(), a.parent.clone())));
    let caller = match area {
        Some(code) => narrowed(caller, &tree, code)?,
        None => caller.clone(),
    };
    let rep = compute(state, &caller, (&areas, &tree), (a, b), now).await?;
    let policy = policies(state, &caller, (from, to), b).await?;
    let day = |x: NaiveDate| x.format("%Y-%m-%d").to_string();
    let reach = public_reach(&store::public::hits(&state.store, &day(from), &day(to)).await?);
    let engagement = engagement::in_period(state, &caller, (a, b)).await?;
    let autonomy = crate::domain::autonomy::report::count(
        &store::autonomy::asked(&state.store, a, b).await?,
        |c| caller.in_scope(c),
        |c| areas.get(c).map_or_else(|| c.to_string(), |r| r.name.clone()),
    );
    // The unit: the caller's top areas (the roots of the scope, else the tree's roots).
    let tops: Vec<String> = match &caller.scope_roots {
        Some(roots) => roots
            .iter()
            .filter_map(|c| areas.get(c))
            .map(|a| a.name.clone())
            .collect(),
        None => areas
            .values()
            .filter(|a| a.parent.as_ref().is_none_or(|p| !areas.contains_key(p)))
            .map(|a| a.name.clone())
            .collect(),
    };
    let unit = reporting_unit(&tops);
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive();
    let d = |x: NaiveDate| x.format("%d/%m/%Y").to_string();
    Ok(Filed {
        period: Period {
            from: from.format("%Y-%m-%d").to_string(),
            to: to.format("%Y-%m-%d").to_string(),
            from_ms: a,
            to_ms: b,
            counted_until_ms: b.min(now).max(a),
        },
        area: area.map(str::to_string),
        form: form(
            &unit,
            &d(from),
            &d(to),
            (today.day(), today.month(), today.year()),
        ),
        unit,
        areas: rep.rows,
        districts: rep.districts,
        total: rep.total,
        breakdown: rep.breakdown,
        policy,
        reach,
        engagement,
        autonomy,
    })
}

/// The policy coverage of the caller's policies for the days `from..=to`: communication counted
/// up to `to_ms`, each policy's stages as they stood on `to` (from the stage dates when `to` is
/// past, so a later change of stage does not rewrite a period already over).
async fn policies(
    state: &AppState,
    caller: &Caller,
    (from, to): (NaiveDate, NaiveDate),
    to_ms: i64,
) -> Result<PolicyCoverage> {
    let today = crate::services::policies::today();
    let mut items = Vec::new();
    for p in crate::services::policies::list(&state.store, caller).await? {
        let c = crate::services::policies::coverage_of(&state.store, p, Some((i64::MIN, to_ms)), (to, today))
            .await?;
        items.push((c.policy, c.stages));
    }
    Ok(policy_coverage(&items, from))
}

/// The figures for `[from_ms, to_ms)` over the caller's scope, counted at `now`.
async fn compute(
    state: &AppState,
    caller: &Caller,
    (areas, tree): (
        &std::collections::BTreeMap<String, crate::domain::report::AreaRow>,
        &AreaTree,
    ),
    (from_ms, to_ms): (i64, i64),
    now: i64,
) -> Result<Report> {
    let devices = reports::devices(&state.store).await?;
    let units = Units::new(caller, areas, tree, &devices);

    // Availability over the period, from the status history rows of the period.
    let counted: Vec<(String, i64)> = units
        .speakers()
        .iter()
        .chain(units.boards())
        .map(|s| (s.id.clone(), s.created_at))
        .collect();
    let availability = store::history::availability(&state.store, &counted, from_ms, to_ms, now)
        .await?
        .into_iter()
        .map(|(id, a)| (id, a.ratio))
        .collect();

    let content = reports::schedule_content(&state.store).await?;
    let mut plays = reports::period_plays(&state.store, from_ms, to_ms).await?;
    for p in &mut plays {
        if let Some((language, category)) = content.get(&p.schedule_id) {
            p.language.clone_from(language);
            p.category.clone_from(category);
        }
    }
    // Scheduled occurrences, re-evaluated from the rules, only after creation, while enabled and
    // before min(now, end).
    let toggles = reports::schedule_toggles(&state.store).await?;
    let scheduled: Vec<Scheduled> = store::schedules::load_all(&state.store, false)
        .await?
        .iter()
        .map(|s| {
            let spans = counted_spans(
                s.created_at.timestamp_millis(),
                toggles.get(&s.id).map_or(&[][..], Vec::as_slice),
                s.enabled,
                (from_ms, to_ms),
                now,
            );
            Scheduled {
                id: s.id.clone(),
                occurrences: occurrences_in(s, &spans),
                areas: s.targets.areas.clone(),
                devices: s.targets.devices.clone(),
            }
        })
        .collect();
    let loaded = Loaded {
        availability,
        plays,
        scheduled,
        displays: reports::period_displays(&state.store, from_ms, to_ms.min(now.max(from_ms))).await?,
        bulletins: reports::published_bulletins(&state.store, from_ms, to_ms).await?,
    };
    Ok(units.aggregate(&loaded, tree, (from_ms, to_ms)))
}

//! The report's engagement sections for a caller and a period (issue 15): citizens' feedback of
//! the caller's areas and the submissions per organisation (`domain::report::engagement`). The
//! JSON of `GET /api/v1/reports/engagement`, also as CSV.

use crate::domain::report::engagement::{self, Engagement};
use crate::domain::report::period::{parse_day, period_ms};
use crate::domain::scope::{Caller, Role};
use crate::error::Result;
use crate::services::AppState;
use crate::store::{self, now_ms};

/// The sections for days `from`..=`to` (`YYYY-MM-DD`, Asia/Ho_Chi_Minh).
pub async fn engagement(state: &AppState, caller: &Caller, from: &str, to: &str) -> Result<Engagement> {
    caller.require(Role::Viewer)?;
    let (from_ms, to_ms) = period_ms(parse_day("from", from)?, parse_day("to", to)?);
    in_period(state, caller, (from_ms, to_ms)).await
}

/// The sections over `[from_ms, to_ms)` for the caller's areas (also the half-year and annual
/// report's `engagement`).
pub async fn in_period(
    state: &AppState,
    caller: &Caller,
    (from_ms, to_ms): (i64, i64),
) -> Result<Engagement> {
    let rows = store::feedback::in_period(&state.store, from_ms, to_ms).await?;
    let orgs = store::organisations::list(&state.store).await?;
    let made = store::submissions::made_between(&state.store, from_ms, to_ms).await?;
    Ok(Engagement {
        from_ms,
        to_ms,
        feedback: engagement::feedback(&rows, from_ms, to_ms, now_ms(), |a| caller.in_scope(a)),
        submissions: engagement::submissions(&orgs, &made),
    })
}

/// The median response time in hours, one decimal (empty without answers).
pub fn median_hours(e: &Engagement) -> String {
    e.feedback
        .median_response_ms
        .map(|m| format!("{:.1}", m as f64 / 3_600_000.0))
        .unwrap_or_default()
}

/// The sections as CSV (one block per section, Vietnamese headers).
pub fn csv(e: &Engagement) -> Result<String> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    let err = |e: csv::Error| crate::error::Error::internal_from("engagement csv", e);
    w.write_record([
        "Phản ánh tiếp nhận",
        "Đã trả lời",
        "Quá hạn",
        "Thời gian trả lời trung vị (giờ)",
    ])
    .map_err(err)?;
    let median_h = median_hours(e);
    w.write_record([
        e.feedback.received.to_string(),
        e.feedback.answered.to_string(),
        e.feedback.overdue.to_string(),
        median_h,
    ])
    .map_err(err)?;
    w.write_record(["Đơn vị", "Loại", "Số bài gửi", "Đã duyệt", "Bị từ chối"])
        .map_err(err)?;
    for o in &e.submissions {
        w.write_record([
            o.name.clone(),
            o.kind.clone(),
            o.submitted.to_string(),
            o.approved.to_string(),
            o.rejected.to_string(),
        ])
        .map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::error::Error::internal(format!("engagement csv: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

//! The bulletin list (`GET /console/bulletins`, filtered by status) and the pending bulletins of
//! the approval queue, each limited to what the caller sees.

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{bulletin_json, may_review};
use crate::console::{Console, PageResult};
use crate::domain::review::ReviewStatus;
use crate::domain::scope::Role;
use crate::error::Result;
use crate::services::AppState;
use crate::services::bulletins::{self, Sight};

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
}

pub(super) async fn list_page(
    c: Console,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let status = q.status.and_then(|s| ReviewStatus::parse(&s).ok());
    let sight = Sight::of(&state.store, &c.caller).await?;
    let list: Vec<Value> = bulletins::list(&state.store, status)
        .await?
        .iter()
        .filter(|b| sight.sees(b))
        .map(bulletin_json)
        .collect();
    let statuses: Vec<&str> = ReviewStatus::ALL.iter().map(|s| s.as_str()).collect();
    c.page(
        "bulletins.html",
        json!({"bulletins": list, "status": status, "statuses": statuses,
               "can_create": c.caller.grants(Role::Editor)}),
    )
}

/// Pending bulletins the caller sees, for the approval queue (`approvals.html`).
pub(in crate::console) async fn pending_for(state: &AppState, c: &Console) -> Result<Vec<Value>> {
    let sight = Sight::of(&state.store, &c.caller).await?;
    let mut out = Vec::new();
    for b in bulletins::pending(&state.store).await? {
        if sight.sees(&b) {
            let mut v = bulletin_json(&b);
            v["can_review"] = json!(may_review(c, &b));
            out.push(v);
        }
    }
    Ok(out)
}

//! The public site's use cases (issue 15), no login: what a citizen may see. Bulletins come only
//! through `store::public` (approved, on the boards, window started); policies only when an
//! approver published them. An area's page and feed carry the bulletins shown on the boards of
//! the area, of its ancestors (a province-wide bulletin concerns every commune) and of its
//! descendants. Short links resolve only among public bulletins. Hits are counted per path and
//! day (Vietnam time), without cookies or addresses.

use chrono::Utc;

use crate::domain::area::Area;
use crate::domain::policy::Policy;
use crate::domain::shortlink;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::public::PublicBulletin;
use crate::store::{self, now_ms};

/// Most bulletins on a page or in a feed.
pub const LIMIT: i64 = 50;

/// Today in Vietnam, `YYYY-MM-DD`.
fn today() -> String {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%Y-%m-%d")
        .to_string()
}

/// Count a public hit of `path` (a failure is logged, never shown to the citizen).
pub async fn count_hit(state: &AppState, path: &str) {
    if let Err(e) = store::public::hit(&state.store, &today(), path).await {
        tracing::warn!(error = %e, path, "public hit not counted");
    }
}

/// The newest public bulletins everywhere.
pub async fn latest(state: &AppState) -> Result<Vec<PublicBulletin>> {
    store::public::bulletins(&state.store, None, None, now_ms(), LIMIT).await
}

/// An area (404 when it does not exist) and the public bulletins that concern it.
pub async fn area(state: &AppState, code: &str) -> Result<(Area, Vec<PublicBulletin>)> {
    let a = store::areas::get(&state.store, code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("area `{code}`")))?;
    let tree = store::areas::tree(&state.store).await?;
    let mut areas = tree.chain(code);
    areas.extend(tree.subtree(&[code.to_string()]));
    areas.sort();
    areas.dedup();
    let list = store::public::bulletins(&state.store, Some(&areas), None, now_ms(), LIMIT).await?;
    Ok((a, list))
}

/// Every area (for the site's area menu), top areas first.
pub async fn areas(state: &AppState) -> Result<Vec<Area>> {
    let all = store::areas::all(&state.store).await?;
    let mut v: Vec<Area> = all.into_values().collect();
    v.sort_by(|a, b| (a.parent.is_some(), &a.code).cmp(&(b.parent.is_some(), &b.code)));
    Ok(v)
}

/// The published policies.
pub async fn policies(state: &AppState) -> Result<Vec<Policy>> {
    store::policies::all(&state.store, true).await
}

/// A published policy (404 otherwise) and its public bulletins.
pub async fn policy(state: &AppState, id: &str) -> Result<(Policy, Vec<PublicBulletin>)> {
    let p = store::policies::get(&state.store, id)
        .await?
        .filter(|p| p.published)
        .ok_or_else(|| Error::NotFound(format!("policy `{id}`")))?;
    let ids = store::public::policy_bulletin_ids(&state.store, id).await?;
    let list = store::public::bulletins(&state.store, None, Some(&ids), now_ms(), LIMIT).await?;
    Ok((p, list))
}

/// A public bulletin (404 otherwise, as for one that does not exist), with the policies it is
/// linked to that are published.
pub async fn bulletin(state: &AppState, id: &str) -> Result<(PublicBulletin, Vec<Policy>)> {
    let b = store::public::bulletins(&state.store, None, Some(&[id.to_string()]), now_ms(), 1)
        .await?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("bulletin `{id}`")))?;
    let mut ps = Vec::new();
    for (pid, _) in
        store::policies::linked_to(&state.store, crate::domain::policy::LinkKind::Bulletin, id).await?
    {
        if let Some(p) = store::policies::get(&state.store, &pid)
            .await?
            .filter(|p| p.published)
            && !ps.iter().any(|q: &Policy| q.id == p.id)
        {
            ps.push(p);
        }
    }
    Ok((b, ps))
}

/// The public bulletin whose short code is `code` (404 otherwise).
pub async fn resolve(state: &AppState, code: &str) -> Result<String> {
    if !shortlink::is_code(code) {
        return Err(Error::NotFound(format!("short link `{code}`")));
    }
    store::public::public_ids(&state.store, now_ms())
        .await?
        .into_iter()
        .find(|id| shortlink::code(id) == code)
        .ok_or_else(|| Error::NotFound(format!("short link `{code}`")))
}

//! Policies (issue 15): create, edit, publish on the public site, link content to a stage, and
//! the coverage of each stage. Editors (and admins) write; approvers (and admins) publish; every
//! write is one transaction with its audit entry (`policy.create`, `policy.update`,
//! `policy.publish`, `policy.unpublish`, `policy.link`, `policy.unlink`). A caller sees a policy
//! when one of its areas reaches the caller's scope (inside it, or an ancestor of it: a
//! province-wide policy concerns a commune's staff) and writes only policies whose areas all lie
//! inside the scope.

use std::collections::HashSet;

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::area::AreaTree;
use crate::domain::policy::{Link, Policy, PolicyIn, Stage, StageCoverage, coverage};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::store::{self, Store, audit, now_ms, policies as db};

/// Areas whose policies reach the caller: the scope and the ancestors of its areas; `None`:
/// unrestricted.
async fn reach(store: &Store, caller: &Caller) -> Result<Option<HashSet<String>>> {
    let Some(scope) = &caller.scope_areas else {
        return Ok(None);
    };
    let tree = store::areas::tree(store).await?;
    let mut r: HashSet<String> = scope.iter().cloned().collect();
    for code in scope {
        r.extend(tree.chain(code));
    }
    Ok(Some(r))
}

fn sees(reach: &Option<HashSet<String>>, p: &Policy) -> bool {
    reach
        .as_ref()
        .is_none_or(|r| p.areas.iter().any(|a| r.contains(a)))
}

/// Today in Vietnam.
pub fn today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive()
}

/// The policies the caller sees, newest first.
pub async fn list(store: &Store, caller: &Caller) -> Result<Vec<Policy>> {
    let r = reach(store, caller).await?;
    Ok(db::all(store, false)
        .await?
        .into_iter()
        .filter(|p| sees(&r, p))
        .collect())
}

/// One policy the caller sees (404 otherwise, as for one that does not exist).
pub async fn get(store: &Store, caller: &Caller, id: &str) -> Result<Policy> {
    let p = db::get(store, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("policy `{id}`")))?;
    if !sees(&reach(store, caller).await?, &p) {
        return Err(Error::NotFound(format!("policy `{id}`")));
    }
    Ok(p)
}

fn check_areas(caller: &Caller, tree: &AreaTree, areas: &[String]) -> Result<()> {
    for a in areas {
        if !tree.contains(a) {
            return Err(Error::unprocessable(
                "unknown_area",
                format!("area `{a}` does not exist"),
            ));
        }
        caller.check_area(a)?;
    }
    Ok(())
}

fn subject(id: &str) -> String {
    format!("policy:{id}")
}

/// Create a policy (editor).
pub async fn create(store: &Store, caller: &Caller, req: PolicyIn) -> Result<Policy> {
    caller.require_any(&[Role::Editor, Role::Approver])?;
    let now = now_ms();
    let mut p = Policy {
        id: uuid::Uuid::now_v7().to_string(),
        title: String::new(),
        issuer: String::new(),
        doc_number: None,
        doc_url: None,
        field: String::new(),
        groups: Vec::new(),
        areas: Vec::new(),
        summary: String::new(),
        direct_impact: true,
        stage: Stage::Consultation,
        stages: Vec::new(),
        published: false,
        created_by: caller.username.clone(),
        created_at: now,
        updated_at: now,
    };
    req.apply(&mut p)?;
    p.date_current_stage(today());
    let tree = store::areas::tree(store).await?;
    check_areas(caller, &tree, &p.areas)?;
    save_audited(store, caller, "policy.create", None, p).await
}

/// Edit a policy (editor; the stored and the new areas must lie in the scope).
pub async fn update(store: &Store, caller: &Caller, id: &str, req: PolicyIn) -> Result<Policy> {
    caller.require_any(&[Role::Editor, Role::Approver])?;
    let before = get(store, caller, id).await?;
    let tree = store::areas::tree(store).await?;
    check_areas(caller, &tree, &before.areas)?;
    let mut p = before.clone();
    req.apply(&mut p)?;
    if p.stage != before.stage {
        p.date_current_stage(today());
    }
    check_areas(caller, &tree, &p.areas)?;
    p.updated_at = now_ms();
    save_audited(store, caller, "policy.update", Some(&before), p).await
}

/// Put a policy on the public site or take it off (approver).
pub async fn set_published(store: &Store, caller: &Caller, id: &str, published: bool) -> Result<Policy> {
    caller.require(Role::Approver)?;
    let before = get(store, caller, id).await?;
    let tree = store::areas::tree(store).await?;
    check_areas(caller, &tree, &before.areas)?;
    let mut p = before.clone();
    p.published = published;
    p.updated_at = now_ms();
    let action = if published {
        "policy.publish"
    } else {
        "policy.unpublish"
    };
    save_audited(store, caller, action, Some(&before), p).await
}

/// Store `p` (new when there is no `before`) with its audit entry `action`, in one transaction.
async fn save_audited(
    store: &Store,
    caller: &Caller,
    action: &str,
    before: Option<&Policy>,
    p: Policy,
) -> Result<Policy> {
    let mut tx = store.begin_write().await?;
    db::save(&mut tx, &p, before.is_none()).await?;
    audit::record(
        &mut tx,
        &caller.username,
        action,
        &subject(&p.id),
        before.and_then(|b| serde_json::to_value(b).ok()),
        serde_json::to_value(&p).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// Link content to a stage of a policy (editor; 422 when the content does not exist).
/// `false` when the link existed already.
pub async fn link(store: &Store, caller: &Caller, id: &str, l: Link, add: bool) -> Result<bool> {
    caller.require_any(&[Role::Editor, Role::Approver, Role::Operator])?;
    let p = get(store, caller, id).await?;
    let l = Link {
        ref_id: l.ref_id.trim().to_string(),
        ..l
    };
    if add && !db::content_exists(store, l.kind, &l.ref_id).await? {
        return Err(Error::unprocessable(
            "unknown_content",
            format!("{} `{}` does not exist", l.kind.as_str(), l.ref_id),
        ));
    }
    let mut tx = store.begin_write().await?;
    let changed = if add {
        db::add_link(&mut tx, &p.id, &l, &caller.username, now_ms()).await?
    } else {
        db::remove_link(&mut tx, &p.id, &l).await?
    };
    if changed {
        let action = if add { "policy.link" } else { "policy.unlink" };
        audit::record(
            &mut tx,
            &caller.username,
            action,
            &subject(id),
            None,
            serde_json::to_value(&l).ok(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// A link with what it reached.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinkReach {
    /// The link.
    #[serde(flatten)]
    pub link: Link,
    /// Plays on air.
    pub plays: i64,
    /// Distinct devices that played it.
    pub devices: i64,
    /// Proof-of-display records.
    pub displays: i64,
    /// A published bulletin: on the public site and feeds.
    pub public: bool,
}

/// A policy with its links and the coverage of each stage (`GET /api/v1/policies/{id}/coverage`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Coverage {
    /// The policy.
    pub policy: Policy,
    /// Each stage, in order.
    pub stages: Vec<StageCoverage>,
    /// Each link with what it reached.
    pub links: Vec<LinkReach>,
    /// Stages reached that nothing communicated.
    pub gaps: Vec<Stage>,
}

/// The coverage of policy `p` (all time, or within `period` unix ms) as of `days` (the day whose
/// stages count, and today: see [`coverage`]).
pub async fn coverage_of(
    store: &Store,
    p: Policy,
    period: Option<(i64, i64)>,
    days: (chrono::NaiveDate, chrono::NaiveDate),
) -> Result<Coverage> {
    let links = db::links(store, &p.id).await?;
    let mut reached = Vec::with_capacity(links.len());
    for l in links {
        let r = db::reached(store, &l, period).await?;
        reached.push((l, r));
    }
    let stages = coverage(&p, &reached, days);
    Ok(Coverage {
        gaps: stages.iter().filter(|s| s.gap).map(|s| s.stage).collect(),
        links: reached
            .into_iter()
            .map(|(link, r)| LinkReach {
                link,
                plays: r.plays,
                devices: r.devices.len() as i64,
                displays: r.displays,
                public: r.public,
            })
            .collect(),
        stages,
        policy: p,
    })
}

/// The coverage of a policy the caller sees.
pub async fn coverage_for(store: &Store, caller: &Caller, id: &str) -> Result<Coverage> {
    let p = get(store, caller, id).await?;
    coverage_of(store, p, None, (today(), today())).await
}

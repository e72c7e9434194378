//! Console administration of the area tree: create, rename, move, delete, CSV import (issue 7).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use super::admin::{page_with, shown_on_form};
use super::{Console, PageError, PageForm, PageResult, all_areas, i18n};
use crate::domain::scope::Role;
use crate::http::form::Fields;
use crate::{AppState, Result, area};

// ---------------------------------------------------------------- areas

/// The area tree in scope, depth first, with device counts; forms for admins.
async fn areas_view(c: &Console, state: &AppState, extra: Value, status: StatusCode) -> PageResult {
    let areas = all_areas(state).await?;
    let counts: HashMap<String, i64> = sqlx::query("SELECT area, COUNT(*) AS n FROM devices GROUP BY area")
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("area")?, r.try_get("n")?)))
        .collect::<Result<_>>()?;
    let mut children: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for a in areas.values() {
        let parent = a.parent.clone().filter(|p| areas.contains_key(p));
        children.entry(parent).or_default().push(a.code.clone());
    }
    let mut out = Vec::new();
    let mut stack: Vec<(String, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|c| (c.clone(), 0))
        .collect();
    let mut seen = HashSet::new();
    while let Some((code, depth)) = stack.pop() {
        if !seen.insert(code.clone()) {
            continue;
        }
        if let Some(a) = areas.get(&code)
            && c.caller.in_scope(&code)
        {
            let key = format!("level.{}", a.level.to_lowercase());
            let label = match i18n::t(&key, c.lang) {
                l if l == key => a.level.clone(),
                l => l.to_string(),
            };
            out.push(
                json!({"code": a.code, "name": a.name, "level": a.level, "level_label": label, "depth": depth,
                            "parent": a.parent, "devices": counts.get(&code).copied().unwrap_or(0)}),
            );
        }
        for ch in children.get(&Some(code.clone())).into_iter().flatten().rev() {
            stack.push((ch.clone(), depth + 1));
        }
    }
    let mut ctx = json!({"areas": out, "can_admin": c.caller.role == Role::Admin});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "areas.html", status, ctx)
}

pub(super) async fn areas_page(c: Console, State(state): State<AppState>) -> PageResult {
    areas_view(&c, &state, json!({}), StatusCode::OK).await
}

/// Run an admin area action; a refused one re-renders the page with the message.
async fn area_action<T>(
    c: &Console,
    state: &AppState,
    run: impl std::future::Future<Output = Result<T>>,
    done: impl FnOnce(T) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    match run.await {
        Ok(v) => {
            done(v).await;
            areas_view(
                c,
                state,
                json!({"flash": i18n::t("admin.saved", lang)}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            areas_view(c, state, json!({"error": e.to_string()}), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

pub(super) async fn area_create(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let req = area::NewArea {
        code: f.one("code"),
        name: f.one("name"),
        parent: f.opt("parent"),
        level: f.one("level"),
    };
    let (st, caller) = (state.clone(), c.caller.clone());
    area_action(&c, &state, area::create(&state, req), move |a| {
        Box::pin(
            async move { area::audit_change(&st, &caller, "area.create", &a.code, None, Some(&a)).await },
        )
    })
    .await
}

pub(super) async fn area_save(
    c: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let parent = if f.has("parent") {
        Some(f.opt("parent"))
    } else {
        None
    };
    let patch = area::AreaPatch {
        name: f.opt("name"),
        level: f.opt("level"),
        parent,
    };
    let (st, caller) = (state.clone(), c.caller.clone());
    area_action(&c, &state, area::update(&state, &code, patch), move |(b, a)| {
        Box::pin(
            async move { area::audit_change(&st, &caller, "area.update", &a.code, Some(&b), Some(&a)).await },
        )
    })
    .await
}

pub(super) async fn area_delete(
    c: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    _checked: PageForm<Fields>,
) -> PageResult {
    let (st, caller) = (state.clone(), c.caller.clone());
    area_action(&c, &state, area::delete(&state, &code), move |b| {
        Box::pin(
            async move { area::audit_change(&st, &caller, "area.delete", &b.code, Some(&b), None).await },
        )
    })
    .await
}

pub(super) async fn area_import(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let csv = f.raw("csv");
    match area::import(&state, &csv).await? {
        Ok(s) => {
            crate::store::audit::record_outside(
                &state.store,
                &c.caller.username,
                "area.import",
                "areas",
                None,
                serde_json::to_value(&s).ok(),
            )
            .await;
            areas_view(&c, &state, json!({"import": s}), StatusCode::OK).await
        }
        Err(lines) => {
            areas_view(
                &c,
                &state,
                json!({"import_errors": lines, "csv": csv}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

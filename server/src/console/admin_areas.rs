//! Console administration of the area tree (issue 7): the tree in scope with device counts, and
//! for admins create, rename, move, delete and CSV import, through the same use cases as the API
//! (`services::areas`). A refused change re-renders the page with the message.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::admin::{page_with, shown_on_form};
use super::{Console, PageError, PageForm, PageResult, i18n};
use crate::domain::area::{AreaPatch, AreaTree, NewArea};
use crate::domain::scope::Role;
use crate::error::Result;
use crate::http::form::Fields;
use crate::services::{self, AppState};
use crate::store;

/// The area tree in scope, depth first, with device counts; forms for admins.
async fn areas_view(c: &Console, state: &AppState, extra: Value, status: StatusCode) -> PageResult {
    let areas = store::areas::all(&state.store).await?;
    let counts = store::devices::count_by_area(&state.store).await?;
    let caps: std::collections::HashMap<String, store::cap::AreaCap> =
        store::cap::area_caps(&state.store).await?.into_iter().collect();
    let tree = AreaTree::new(areas.values().map(|a| (a.code.clone(), a.parent.clone())));
    let mut out = Vec::new();
    for (code, depth) in tree.depth_first() {
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
                            "parent": a.parent, "devices": counts.get(&code).copied().unwrap_or(0),
                            "geocodes": caps.get(&code).map(|c| c.geocodes.join("\n")).unwrap_or_default(),
                            "exercise": caps.get(&code).is_some_and(|c| c.exercise)}),
            );
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
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    match run.await {
        Ok(_) => Ok(super::done("/console/areas", "area_saved")),
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            areas_view(c, state, super::admin::form_error(c, &e), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

pub(super) async fn area_create(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let req = NewArea {
        code: f.one("code"),
        name: f.one("name"),
        parent: f.opt("parent"),
        level: f.one("level"),
    };
    area_action(&c, &state, services::areas::create(&state, &c.caller, req)).await
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
    let patch = AreaPatch {
        name: f.opt("name"),
        level: f.opt("level"),
        parent,
    };
    area_action(
        &c,
        &state,
        services::areas::update(&state, &c.caller, &code, patch),
    )
    .await
}

/// The CAP settings of an area (geocodes one per line, exercises allowed), from its edit form.
pub(super) async fn area_cap_save(
    c: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let settings = store::cap::AreaCap {
        geocodes: f
            .one("geocodes")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        exercise: f.has("exercise"),
        // The area's languages have their own form (bulletins): left as they are.
        languages: None,
    };
    area_action(
        &c,
        &state,
        services::cap::areas::put(&state, &c.caller, &code, &settings),
    )
    .await
}

pub(super) async fn area_delete(
    c: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    _checked: PageForm<Fields>,
) -> PageResult {
    area_action(&c, &state, services::areas::delete(&state, &c.caller, &code)).await
}

pub(super) async fn area_import(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let csv = f.raw("csv");
    match services::areas::import(&state, &c.caller, &csv).await? {
        Ok(s) => areas_view(&c, &state, json!({"import": s}), StatusCode::OK).await,
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

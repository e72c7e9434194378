//! Console device edit (issue 7): name, area, position and enabled flag, through the same use
//! case as the API (`services::devices::update`, with its permission rule).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::admin::{page_with, shown_on_form};
use super::{Console, PageError, PageForm, PageResult, visible_areas};
use crate::domain::device::DevicePatch;
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::http::form::Fields;
use crate::services::{self, AppState};
use crate::store;

// ---------------------------------------------------------------- devices

async fn device_view(
    c: &Console,
    state: &AppState,
    id: &str,
    extra: Value,
    status: StatusCode,
) -> PageResult {
    let lang = c.lang;
    crate::services::auth::check_device(state, &c.caller, id)
        .await
        .map_err(|e| PageError(e, lang))?;
    if c.caller.role != Role::Admin {
        c.caller.require(Role::Operator).map_err(|e| PageError(e, lang))?;
    }
    let d = store::devices::get(&state.store, id)
        .await?
        .ok_or_else(|| PageError(Error::NotFound(format!("device `{id}`")), lang))?;
    let areas = store::areas::all(&state.store).await?;
    let mut ctx = json!({"d": d, "areas": visible_areas(c, &areas)});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "device_edit.html", status, ctx)
}

pub(super) async fn device_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    device_view(&c, &state, &id, json!({}), StatusCode::OK).await
}

fn parse_coord(f: &Fields, name: &'static str) -> Result<Option<f64>> {
    match f.opt(name) {
        None => Ok(None),
        Some(v) => v
            .replace(',', ".")
            .parse::<f64>()
            .map(Some)
            .map_err(|_| Error::bad("invalid_position", format!("`{name}`: `{v}` is not a number"))),
    }
}

pub(super) async fn device_save(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    let res = async {
        let p = DevicePatch {
            name: f.opt("name"),
            area: f.opt("area"),
            enabled: Some(f.has("enabled")),
            lat: parse_coord(&f, "lat")?,
            lon: parse_coord(&f, "lon")?,
            volume: None,
            language: None,
            password: None,
            public_key: None,
        };
        services::devices::update(&state, &c.caller, &id, p).await
    }
    .await;
    match res {
        Ok(_) => Ok(super::done(
            &format!("/console/devices/{id}/edit"),
            "device_saved",
        )),
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            device_view(&c, &state, &id, super::admin::form_error(&c, &e), status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

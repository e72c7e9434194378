//! Console pages for bulletins (*bản tin*, issue 7): the list ([`list`]), the editor form (one
//! multipart form: Vietnamese title and body, category, priority, validity, target areas, images,
//! and language variants each with its own text and optionally a recorded audio file; [`form`],
//! [`edit`]), the text-to-speech preview ([`preview`]), review in the approval queue ([`review`])
//! and publishing to areas ([`publish`]).
//!
//! Every change goes through [`crate::services::bulletins`] (create, update, review, files,
//! publish, each with its audit entry) and the speech and media use cases; this module adds the
//! scope rules and the form. Scope: a user restricted to an area subtree sees the bulletins with a
//! target inside it or above it (a province-wide bulletin reaches a commune) and those they
//! created (`bulletin.create` in the audit log); editing and reviewing need every target inside
//! the scope; publishing targets only areas inside it.
//!
//! A recorded audio file uploaded with a variant is stored as an ordinary media item (`draft`),
//! submitted with its bulletin and approved or rejected together with it.

mod edit;
mod form;
mod list;
mod preview;
mod publish;
mod review;

pub(super) use list::pending_for;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Console, Lang, all_areas, i18n};
use crate::domain::bulletin::Bulletin;
use crate::domain::scope::Role;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::bulletins::Sight;

/// Language codes offered in the variant form (others may be typed).
const KNOWN_LANGUAGES: [&str; 6] = ["vi", "hmn", "dao", "tay", "nung", "thai"];

/// Routes of the bulletin pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/bulletins", get(list::list_page))
        .route(
            "/console/bulletins/new",
            get(edit::new_page)
                .post(edit::create_post)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/console/bulletins/{id}",
            get(edit::bulletin_page)
                .post(edit::update_post)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/console/bulletins/{id}/review", post(review::review))
        .route("/console/bulletins/{id}/publish", post(publish::publish))
        .route("/console/tts/preview", post(preview::tts_preview))
        .route("/console/tts/lexicon", post(preview::tts_lexicon))
}

fn tz() -> chrono_tz::Tz {
    chrono_tz::Asia::Ho_Chi_Minh
}

/// `datetime-local` value in Asia/Ho_Chi_Minh → unix ms; `Some(None)` when empty, `None` when invalid.
fn parse_local(s: &str) -> Option<Option<i64>> {
    super::parse_datetime_local(s, tz()).map(|t| t.map(|t| t.timestamp_millis()))
}

/// Unix ms → `datetime-local` value in Asia/Ho_Chi_Minh.
fn local_input(ms: Option<i64>) -> String {
    super::datetime_local(ms.and_then(chrono::DateTime::from_timestamp_millis), tz())
}

fn tr(key: &str, lang: Lang) -> String {
    i18n::t(key, lang).to_string()
}

// ---------------------------------------------------------------- scope

/// Whether every target of the bulletin is inside the caller's scope (to edit or review it).
fn all_in_scope(c: &Console, b: &Bulletin) -> bool {
    b.areas.iter().all(|a| c.caller.in_scope(a))
}

/// A bulletin the caller may see (404 / 403 otherwise).
async fn visible(state: &AppState, c: &Console, id: &str) -> Result<Bulletin> {
    let b = crate::services::bulletins::get(&state.store, id).await?;
    if !Sight::of(&state.store, &c.caller).await?.sees(&b) {
        return Err(Error::Forbidden(format!(
            "bulletin {id} targets no area inside your scope"
        )));
    }
    Ok(b)
}

fn may_edit(c: &Console, b: &Bulletin) -> bool {
    c.caller.grants(Role::Editor) && all_in_scope(c, b)
}

fn may_review(c: &Console, b: &Bulletin) -> bool {
    c.caller.grants(Role::Approver) && all_in_scope(c, b)
}

/// Areas inside the caller's scope, for the selects.
async fn scope_areas(state: &AppState, c: &Console) -> Result<Vec<Value>> {
    Ok(all_areas(state)
        .await?
        .values()
        .filter(|a| c.caller.in_scope(&a.code))
        .map(|a| json!({"code": a.code, "name": a.name, "level": a.level}))
        .collect())
}

fn voices(state: &AppState, lang: Lang) -> Vec<Value> {
    state
        .tts
        .get()
        .voices()
        .iter()
        .map(|v| {
            let key = format!("bul.voice.{}", v.name);
            let label = match i18n::t(&key, lang) {
                l if l == key => v.label.clone(),
                l => l.to_string(),
            };
            json!({"name": v.name, "label": label, "accent": v.accent})
        })
        .collect()
}

fn bulletin_json(b: &Bulletin) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let title = b.variants.first().map(|v| v.title.clone()).unwrap_or_default();
        o.insert("title".into(), json!(title));
        let langs: Vec<&str> = b.variants.iter().map(|v| v.language.as_str()).collect();
        o.insert("languages".into(), json!(langs.join(", ")));
    }
    v
}

fn is_server_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Db(_) | Error::Io(_) | Error::Internal { .. } | Error::Migrate(_) | Error::Config(_)
    )
}

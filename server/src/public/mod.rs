//! Layer `public`: the province's public pages, served without login (issue 15). It may import
//! `http` (extractors, error mapping), `services`, `store`, `domain` and the foundation; pages
//! are minijinja templates (auto-escaping `.html`: whatever a citizen typed shows as text),
//! Vietnamese, mobile first, under the console's strict Content-Security-Policy (no inline script
//! or style). This file holds the router and the rendering; each page group has its own file.

mod feedback;

use std::sync::OnceLock;

use axum::Router;
use minijinja::Environment;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::services::AppState;

/// Every template of the public pages, by name (embedded at build time).
const TEMPLATES: &[(&str, &str)] = &[
    ("feedback_base.html", include_str!("templates/feedback_base.html")),
    ("feedback_form.html", include_str!("templates/feedback_form.html")),
    ("feedback_done.html", include_str!("templates/feedback_done.html")),
    (
        "feedback_track.html",
        include_str!("templates/feedback_track.html"),
    ),
    (
        "feedback_answers.html",
        include_str!("templates/feedback_answers.html"),
    ),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src).expect("public template parses");
        }
        env
    })
}

/// Render a public template with `ctx` (a JSON object).
pub fn render(name: &str, ctx: Value) -> Result<String> {
    let tmpl = env()
        .get_template(name)
        .map_err(Error::context(format!("template {name}")))?;
    tmpl.render(minijinja::Value::from_serialize(&ctx))
        .map_err(|e| Error::internal(format!("render {name}: {e:#}")))
}

/// Routes of the public pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(feedback::router())
        .layer(crate::http::headers::console_csp())
}

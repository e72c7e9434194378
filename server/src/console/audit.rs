//! The audit log page (admin): who changed what and when, 50 entries a page (newest first, "older"
//! pages back from the last entry shown), filtered by user, action (or its group: `media`) and
//! entity, each change shown as the fields it changed (old → new) instead of raw JSON.

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, PageError, PageResult};
use crate::domain::scope::Role;
use crate::services::AppState;
use crate::store::audit::{Entry, Filter};

/// Entries a page.
const PAGE: i64 = 50;

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    entity: Option<String>,
    /// `<at>.<id>` of the last entry of the previous page.
    #[serde(default)]
    before: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A value as one short line.
fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// The fields that differ between two JSON objects, by dotted path: (path, before, after).
pub(super) fn diff(before: &Value, after: &Value) -> Vec<(String, String, String)> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push((path.to_string(), short(a), short(b))),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    // Timestamps of the change itself say nothing the "when" column does not.
    out.retain(|(p, _, _)| p != "updated_at");
    out
}

fn parse(s: &Option<String>) -> Value {
    s.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

fn row(e: &Entry) -> Value {
    let (b, a) = (parse(&e.before), parse(&e.after));
    let kind = match (&e.before, &e.after) {
        (None, Some(_)) => "created",
        (Some(_), None) => "deleted",
        _ => "changed",
    };
    let changes: Vec<Value> = match kind {
        "changed" => diff(&b, &a)
            .into_iter()
            .map(|(p, x, y)| json!({"field": p, "before": x, "after": y}))
            .collect(),
        _ => Vec::new(),
    };
    // For a creation or deletion: its name, title or code, whichever it has.
    let obj = if kind == "deleted" { &b } else { &a };
    let label = ["title", "name", "username", "code", "id"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .unwrap_or_default();
    json!({"at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity, "kind": kind,
           "changes": changes, "label": label, "raw_before": e.before, "raw_after": e.after})
}

pub(super) async fn audit_page(
    c: Console,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    c.caller.require(Role::Admin).map_err(|e| PageError(e, c.lang))?;
    let before = q.before.as_deref().and_then(|b| {
        let (at, id) = b.split_once('.')?;
        Some((at.parse().ok()?, id.to_string()))
    });
    let f = Filter {
        actor: non_empty(&q.actor),
        action: non_empty(&q.action),
        entity: non_empty(&q.entity),
        before,
    };
    let mut entries = crate::store::audit::search(&state.store, &f, PAGE + 1).await?;
    let more = entries.len() as i64 > PAGE;
    entries.truncate(PAGE as usize);
    let older = more
        .then(|| entries.last().map(|e| format!("{}.{}", e.at, e.id)))
        .flatten();
    let rows: Vec<Value> = entries.iter().map(row).collect();
    let filter = json!({"actor": f.actor, "action": f.action, "entity": f.entity});
    let qs = |before: &str| {
        let mut p = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("actor", &f.actor), ("action", &f.action), ("entity", &f.entity)] {
            if let Some(v) = v {
                p.append_pair(k, v);
            }
        }
        if !before.is_empty() {
            p.append_pair("before", before);
        }
        p.finish()
    };
    c.page(
        "audit.html",
        json!({"entries": rows, "filter": filter, "older": older.as_deref().map(qs),
               "first": qs(""), "paged": f.before.is_some()}),
    )
}

#[cfg(test)]
mod tests {
    use super::diff;
    use serde_json::json;

    #[test]
    fn a_change_shows_the_fields_it_changed() {
        let d = diff(
            &json!({"name": "Xã A", "level": "commune", "updated_at": 1, "geo": {"lat": 1.0}}),
            &json!({"name": "Xã Bản Lầu", "level": "commune", "updated_at": 2, "geo": {"lat": 2.0}}),
        );
        assert_eq!(
            d,
            vec![
                ("geo.lat".to_string(), "1.0".to_string(), "2.0".to_string()),
                ("name".to_string(), "Xã A".to_string(), "Xã Bản Lầu".to_string())
            ]
        );
    }
}

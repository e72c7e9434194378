//! Issue 16's agent-update routes in the audit walk of [`crate::hardening_audit`]: an agent
//! release upload, a rollout and its change. Each call must succeed and add an audit row naming
//! its caller.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::TestApp;
use crate::hardening_audit::{Body, step};

/// Call every agent-update route once; `area` is an area code.
pub(crate) async fn steps(s: &TestApp, c: &mut BTreeSet<String>, area: &str) {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[18] = 62;
    step(
        s,
        c,
        "POST /api/v1/agent-releases",
        "/api/v1/agent-releases",
        Body::Fields(vec![
            ("version", b"9.0.0-audit".to_vec()),
            ("arch", b"x86_64".to_vec()),
            ("binary", elf),
        ]),
    )
    .await;
    let r = step(
        s,
        c,
        "POST /api/v1/rollouts",
        "/api/v1/rollouts",
        Body::Json(json!({"release": "9.0.0-audit", "areas": [area], "percent": 5})),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_string();
    step(
        s,
        c,
        "PATCH /api/v1/rollouts/{id}",
        &format!("/api/v1/rollouts/{id}"),
        Body::Json(json!({"percent": 20, "state": "paused"})),
    )
    .await;
}

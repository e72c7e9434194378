//! Issue 11 item 6: a commune operator cannot reach another commune's media through a command.
//! Every other endpoint answers 404 for media outside the caller's scope; a play-now command
//! naming it (to a device or an area of their own, at any priority) gets the same 404 and nothing
//! is recorded. The command row keeps its issuer (`commands.issued_by`, item 7).

use serde_json::{Value, json};

use crate::common::{self, TestApp, json as body};
use crate::console_support::{TwoCommunes, scoped_user, two_communes};
use crate::dispatch_support::{device, media};

async fn post_as(app: &TestApp, bearer: &str, path: &str, req: &Value) -> (u16, Value) {
    body(app.post_json_as(bearer, path, req).await).await
}

async fn get_as(app: &TestApp, bearer: &str, path: &str) -> (u16, Value) {
    body(app.get_as(bearer, path).await).await
}

async fn commands_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM commands")
        .fetch_one(&app.state().store.pool)
        .await
        .expect("count commands")
}

#[tokio::test]
async fn a_commune_operator_cannot_play_another_communes_media_by_command() {
    let app = common::spawn_app().await;
    let TwoCommunes { mine, theirs, .. } = two_communes(&app).await;
    let dev = app.unique("lc");
    device(&app, &dev, &mine, "command-password", None).await;
    let foreign = media(&app, "approved", 20_000).await;
    let own = media(&app, "approved", 20_000).await;
    for (sha, owner) in [(&foreign, &theirs), (&own, &mine)] {
        sqlx::query("UPDATE media SET area = $1 WHERE sha256 = $2")
            .bind(owner.clone())
            .bind(sha.clone())
            .execute(&app.state().store.pool)
            .await
            .unwrap();
    }
    let (op_name, op) = scoped_user(&app, "vanhanh", "operator", &[&mine]).await;

    // Every other endpoint treats the other commune's media as absent.
    let (s, _) = get_as(&app, &op, &format!("/api/v1/media/{foreign}")).await;
    assert_eq!(s, 404);

    let before = commands_count(&app).await;
    for path in [
        format!("/api/v1/areas/{mine}/commands"),
        format!("/api/v1/devices/{dev}/commands"),
    ] {
        for priority in ["normal", "emergency"] {
            let (s, b) = post_as(
                &app,
                &op,
                &path,
                &json!({"action": "play_now", "media": [foreign], "priority": priority}),
            )
            .await;
            assert_eq!(s, 404, "{path} {priority}: {b}");
            assert_eq!(b["error"]["code"], "not_found", "{b}");
            assert!(b["error"]["message"].as_str().unwrap().contains(&foreign), "{b}");
        }
    }
    assert_eq!(commands_count(&app).await, before, "nothing recorded");

    // Their own commune's media still plays, and the command names its issuer.
    let (s, issued) = post_as(
        &app,
        &op,
        &format!("/api/v1/areas/{mine}/commands"),
        &json!({"action": "play_now", "media": [own], "priority": "emergency"}),
    )
    .await;
    assert_eq!(s, 202, "{issued}");
    let id = issued["command_id"].as_str().unwrap();
    let (s, report) = body(app.get(&format!("/api/v1/commands/{id}")).await).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["issued_by"], op_name.as_str(), "{report}");
    let by: Option<String> = sqlx::query_scalar("SELECT issued_by FROM commands WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap();
    assert_eq!(by.as_deref(), Some(op_name.as_str()));
}

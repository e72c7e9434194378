//! Issue 11 item 12: weak defaults. Without a configured admin token the server generates one at
//! its first start only, keeps its sha256 and accepts it after a restart (nothing new is printed
//! or accepted); a weak configured token stops the start naming the key; trivial passwords of
//! users and devices (their MQTT password, on create and on change) are refused with 422; the
//! admin token is not a board token; the database and the data directory are private to the
//! server's user.

use std::net::SocketAddr;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{self, free_port, json as body};
use nguon_server::{Application, Settings};

/// Build and run the app; returns its base URL, the token generated at this start and a stop.
async fn start(
    settings: Settings,
) -> (
    String,
    Option<String>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let app = Application::build(settings).await.expect("build app");
    let base = format!("http://{}", SocketAddr::from(([127, 0, 0, 1], app.http_port())));
    let generated = app.generated_admin_token().map(str::to_string);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    (base, generated, tx, task)
}

async fn me(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_generated_admin_token_is_made_once_stored_hashed_and_survives_a_restart() {
    let (prepared, mut settings) = common::prepare(|s| s.admin_token = None).await;
    let (base, first, stop, task) = start(settings.clone()).await;
    let token = first.expect("a token is generated at the first start");
    assert_eq!(me(&base, &token).await, 200);
    // Only its sha256 is stored.
    let state_db = nguon_server::Store::connect(&settings.database_url())
        .await
        .unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT value FROM server_secrets")
        .fetch_all(&state_db.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec![hex::encode(Sha256::digest(token.as_bytes()))]);
    // The console user `admin` has it as its password.
    let _ = stop.send(());
    let _ = task.await;

    if settings.mqtt_url.is_none() {
        settings.mqtt_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    }
    let (base, again, stop, task) = start(settings.clone()).await;
    assert_eq!(again, None, "no new token at a restart");
    assert_eq!(me(&base, &token).await, 200, "the first token still works");
    assert_eq!(me(&base, "some-other-token-1234").await, 401);
    let _ = stop.send(());
    let _ = task.await;
    drop(prepared);
}

#[tokio::test]
async fn a_weak_configured_admin_token_or_admin_password_stops_the_start_naming_it() {
    for weak in ["short", "password1234", "aaaaaaaaaaaaaaaa"] {
        let (prepared, settings) =
            common::prepare(|s| s.admin_token = Some(nguon_server::config::Secret::new(weak))).await;
        let e = match Application::build(settings).await {
            Ok(_) => panic!("`{weak}` was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("admin_token"), "{weak}: {e}");
        drop(prepared);
    }
}

#[tokio::test]
async fn trivial_passwords_are_refused_and_the_admin_token_is_not_a_board_token() {
    let app = common::spawn_app().await;
    for weak in ["12345678", "password1234", "Password 1234", "zzzzzzzzzzzzzz"] {
        let (s, b) = body(
            app.post_json(
                "/api/v1/users",
                &json!({"username": app.unique("u"), "role": "viewer", "password": weak}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("weak_password")),
            "{weak}: {b}"
        );
    }
    // A board with its own token; the admin token opens neither its page nor its feed.
    let p = app.unique("p");
    crate::dispatch_support::area(&app, &p, None).await;
    let board = app.unique("bb");
    let (s, b) = body(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": board, "kind": "board", "area": p}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    sqlx::query("UPDATE devices SET board_token_hash = $1 WHERE id = $2")
        .bind(hex::encode(Sha256::digest(b"board-own-token-1")))
        .bind(board.clone())
        .execute(&app.state().store.pool)
        .await
        .unwrap();
    for path in [
        format!("/board/{board}?token={}", app.token),
        format!("/api/v1/boards/{board}/feed?token={}", app.token),
    ] {
        assert_eq!(app.get_anon(&path).await.status(), 401, "{path}");
    }
    let own = app
        .get_anon(&format!("/board/{board}?token=board-own-token-1"))
        .await;
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn weak_device_passwords_are_refused_on_create_and_on_change_naming_the_field() {
    let app = common::spawn_app().await;
    let p = app.unique("p");
    crate::dispatch_support::area(&app, &p, None).await;
    let id = app.unique("lc");
    let hash = |id: String| {
        let pool = app.state().store.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>("SELECT credential_hash FROM devices WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };
    // The users' rule: 12 characters, not one repeated character, not a well-known password.
    for weak in ["12345678", "password1234", "Password 1234", "zzzzzzzzzzzzzz"] {
        let req = json!({"id": id, "kind": "loudspeaker", "area": p, "password": weak});
        let (s, b) = body(app.post_json("/api/v1/devices", &req).await).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("weak_password")),
            "{weak}: {b}"
        );
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("`password`"), "{weak}: {b}");
        assert_eq!(hash(id.clone()).await, None, "{weak}: nothing was registered");
    }
    let req = json!({"id": id, "kind": "loudspeaker", "area": p, "password": "cụm-loa-mật-khẩu-1"});
    let (s, b) = body(app.post_json("/api/v1/devices", &req).await).await;
    assert_eq!(s, 201, "{b}");
    let stored = hash(id.clone()).await.flatten().expect("a credential hash");
    // A change of password follows the same rule and keeps the stored credential.
    for weak in ["short", "changeme1234", "000000000000"] {
        let (s, b) = body(
            app.patch_json(&format!("/api/v1/devices/{id}"), &json!({"password": weak}))
                .await,
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("weak_password")),
            "{weak}: {b}"
        );
        assert_eq!(hash(id.clone()).await.flatten().as_ref(), Some(&stored));
    }
    let (s, b) = body(
        app.patch_json(
            &format!("/api/v1/devices/{id}"),
            &json!({"password": "một-mật-khẩu-mới-2"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_ne!(hash(id.clone()).await.flatten().as_ref(), Some(&stored));
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_the_sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = common::spawn_app().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.data_dir), 0o700, "data dir");
    if app.settings.database_url.is_none() {
        // Written to, so the WAL files exist.
        let (s, _) = body(
            app.post_json(
                "/api/v1/areas",
                &json!({"code": app.unique("p"), "name": "x", "level": "province"}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201);
        for f in ["nguon.db", "nguon.db-wal", "nguon.db-shm"] {
            let p = app.data_dir.join(f);
            if f == "nguon.db" || p.exists() {
                assert_eq!(mode(&p), 0o600, "{f}");
            }
        }
    }
}

//! Black-box tests of the device registry and the registration import.

use crate::common;

use common::{json, spawn_app};
use serde_json::json;

async fn province(app: &common::TestApp) {
    let csv = "code,name,parent,level\n10,Lào Cai,,province\n08003,Xã Sa Pa,10,commune\n08003-01,Thôn A,08003,village\n08020,Xã Bắc Hà,10,commune\n";
    assert_eq!(
        app.post_raw("/api/v1/areas/import", "text/csv", csv)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_registered_device_is_listed_with_its_status_and_can_be_disabled() {
    let app = spawn_app().await;
    province(&app).await;
    let id = app.unique("lc");
    let key = nguon_protocol::KeyPair::generate().public_b64();
    let (s, d) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({
                "id": id, "kind": "loudspeaker", "area": "08003-01", "name": "Cụm loa thôn A",
                "lat": 22.33, "lon": 103.84, "password": "correct horse battery", "public_key": key
            }),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["has_credential"], true);
    assert!(d.get("credential_hash").is_none());
    let (s, d) = json(app.get(&format!("/api/v1/devices/{id}")).await).await;
    assert_eq!(s, 200);
    assert_eq!(d["online"], false);
    assert_eq!(d["enabled"], true);

    let (_, list) = json(app.get("/api/v1/devices?area=10").await).await;
    assert!(
        list.as_array().unwrap().iter().any(|d| d["id"] == id.as_str()),
        "descendant areas included"
    );
    let (_, list) = json(app.get("/api/v1/devices?area=08020").await).await;
    assert!(list.as_array().unwrap().is_empty());

    let (s, d) = json(
        app.patch_json(
            &format!("/api/v1/devices/{id}"),
            &json!({"enabled": false, "volume": 70, "area": "08020"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(
        (d["enabled"].as_bool(), d["volume"].as_i64(), d["area"].as_str()),
        (Some(false), Some(70), Some("08020"))
    );
    let areas = nguon_server::store::devices::device_areas(&app.state().store, &id)
        .await
        .unwrap();
    assert_eq!(areas, vec!["08020".to_string(), "10".to_string()]);
}

#[tokio::test]
async fn devices_with_bad_fields_or_unknown_areas_are_refused() {
    let app = spawn_app().await;
    province(&app).await;
    let cases = [
        (
            json!({"id":"a/b","kind":"loudspeaker","area":"10"}),
            400,
            "invalid_id",
        ),
        (
            json!({"id":"ok-1","kind":"siren","area":"10"}),
            400,
            "invalid_kind",
        ),
        (
            json!({"id":"ok-1","kind":"board","area":"nowhere"}),
            422,
            "unknown_area",
        ),
        (
            json!({"id":"ok-1","kind":"board","area":"10","public_key":"nope"}),
            400,
            "invalid_public_key",
        ),
    ];
    for (body, status, code) in cases {
        let (s, b) = json(app.post_json("/api/v1/devices", &body).await).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {b}"
        );
    }
    assert_eq!(app.get("/api/v1/devices/none").await.status(), 404);
}

#[tokio::test]
async fn a_fleet_import_is_idempotent_and_disables_listed_devices() {
    let app = spawn_app().await;
    let a = app.unique("lc");
    let b = app.unique("bb");
    let hash = nguon_provision::credential::hash_password("pw-0123456789");
    let registry = json!({
        "version": 1,
        "areas": [
            {"code":"10","name":"Lào Cai","parent":null,"level":"province"},
            {"code":"08003","name":"Xã Sa Pa","parent":"10","level":"commune"}
        ],
        "devices": [
            {"id": a, "kind":"loudspeaker","area":"08003","name":"Loa 1","lat":22.3,"lon":103.8,"password_hash": hash,"public_key":null},
            {"id": b, "kind":"board","area":"10","name":"Bảng 1","lat":null,"lon":null,"password_hash": hash,"public_key":null}
        ],
        "disabled": []
    });
    let (s, r) = json(app.post_json("/api/v1/fleet/import", &registry).await).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r,
        json!({"areas_created":2,"areas_updated":0,"created":2,"updated":0,"unchanged":0,"disabled":0,"area_languages_set":0})
    );
    let (_, r) = json(app.post_json("/api/v1/fleet/import", &registry).await).await;
    assert_eq!(
        r,
        json!({"areas_created":0,"areas_updated":0,"created":0,"updated":0,"unchanged":2,"disabled":0,"area_languages_set":0}),
        "second import changes nothing"
    );

    let mut pruned = registry.clone();
    pruned["devices"] = json!([registry["devices"][0]]);
    pruned["disabled"] = json!([b]);
    let (_, r) = json(app.post_json("/api/v1/fleet/import", &pruned).await).await;
    assert_eq!(r["disabled"], 1, "{r}");
    let (_, r) = json(app.post_json("/api/v1/fleet/import", &pruned).await).await;
    assert_eq!(r["disabled"], 0, "{r}");
    let (_, d) = json(app.get(&format!("/api/v1/devices/{b}")).await).await;
    assert_eq!(d["enabled"], false);

    let mut bad = registry.clone();
    bad["devices"][0]["area"] = json!("nowhere");
    let (s, e) = json(app.post_json("/api/v1/fleet/import", &bad).await).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("invalid_registry")),
        "{e}"
    );

    let text = app.get_anon("/metrics").await.text().await.unwrap();
    assert!(text.contains("nguon_devices_total 2"), "{text}");
}

#[tokio::test]
async fn the_station_list_languages_in_a_registry_become_area_languages() {
    // Issue 16: the operator had to PUT /api/v1/areas/{code}/languages by hand after provisioning.
    let app = spawn_app().await;
    let registry = json!({
        "version": 1,
        "areas": [
            {"code":"10","name":"Lào Cai","parent":null,"level":"province"},
            {"code":"08003","name":"Xã Sa Pa","parent":"10","level":"commune"},
            {"code":"08003-01","name":"Bản Phố","parent":"08003","level":"village","languages":["hmn","vi"]},
            {"code":"08003-02","name":"Tổ 1","parent":"08003","level":"village"}
        ],
        "devices": [],
        "disabled": []
    });
    let (s, r) = json(app.post_json("/api/v1/fleet/import", &registry).await).await;
    assert_eq!((s, &r["area_languages_set"]), (200, &json!(1)), "{r}");
    let (_, l) = json(app.get("/api/v1/areas/08003-01/languages").await).await;
    assert_eq!(l["languages"], json!(["hmn", "vi"]), "{l}");
    // An area the file gives no languages keeps its own (here: inherited) list.
    let (_, l) = json(app.get("/api/v1/areas/08003-02/languages").await).await;
    assert_eq!(l["languages"], json!(["vi"]), "{l}");
    let (_, r) = json(app.post_json("/api/v1/fleet/import", &registry).await).await;
    assert_eq!(r["area_languages_set"], 0, "the same file changes nothing: {r}");

    let mut bad = registry.clone();
    bad["areas"][3]["languages"] = json!(["vi", "vi"]);
    bad["areas"][2]["languages"] = json!(["Hmong"]);
    let (s, r) = json(app.post_json("/api/v1/fleet/import", &bad).await).await;
    assert_eq!(s, 422, "{r}");
    let text = r.to_string();
    for part in [
        "areas[2] `08003-01`: language `Hmong`",
        "areas[3] `08003-02`: language `vi` is invalid or repeated",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    let (_, l) = json(app.get("/api/v1/areas/08003-01/languages").await).await;
    assert_eq!(
        l["languages"],
        json!(["hmn", "vi"]),
        "a refused file changes nothing: {l}"
    );
}

#[tokio::test]
async fn the_demo_seed_creates_a_small_province_once() {
    let app = common::spawn_app_with(|s| s.demo = true).await;
    let (_, devices) = json(app.get("/api/v1/devices?area=10").await).await;
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.iter().filter(|d| d["kind"] == "loudspeaker").count(), 30);
    assert_eq!(devices.iter().filter(|d| d["kind"] == "board").count(), 5);
    let (_, media) = json(app.get("/api/v1/media?status=approved").await).await;
    assert_eq!(media.as_array().unwrap().len(), 1);
    let creds = std::fs::read_to_string(app.data_dir.join("demo-credentials.csv")).unwrap();
    assert_eq!(creds.lines().count(), 36);
    nguon_server::services::demo::seed(app.state()).await.unwrap();
    let (_, again) = json(app.get("/api/v1/devices").await).await;
    assert_eq!(again.as_array().unwrap().len(), 35);
    let creds2 = std::fs::read_to_string(app.data_dir.join("demo-credentials.csv")).unwrap();
    assert_eq!(creds, creds2, "a second seed adds nothing");
    let (_, schedules) = json(app.get("/api/v1/schedules").await).await;
    assert_eq!(schedules.as_array().map(|a| a.len()), Some(1), "{schedules}");
}

/// The demo's loudspeakers are registered with report keys (their secrets in the credentials
/// file), so a demo agent's signed reports count while the server refuses unsigned ones (the
/// default): before, the demo devices had no key and their reports needed
/// `allow_unsigned_devices`.
#[tokio::test]
async fn the_demo_loudspeakers_sign_their_reports_with_seeded_keys_and_unsigned_ones_are_refused() {
    use crate::dispatch_support::{connect, eventually, metric, state_payload, state_report};
    let app = common::spawn_app_with(|s| {
        s.demo = true;
        s.allow_unsigned_devices = false;
    })
    .await;
    let creds = std::fs::read_to_string(app.data_dir.join("demo-credentials.csv")).unwrap();
    let mut lines = creds.lines();
    assert_eq!(lines.next(), Some("device_id,password,signing_key"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 35);
    let mut speakers = Vec::new();
    for r in &rows {
        let (_, d) = json(app.get(&format!("/api/v1/devices/{}", r[0])).await).await;
        if d["kind"] == "loudspeaker" {
            let key = nguon_protocol::DeviceKey::from_b64(r[2]).expect("a loudspeaker has a key");
            assert_eq!(d["public_key"].as_str(), Some(key.public_b64().as_str()), "{d}");
            speakers.push((r[0].to_string(), r[1].to_string(), key));
        } else {
            assert_eq!((r[2], &d["public_key"]), ("", &serde_json::Value::Null), "{d}");
        }
    }
    assert_eq!(speakers.len(), 30);

    let (id, password, key) = &speakers[0];
    let state = nguon_protocol::topic::state(&nguon_protocol::DeviceId::parse(id).unwrap());
    let dev = connect(&app, id, password, None)
        .await
        .expect("the demo password logs in");
    let refused = metric(&app, "nguon_reports_bad_signature_total").await;
    dev.publish(&state, state_payload(id, true, 1), true).await;
    eventually("the unsigned state refused", || async {
        (metric(&app, "nguon_reports_bad_signature_total").await > refused).then_some(())
    })
    .await;
    dev.publish(&state, state_report(id, true, 1, key), true).await;
    eventually("the signed state accepted", || async {
        let (_, d) = json(app.get(&format!("/api/v1/devices/{id}")).await).await;
        (d["online"] == true).then_some(())
    })
    .await;
    assert_eq!(metric(&app, "nguon_reports_unkeyed_total").await, 0);
}

/// The simulator registers 10,000 devices in chunks of 1,000, each chunk repeating every area;
/// the third chunk used to answer 500 while the dispatcher was still writing the manifests of the
/// first two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fleet_imports_in_chunks_with_the_areas_repeated() {
    let app = spawn_app().await;
    let root = app.unique("p");
    let hash = nguon_provision::credential::hash_password("pw-0123456789");
    let mut areas = vec![json!({"code": root, "name": "Tỉnh", "parent": null, "level": "province"})];
    for c in 0..100 {
        areas.push(json!({"code": format!("{root}-{c:03}"), "name": format!("Xã {c}"), "parent": root, "level": "commune"}));
    }
    let devices: Vec<serde_json::Value> = (0..3000)
        .map(|i| {
            json!({"id": format!("{root}-d{i:05}"), "kind": "loudspeaker", "area": format!("{root}-{:03}", i / 30),
                   "name": format!("Loa {i}"), "lat": null, "lon": null, "password_hash": hash,
                   "public_key": nguon_protocol::KeyPair::generate().public_b64()})
        })
        .collect();
    // Another writer, as the dispatcher (manifests of the previous chunk) and ingest (status of
    // connected devices) are in a live server: short write transactions in a loop.
    let pool = app.state().store.pool.clone();
    sqlx::query("CREATE TABLE IF NOT EXISTS test_other_writer (id BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        for i in 0i64.. {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("INSERT INTO test_other_writer (id) VALUES ($1)")
                .bind(i)
                .execute(&mut *tx)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            tx.commit().await.unwrap();
        }
    });
    for (k, chunk) in devices.chunks(1000).enumerate() {
        let body = json!({"version": 1, "areas": areas, "devices": chunk, "disabled": []});
        let (s, r) = json(app.post_json("/api/v1/fleet/import", &body).await).await;
        assert_eq!(s, 200, "chunk {k}: {r}");
        assert_eq!(r["created"], 1000, "chunk {k}: {r}");
        assert_eq!(r["areas_created"], if k == 0 { 101 } else { 0 }, "chunk {k}: {r}");
    }
    writer.abort();
    let (_, list) = json(app.get(&format!("/api/v1/devices?area={root}")).await).await;
    assert_eq!(list.as_array().map(|a| a.len()), Some(3000));
}

/// Logs every `dispatch_outbox` insert into `test_outbox_seen` from inside the inserting
/// transaction (the dispatcher deletes outbox rows as it publishes them; the log keeps them).
async fn log_outbox_inserts(app: &common::TestApp) {
    let pool = &app.state().store.pool;
    let statements: &[&str] = match app.state().store.backend {
        nguon_server::store::Backend::Sqlite => &[
            "CREATE TABLE test_outbox_seen (id TEXT NOT NULL, change TEXT NOT NULL)",
            "CREATE TRIGGER test_outbox_seen AFTER INSERT ON dispatch_outbox \
             BEGIN INSERT INTO test_outbox_seen (id, change) VALUES (NEW.id, NEW.change); END",
        ],
        nguon_server::store::Backend::Postgres => &[
            "CREATE TABLE test_outbox_seen (id TEXT NOT NULL, change TEXT NOT NULL)",
            "CREATE FUNCTION test_outbox_seen() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN INSERT INTO test_outbox_seen (id, change) VALUES (NEW.id, NEW.change); RETURN NEW; END $$",
            "CREATE TRIGGER test_outbox_seen AFTER INSERT ON dispatch_outbox \
             FOR EACH ROW EXECUTE FUNCTION test_outbox_seen()",
        ],
    };
    for s in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*s))
            .execute(pool)
            .await
            .unwrap();
    }
}

/// The changes of the outbox rows written since the last call (and forgets them).
async fn outbox_written(app: &common::TestApp) -> Vec<serde_json::Value> {
    let pool = &app.state().store.pool;
    let rows: Vec<String> = sqlx::query_scalar("SELECT change FROM test_outbox_seen ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM test_outbox_seen")
        .execute(pool)
        .await
        .unwrap();
    rows.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
}

async fn audit_count(app: &common::TestApp, action: &str, entity: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND entity = $2")
        .bind(action.to_string())
        .bind(entity.to_string())
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap()
}

/// Issue 10: an area move and a device change used to write their outbox row in a transaction
/// of their own after the change had committed (a failure there lost the change until the
/// hourly recompute); now the row is part of the change's own transaction, with its audit entry.
#[tokio::test]
async fn an_area_move_and_a_device_change_each_commit_exactly_one_outbox_row_with_their_audit_entry() {
    let app = spawn_app().await;
    province(&app).await;
    let id = app.unique("lc");
    let (s, b) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": id, "kind": "loudspeaker", "area": "08003-01"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    log_outbox_inserts(&app).await;

    // Moving a village to another commune: targets resolved through the tree may now reach
    // other devices, so every device is recomputed.
    let (s, b) = json(
        app.patch_json("/api/v1/areas/08003-01", &json!({"parent": "08020"}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(outbox_written(&app).await, vec![json!("all")]);
    assert_eq!(audit_count(&app, "area.update", "area:08003-01").await, 1);

    // A rename changes no device's desired state; a refused move writes nothing at all.
    let (s, _) = json(
        app.patch_json("/api/v1/areas/08003-01", &json!({"name": "Thôn B"}))
            .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = json(
        app.patch_json("/api/v1/areas/08020", &json!({"parent": "08003-01"}))
            .await,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("invalid_parent")),
        "{b}"
    );
    assert_eq!(outbox_written(&app).await, Vec::<serde_json::Value>::new());
    assert_eq!(audit_count(&app, "area.update", "area:08003-01").await, 2);
    assert_eq!(audit_count(&app, "area.update", "area:08020").await, 0);

    // A device change recomputes that device only.
    let (s, b) = json(
        app.patch_json(&format!("/api/v1/devices/{id}"), &json!({"volume": 40}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(outbox_written(&app).await, vec![json!({"devices": [id]})]);
    assert_eq!(
        audit_count(&app, "device.update", &format!("device:{id}")).await,
        1
    );
    let (s, _) = json(
        app.patch_json(&format!("/api/v1/devices/{id}"), &json!({"volume": 400}))
            .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(outbox_written(&app).await, Vec::<serde_json::Value>::new());
    assert_eq!(
        audit_count(&app, "device.update", &format!("device:{id}")).await,
        1
    );

    // A registry import that changes a device recomputes it; the same file again changes nothing
    // and writes no row; each import is audited with its summary.
    let hash = nguon_provision::credential::hash_password("pw-0123456789");
    let registry = json!({"version": 1, "areas": [], "disabled": [], "devices": [
        {"id": id, "kind": "loudspeaker", "area": "08003-01", "name": "Loa", "lat": null, "lon": null,
         "password_hash": hash, "public_key": null}]});
    let (s, r) = json(app.post_json("/api/v1/fleet/import", &registry).await).await;
    assert_eq!((s, &r["updated"]), (200, &json!(1)), "{r}");
    assert_eq!(outbox_written(&app).await, vec![json!({"devices": [id]})]);
    let (_, r) = json(app.post_json("/api/v1/fleet/import", &registry).await).await;
    assert_eq!(r["unchanged"], 1, "{r}");
    assert_eq!(outbox_written(&app).await, Vec::<serde_json::Value>::new());
    assert_eq!(audit_count(&app, "fleet.import", "devices").await, 2);
}

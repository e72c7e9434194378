//! Black-box tests of the area tree: CRUD, refusals, and the CSV import.

use crate::common;

use common::{json, spawn_app};
use serde_json::json;

#[tokio::test]
async fn areas_can_be_created_read_renamed_and_deleted() {
    let app = spawn_app().await;
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code":"10","name":"Lào Cai","level":"province"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code":"08003","name":"Xã Sa Pa","parent":"10","level":"commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201);
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code":"08003","name":"again","parent":"10","level":"commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code":"x/y","name":"bad","level":"commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_code")),
        "{b}"
    );
    let (s, b) = json(
        app.post_json(
            "/api/v1/areas",
            &json!({"code":"99","name":"orphan","parent":"nope","level":"commune"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("unknown_parent")),
        "{b}"
    );

    let (s, b) = json(app.get("/api/v1/areas/10").await).await;
    assert_eq!(s, 200);
    assert_eq!(b["children"], json!(["08003"]));
    let (s, b) = json(
        app.patch_json("/api/v1/areas/08003", &json!({"name":"Phường Sa Pa"}))
            .await,
    )
    .await;
    assert_eq!((s, b["name"].as_str()), (200, Some("Phường Sa Pa")));
    let (s, _) = json(
        app.patch_json("/api/v1/areas/10", &json!({"parent":"08003"}))
            .await,
    )
    .await;
    assert_eq!(s, 422, "a cycle is refused");
    let (s, b) = json(app.delete("/api/v1/areas/10").await).await;
    assert_eq!(s, 409, "parent with children: {b}");
    let (s, list) = json(app.get("/api/v1/areas?under=10").await).await;
    assert_eq!((s, list.as_array().unwrap().len()), (200, 2));
    assert_eq!(app.delete("/api/v1/areas/08003").await.status(), 204);
    assert_eq!(app.delete("/api/v1/areas/10").await.status(), 204);
    assert_eq!(app.get("/api/v1/areas/10").await.status(), 404);
}

#[tokio::test]
async fn an_area_with_devices_cannot_be_deleted() {
    let app = spawn_app().await;
    app.post_json(
        "/api/v1/areas",
        &json!({"code":"10","name":"Lào Cai","level":"province"}),
    )
    .await;
    let id = app.unique("lc");
    let (s, b) = json(
        app.post_json(
            "/api/v1/devices",
            &json!({"id": id, "kind":"loudspeaker","area":"10"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = json(app.delete("/api/v1/areas/10").await).await;
    assert_eq!(s, 409, "{b}");
}

#[tokio::test]
async fn a_csv_import_with_bad_lines_reports_each_line_and_writes_nothing() {
    let app = spawn_app().await;
    let csv = "code,name,parent,level\n10,Lào Cai,,province\n08003,Xã Sa Pa,10,commune\nbad code,X,10,commune\n08004,,10,commune\n08005,Xã Y,77,commune\n08003,Dup,10,commune\n";
    let (s, b) = json(app.post_raw("/api/v1/areas/import", "text/csv", csv).await).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "invalid_csv");
    let lines: Vec<i64> = b["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5, 6, 7], "{b}");
    let (_, list) = json(app.get("/api/v1/areas").await).await;
    assert!(list.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_valid_csv_import_upserts_and_is_idempotent() {
    let app = spawn_app().await;
    let csv = "code,name,parent,level\n08003,Xã Sa Pa,10,commune\n10,Lào Cai,,province\n08003-01,Thôn Lếch Dao,08003,village\n";
    let (s, b) = json(app.post_raw("/api/v1/areas/import", "text/csv", csv).await).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"created":3,"updated":0,"unchanged":0}));
    let (_, b) = json(app.post_raw("/api/v1/areas/import", "text/csv", csv).await).await;
    assert_eq!(b, json!({"created":0,"updated":0,"unchanged":3}));
    let renamed = csv.replace("Thôn Lếch Dao", "Thôn Lếch Dao 2");
    let (_, b) = json(app.post_raw("/api/v1/areas/import", "text/csv", renamed).await).await;
    assert_eq!(b, json!({"created":0,"updated":1,"unchanged":2}));
    let sub = nguon_server::store::areas::subtree(&app.state().store, &["08003".to_string()])
        .await
        .unwrap();
    assert_eq!(sub, vec!["08003".to_string(), "08003-01".to_string()]);
}

#[tokio::test]
async fn the_api_refuses_requests_without_the_admin_token() {
    let app = spawn_app().await;
    for path in ["/api/v1/areas", "/api/v1/devices", "/api/v1/media"] {
        let (s, b) = json(app.get_anon(path).await).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

//! The loudness backfill (issue 18): files stored before uploads were measured have no loudness
//! row and are played as uploaded. `services::media::backfill` (the command `nguon-server media
//! loudness-backfill`) gives such a file the same rendition an upload would have made, with an
//! audit entry, records a file whose bytes are gone as not measurable, and does nothing the
//! second time.

use serde_json::Value;
use sqlx::Row;

use crate::common::{json as body, spawn_app};
use crate::media_loudness::{clips, ffmpeg_r128};
use nguon_server::services::media::backfill::{self, Summary};

#[tokio::test]
async fn files_stored_before_loudness_get_their_rendition_once_and_audited() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let [(quiet, _), (loud, _)] = clips(dir.path());
    let mut uploaded: Vec<(String, Value)> = Vec::new();
    for f in [&quiet, &loud] {
        let (s, m) = body(app.upload_media(f).await).await;
        assert_eq!(s, 201, "{m}");
        uploaded.push((m["sha256"].as_str().unwrap().to_string(), m["loudness"].clone()));
    }
    let (quiet_sha, quiet_loudness) = &uploaded[0];
    let rendition = quiet_loudness["rendition"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let loud_sha = &uploaded[1].0;

    // As before migration 0160: no loudness rows, no rendition file; the loud file's bytes lost.
    let store = &app.state().store;
    for sha in [quiet_sha, loud_sha] {
        sqlx::query("DELETE FROM media_loudness WHERE sha256 = $1")
            .bind(sha.clone())
            .execute(&store.pool)
            .await
            .unwrap();
    }
    std::fs::remove_file(app.data_dir.join("media").join(&rendition)).unwrap();
    std::fs::remove_file(app.data_dir.join("media").join(loud_sha)).unwrap();
    let (_, m) = body(app.get(&format!("/api/v1/media/{quiet_sha}")).await).await;
    assert!(m["loudness"].is_null(), "{m}");

    let s = backfill::loudness_backfill(store, &app.data_dir, None)
        .await
        .unwrap();
    assert_eq!(
        s,
        Summary {
            found: 2,
            normalised: 1,
            as_is: 0,
            failed: 1
        }
    );
    // The same rendition as the upload made, byte for byte, at −16 LUFS by ffmpeg's meter too.
    let (_, m) = body(app.get(&format!("/api/v1/media/{quiet_sha}")).await).await;
    assert_eq!(m["loudness"]["rendition"]["sha256"], rendition.as_str(), "{m}");
    assert_eq!(
        m["loudness"]["loudness_lufs"], quiet_loudness["loudness_lufs"],
        "{m}"
    );
    let (lufs, tp) = ffmpeg_r128(&app.data_dir.join("media").join(&rendition));
    assert!((lufs + 16.0).abs() <= 1.0 && tp <= -0.9, "{lufs} LUFS, {tp} dBTP");
    let (_, m) = body(app.get(&format!("/api/v1/media/{loud_sha}")).await).await;
    let note = m["loudness"]["note"].as_str().unwrap_or_default();
    assert!(note.contains("missing"), "{m}");

    // Audited, once per file, by the backfill.
    let rows = sqlx::query(
        "SELECT actor, entity FROM audit_log WHERE action = 'media.loudness_backfill' ORDER BY entity",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    let mut entities: Vec<String> = rows.iter().map(|r| r.get::<String, _>("entity")).collect();
    entities.sort();
    let mut want = vec![format!("media:{quiet_sha}"), format!("media:{loud_sha}")];
    want.sort();
    assert_eq!(entities, want);
    assert!(
        rows.iter()
            .all(|r| r.get::<String, _>("actor") == backfill::ACTOR)
    );

    // Nothing to do the second time.
    let again = backfill::loudness_backfill(store, &app.data_dir, None)
        .await
        .unwrap();
    assert_eq!(again, Summary::default());
}

//! Commune autonomy with real processes (issue 16, docs/autonomy.md): the real server and agents.
//! A commune that decides on province content accepts one province item and declines another;
//! its agent plays the accepted one and never the declined one, while the agent of a commune
//! without the setting plays both. Counted from the proofs of play.

use std::time::Duration;

use nguon_tests::province::{Province, per_device};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deciding_communes_agent_plays_the_accepted_province_item_and_never_the_declined_one() {
    // A short answer deadline (5 s before the start) leaves time to answer in a test.
    let mut p = Province::new_with(None, 2, 1, &[("NGUON_AUTONOMY_ANSWER_LEAD_S", "5")]).await;
    p.start_agents(|_| None).await;
    p.wait_online().await;
    let deciding = p.commune(1);
    p.api()
        .put(
            &format!("/api/v1/areas/{deciding}/autonomy"),
            &json!({"enabled": true}),
        )
        .await
        .expect("turn the commune's acceptance on");
    let (_, sha) = p.clip(2.0).await;
    let province = p.province.clone();
    let (accepted, _) = p.schedule_in(&sha, &[province.as_str()], 40).await;
    let (declined, declined_at) = p.schedule_in(&sha, &[province.as_str()], 50).await;

    // The commune's two questions, answered.
    let api = p.api().clone();
    let questions = nguon_tests::net::eventually(
        "the commune's questions",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            let api = api.clone();
            let deciding = deciding.clone();
            async move {
                let v = api
                    .get(&format!("/api/v1/autonomy/requests?area={deciding}"))
                    .await
                    .map_err(|e| e.to_string())?;
                match v.as_array() {
                    Some(a) if a.len() == 2 => Ok(a.clone()),
                    _ => Err(format!("questions: {v}")),
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    let id_of = |sid: &str| {
        questions
            .iter()
            .find(|q| q["schedule_id"] == sid)
            .and_then(|q| q["id"].as_str())
            .expect("a question per item")
            .to_string()
    };
    for (sid, answer) in [
        (&accepted, json!({"decision": "accept"})),
        (
            &declined,
            json!({"decision": "decline", "reason": "Trùng giờ họp dân"}),
        ),
    ] {
        let r: Value = p
            .api()
            .post(
                &format!("/api/v1/autonomy/requests/{}/answer", id_of(sid)),
                &answer,
            )
            .await
            .expect("answer");
        assert_ne!(r["state"], "pending", "{r}");
    }

    let inside = p.ids(|a| a.device.area.as_str() == deciding);
    let outside = p.ids(|a| a.device.area.as_str() != deciding);
    let everyone = p.ids(|_| true);
    p.wait_plays(&accepted, &everyone, Duration::from_secs(90)).await;
    p.wait_plays(&declined, &outside, Duration::from_secs(90)).await;
    // Past the declined item's start and its play everywhere else: nothing from the commune.
    while chrono::Utc::now() < declined_at + chrono::Duration::seconds(8) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let acc = per_device(&p.api().plays(&format!("schedule={accepted}")).await.unwrap());
    let dec = per_device(&p.api().plays(&format!("schedule={declined}")).await.unwrap());
    for d in &everyone {
        assert_eq!(acc.get(d), Some(&1), "accepted item: one proof each: {acc:?}");
    }
    for d in &outside {
        assert_eq!(dec.get(d), Some(&1), "declined item elsewhere: {dec:?}");
    }
    for d in &inside {
        assert_eq!(dec.get(d), None, "the declining commune played it: {dec:?}");
    }
}

//! Several broker URLs (`mqtt.urls`, issue 14): the agent starts on the first broker, moves to the
//! next when its broker goes away, says where it is (status, telemetry), and sends there what the
//! first broker took but no server confirmed, exactly once.

use chrono::Utc;
use nguon_agent::AgentEventKind;
use nguon_protocol::{OnPreempt, PlayOutcome, Priority, topic};

use crate::common::*;
use crate::env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_its_broker_dies_the_agent_moves_to_the_next_url_and_sends_its_unconfirmed_proof_there() {
    let mut env = Env::new("lc-failover");
    let second = Mosquitto::start();
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        &format!("url = \"{}\"", env.broker.url()),
        &format!("urls = [\"{}\", \"{}\"]", env.broker.url(), second.url()),
    );
    std::fs::write(&env.config, text).unwrap();
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let r = env
        .media
        .add(std::fs::read(tone_wav(&src, "t", 1.0)).unwrap(), 1000);
    let at = Utc::now() + chrono::Duration::seconds(5);
    let it = item(
        &format!("fo@{}", at.timestamp()),
        at,
        Priority::Normal,
        &r,
        OnPreempt::Interrupt,
    );
    let (agent, mut rx) = env.start().await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Connected { .. })).await;
    assert_eq!(
        agent.status().broker,
        Some(env.broker.url()),
        "starts on the first URL"
    );

    // The first broker takes the proof of play (PUBACK) but no server answers there: the event
    // stays in the outbox, awaiting a receipt.
    let dev = device(&env.dev);
    let mut first = TestClient::connect(env.broker.port, &[topic::events(&dev)]).await;
    env.desired(&first, manifest(1, vec![it.clone()], vec![r.clone()]))
        .await;
    assert_eq!(ended(&mut rx, &it.id).await, PlayOutcome::Played);
    let mut seen = Vec::new();
    first
        .events_until(&mut seen, WAIT, |s| !plays(s, &it.id).is_empty())
        .await;
    assert!(
        agent.outbox_len() >= 1,
        "no receipt yet: the proof waits in the outbox"
    );

    // The first broker dies; a server listens on the second.
    let mut second_client = TestClient::connect_receipting(
        second.port,
        &[topic::events(&dev), topic::telemetry(&dev)],
        env.signer.key.clone(),
    )
    .await;
    env.broker.stop();
    wait_event(&mut rx, WAIT, |k| {
        matches!(k, AgentEventKind::Disconnected { .. })
    })
    .await;
    wait_event(&mut rx, WAIT, |k| matches!(k, AgentEventKind::Connected { .. })).await;
    assert_eq!(agent.status().broker, Some(second.url()), "moved to the next URL");
    let mut again = Vec::new();
    second_client
        .events_until(&mut again, WAIT, |s| !plays(s, &it.id).is_empty())
        .await;
    until(WAIT, || agent.outbox_len() == 0).await;
    assert_eq!(plays(&again, &it.id).len(), 1, "sent once on the new broker");

    // Telemetry names the broker.
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let (t, payload) = tokio::time::timeout_at(end, second_client.rx.recv())
            .await
            .expect("telemetry on the second broker")
            .unwrap();
        if t.ends_with("/telemetry") {
            let tel: nguon_protocol::Telemetry = nguon_protocol::Signed::from_bytes(&payload)
                .unwrap()
                .parse_payload()
                .unwrap();
            assert_eq!(tel.broker, Some(second.url()));
            break;
        }
    }
    agent.shutdown().await;
}

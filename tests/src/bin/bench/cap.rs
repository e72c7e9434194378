//! `bench cap`: issue 12's CAP benchmark. N simulated agents (real agent code, null sinks, one
//! process) on a private Mosquitto, the release `nguon-server` (SQLite) as a child process with one
//! trusted CAP sender. Measured from the HTTP call to each agent's first sample: a CAP 1.2 `Alert`
//! `POST /api/v1/alerts/cap` (parse, geocode targeting, chime + Vietnamese speech synthesis,
//! sign, publish; the agents fetch the new speech over HTTP), and, in the same run on the same
//! fleet as the baseline, a plain emergency play-now of an approved 1 s clip the agents have not
//! fetched yet.
//!
//! ```sh
//! cargo run --release -p nguon-tests --bin bench -- --no-write cap --agents 1000
//! ```
//!
//! The result replaces the "System: CAP" section of `docs/benchmarks.md` (`--no-write`: only print it).

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use nguon_tests::fleet::{Fleet, FleetOptions, FleetPlan, SinkChoice};
use nguon_tests::harness::{BrokerChoice, ServerProc};
use nguon_tests::mosquitto::Mosquitto;
use nguon_tests::stats::{Summary, ms};
use serde_json::json;

/// The section of docs/benchmarks.md this benchmark writes.
pub const SECTION: &str = "## System: CAP alert to first sample (issue 12)";

const SENDER: &str = "bench-pctt@example.vn";

/// A CAP 1.2 Alert for the areas whose geocodes hold `ISO3166-2={code}`.
fn alert(identifier: &str, code: &str) -> String {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S+00:00");
    let expires = (Utc::now() + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S+00:00");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{now}</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>vi-VN</language><category>Met</category><event>Lũ quét</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
    <expires>{expires}</expires><headline>Cảnh báo lũ quét trên toàn tỉnh</headline>
    <description>Mưa lớn kéo dài, nguy cơ lũ quét và sạt lở đất. Người dân không qua suối.</description>
    <area><areaDesc>Toàn tỉnh</areaDesc><geocode><valueName>ISO3166-2</valueName><value>{code}</value></geocode></area></info>
</alert>"#
    )
}

/// Run it with `n` agents; returns the report's Markdown.
pub async fn run(n: usize) -> anyhow::Result<String> {
    println!("== CAP alert to {n} agents");
    let dir = super::shm_dir("nguon-cap-")?;
    let mut broker = Mosquitto::start(&dir.path().join("mosquitto")).await?;
    let server = ServerProc::start_with(
        dir.path(),
        BrokerChoice::External(broker.url()),
        &[
            ("RUST_LOG", "warn,rumqttc=error"),
            ("NGUON_CAP_TRUSTED_SENDERS", SENDER),
        ],
    )
    .await?;
    let api = server.api.clone();
    let key = api.server_key().await?;
    let province = format!("k{}", nguon_tests::net::random_suffix());
    let plan = FleetPlan::province("k", &province, n.div_ceil(100), 100.min(n), 0);
    super::register(&api, &plan).await?;
    let geocode = format!("VN-{}", province.to_uppercase());
    api.put(
        &format!("/api/v1/areas/{province}/cap"),
        &json!({"geocodes": [format!("ISO3166-2={geocode}")], "exercise": false}),
    )
    .await
    .context("setting the province's CAP geocode")?;
    let clip = nguon_tests::audio::tone_clip(&dir.path().join("media"), "siren", 1.0)?;
    let sha = api.upload_approved(&clip, "Cảnh báo khẩn cấp").await?;

    let mut opts = FleetOptions::new(broker.addr(), api.base(), &key, &dir.path().join("agents"));
    opts.sink = SinkChoice::Null;
    let mut fleet = Fleet::start(&plan, opts).await?;
    super::wait_online(&api, n, Duration::from_secs(300)).await?;
    let mut events = fleet.events();
    while events.try_recv().is_ok() {}
    let loadavg = nguon_tests::stats::load_average();

    // Baseline: a plain emergency play-now of a clip no agent has fetched yet.
    let tw = Instant::now();
    let t0 = Utc::now();
    let issued = api.emergency(&province, &sha, "Cảnh báo lũ quét").await?;
    let base_answer = tw.elapsed();
    let item = issued["command_id"]
        .as_str()
        .context("command_id in the answer")?
        .to_string();
    let base = super::collect(&mut events, &item, t0, n, Duration::from_secs(120), true).await;
    println!(
        "play-now: answered in {} · first sample {} · ended {}",
        ms(base_answer),
        Summary::of(&base.first),
        base.ended
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    while events.try_recv().is_ok() {}

    // The CAP alert.
    let tw = Instant::now();
    let t0 = Utc::now();
    let a = api
        .post_body(
            "/api/v1/alerts/cap",
            "application/cap+xml",
            alert("BENCH-1", &geocode),
        )
        .await
        .with_context(|| format!("CAP post\n--- server log ---\n{}", server.log_tail(40)))?;
    let cap_answer = tw.elapsed();
    anyhow::ensure!(a["state"] == "issued", "the CAP alert was not issued: {a}");
    let targets = a["targets"]["devices"].as_u64().unwrap_or(0);
    let alert_id = a["id"].as_str().context("alert id")?;
    let tracking = api.get(&format!("/api/v1/alerts/{alert_id}")).await?;
    let item = tracking["id"]
        .as_str()
        .context("command id of the alert")?
        .to_string();
    let capl = super::collect(&mut events, &item, t0, n, Duration::from_secs(180), true).await;
    println!(
        "CAP: answered in {} · {targets} targets · first sample {} · ended {}",
        ms(cap_answer),
        Summary::of(&capl.first),
        capl.ended
    );
    fleet.shutdown().await;
    broker.stop();

    let row = |label: &str, s: Summary| {
        format!(
            "| {label} | {} | {} | {} | {} |\n",
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            s.n
        )
    };
    let (b, c) = (Summary::of(&base.first), Summary::of(&capl.first));
    let mut out = format!(
        "### CAP 1.2 Alert to {n} agents (private Mosquitto, SQLite)\n\n\
         The alert targets the province by geocode ({targets} loudspeakers); its sender is trusted, so it is \
         issued at once: parse, targeting, chime + speech synthesis of the headline and description \
         (espeak-ng), sign, publish; each agent fetches the new speech over HTTP, then plays. Baseline in the \
         same run on the same fleet: a plain emergency play-now of an approved 1 s clip no agent had fetched. \
         Load average (1, 5, 15 min) before the baseline: {loadavg}.\n\n\
         | HTTP call → first sample | p50 | p99 | max | n |\n|---|---|---|---|---|\n"
    );
    out += &row("CAP `POST /api/v1/alerts/cap`", c);
    out += &row("baseline: emergency play-now of a 1 s clip", b);
    out += &format!(
        "\nCAP answered in {} (baseline {}); played to the end by {} of {n} (baseline {}). \
         CAP p99 − baseline p99: {:.0} ms, the cost of CAP intake and speech synthesis.\n",
        ms(cap_answer),
        ms(base_answer),
        capl.ended,
        base.ended,
        c.p99.as_secs_f64() * 1e3 - b.p99.as_secs_f64() * 1e3
    );
    Ok(out)
}

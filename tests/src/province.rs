//! A province for system tests: a real server (`harness::ServerProc`), a registered fleet plan
//! and real agent processes (`harness::AgentProc`), with the waits and checks the system tests
//! share (every agent online, proofs of play, samples played equal to the source).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::{Api, is_online};
use crate::fleet::FleetPlan;
use crate::harness::{AgentProc, BrokerChoice, ServerProc};
use crate::net::{eventually, random_suffix};
/// How often tests poll.
pub const POLL: Duration = Duration::from_millis(250);

/// A province for one test: a server, a registered fleet plan and agent processes.
pub struct Province {
    /// Its temp dir (server data, agents, media).
    pub dir: tempfile::TempDir,
    /// The server.
    pub server: ServerProc,
    /// The registered fleet.
    pub plan: FleetPlan,
    /// The agent processes, in plan order.
    pub agents: Vec<AgentProc>,
    /// The server's public key.
    pub key: String,
    /// The province's area code.
    pub province: String,
}

impl Province {
    /// Start a server on `broker` and register `communes` × `per_commune` loudspeakers.
    pub async fn new(broker: Option<BrokerChoice>, communes: usize, per_commune: usize) -> Province {
        Self::new_with(broker, communes, per_commune, &[]).await
    }

    /// [`Province::new`] with extra server environment (`NGUON_*` settings).
    pub async fn new_with(
        broker: Option<BrokerChoice>,
        communes: usize,
        per_commune: usize,
        env: &[(&str, &str)],
    ) -> Province {
        crate::init_crypto();
        let dir = tempfile::Builder::new()
            .prefix("nguon-sys-")
            .tempdir()
            .expect("temp dir");
        let broker = broker.unwrap_or_else(BrokerChoice::from_env);
        let server = ServerProc::start_with(dir.path(), broker, env)
            .await
            .expect("server starts");
        Self::from_server(dir, server, communes, per_commune).await
    }

    /// A province on a running `server` whose files are in `dir`: register `communes` ×
    /// `per_commune` loudspeakers through its API.
    pub async fn from_server(
        dir: tempfile::TempDir,
        server: ServerProc,
        communes: usize,
        per_commune: usize,
    ) -> Province {
        crate::init_crypto();
        let tag = random_suffix();
        let province = format!("t{tag}");
        let plan = FleetPlan::province(&tag[..6], &province, communes, per_commune, 0);
        server
            .api
            .import_fleet(&plan.registry())
            .await
            .expect("fleet import");
        let key = server.server_key().await.expect("server key");
        Province {
            dir,
            server,
            plan,
            agents: Vec::new(),
            key,
            province,
        }
    }

    /// The API client.
    pub fn api(&self) -> &Api {
        &self.server.api
    }

    /// Start an agent process for every planned device, connecting to `mqtt` (the broker, or a
    /// proxy in front of it) for the devices `via` picks.
    pub async fn start_agents(&mut self, via: impl Fn(usize) -> Option<std::net::SocketAddr>) {
        let base = self.api().base().to_string();
        for (i, d) in self.plan.devices.clone().iter().enumerate() {
            let mqtt = via(i).unwrap_or_else(|| self.server.broker.addr());
            let a = AgentProc::start(self.dir.path(), d, mqtt, &base, &self.key)
                .await
                .expect("agent starts");
            self.agents.push(a);
        }
    }

    /// Start an agent process for every planned device with the broker URLs `brokers` picks for
    /// it (a cluster's nodes, in the order that device tries them).
    pub async fn start_agents_on(&mut self, brokers: impl Fn(usize) -> Vec<String>, mqtt_extra: &str) {
        let base = self.api().base().to_string();
        for (i, d) in self.plan.devices.clone().iter().enumerate() {
            let a = AgentProc::start_on(self.dir.path(), d, &brokers(i), mqtt_extra, &base, &self.key)
                .await
                .expect("agent starts");
            self.agents.push(a);
        }
    }

    /// Wait until the server sees every agent online.
    pub async fn wait_online(&self) {
        let want: BTreeSet<String> = self.agents.iter().map(|a| a.device.id.to_string()).collect();
        let api = self.api().clone();
        let r = eventually("every agent online", Duration::from_secs(60), POLL, || {
            let api = api.clone();
            let want = want.clone();
            async move {
                let devices = api.devices().await.map_err(|e| e.to_string())?;
                let online: BTreeSet<String> = devices
                    .iter()
                    .filter(|d| is_online(d))
                    .filter_map(|d| d.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect();
                let missing: Vec<_> = want.difference(&online).collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("offline: {missing:?}"))
                }
            }
        })
        .await;
        if let Err(e) = r {
            panic!("{e}\n{}", self.logs());
        }
    }

    /// Stop agent `i` and wait until the server sees it offline.
    pub async fn stop_agent(&mut self, i: usize) {
        self.agents[i].stop();
        let id = self.agents[i].device.id.to_string();
        let api = self.api().clone();
        let r = eventually("the stopped agent offline", Duration::from_secs(30), POLL, || {
            let api = api.clone();
            let id = id.clone();
            async move {
                let devices = api.devices().await.map_err(|e| e.to_string())?;
                let d = devices
                    .iter()
                    .find(|d| d.get("id").and_then(Value::as_str) == Some(id.as_str()))
                    .ok_or("device not listed")?;
                if is_online(d) {
                    Err(format!("{id} still online"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        if let Err(e) = r {
            panic!("{e}\n{}", self.logs());
        }
    }

    /// Wait until the current run of agent `i` has applied a manifest (it reconnected and read
    /// its desired state), then a few seconds more for anything it would do with it.
    pub async fn settle_after_restart(&self, i: usize) {
        let agent = &self.agents[i];
        let r = eventually(
            "the restarted agent to apply its manifest",
            Duration::from_secs(30),
            POLL,
            || async {
                if agent.log().contains("manifest applied") {
                    Ok(())
                } else {
                    Err("no `manifest applied` in its log yet".to_string())
                }
            },
        )
        .await;
        if let Err(e) = r {
            panic!("{e}\n{}", self.logs());
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
    }

    /// Upload and approve a spoken clip; returns (the audio loudspeakers play, the upload's
    /// sha256). The server sends devices the upload's loudness-normalised rendition (issue 18):
    /// the path is a copy of it ([`Province::delivered`] names it), or the upload when none was
    /// made.
    pub async fn clip(&self, seconds: f32) -> (std::path::PathBuf, String) {
        let path = crate::audio::spoken_clip(
            &self.dir.path().join("media"),
            "thong-bao",
            "Thông báo của ủy ban nhân dân xã về lịch tiêm chủng.",
            seconds,
            true,
        )
        .expect("test audio (espeak-ng, sox, lame)");
        let sha = self
            .api()
            .upload_approved(&path, "Thông báo")
            .await
            .expect("upload and approve");
        match self.api().delivered(&sha).await.expect("media record") {
            (r, Some(bytes)) => {
                let played = path.with_file_name(format!("{r}.wav"));
                std::fs::write(&played, bytes).expect("write the rendition");
                (played, sha)
            }
            (_, None) => (path, sha),
        }
    }

    /// The sha256 loudspeakers are sent and report for the upload `sha`: its normalised
    /// rendition's, or its own.
    pub async fn delivered(&self, sha: &str) -> String {
        self.api().delivered(sha).await.expect("media record").0
    }

    /// Schedule `sha` once, `secs` from now, for `areas`; returns (schedule id, start instant).
    pub async fn schedule_in(&self, sha: &str, areas: &[&str], secs: i64) -> (String, DateTime<Utc>) {
        let (local, at) = local_in(secs);
        let s = self
            .api()
            .schedule_once("Thông báo", sha, areas, &local, "normal")
            .await
            .expect("schedule");
        let id = s
            .pointer("/schedule/id")
            .or_else(|| s.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no schedule id in {s}"))
            .to_string();
        (id, at)
    }

    /// Wait until every device in `devices` has a `played` proof of play for `schedule`.
    pub async fn wait_plays(
        &self,
        schedule: &str,
        devices: &BTreeSet<String>,
        within: Duration,
    ) -> Vec<Value> {
        let api = self.api().clone();
        let r = eventually("proofs of play", within, POLL, || {
            let api = api.clone();
            async move {
                let plays = api
                    .plays(&format!("schedule={schedule}"))
                    .await
                    .map_err(|e| e.to_string())?;
                let got: BTreeSet<String> = plays
                    .iter()
                    .filter(|p| p.get("outcome").and_then(Value::as_str) == Some("played"))
                    .filter_map(|p| p.get("device_id").and_then(Value::as_str).map(str::to_string))
                    .collect();
                if devices.is_subset(&got) {
                    Ok(plays)
                } else {
                    Err(format!("played on {got:?}, want {devices:?}; all: {plays:?}"))
                }
            }
        })
        .await;
        match r {
            Ok(p) => p,
            Err(e) => panic!("{e}\n{}", self.logs()),
        }
    }

    /// The proofs of play of `schedule`, after asserting each of `devices` has exactly one.
    pub async fn one_proof_each(&self, schedule: &str, devices: &BTreeSet<String>) -> Vec<Value> {
        let all = self.api().plays(&format!("schedule={schedule}")).await.unwrap();
        let counts = per_device(&all);
        for d in devices {
            assert_eq!(
                counts.get(d),
                Some(&1),
                "schedule {schedule}: proofs per device {counts:?}"
            );
        }
        all
    }

    /// Wait until `device` has a proof of play of any outcome for `schedule`; returns its proofs.
    pub async fn wait_plays_any(&self, schedule: &str, device: &str, within: Duration) -> Vec<Value> {
        let api = self.api().clone();
        let r = eventually("a proof of play", within, POLL, || {
            let api = api.clone();
            async move {
                let plays = api
                    .plays(&format!("schedule={schedule}&device={device}"))
                    .await
                    .map_err(|e| e.to_string())?;
                if plays.is_empty() {
                    Err("none yet".to_string())
                } else {
                    Ok(plays)
                }
            }
        })
        .await;
        match r {
            Ok(p) => p,
            Err(e) => panic!("{e}\n{}", self.logs()),
        }
    }

    /// The ids of the agents `pick` selects.
    pub fn ids(&self, pick: impl Fn(&AgentProc) -> bool) -> BTreeSet<String> {
        self.agents
            .iter()
            .filter(|a| pick(a))
            .map(|a| a.device.id.to_string())
            .collect()
    }

    /// The code of commune `n` (1-based).
    pub fn commune(&self, n: usize) -> String {
        format!("{}{n:03}", self.province)
    }

    /// The end of the server's and every agent's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = format!("--- server log ---\n{}\n", self.server.log_tail(40));
        for a in &self.agents {
            s.push_str(&format!("--- {} ---\n{}\n", a.device.id, a.log_tail(15)));
        }
        s
    }
}

/// Local wall time (Asia/Ho_Chi_Minh, the server's default zone) `secs` from now, whole seconds.
pub fn local_in(secs: i64) -> (String, DateTime<Utc>) {
    let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().expect("tz");
    let at = Utc::now() + chrono::Duration::seconds(secs);
    let at = DateTime::from_timestamp(at.timestamp(), 0).expect("instant");
    (at.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S").to_string(), at)
}

/// Proofs of play per device id.
pub fn per_device(plays: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in plays {
        if let Some(d) = p.get("device_id").and_then(Value::as_str) {
            *m.entry(d.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// An RFC 3339 instant field.
pub fn instant(p: &Value, key: &str) -> Option<DateTime<Utc>> {
    p.get(key)?.as_str()?.parse().ok()
}

/// Assert that the WAV the agent wrote is the decoded source, sample for sample (volume 100).
pub fn assert_samples_match(agent: &AgentProc, source: &Path) {
    let wavs = agent.wav_files();
    assert_eq!(
        wavs.len(),
        1,
        "{}: expected one WAV file, found {wavs:?}",
        agent.device.id
    );
    let src = crate::audio::decode(source).expect("decode source");
    let played = crate::audio::read_wav(&wavs[0]).expect("read WAV sink");
    if let Err(e) = crate::audio::compare(&src, &played, 1.0, 1e-6) {
        panic!("{}: the samples played are not the source: {e}", agent.device.id);
    }
}

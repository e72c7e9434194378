//! nguon-server: the provincial source-information server. An axum HTTP API, a sqlx store
//! (SQLite or PostgreSQL), a scheduler that turns rules into occurrences, a dispatcher that keeps
//! every device's signed desired manifest published over MQTT, an ingest of status and proof of
//! play, and an embedded MQTT broker (rmqtt behind nguon's gate) unless an external one is configured.
//!
//! [`Application::build`] → [`Application::http_port`] → [`Application::run_until_stopped`], so
//! tests start the real server on port 0.
//!
//! The source is in layers (see `docs/architecture.md` and `tests/layers.rs`, which enforces the
//! import rule): `domain` (pure rules) ← `store` (all SQL) ← `services` (use cases, [`AppState`])
//! ← `http` (extractors, error mapping) ← `console` and `board` (pages); `mqtt` (signing,
//! broker, link) and `workers` (background tasks) sit beside `services` above `store`. `error`,
//! `config` and `metrics` are the foundation every layer may use. Only this file wires the layers
//! together: it builds [`AppState`] for the HTTP side and a `workers::Context` (with the MQTT link
//! and the signer, which services never see) for the background tasks.
#![deny(missing_docs)]

pub mod board;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod public;
pub mod services;
pub mod store;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use futures::FutureExt;
use tokio::net::TcpListener;
use utoipa::OpenApi;

pub use config::Settings;
pub use error::{Error, Result};
pub use services::AppState;
pub use store::Store;

/// A built, not yet running, server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    background: workers::Supervisor,
    mqtt_addr: Option<SocketAddr>,
    generated_token: Option<config::Secret>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mqtt_internal_password: Option<String>,
    /// SQLite: the lock making this process the database file's only server (held while running).
    _sqlite_lock: Option<std::fs::File>,
    /// The file-descriptor limits found and raised at start.
    fds: Option<http::serve::FdLimit>,
}

impl Application {
    /// Open the store (running migrations), load or create the signing key, start the embedded
    /// broker (unless `mqtt_url` is set), connect the server's MQTT link and bind the HTTP port.
    pub async fn build(settings: Settings) -> Result<Application> {
        // Every connection and open file is a descriptor: the soft limit (often 1,024) up to the hard.
        let fds = http::serve::raise_fd_limit();
        store::create_private_dir(&settings.data_dir)?;
        let sqlite_lock = store::lock_sqlite(&settings.database_url())?;
        let store = Store::connect(&settings.database_url()).await?;
        let signer = mqtt::Signer::new(mqtt::keys::load_or_create(&settings.data_dir)?);
        // Every server → device message (manifest, command, receipt) is numbered above the ones
        // already sent, even if the clock stepped back: the floor is raised once, before any
        // worker signs.
        if let Some(floor) = store::manifests::largest_seq(&store).await? {
            signer.sequencer().raise_floor(floor);
        }
        let (admin_token, generated_token) =
            services::auth::admin_token(&store, settings.admin_token.as_ref()).await?;
        let known = settings.admin_token.as_ref().or(generated_token.as_ref());
        services::users::bootstrap(&store, known.map(config::Secret::expose)).await?;
        let tls = http::tls::load(&settings)?;
        let listener = http::serve::bind(settings.http_addr, settings.server.listen_backlog)?;
        let http_addr = listener.local_addr()?;
        let public_url: Arc<str> = settings
            .public_url
            .clone()
            .unwrap_or_else(|| {
                let scheme = if settings.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{http_addr}")
            })
            .trim_end_matches('/')
            .into();
        let limits = Arc::new(services::throttle::Limits::new(&settings));
        if settings.ota.test_confirm_s != 0 {
            tracing::warn!(
                seconds = settings.ota.test_confirm_s,
                "ota.test_confirm_s is set (test installations only): every rollout's new agent version gets this many seconds to confirm itself"
            );
        }
        let settings = Arc::new(settings);
        let metrics = Arc::new(metrics::Metrics::default());
        let broker = mqtt::broker::start(&settings, &store).await?;
        let mqtt_addr = broker.listen_addr();
        let mqtt_internal_password = broker.internal_password().map(str::to_string);
        let (link, link_events) = mqtt::Link::connect(&settings, &broker, metrics.clone()).await?;
        let tts = services::speech::TtsSlot::new(services::speech::Tts::from_settings(&settings.tts)?);
        let hot_media = Arc::new(services::media::hot::HotFiles::new(
            settings.server.media_memory_mb * 1024 * 1024,
        ));
        let state = AppState {
            store,
            settings,
            metrics,
            admin_token: Arc::new(admin_token),
            server_public_key: signer.public_b64().into(),
            public_url,
            wake: store::outbox::Wake::new(),
            link_up: link.connected(),
            board_feeds: services::board::FeedCache::default(),
            bulletins: services::board::Generation::default(),
            tts,
            limits,
            live: Arc::new(services::live::Registry::default()),
            relays: Arc::new(services::relay::Relays::default()),
            public_media: Arc::new(services::media::public::PublicMedia::default()),
            hot_media,
        };
        if state.settings.demo {
            services::demo::seed(&state).await?;
        }
        let instance = state.settings.ha.instance_id.clone().unwrap_or_else(|| {
            let host =
                hostname::get().map_or_else(|_| "localhost".into(), |h| h.to_string_lossy().into_owned());
            format!("{host}:{}", http_addr.port())
        });
        let lease = workers::leader::Lease::new(
            instance,
            std::time::Duration::from_secs(state.settings.ha.lease_ttl_secs),
            sqlite_lock.is_some(),
        );
        let ctx = workers::Context {
            store: state.store.clone(),
            settings: state.settings.clone(),
            metrics: state.metrics.clone(),
            link,
            signer,
            wake: state.wake.clone(),
            public_url: state.public_url.clone(),
            lease: lease.clone(),
        };
        let mut background = workers::Supervisor::new(ctx.link.clone());
        let credentials = broker.credentials().cloned();
        let cancel = background.cancel_token();
        let ingest = workers::ingest::Ingest::new(
            ctx.store.clone(),
            ctx.metrics.clone(),
            ctx.settings.allow_unsigned_devices,
        );
        background.spawn(
            "ingest",
            workers::ingest::run(ingest, (&ctx).into(), (&ctx).into(), link_events, cancel.clone()),
        );
        if ctx.store.backend == store::Backend::Postgres
            && let Some(outgoing) = ctx.wake.attach_relay()
        {
            background.spawn(
                "wake relay",
                store::wake_relay::run(
                    ctx.store.clone(),
                    ctx.settings.database_url(),
                    ctx.wake.clone(),
                    outgoing,
                    cancel.clone(),
                ),
            );
        }
        // The singletons run on the leader only (workers::leader); every instance serves HTTP and
        // ingests.
        let duties = {
            let (ctx, state) = (ctx.clone(), state.clone());
            move |cancel: tokio_util::sync::CancellationToken| -> Vec<workers::leader::Duty> {
                let sender = workers::commands::Sender::from(&ctx);
                vec![
                    ("command sender", sender.run(cancel.clone()).boxed()),
                    (
                        "alarms",
                        workers::alarms::run(ctx.clone(), cancel.clone()).boxed(),
                    ),
                    (
                        "notifier",
                        workers::notifier::run(ctx.clone(), cancel.clone()).boxed(),
                    ),
                    (
                        "feedback retention",
                        workers::feedback::run(ctx.clone(), cancel.clone()).boxed(),
                    ),
                    (
                        "cap feeds",
                        services::cap::feeds::run(state.clone(), cancel.clone()).boxed(),
                    ),
                    (
                        "dispatcher",
                        workers::dispatcher::run(ctx.clone(), credentials.clone(), cancel).boxed(),
                    ),
                ]
            }
        };
        let (store, metrics, signer) = (ctx.store.clone(), ctx.metrics.clone(), ctx.signer.clone());
        background.spawn_first("leader lease", move |cancel| {
            workers::leader::run(lease, store, metrics, signer, duties, cancel)
        });
        Ok(Application {
            listener,
            state,
            background,
            mqtt_addr,
            generated_token,
            tls,
            mqtt_internal_password,
            _sqlite_lock: sqlite_lock,
            fds,
        })
    }

    /// The bound HTTP port.
    pub fn http_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The embedded broker's address, if one was started.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// The password of the embedded broker's internal user (`mqtt::broker::INTERNAL_USER`), which
    /// the gate lets read and write any topic; for tests that observe many devices' topics.
    pub fn mqtt_internal_password(&self) -> Option<&str> {
        self.mqtt_internal_password.as_deref()
    }

    /// The admin bearer token if it was generated at this start (the first start without
    /// `admin_token`), so `main` prints it once; `None` afterwards (only its sha256 is kept).
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_token.as_ref().map(config::Secret::expose)
    }

    /// The shared state (for tests and the demo).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve HTTP and run the background tasks until `shutdown` resolves or a task fails; the log
    /// says how each one ended. At `shutdown` (main: SIGTERM or SIGINT) `/readyz` turns 503, the
    /// listener stops accepting, and at once the leader's duties stop and the lease is released
    /// (a follower takes over at its next poll) while open HTTP requests get up to
    /// `server.shutdown_grace_secs` to finish; then ingest stops and the MQTT link disconnects.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let state = self.state.clone();
        let app = router(self.state.clone());
        let stop_http = tokio_util::sync::CancellationToken::new();
        let stopping = stop_http.clone().cancelled_owned();
        let limits = http::serve::Limits::from_settings(&state.settings, self.fds);
        tracing::info!(
            max_connections = limits.max_connections,
            keepalive_timeout_secs = limits.keepalive.as_secs(),
            "http: connection cap and idle keep-alive timeout (server.max_connections, server.keepalive_timeout_secs)"
        );
        let mut server = Box::pin(http::serve::serve(self.listener, self.tls, app, limits, stopping));
        let mut background = self.background;
        tokio::select! {
            r = &mut server => {
                tracing::error!(result = ?r, "http server stopped");
                background.stop().await;
                return r.map_err(Error::Io);
            }
            r = background.wait() => {
                tracing::error!(result = ?r, "a background task ended; stopping");
                return r;
            }
            _ = shutdown => {}
        }
        let grace = std::time::Duration::from_secs(state.settings.server.shutdown_grace_secs);
        tracing::info!(
            grace_secs = grace.as_secs(),
            "stopping: not ready, no new connections, releasing the leader lease, draining HTTP"
        );
        state
            .metrics
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        stop_http.cancel();
        let drained = async {
            match tokio::time::timeout(grace, &mut server).await {
                Ok(r) => tracing::info!(result = ?r, "http drained"),
                Err(_) => tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "http not drained within the grace; closing the remaining connections"
                ),
            }
        };
        // The lease goes first (a follower must not wait for slow HTTP clients); the link closes
        // after the drain, so requests still running see it up.
        let (_, ()) = tokio::join!(background.stop_first(), drained);
        background.stop().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The whole HTTP surface: each domain module contributes its own router.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .merge(http::health::router())
        .merge(http::openapi::router([board::Doc::openapi()]))
        .merge(http::areas::router())
        .merge(http::devices::router())
        .merge(http::media::router())
        .merge(http::ota::router())
        .merge(http::schedules::router())
        .merge(http::commands::router())
        .merge(http::live::router())
        .merge(http::relay::router())
        .merge(http::reports::router())
        .merge(http::speech::router())
        .merge(http::bulletins::router())
        .merge(http::alarms::router())
        .merge(http::alerts::router())
        .merge(http::feedback::router())
        .merge(http::submissions::router())
        .merge(board::router())
        .merge(http::users::router())
        .merge(console::router())
        .merge(http::policies::router())
        .merge(http::autonomy::router())
        .merge(public::router(state.clone()))
        .layer(axum::middleware::from_fn(http::text::refuse_control_characters))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            http::multipart::body_limit(state.settings.max_upload_mb),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::throttle::api_limit,
        ))
        .layer(axum::middleware::from_fn(http::error::json_rejections));
    http::headers::secure(app)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

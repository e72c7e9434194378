//! nguon-server: the provincial source-information server. An axum HTTP API, a sqlx store
//! (SQLite or PostgreSQL), a scheduler that turns rules into occurrences, a dispatcher that keeps
//! every device's signed desired manifest published over MQTT, an ingest of status and proof of
//! play, and an embedded MQTT broker (rumqttd) unless an external one is configured.
//!
//! [`Application::build`] → [`Application::http_port`] → [`Application::run_until_stopped`], so
//! tests start the real server on port 0.
#![deny(missing_docs)]

pub mod area;
pub mod audit;
pub mod auth;
pub mod board;
pub mod broker;
pub mod bulletin;
pub mod command;
pub mod config;
pub mod console;
pub mod dispatch;
pub mod error;
pub mod fleet;
pub mod ingest;
pub mod keys;
pub mod link;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod report;
pub mod schedule;
pub mod speech;
pub mod store;
pub mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use nguon_protocol::ServerKey;
use tokio::net::TcpListener;

pub use config::Settings;
pub use error::{Error, Result};
pub use store::Store;

/// Shared state handed to every handler and background task.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// The server's signing key.
    pub key: Arc<ServerKey>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Bootstrap admin bearer token.
    pub admin_token: Arc<config::Secret>,
    /// Tell the dispatcher that desired state changed.
    pub dispatch: dispatch::DispatchHandle,
    /// The server's MQTT connection (publishing commands and manifests).
    pub link: link::Link,
    /// Base URL devices use to fetch media, without trailing slash.
    pub public_url: Arc<str>,
}

/// A built, not yet running, server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    background: dispatch::Background,
    mqtt_addr: Option<SocketAddr>,
    admin_token_generated: bool,
}

impl Application {
    /// Open the store (running migrations), load or create the signing key, start the embedded
    /// broker (unless `mqtt_url` is set), connect the server's MQTT link and bind the HTTP port.
    pub async fn build(settings: Settings) -> Result<Application> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let store = Store::connect(&settings.database_url()).await?;
        let key = Arc::new(keys::load_or_create(&settings.data_dir)?);
        let (admin_token, admin_token_generated) = match &settings.admin_token {
            Some(t) => (t.clone(), false),
            None => (config::Secret::new(auth::generate_token()), true),
        };
        user::bootstrap(&store, admin_token.expose()).await?;
        let listener = TcpListener::bind(settings.http_addr).await?;
        let http_addr = listener.local_addr()?;
        let public_url: Arc<str> = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}"))
            .trim_end_matches('/')
            .into();
        let settings = Arc::new(settings);
        let metrics = Arc::new(metrics::Metrics::default());
        let (dispatch, dispatch_rx) = dispatch::DispatchHandle::new();
        let broker = broker::start(&settings, &store).await?;
        let mqtt_addr = broker.listen_addr();
        let (link, link_events) = link::Link::connect(&settings, &broker, metrics.clone()).await?;
        let state = AppState {
            store,
            settings,
            key,
            metrics,
            admin_token: Arc::new(admin_token),
            dispatch,
            link,
            public_url,
        };
        if state.settings.demo {
            fleet::seed_demo(&state).await?;
        }
        let background = dispatch::Background::start(state.clone(), broker, dispatch_rx, link_events).await?;
        Ok(Application {
            listener,
            state,
            background,
            mqtt_addr,
            admin_token_generated,
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

    /// The admin bearer token, and whether it was generated at this start (so `main` prints it once).
    pub fn admin_token(&self) -> (&str, bool) {
        (self.state.admin_token.expose(), self.admin_token_generated)
    }

    /// The shared state (for tests and the demo).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve HTTP and run the background tasks until `shutdown` resolves or a task fails; the log
    /// says how each one ended.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let app = router(self.state.clone());
        let server = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown);
        let mut background = self.background;
        tokio::select! {
            r = server => {
                tracing::info!(result = ?r, "http server stopped");
                background.stop().await;
                r.map_err(Error::Io)
            }
            r = background.wait() => {
                tracing::error!(result = ?r, "a background task ended; stopping");
                r
            }
        }
    }
}

/// The whole HTTP surface: each domain module contributes its own router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(openapi::router())
        .merge(area::router())
        .merge(fleet::router())
        .merge(fleet::history::router())
        .merge(media::router())
        .merge(schedule::router())
        .merge(command::router())
        .merge(report::router())
        .merge(speech::router())
        .merge(bulletin::router())
        .merge(board::router())
        .merge(user::router())
        .merge(console::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

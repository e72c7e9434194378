//! The supervisor of the background tasks: runs each as a named task, says in the log how each
//! one ended, and stops them all (then disconnects the MQTT link) at shutdown. A task that ends
//! on its own stops the server (`Application::run_until_stopped` returns its result).

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::mqtt::Link;

/// Running background tasks.
pub struct Supervisor {
    tasks: JoinSet<(&'static str, Result<()>)>,
    cancel: CancellationToken,
    link: Link,
}

impl Supervisor {
    /// No task yet; `link` is disconnected at [`Supervisor::stop`].
    pub fn new(link: Link) -> Supervisor {
        Supervisor {
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
            link,
        }
    }

    /// The token every task watches to stop.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Run `task` as `name`.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = Result<()>> + Send + 'static) {
        self.tasks.spawn(async move { (name, task.await) });
    }

    /// Wait until one task ends; the log says which and how.
    pub async fn wait(&mut self) -> Result<()> {
        match self.tasks.join_next().await {
            Some(Ok((name, r))) => {
                tracing::warn!(task = name, result = ?r, "background task ended");
                r
            }
            Some(Err(e)) => Err(Error::internal_from("background task panicked", e)),
            None => std::future::pending().await,
        }
    }

    /// Stop all, wait up to 5 s for them, and disconnect the MQTT link.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(r) = self.tasks.join_next().await {
                if let Ok((name, r)) = r {
                    tracing::info!(task = name, result = ?r, "background task stopped");
                }
            }
        })
        .await;
        self.link.disconnect().await;
    }
}

//! The supervisor of the background tasks: runs each as a named task, says in the log how each
//! one ended, and stops them all (then disconnects the MQTT link) at shutdown. A task that ends
//! on its own stops the server (`Application::run_until_stopped` returns its result). Tasks
//! started with [`Supervisor::spawn_first`] (the leader lease) can be stopped ahead of the others
//! ([`Supervisor::stop_first`]), so a stopping leader hands its lease over before it drains.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::mqtt::Link;

/// Running background tasks.
pub struct Supervisor {
    tasks: JoinSet<(&'static str, Result<()>)>,
    cancel: CancellationToken,
    first: CancellationToken,
    first_done: Vec<watch::Receiver<bool>>,
    link: Link,
}

impl Supervisor {
    /// No task yet; `link` is disconnected at [`Supervisor::stop`].
    pub fn new(link: Link) -> Supervisor {
        let cancel = CancellationToken::new();
        let first = cancel.child_token();
        Supervisor {
            tasks: JoinSet::new(),
            cancel,
            first,
            first_done: Vec::new(),
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

    /// Run `task` as `name` with its own token (a child of the common one), stopped by
    /// [`Supervisor::stop_first`].
    pub fn spawn_first<F, T>(&mut self, name: &'static str, task: T)
    where
        T: FnOnce(CancellationToken) -> F,
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let (done, rx) = watch::channel(false);
        self.first_done.push(rx);
        let fut = task(self.first.clone());
        self.tasks.spawn(async move {
            let r = fut.await;
            let _ = done.send(true);
            (name, r)
        });
    }

    /// Stop the tasks of [`Supervisor::spawn_first`] and wait up to 5 s for them to end.
    pub async fn stop_first(&mut self) {
        self.first.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for rx in &mut self.first_done {
                let _ = rx.wait_for(|d| *d).await;
            }
        })
        .await;
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

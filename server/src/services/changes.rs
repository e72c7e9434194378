//! Recording a desired-state change that a use case has already committed without its outbox row.
//! Transitional: the verticals (steps A and B) write the row in the use case's own transaction
//! (`store::outbox::insert`) and this module goes when the last caller has moved.

use crate::domain::change::Change;
use crate::services::AppState;
use crate::store::outbox;

/// Write `change` to the dispatch outbox in a transaction of its own and wake the dispatcher. A
/// failed write is logged and does not fail the request (its change is committed); the hourly
/// recompute covers it.
pub async fn changed(state: &AppState, change: Change) {
    let res = async {
        let mut tx = state.store.begin_write().await?;
        outbox::insert(&mut tx, &change).await?;
        tx.commit().await?;
        Ok::<_, crate::error::Error>(())
    }
    .await;
    match res {
        Ok(()) => state.wake.dispatch(),
        Err(e) => {
            tracing::error!(error = %e, ?change, "cannot record a change in the dispatch outbox; the hourly recompute will cover it");
        }
    }
}

//! The subscription use cases (issue 12 §6): list, create, change and delete the subscriptions
//! of alarm notifications (operator role, areas in the caller's scope; every change audited with
//! the caller, the webhook secret never written to the audit log), and the notifications of one
//! alarm with their attempts.

use crate::domain::notify::{NewSubscription, Subscription, SubscriptionFields};
use crate::domain::scope::{Caller, Role};
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::store::notifications::{self, Delivery};
use crate::store::{self, now_ms};

fn audit_json(f: &SubscriptionFields) -> serde_json::Value {
    serde_json::json!({
        "area": f.area, "role": f.role.as_str(), "channel": f.channel, "target": f.target,
        "kinds": f.kinds, "enabled": f.enabled, "secret_set": f.secret.is_some(),
    })
}

async fn check_fields(state: &AppState, caller: &Caller, f: &SubscriptionFields) -> Result<()> {
    caller.check_area(&f.area)?;
    if !store::areas::exists(&state.store, &f.area).await? {
        return Err(Error::unprocessable(
            "unknown_area",
            format!("`area`: `{}` does not exist", f.area),
        ));
    }
    if f.channel == "email" && state.settings.smtp.is_none() {
        return Err(Error::unprocessable(
            "smtp_not_configured",
            "`channel`: e-mail needs the [smtp] settings of the server",
        ));
    }
    Ok(())
}

/// The subscriptions of the caller's areas.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<Subscription>> {
    notifications::list(&state.store, caller).await
}

/// Create a subscription; a webhook without a secret gets a generated one. The answer carries
/// the secret (the only time it is shown).
pub async fn create(state: &AppState, caller: &Caller, n: &NewSubscription) -> Result<Subscription> {
    caller.require(Role::Operator)?;
    let mut f = n.validate(None)?;
    check_fields(state, caller, &f).await?;
    if f.channel == "webhook" && f.secret.is_none() {
        f.secret = Some(crate::services::auth::generate_token());
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.store.begin_write().await?;
    notifications::insert(&mut tx, &id, &f, &caller.username, now_ms()).await?;
    store::audit::record(
        &mut tx,
        &caller.username,
        "alarm_subscription.create",
        &format!("alarm_subscription:{id}"),
        None,
        Some(audit_json(&f)),
    )
    .await?;
    let mut shown = notifications::found(notifications::get_in(&mut tx, &id).await?, &id)?.shown;
    tx.commit().await?;
    shown.secret = f.secret;
    Ok(shown)
}

/// Change a subscription (fields absent from `n` are kept; a new `secret` is shown once).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    n: &NewSubscription,
) -> Result<Subscription> {
    caller.require(Role::Operator)?;
    let mut tx = state.store.begin_write().await?;
    let before = match notifications::get_in(&mut tx, id).await? {
        Some(s) if caller.in_scope(&s.fields.area) => s,
        _ => return Err(Error::NotFound(format!("subscription {id}"))),
    };
    let mut f = n.validate(Some(&before.fields))?;
    check_fields(state, caller, &f).await?;
    if f.channel == "webhook" && f.secret.is_none() {
        f.secret = Some(crate::services::auth::generate_token());
    }
    notifications::update(&mut tx, id, &f, now_ms()).await?;
    store::audit::record(
        &mut tx,
        &caller.username,
        "alarm_subscription.update",
        &format!("alarm_subscription:{id}"),
        Some(audit_json(&before.fields)),
        Some(audit_json(&f)),
    )
    .await?;
    let mut shown = notifications::found(notifications::get_in(&mut tx, id).await?, id)?.shown;
    tx.commit().await?;
    if n.secret.is_some() || before.fields.secret != f.secret {
        shown.secret = f.secret;
    }
    Ok(shown)
}

/// Delete a subscription.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Role::Operator)?;
    let mut tx = state.store.begin_write().await?;
    let before = match notifications::get_in(&mut tx, id).await? {
        Some(s) if caller.in_scope(&s.fields.area) => s,
        _ => return Err(Error::NotFound(format!("subscription {id}"))),
    };
    notifications::delete(&mut tx, id).await?;
    store::audit::record(
        &mut tx,
        &caller.username,
        "alarm_subscription.delete",
        &format!("alarm_subscription:{id}"),
        Some(audit_json(&before.fields)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The notifications of alarm `id` (in the caller's scope) with their attempts.
pub async fn deliveries(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<Delivery>> {
    match store::alarms::get(&state.store, id).await? {
        Some(a) if caller.in_scope(&a.area) => {}
        _ => return Err(Error::NotFound(format!("alarm {id}"))),
    }
    notifications::deliveries(&state.store, id).await
}

//! The users page (admin): the list and the form that creates a user (`services::users`).

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::all_areas;
use super::{Console, PageError, PageForm, PageResult, see_other, visible_areas};
use crate::domain::scope::Role;
use crate::domain::user::NewUser;
use crate::error::Error;
use crate::services::{self, AppState};

pub(super) async fn users_page(c: Console, State(state): State<AppState>) -> PageResult {
    c.caller.require(Role::Admin).map_err(|e| PageError(e, c.lang))?;
    let users = crate::store::users::list(&state.store).await?;
    let areas = all_areas(&state).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    c.page(
        "users.html",
        json!({"users": users, "roles": roles, "areas": visible_areas(&c, &areas)}),
    )
}

#[derive(Deserialize)]
pub(super) struct UserForm {
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    role: String,
    #[serde(default)]
    area: Option<String>,
    password: String,
}

pub(super) async fn create_user(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<UserForm>,
) -> PageResult {
    let lang = c.lang;
    let step = async {
        c.caller.require(Role::Admin)?;
        let req = NewUser {
            username: f.username,
            display_name: f.display_name,
            role: Role::parse(&f.role)?,
            areas: f.area.into_iter().filter(|a| !a.is_empty()).collect(),
            password: f.password,
        };
        services::users::create(&state, &c.caller, req).await?;
        Ok::<_, Error>(())
    };
    step.await.map_err(|e| PageError(e, lang))?;
    Ok(see_other("/console/users"))
}

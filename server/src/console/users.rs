//! The users page (admin): the list and the form that creates a user (`services::users`). A user
//! holds one or more roles (ticked; none is ticked at first, so nobody becomes admin by
//! default); a refused form is shown again with what was typed and the message next to its field.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::admin::{form_error, page_with, shown_on_form};
use super::admin_users::roles_of;
use super::all_areas;
use super::{Console, PageError, PageForm, PageResult, visible_areas};
use crate::domain::scope::Role;
use crate::domain::user::NewUser;
use crate::http::form::Fields;
use crate::services::{self, AppState};

async fn users_view(c: &Console, state: &AppState, extra: Value, status: StatusCode) -> PageResult {
    c.caller.require(Role::Admin).map_err(|e| PageError(e, c.lang))?;
    let users: Vec<Value> = crate::store::users::list(&state.store)
        .await?
        .into_iter()
        .map(|u| {
            let roles: Vec<&str> = std::iter::once(u.role)
                .chain(u.extra_roles.iter().copied())
                .map(|r| r.as_str())
                .collect();
            let mut v = json!(u);
            v["roles"] = json!(roles);
            v
        })
        .collect();
    let areas = all_areas(state).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let mut ctx = json!({"users": users, "roles": roles, "areas": visible_areas(c, &areas),
                         "form": {"roles": []}, "four_eyes": state.settings.four_eyes});
    if let (Some(o), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        o.extend(e);
    }
    page_with(c, "users.html", status, ctx)
}

pub(super) async fn users_page(c: Console, State(state): State<AppState>) -> PageResult {
    users_view(&c, &state, json!({}), StatusCode::OK).await
}

pub(super) async fn create_user(
    c: Console,
    State(state): State<AppState>,
    PageForm(f): PageForm<Fields>,
) -> PageResult {
    let lang = c.lang;
    c.caller.require(Role::Admin).map_err(|e| PageError(e, lang))?;
    let res = async {
        let (role, roles) = roles_of(&f)?;
        let req = NewUser {
            username: f.one("username"),
            display_name: f.opt("display_name"),
            role,
            roles,
            areas: f.opt("area").into_iter().collect(),
            password: f.raw("password"),
        };
        services::users::create(&state, &c.caller, req).await
    }
    .await;
    match res {
        Ok(_) => Ok(super::done("/console/users", "user_created")),
        Err(e) if shown_on_form(&e) => {
            let status = e.status();
            let mut extra = form_error(&c, &e);
            // What was typed comes back (never the password).
            extra["form"] = json!({"username": f.one("username"), "display_name": f.one("display_name"),
                                   "roles": f.all("role"), "area": f.one("area")});
            users_view(&c, &state, extra, status).await
        }
        Err(e) => Err(PageError(e, lang)),
    }
}

//! Console login and logout: the login form carries its own CSRF token (a cookie set with the
//! page, since there is no session yet); a successful login sets the session cookie; logout needs
//! the session's token.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::json;

use super::{
    ClientIp, Console, LOGIN_CSRF_COOKIE, Lang, PageError, PageForm, PageResult, i18n, lang_of, render,
    secure, set_cookie,
};
use crate::domain::scope::constant_time_eq;
use crate::domain::user::{LoginError, SESSION_MS};
use crate::error::Error;
use crate::http::auth::{SESSION_COOKIE, cookie};
use crate::http::form::Fields;
use crate::services::{self, AppState};

fn login_html(
    state: &AppState,
    lang: Lang,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> PageResult {
    let token = services::auth::generate_token();
    let html = render(
        "login.html",
        json!({"lang": lang.code(), "csrf": "", "user": null, "login_csrf": token, "error": error, "username": username}),
    )?;
    let mut resp = (status, Html(html)).into_response();
    set_cookie(
        &mut resp,
        format!(
            "{LOGIN_CSRF_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Lax{}",
            secure(state)
        ),
    );
    Ok(resp)
}

pub(super) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    login_html(&state, lang_of(&headers), None, "", StatusCode::OK)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> PageResult {
    let lang = lang_of(&headers);
    let want = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if want.is_empty() || !constant_time_eq(want.as_bytes(), f.csrf.as_bytes()) {
        return Err(PageError(
            Error::Forbidden("missing or wrong CSRF token on the login form".into()),
            lang,
        ));
    }
    match services::auth::authenticate(&state, &f.username, &f.password, ip).await? {
        Ok(u) => {
            let sid = services::auth::create_session(&state, &u.id).await?.id;
            let mut resp = Redirect::to("/console").into_response();
            *resp.status_mut() = StatusCode::SEE_OTHER;
            set_cookie(
                &mut resp,
                format!(
                    "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
                    SESSION_MS / 1000,
                    secure(&state)
                ),
            );
            set_cookie(
                &mut resp,
                format!("{LOGIN_CSRF_COOKIE}=; Path=/console; Max-Age=0"),
            );
            Ok(resp)
        }
        Err(LoginError::BadCredentials) => login_html(
            &state,
            lang,
            Some(i18n::t("login.bad", lang)),
            &f.username,
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::Locked | LoginError::Throttled) => login_html(
            &state,
            lang,
            Some(i18n::t("login.locked", lang)),
            &f.username,
            StatusCode::TOO_MANY_REQUESTS,
        ),
    }
}

pub(super) async fn logout(
    _: Console,
    State(state): State<AppState>,
    headers: HeaderMap,
    _checked: PageForm<Fields>,
) -> PageResult {
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        services::auth::end_session(&state, &sid).await?;
    }
    let mut resp = Redirect::to("/console/login").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    set_cookie(
        &mut resp,
        format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            secure(&state)
        ),
    );
    Ok(resp)
}

//! The pages of a user's own things: the login page (a password form
//! where htpasswd or LDAP is configured, a button per OpenID provider),
//! logging out, stars and bookmarks, and API keys (made with a label,
//! scopes and an expiry, shown once; listed; revoked).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{Markup, html};

use super::layout::{self, copyable, csrf, time};
use super::pages::repo_link;
use super::{Ctx, UiError, encode, local_path, see_other};
use crate::api::AppState;
use crate::api::params::Params;
use crate::auth::Auth;
use crate::auth::apikeys::ApiKey;
use crate::ext::search::Search;

/// The expiries offered for a new key: (days, label); 0 is never.
const EXPIRIES: &[(i64, &str)] = &[
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (365, "1 year"),
    (0, "Never"),
];

/// `GET /ui/login?next=`; `failed`: the form was sent and refused.
pub(super) fn login_page(
    state: &AppState,
    ctx: &Ctx,
    q: &Params,
    failed: Option<&str>,
) -> Result<Response, UiError> {
    let next = local_path(q.get("next"));
    let auth = state.auth.as_deref();
    let passwords = auth.is_some_and(Auth::sessions_enabled)
        && state.search.as_ref().is_some_and(|s| s.password_logins());
    let providers = auth.map(Auth::openid_providers).unwrap_or_default();
    let content = html! {
        h1 { "Log in" }
        @if let Some(why) = failed { div.notice.error role="alert" { p { (why) } } }
        @if let Some(user) = &ctx.user {
            p { "You are logged in as " strong { (user) } ". " a href=(next) { "Go on" } }
        }
        @if auth.is_none() {
            p { "This registry has no authentication: everyone sees everything, no login needed." }
        } @else if !passwords && providers.is_empty() {
            p { "Logging in through the browser is not configured here. Registry clients log in with their own credentials." }
        }
        @if passwords {
            form.stack method="post" action="/ui/login" {
                input type="hidden" name="next" value=(next);
                label { "User name" input type="text" name="username" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                div { button type="submit" { "Log in" } }
            }
        }
        @if !providers.is_empty() {
            h2 { "Or log in with" }
            div.actions {
                @for p in &providers {
                    a.button.secondary href=(format!("/zot/auth/login?provider={}&callback_ui={}", encode(&p.key), encode(next))) { (p.name) }
                }
            }
        }
    };
    let status = if failed.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut resp = layout::html_response(status, layout::page(ctx, "Log in", "", content));
    if failed.is_some() {
        // A 401 names a scheme; this one is the form on the page.
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Form"));
    }
    Ok(resp)
}

/// `POST /ui/login`: checks the password, starts a session, goes on to
/// `next`.
pub(super) async fn login_post(
    state: &AppState,
    ctx: &Ctx,
    form: &Params,
) -> Result<Response, UiError> {
    let auth = state.auth.clone().ok_or(UiError::NotFound)?;
    let user = form.get("username").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let next = local_path(form.get("next")).to_string();
    let back = Params::parse(Some(&format!("next={}", encode(&next))));
    if user.is_empty() || password.is_empty() {
        return login_page(state, ctx, &back, Some("Enter a user name and a password."));
    }
    let login = match auth.password_login(user, password).await {
        Ok(login) => login,
        Err(crate::auth::AuthFailure::Unavailable(service)) => {
            return Err(UiError::Api(crate::api::error::ApiError::unavailable(
                &format!("{service} is unavailable"),
                "login not checked",
            )));
        }
        Err(_) => {
            tokio::time::sleep(auth.fail_delay()).await;
            tracing::info!(user, "ui: a login was refused");
            return login_page(state, ctx, &back, Some("Wrong user name or password."));
        }
    };
    let cookies = auth
        .start_session(&login)
        .await
        .map_err(|e| UiError::Internal(format!("starting a session: {e}")))?;
    tracing::info!(user, "ui: logged in");
    let mut resp = see_other(&next);
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// `POST /ui/logout`: ends the session, back home; after an OpenID login,
/// through the provider's end-session endpoint when it has one (so that
/// its session ends too), which sends the browser back home.
pub(super) async fn logout(
    state: &AppState,
    ctx: &Ctx,
    headers: &http::HeaderMap,
) -> Result<Response, UiError> {
    #[cfg(feature = "openid")]
    let next = match (
        state.auth.as_ref().and_then(|a| a.openid()),
        ctx.login
            .as_ref()
            .and_then(|l| l.session.as_ref())
            .and_then(|s| s.provider.as_deref()),
    ) {
        (Some(openid), Some(provider)) => openid.end_session_url(provider, headers, "/").await,
        _ => None,
    };
    #[cfg(not(feature = "openid"))]
    let next: Option<String> = {
        let _ = headers;
        None
    };
    let mut resp = match &next {
        // The page's `form-action 'self'` keeps a form from being
        // redirected to another site: a page sends the browser on.
        Some(url) => provider_logout_page(url),
        None => see_other("/"),
    };
    if let (Some(auth), Some(login)) = (&state.auth, &ctx.login) {
        for c in auth.end_session(login).await {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(resp)
}

/// The page after logging out of an OpenID session: it sends the browser
/// on to the provider's end-session endpoint at once (a refresh, which
/// the pages' content security policy allows), with a link for a browser
/// that does not follow it.
fn provider_logout_page(url: &str) -> Response {
    let markup = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(format!("0;url={url}"));
                title { "Logged out · Berth" }
            }
            body {
                p { "You are logged out of Berth. " a href=(url) { "Log out of your identity provider too" } "." }
            }
        }
    };
    layout::html_response(StatusCode::OK, markup)
}

/// `POST /ui/prefs` (`repo`, `action=star|bookmark`): the same checks as
/// the user-preferences route (a user, who may read the repository).
pub(super) async fn toggle_pref(
    search: &Search,
    ctx: &Ctx,
    form: &Params,
) -> Result<Response, UiError> {
    let repo = form.get("repo").unwrap_or("");
    if ctx.user.is_none() {
        let back = repo
            .parse::<berth_oci::RepoName>()
            .map_or_else(|_| "/".to_string(), |r| repo_link(r.as_str()));
        return Err(UiError::Login(back));
    }
    let action = match form.get("action") {
        Some("star") => "toggleStar",
        Some("bookmark") => "toggleBookmark",
        _ => {
            return Err(UiError::BadRequest(
                "action: expected star or bookmark".into(),
            ));
        }
    };
    let name: berth_oci::RepoName = repo
        .parse()
        .map_err(|_| UiError::BadRequest("repo: not a repository name".into()))?;
    let q = Params::parse(Some(&format!(
        "action={action}&repo={}",
        encode(name.as_str())
    )));
    match crate::ext::search::http::userprefs(search, &ctx.caller, &q).await {
        Ok(_) => Ok(see_other(&repo_link(name.as_str()))),
        // Denied or unknown: the same page as for a repository not there.
        Err(e) if e.status().is_client_error() => Err(UiError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The key store and the user, for a caller who may manage keys.
fn keys_of(state: &AppState, ctx: &Ctx) -> Result<(Arc<Auth>, String), UiError> {
    let auth = state.auth.clone().ok_or(UiError::NotFound)?;
    if auth.apikeys().is_none() {
        return Err(UiError::NotFound);
    }
    match (&ctx.user, ctx.apikeys) {
        (Some(user), true) => Ok((auth, user.clone())),
        (Some(_), false) => Err(UiError::Forbidden(
            "API keys are managed after logging in with a password (not a key, a certificate or a token)"
                .into(),
        )),
        (None, _) => Err(UiError::Login("/ui/apikeys".into())),
    }
}

/// Runs a key store operation on a blocking thread (it waits for the disk).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?
}

/// `GET /ui/apikeys`; `made`: a key just made, shown this once.
pub(super) async fn keys_page(
    state: &AppState,
    ctx: &Ctx,
    made: Option<(ApiKey, String)>,
) -> Result<Response, UiError> {
    let (auth, user) = keys_of(state, ctx)?;
    let keys = blocking(move || {
        let store = auth.apikeys().ok_or(UiError::NotFound)?;
        store
            .list(&user)
            .map_err(|e| UiError::Internal(e.to_string()))
    })
    .await?;
    let now = crate::auth::apikeys::now();
    let at = |t: Option<i64>| {
        t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    let content = html! {
        h1 { "API keys" }
        p.muted { "A key logs registry clients in as you (" code { "docker login -u " (ctx.user.as_deref().unwrap_or("")) } " with the key as password), limited to its scopes." }
        @if let Some((record, key)) = &made {
            div.notice role="status" {
                p { strong { "Key “" (record.label) "” made." } " Copy it now: it is not shown again." }
                (copyable("new-key", key))
            }
        }
        h2 { "New key" }
        form.stack method="post" action="/ui/apikeys" {
            (csrf(ctx))
            label { "Label" input type="text" name="label" required maxlength="100" placeholder="ci-pipeline"; }
            label { "Scopes (repository globs, comma separated; empty: every repository you may use)"
                input type="text" name="scopes" placeholder="team/*, tools/**"; }
            label { "Expires after"
                select name="expires" { @for (days, label) in EXPIRIES { option value=(days) selected[*days == 90] { (label) } } } }
            div { button type="submit" { "Make key" } }
        }
        h2 { "Your keys" }
        (key_table(ctx, &keys, now, &at))
    };
    let mut resp = layout::ok(ctx, "API keys", "", content);
    if made.is_some() {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

fn key_table(ctx: &Ctx, keys: &[ApiKey], now: i64, at: &dyn Fn(Option<i64>) -> String) -> Markup {
    html! {
        @if keys.is_empty() {
            p.empty { "No keys." }
        } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Label" } th scope="col" { "Scopes" } th scope="col" { "Made" }
                    th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { span.sr-only { "Revoke" } } } }
                tbody { @for k in keys { tr {
                    td { (k.label) }
                    td { @if k.scopes.is_empty() { span.muted { "all" } } @else { @for s in &k.scopes { code { (s) } " " } } }
                    td { (time(&at(Some(k.created_at)))) }
                    td { @if k.is_expired(now) { span.bad { "expired" } } @else if k.expires_at.is_none() { "never" } @else { (time(&at(k.expires_at))) } }
                    td { @if k.last_used.is_some() { (time(&at(k.last_used))) } @else { span.muted { "never" } } }
                    td {
                        form method="post" action="/ui/apikeys/revoke" {
                            (csrf(ctx))
                            input type="hidden" name="id" value=(k.uuid);
                            button.danger type="submit" aria-label=(format!("Revoke {}", k.label)) { "Revoke" }
                        }
                    }
                } } }
            } }
        }
    }
}

/// `POST /ui/apikeys` (`label`, `scopes`, `expires` in days, 0 never):
/// makes a key and shows it, once.
pub(super) async fn create_key(
    state: &AppState,
    ctx: &Ctx,
    parts: &http::request::Parts,
    form: &Params,
) -> Result<Response, UiError> {
    let (auth, user) = keys_of(state, ctx)?;
    let label = form.get("label").unwrap_or("").trim().to_string();
    if label.is_empty() {
        return Err(UiError::BadRequest("a key needs a label".into()));
    }
    let scopes: Vec<String> = form
        .get("scopes")
        .unwrap_or("")
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for s in &scopes {
        globset::Glob::new(s).map_err(|e| {
            UiError::BadRequest(format!("scope {s:?} is not a repository glob: {e}"))
        })?;
    }
    let days: i64 = form
        .get("expires")
        .and_then(|d| d.parse().ok())
        .filter(|d| EXPIRIES.iter().any(|(x, _)| x == d))
        .ok_or_else(|| UiError::BadRequest("expires: pick one of the offered expiries".into()))?;
    let expires_at = (days > 0).then(|| crate::auth::apikeys::now() + days * 86_400);
    let ua = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // An OpenID user's key keeps their groups (no directory here knows
    // them).
    let groups = crate::api::apikeys::openid_groups(ctx.login.as_ref());
    let made = blocking(move || {
        let store = auth.apikeys().ok_or(UiError::NotFound)?;
        store
            .create_for(&user, groups, &label, &scopes, expires_at, &ua)
            .map_err(|e| UiError::Internal(e.to_string()))
    })
    .await?;
    tracing::info!(user = ctx.user.as_deref().unwrap_or(""), uuid = %made.0.uuid, "ui: api key created");
    keys_page(state, ctx, Some(made)).await
}

/// `POST /ui/apikeys/revoke` (`id`).
pub(super) async fn revoke_key(
    state: &AppState,
    ctx: &Ctx,
    form: &Params,
) -> Result<Response, UiError> {
    let (auth, user) = keys_of(state, ctx)?;
    let id = form.get("id").unwrap_or("").to_string();
    let gone = blocking(move || {
        let store = auth.apikeys().ok_or(UiError::NotFound)?;
        store
            .delete(&user, &id)
            .map_err(|e| UiError::Internal(e.to_string()))
    })
    .await?;
    if !gone {
        return Err(UiError::NotFound);
    }
    Ok(see_other("/ui/apikeys").into_response())
}

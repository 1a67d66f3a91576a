//! `/zot/auth/token` (GET and POST): the token endpoint of Berth's own
//! bearer challenge. What it issues and refuses is decided by
//! [`crate::auth::token_exchange`]; a request that carries nothing of
//! Berth's is forwarded, as it came, to `bearer.upstreamTokenEndpoint`
//! (its `service` set to the upstream's), and the upstream's answer is
//! passed back.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_oci::ErrorCode;
use headers::authorization::Basic;
use headers::{Authorization, HeaderMapExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::AppState;
use super::error::ApiError;
use crate::auth::token_exchange::{Exchange, MAX_FORM, TokenRequest, url_decoded};
use crate::config::UpstreamTokenEndpoint;

/// How long the upstream token service may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that belong to one connection, never passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

pub(super) async fn exchange(State(state): State<AppState>, req: Request) -> Response {
    let mut resp = answer(&state, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    // Tokens are never cached, whoever answered.
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

async fn answer(state: &AppState, req: Request) -> Result<Response, ApiError> {
    // Mounted only with authentication.
    let auth = state.auth.clone().ok_or_else(ApiError::not_found)?;
    let refused = || {
        ApiError::new(ErrorCode::Unauthorized, "token request refused")
            .with_header(header::WWW_AUTHENTICATE, &auth.basic_challenge())
    };
    let (parts, body) = req.into_parts();
    if parts.headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(refused());
    }
    let body = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| ApiError::too_large(MAX_FORM))?;
    let form = is_form(&parts.headers);
    let basic = parts
        .headers
        .typed_get::<Authorization<Basic>>()
        .map(|b| (b.username().to_string(), b.password().to_string()));
    let request = TokenRequest::new(basic, form.then_some(&body[..]));
    match auth.exchange(&request).await {
        Exchange::Issued(token) => Ok(axum::Json(token).into_response()),
        Exchange::Refused => {
            tokio::time::sleep(auth.fail_delay()).await;
            Err(refused())
        }
        Exchange::Unavailable(what) => Err(ApiError::unavailable(
            &format!("{what} is unavailable"),
            "token request not judged",
        )),
        Exchange::NotOurs => match auth.upstream_token_endpoint() {
            Some(upstream) => forward(&upstream, &parts, body, form).await,
            None => {
                tokio::time::sleep(auth.fail_delay()).await;
                Err(refused())
            }
        },
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .timeout(UPSTREAM_TIMEOUT)
        // The upstream's redirect is the client's to follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(ApiError::internal)?;
    Ok(CLIENT.get_or_init(|| c))
}

/// The upstream URL for a request to `/zot/auth/token?query`: the
/// realm's own query, overridden by the request's, with the upstream's
/// `service`.
fn upstream_url(
    upstream: &UpstreamTokenEndpoint,
    query: Option<&str>,
) -> Result<reqwest::Url, ApiError> {
    let mut url = reqwest::Url::parse(&upstream.realm).map_err(ApiError::internal)?;
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let asked = url_decoded(query.unwrap_or_default().as_bytes());
    pairs.retain(|(k, _)| !asked.iter().any(|(a, _)| a == k));
    pairs.extend(asked);
    set_service(&mut pairs, &upstream.service);
    url.query_pairs_mut().clear().extend_pairs(&pairs);
    if pairs.is_empty() {
        url.set_query(None);
    }
    Ok(url)
}

fn set_service(pairs: &mut Vec<(String, String)>, service: &str) {
    if service.is_empty() {
        return;
    }
    pairs.retain(|(k, _)| k != "service");
    pairs.push(("service".into(), service.into()));
}

async fn forward(
    upstream: &UpstreamTokenEndpoint,
    parts: &http::request::Parts,
    body: axum::body::Bytes,
    form: bool,
) -> Result<Response, ApiError> {
    let url = upstream_url(upstream, parts.uri.query())?;
    let body = match form && !upstream.service.is_empty() {
        true => {
            let mut pairs = url_decoded(&body);
            set_service(&mut pairs, &upstream.service);
            let mut encoded =
                reqwest::Url::parse("http://form.invalid/").map_err(ApiError::internal)?;
            encoded.query_pairs_mut().extend_pairs(&pairs);
            axum::body::Bytes::from(encoded.query().unwrap_or_default().to_string())
        }
        false => body,
    };
    let mut out = client()?.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let got = out.send().await.map_err(|e| {
        tracing::error!(error = %e, realm = %upstream.realm, "upstream token service unreachable");
        ApiError::new(
            ErrorCode::Unknown,
            "the upstream token service could not be reached",
        )
        .with_status(StatusCode::BAD_GATEWAY)
    })?;
    let status = got.status();
    let mut headers = HeaderMap::new();
    for (name, value) in got.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(name, value.clone());
        }
    }
    let bytes = got.bytes().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Unknown,
            format!("the upstream token service's answer broke off: {e}"),
        )
        .with_status(StatusCode::BAD_GATEWAY)
    })?;
    let mut resp = (status, Body::from(bytes)).into_response();
    resp.headers_mut().extend(headers);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(realm: &str, service: &str) -> UpstreamTokenEndpoint {
        UpstreamTokenEndpoint {
            realm: realm.into(),
            service: service.into(),
            allow_insecure_http: true,
        }
    }

    #[test]
    fn the_upstream_url_keeps_the_request_and_names_the_upstream_service() {
        let u = upstream("https://auth.example/token?client=zot&scope=x", "legacy");
        let url = upstream_url(
            &u,
            Some("service=berth&scope=repository%3Aa%3Apull&scope=b"),
        )
        .expect("url");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            pairs,
            [
                pair("client", "zot"),
                pair("scope", "repository:a:pull"),
                pair("scope", "b"),
                pair("service", "legacy"),
            ]
        );
        // Without an upstream service, the client's is passed on.
        let url =
            upstream_url(&upstream("http://t/token", ""), Some("service=berth")).expect("url");
        assert_eq!(url.as_str(), "http://t/token?service=berth");
        let url = upstream_url(&upstream("http://t/token", ""), None).expect("url");
        assert_eq!(url.as_str(), "http://t/token");
    }

    #[test]
    fn form_bodies_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
        );
        assert!(is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_form(&h));
    }
}

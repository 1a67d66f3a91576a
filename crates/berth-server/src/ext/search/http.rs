//! The search extension's HTTP side: the GraphQL endpoint as zot's clients
//! call it, management, user preferences and the extension list.

use std::collections::HashSet;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use berth_oci::{ErrorCode, RepoName};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::answers::Answers;
use super::{QueryData, Search};
use crate::api::authz::Caller;
use crate::api::error::ApiError;
use crate::api::manifests::read_limited;
use crate::api::params::Params;
use crate::config::{Action, Config};
use crate::meta::UserList;
use crate::registry::RegistryError;

/// The largest query document accepted in a `POST` body.
const MAX_BODY: usize = 1 << 20;
/// Where zot documents its extension endpoints (the API Berth implements).
const ZOT_EXTENSION_DOC: &str =
    "https://github.com/project-zot/zot/blob/main/pkg/extensions/_zot.md";

type ApiResult = Result<Response, ApiError>;

/// A GraphQL request as a `POST` body carries it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphqlBody {
    pub(crate) query: String,
    #[serde(default)]
    pub(crate) variables: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) operation_name: Option<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    json_bytes(status, Bytes::from(body.to_string()))
}

/// The request's GraphQL document: `?query=` on `GET` (zot's CLI also
/// sends the query as a body, which is ignored), a JSON body on `POST`
/// (or the bare document with `Content-Type: application/graphql`).
async fn graphql_request(
    method: &Method,
    q: &Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<GraphqlBody, ApiError> {
    let parsed = if *method == Method::POST {
        let bytes = read_limited(headers, body, MAX_BODY).await?;
        let bare = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/graphql"));
        if bare {
            GraphqlBody {
                query: String::from_utf8(bytes)
                    .map_err(|_| bad_request("the query is not UTF-8"))?,
                variables: None,
                operation_name: None,
            }
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| bad_request(format!("the body is no GraphQL request: {e}")))?
        }
    } else {
        let query = q
            .get("query")
            .ok_or_else(|| bad_request("missing the query parameter"))?;
        let variables = match q.get("variables") {
            Some(v) => Some(
                serde_json::from_str(v)
                    .map_err(|e| bad_request(format!("variables: not JSON: {e}")))?,
            ),
            None => None,
        };
        GraphqlBody {
            query: query.to_string(),
            variables,
            operation_name: q.get("operationName").map(str::to_string),
        }
    };
    Ok(GraphqlBody {
        variables: parsed.variables.filter(|v| !v.is_null()),
        ..parsed
    })
}

impl GraphqlBody {
    fn into_request(self) -> async_graphql::Request {
        let mut req = async_graphql::Request::new(self.query);
        if let Some(v) = self.variables {
            req = req.variables(async_graphql::Variables::from_json(v));
        }
        if let Some(op) = self.operation_name {
            req = req.operation_name(op);
        }
        req
    }
}

/// `GET|POST /v2/_zot/ext/search`. Answers 200 with the GraphQL response
/// (errors of a query's fields included), or 422 when the document does
/// not parse or validate, as zot (gqlgen) does.
pub(crate) async fn graphql(
    search: &Search,
    caller: &Caller,
    method: &Method,
    q: &Params,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let doc = graphql_request(method, q, headers, body).await?;
    let (status, answer) = execute(search, caller, doc).await?;
    Ok(json_bytes(status, answer))
}

/// Runs one GraphQL request for `caller`: the one path every client's
/// query takes (the HTTP route and the web UI's pages), so each sees
/// only what it may read, from the same kept answers.
pub(crate) async fn execute(
    search: &Search,
    caller: &Caller,
    doc: GraphqlBody,
) -> Result<(StatusCode, Bytes), ApiError> {
    let snapshot = search.index.snapshot().await.map_err(RegistryError::from)?;
    // Quotas shown are those in force: a reload gives new answers.
    let policies = search.registry.policies();
    let key = snapshot.generation().and_then(|g| {
        Answers::key(
            g,
            caller,
            &doc.query,
            doc.variables.as_ref(),
            doc.operation_name.as_deref(),
        )
        .map(|k| format!("{}:{k}", policies.revision()))
    });
    if let Some(answer) = key.as_deref().and_then(|k| search.answers.get(k)) {
        return Ok((StatusCode::OK, answer));
    }
    let user = user_of(caller);
    let (starred, bookmarked) = match &user {
        Some(u) => (
            list(search, u, UserList::Starred).await?,
            list(search, u, UserList::Bookmarked).await?,
        ),
        None => Default::default(),
    };
    let data = QueryData {
        snapshot,
        caller: caller.clone(),
        meta: search.meta.clone(),
        starred,
        bookmarked,
        cve: search.cve.get().cloned(),
        policies,
    };
    let resp = search.schema.execute(doc.into_request().data(data)).await;
    // A document that does not parse or validate has errors without a
    // path and no data; a field's error has a path.
    let rejected = resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| e.path.is_empty());
    let status = if rejected {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let answer = serde_json::to_vec(&resp)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("encoding the answer failed: {e}")))?;
    // Only complete answers are kept (an error may be passing: the store
    // unreachable for a moment).
    if let Some(k) = key.filter(|_| resp.errors.is_empty()) {
        search.answers.put(k, answer.clone());
    }
    Ok((status, answer))
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn list(search: &Search, user: &str, which: UserList) -> Result<HashSet<String>, ApiError> {
    let repos = search
        .meta
        .user_repos(user, which)
        .await
        .map_err(RegistryError::from)?;
    Ok(repos.into_iter().collect())
}

/// The name stars and bookmarks are kept under: a user's, or a token's
/// subject; none for anonymous callers.
fn user_of(caller: &Caller) -> Option<String> {
    Some(caller.identity.name().to_string()).filter(|n| !n.is_empty())
}

/// `PUT /v2/_zot/ext/userprefs?action=toggleStar|toggleBookmark&repo=R`,
/// for a caller who logged in and may read the repository.
pub(crate) async fn userprefs(search: &Search, caller: &Caller, q: &Params) -> ApiResult {
    let user = user_of(caller).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "log in to keep stars and bookmarks",
        )
    })?;
    let which = match q.get("action") {
        Some("toggleStar") => UserList::Starred,
        Some("toggleBookmark") => UserList::Bookmarked,
        Some(other) => {
            return Err(bad_request(format!(
                "action {other:?}: expected toggleStar or toggleBookmark"
            )));
        }
        None => return Err(bad_request("missing the action parameter")),
    };
    let repo: RepoName = q
        .get("repo")
        .ok_or_else(|| bad_request("missing the repo parameter"))?
        .parse()
        .map_err(|e: berth_oci::ParseError| ApiError::new(ErrorCode::NameInvalid, e.to_string()))?;
    if !caller.may(&repo, Action::Read) {
        return Err(ApiError::new(
            ErrorCode::Denied,
            "requested access to the resource is denied",
        ));
    }
    let known = search
        .meta
        .version(&repo)
        .await
        .map_err(RegistryError::from)?
        .is_some();
    if !known {
        return Err(ApiError::new(
            ErrorCode::NameUnknown,
            format!("repository {repo} is not known"),
        ));
    }
    search
        .meta
        .toggle_user_repo(&user, which, &repo)
        .await
        .map_err(RegistryError::from)?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /v2/_zot/ext/mgmt?resource=config`: what zot's web UI reads to
/// know how to log in. `anonymous`: whether some repository is open to
/// anonymous callers.
pub(crate) fn mgmt(search: &Search, q: &Params, anonymous: bool) -> ApiResult {
    match q.get("resource") {
        None | Some("config") => {}
        Some(other) => return Err(bad_request(format!("resource {other:?}: expected config"))),
    }
    let mut body = search.mgmt_config.clone();
    body["http"]["accessControl"] = json!({ "anonymousPolicy": anonymous });
    let mut resp = json_response(StatusCode::OK, &body);
    resp.headers_mut().insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// The management answer of `config`, without secrets: which ways of
/// logging in are on, in zot's shape.
pub(crate) fn mgmt_config(config: &Config) -> serde_json::Value {
    let mut auth = serde_json::Map::new();
    if let Some(a) = &config.http.auth {
        // zot shows a password login as `htpasswd`, whichever backs it,
        // and never where the directory is (this answer is public).
        if a.htpasswd.is_some() || a.ldap.is_some() {
            auth.insert("htpasswd".into(), json!({}));
        }
        if let Some(b) = a.bearer.as_ref().filter(|b| b.realm.is_some()) {
            auth.insert(
                "bearer".into(),
                json!({ "realm": b.realm, "service": b.service }),
            );
        }
        // zot lists each OpenID provider by key with its button's name.
        let providers: serde_json::Map<String, serde_json::Value> = a
            .openid
            .iter()
            .flat_map(|o| o.providers.iter())
            .filter(|_| cfg!(feature = "openid"))
            .map(|(key, p)| {
                let named = p.name.as_ref().map(|n| json!({ "name": n }));
                (key.clone(), named.unwrap_or_else(|| json!({})))
            })
            .collect();
        if !providers.is_empty() {
            auth.insert("openid".into(), json!({ "providers": providers }));
        }
        // API keys are on whenever OpenID is.
        if a.apikey || !providers.is_empty() {
            auth.insert("apikey".into(), json!(true));
        }
    }
    let mut http = serde_json::Map::new();
    if !auth.is_empty() {
        http.insert("auth".into(), serde_json::Value::Object(auth));
    }
    json!({
        "distSpecVersion": config.dist_spec_version,
        "binaryType": binary_type(config),
        "commit": crate::COMMIT.unwrap_or(""),
        "releaseTag": concat!("v", env!("CARGO_PKG_VERSION")),
        "http": http,
    })
}

/// zot's `binaryType`: the extensions on, each after a dash.
fn binary_type(config: &Config) -> String {
    let e = &config.extensions;
    let on = [
        ("search", e.search_enabled()),
        ("ui", e.ui_enabled()),
        ("mgmt", e.mgmt_enabled()),
        ("userprefs", e.userprefs_enabled()),
        ("metrics", e.metrics_path().is_some()),
        ("scrub", e.scrub_interval().is_some()),
        ("events", e.events.as_ref().is_some_and(|x| x.enable)),
    ];
    on.iter()
        .filter(|(_, yes)| *yes)
        .map(|(name, _)| format!("-{name}"))
        .collect()
}

/// `GET /v2/_oci/ext/discover`: the extensions this server has, in the
/// distribution spec's extension list format.
pub(crate) fn discover(search: Option<&Search>) -> Response {
    let mut endpoints = Vec::new();
    if let Some(s) = search {
        endpoints.push("/v2/_zot/ext/search");
        if s.userprefs {
            endpoints.push("/v2/_zot/ext/userprefs");
        }
        if s.mgmt {
            endpoints.push("/v2/_zot/ext/mgmt");
        }
    }
    let extensions = if endpoints.is_empty() {
        json!([])
    } else {
        json!([{
            "name": "_zot",
            "url": ZOT_EXTENSION_DOC,
            "description": "zot registry extensions",
            "endpoints": endpoints,
        }])
    };
    json_response(StatusCode::OK, &json!({ "extensions": extensions }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_names_the_logins_but_not_where_the_directory_is() {
        let config = Config::from_value(json!({
            "storage": {"rootDirectory": "/srv"},
            "http": {"auth": {"ldap": {"address": "ldap.internal", "port": 389,
                "baseDN": "ou=people,dc=example", "userAttribute": "uid"}}},
            "extensions": {"search": {}},
        }))
        .expect("config");
        let body = mgmt_config(&config);
        assert_eq!(body["http"]["auth"], json!({"htpasswd": {}}), "{body}");
        assert!(!body.to_string().contains("ldap.internal"), "{body}");
        assert_eq!(body["binaryType"], "-search-mgmt");
    }
}

//! The Docker token flow
//! (<https://distribution.github.io/distribution/spec/auth/token/>):
//! `WWW-Authenticate` challenges, the scope a request needs, the token
//! endpoint, and the cache of tokens per scope.
//!
//! A request goes out with a cached token for its scope if there is one,
//! else with the Basic credentials (if any). A `401` with a `Bearer`
//! challenge sends `GET realm?service=…&scope=…` (with the Basic
//! credentials, or anonymously), caches the token until shortly before it
//! expires, and the request is sent once more (see `request.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};

use crate::{Client, ClientError, ClientResult};

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scheme, lower-case (`bearer`, `basic`).
    pub(crate) scheme: String,
    /// The parameters, names lower-case, values unquoted.
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lower-case).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 9110
/// §11.6.1): `Basic realm="x", Bearer realm="y",service="z"` is two.
/// Quoted values may hold commas and `\`-escapes; a token68 (`Negotiate
/// abc==`) is kept as a parameter with an empty name.
pub(crate) fn parse_challenges(value: &str) -> Vec<Challenge> {
    let s = value.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < s.len() && set.contains(&s[*i]) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && !b" \t,=\"".contains(&s[*i]) {
            *i += 1;
        }
        value[start..*i].to_string()
    };
    loop {
        skip(&mut i, b" \t,");
        if i >= s.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            // A stray character (a quote or `=` out of place): skip it.
            i += 1;
            continue;
        }
        let mut j = i;
        skip(&mut j, b" \t");
        let is_param = j < s.len() && s[j] == b'=' && !out.is_empty();
        let after_scheme = out.last().is_some_and(|c| c.params.is_empty());
        if is_param && !(after_scheme && token68_follows(s, j)) {
            i = j + 1;
            skip(&mut i, b" \t");
            let v = if i < s.len() && s[i] == b'"' {
                quoted(value, &mut i)
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.push((word.to_ascii_lowercase(), v));
            }
        } else if is_param {
            // `Scheme abc==`: a token68 whose padding looked like `=`.
            i = j;
            while i < s.len() && s[i] == b'=' {
                i += 1;
            }
            let t68 = format!("{word}{}", &value[j..i]);
            if let Some(c) = out.last_mut() {
                c.params.push((String::new(), t68.trim().to_string()));
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

/// Whether the `=` at `s[j]` is token68 padding (only `=` up to the end
/// or the next comma) rather than a parameter's.
fn token68_follows(s: &[u8], j: usize) -> bool {
    let mut k = j;
    while k < s.len() && s[k] == b'=' {
        k += 1;
    }
    while k < s.len() && b" \t".contains(&s[k]) {
        k += 1;
    }
    k >= s.len() || s[k] == b','
}

/// A quoted string starting at `value[*i] == '"'`, unescaped; `*i` ends
/// after the closing quote (or at the end, if there is none).
fn quoted(value: &str, i: &mut usize) -> String {
    let mut out = String::new();
    let mut chars = value[*i + 1..].char_indices();
    let mut end = value.len();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => {
                end = *i + 1 + k + 1;
                break;
            }
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            c => out.push(c),
        }
    }
    *i = end;
    out
}

/// A `Bearer` challenge of an answer: its realm, service and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub(crate) realm: String,
    pub(crate) service: Option<String>,
    pub(crate) scope: Option<String>,
}

/// The first `Bearer` challenge with a realm among `headers`'
/// `WWW-Authenticate` values.
pub(crate) fn bearer_challenge(headers: &HeaderMap) -> Option<BearerChallenge> {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .find(|c| c.scheme == "bearer" && c.param("realm").is_some_and(|r| !r.is_empty()))
        .map(|c| BearerChallenge {
            realm: c.param("realm").unwrap_or_default().to_string(),
            service: c.param("service").map(str::to_string),
            scope: c.param("scope").map(str::to_string),
        })
}

/// The scope a request to `path` (a URL's path, query excluded) with
/// `method` needs, when the challenge names none:
/// `repository:<name>:pull` for reads, `repository:<name>:pull,push` for
/// writes, `registry:catalog:*` for the catalog; `None` for `/v2/`.
pub(crate) fn scope_for(path: &str, method: &Method) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some("registry:catalog:*".to_string());
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name_len = if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        n - 3
    } else if n >= 3
        && matches!(
            (segs[n - 2], segs[n - 1]),
            ("manifests" | "blobs" | "referrers", _) | ("tags", "list")
        )
    {
        n - 2
    } else {
        return None;
    };
    let name = segs[..name_len].join("/");
    let actions = if *method == Method::GET || *method == Method::HEAD {
        "pull"
    } else {
        "pull,push"
    };
    Some(format!("repository:{name}:{actions}"))
}

/// A token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    until: Instant,
}

/// Tokens per scope, shared by a client's clones.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// A std mutex: held only to look up or insert, never across an
    /// await.
    cache: Mutex<HashMap<String, Token>>,
    /// One lock per scope while its token is fetched, so that many
    /// requests meeting the same challenge at once fetch it only once.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Tokens {
    /// A live token for `key`; a pull may also use the scope's push token.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let live = |k: &str| {
            cache
                .get(k)
                .filter(|t| t.until > now)
                .map(|t| t.value.clone())
        };
        live(key).or_else(|| {
            key.strip_suffix(":pull")
                .and_then(|scope| live(&format!("{scope}:pull,push")))
        })
    }

    /// Forgets every token (the credentials they were got with changed).
    pub(crate) fn clear(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn put(&self, key: &str, value: String, expires_in: Duration) {
        // Stop using it a little before the registry would refuse it.
        let margin = (expires_in / 5).min(Duration::from_secs(30));
        let until = Instant::now() + expires_in.saturating_sub(margin);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, t| t.until > Instant::now());
        cache.insert(key.to_string(), Token { value, until });
    }

    fn fetch_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Drops `lock` (from [`Tokens::fetch_lock`]) and, if no other request
    /// holds it, its entry: one per scope would pile up over a long sync.
    fn forget_fetch_lock(&self, key: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        drop(lock);
        if locks.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(key);
        }
    }
}

/// How long a token without `expires_in` lives (the spec's minimum).
const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);

/// The longest a token is kept, whatever its `expires_in`.
const MAX_EXPIRY: Duration = Duration::from_secs(24 * 3600);

impl Client {
    /// Makes sure the cache holds a token for `key` other than `rejected`
    /// (the one the registry just refused), fetching one for `challenge`
    /// if no other request did meanwhile. `derived` is the scope the
    /// request needs, asked for when the challenge names none.
    pub(crate) async fn refresh_token(
        &self,
        challenge: &BearerChallenge,
        derived: Option<&str>,
        key: &str,
        rejected: Option<&str>,
    ) -> ClientResult<()> {
        let lock = self.tokens.fetch_lock(key);
        let fetching = lock.lock().await;
        let done = match self.tokens.get(key) {
            Some(token) if Some(token.as_str()) != rejected => Ok(()),
            _ => self
                .fetch_token(challenge, derived)
                .await
                .map(|(token, expires_in)| self.tokens.put(key, token, expires_in)),
        };
        drop(fetching);
        self.tokens.forget_fetch_lock(key, lock);
        done
    }

    /// Asks the challenge's realm for a token: its value and lifetime.
    async fn fetch_token(
        &self,
        challenge: &BearerChallenge,
        derived: Option<&str>,
    ) -> ClientResult<(String, Duration)> {
        let realm = &challenge.realm;
        let refused = |status: Option<StatusCode>, message: String| ClientError::Auth {
            realm: realm.clone(),
            status,
            message,
        };
        let mut url = self
            .base_url
            .join(realm)
            .map_err(|e| refused(None, format!("not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(refused(None, "not an HTTP(S) URL".to_string()));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                query.append_pair("service", service);
            }
            for scope in challenge
                .scope
                .as_deref()
                .or(derived)
                .into_iter()
                .flat_map(str::split_whitespace)
            {
                query.append_pair("scope", scope);
            }
        }
        let login = self.credentials();
        let answer = self
            .exchange(&Method::GET, &url, |r| match &login {
                Some((user, password)) => r.basic_auth(user, Some(password)),
                None => r,
            })
            .await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(refused(Some(status), format!("refused: {status}: {text}")));
        }
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| refused(Some(status), format!("an answer that is not JSON: {e}")))?;
        let token = ["token", "access_token"]
            .iter()
            .find_map(|k| json[k].as_str().filter(|t| !t.is_empty()))
            .ok_or_else(|| refused(Some(status), "an answer without a token".to_string()))?;
        let expires_in = json["expires_in"]
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
            .map_or(DEFAULT_EXPIRY, |d| d.min(MAX_EXPIRY));
        Ok((token.to_string(), expires_in))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn challenges() {
        let table: &[(&str, Vec<Challenge>)] = &[
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/alpine:pull"),
                    ],
                )],
            ),
            (
                r#"bearer Realm = "https://a/t" , scope="repository:x:pull,push""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://a/t"),
                        ("scope", "repository:x:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="Registry Realm", Bearer realm="https://a/t",service=reg"#,
                vec![
                    ch("basic", &[("realm", "Registry Realm")]),
                    ch("bearer", &[("realm", "https://a/t"), ("service", "reg")]),
                ],
            ),
            (
                r#"Bearer realm="a \"quoted\" realm, with a comma""#,
                vec![ch(
                    "bearer",
                    &[("realm", r#"a "quoted" realm, with a comma"#)],
                )],
            ),
            (
                "Negotiate abc==, Basic",
                vec![ch("negotiate", &[("", "abc==")]), ch("basic", &[])],
            ),
            ("", vec![]),
            (
                r#"Bearer realm="unterminated"#,
                vec![ch("bearer", &[("realm", "unterminated")])],
            ),
            ("=,\"", vec![]),
        ];
        for (value, want) in table {
            assert_eq!(&parse_challenges(value), want, "{value}");
        }
    }

    #[test]
    fn bearer_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append("www-authenticate", "Basic realm=\"x\"".parse().expect("v"));
        headers.append(
            "www-authenticate",
            "BEARER realm=\"https://a/t\",scope=\"s\""
                .parse()
                .expect("v"),
        );
        assert_eq!(
            bearer_challenge(&headers),
            Some(BearerChallenge {
                realm: "https://a/t".to_string(),
                service: None,
                scope: Some("s".to_string()),
            })
        );
        let mut basic = HeaderMap::new();
        basic.append("www-authenticate", "Basic realm=\"x\"".parse().expect("v"));
        assert_eq!(bearer_challenge(&basic), None);
    }

    #[test]
    fn scopes_from_paths() {
        let get = Method::GET;
        let put = Method::PUT;
        let table: &[(&str, &Method, Option<&str>)] = &[
            ("/v2/", &get, None),
            ("/v2/_catalog", &get, Some("registry:catalog:*")),
            (
                "/v2/a/b/manifests/latest",
                &get,
                Some("repository:a/b:pull"),
            ),
            (
                "/v2/a/manifests/latest",
                &put,
                Some("repository:a:pull,push"),
            ),
            (
                "/v2/a/blobs/sha256:00",
                &Method::HEAD,
                Some("repository:a:pull"),
            ),
            (
                "/v2/a/b/blobs/uploads/",
                &Method::POST,
                Some("repository:a/b:pull,push"),
            ),
            (
                "/v2/a/blobs/uploads/u-1",
                &Method::PATCH,
                Some("repository:a:pull,push"),
            ),
            (
                "/v2/blobs/blobs/sha256:00",
                &get,
                Some("repository:blobs:pull"),
            ),
            ("/v2/x/tags/list", &get, Some("repository:x:pull")),
            ("/v2/x/referrers/sha256:00", &get, Some("repository:x:pull")),
            ("/v2/x/tags/other", &get, None),
            ("/other", &get, None),
        ];
        for (path, method, want) in table {
            assert_eq!(scope_for(path, method).as_deref(), *want, "{method} {path}");
        }
    }

    #[test]
    fn tokens_expire_and_pulls_use_push_tokens() {
        let tokens = Tokens::default();
        tokens.put(
            "repository:a:pull,push",
            "t1".into(),
            Duration::from_secs(60),
        );
        assert_eq!(tokens.get("repository:a:pull").as_deref(), Some("t1"));
        assert_eq!(tokens.get("repository:b:pull"), None);
        tokens.put("repository:b:pull", "t2".into(), Duration::ZERO);
        assert_eq!(tokens.get("repository:b:pull"), None);
        let lock = tokens.fetch_lock("k");
        let other = tokens.fetch_lock("k");
        tokens.forget_fetch_lock("k", lock);
        assert_eq!(tokens.fetching.lock().expect("lock").len(), 1, "still held");
        tokens.forget_fetch_lock("k", other);
        assert!(tokens.fetching.lock().expect("lock").is_empty());
    }

    #[test]
    fn new_credentials_drop_the_tokens_got_with_the_old() {
        let client = Client::new("http://registry.test", Some("u:p")).expect("client");
        let clone = client.clone();
        client
            .tokens
            .put("repository:a:pull", "t".into(), Duration::from_secs(60));
        assert!(!clone.set_credentials("u", "p"), "the same login");
        assert_eq!(client.tokens.get("repository:a:pull").as_deref(), Some("t"));
        assert!(clone.set_credentials("u", "p2"));
        assert_eq!(client.credentials(), Some(("u".into(), "p2".into())));
        assert_eq!(client.tokens.get("repository:a:pull"), None);
    }
}

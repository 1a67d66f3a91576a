//! Access-control `conditions`: CEL expressions over the request, as zot
//! defines them. A policy entry (or `adminPolicy`) that names the caller
//! and the action grants it only when every one of its conditions is true.
//!
//! The one variable is `req`, a map:
//!
//! | field | value |
//! |---|---|
//! | `req.time` | now, a UTC timestamp |
//! | `req.method` | the HTTP method |
//! | `req.userAgent` | the `User-Agent` header (`""` without one) |
//! | `req.action` | `read`, `create`, `update` or `delete` |
//! | `req.repository` | the repository |
//! | `req.reference`, `req.referenceType` | the manifest reference and `"tag"` or `"digest"` (`""` on other routes) |
//! | `req.tag`, `req.digest` | whichever the reference is (the other `""`) |
//! | `req.user.username`, `req.user.groups` | the caller (`""` and `[]` anonymous) |
//! | `req.auth.anonymous`, `req.auth.admin` | whether the caller has no name; is an admin |
//! | `req.client.ip` | the peer's address |
//! | `req.client.forwardedFor` | every `X-Forwarded-For` entry, left to right (the client's word: untrusted) |
//! | `req.tls.enabled`, `req.tls.version` | TLS, and `"1.2"` or `"1.3"` (`""` without) |
//! | `req.claims` | an identity token's claims, when the login came with one (else `{}`) |
//!
//! Expressions are compiled when the config is loaded (a bad one is
//! refused, naming its key) with the standard library and the `strings`,
//! `lists`, `math` and `encoders` extensions of the `cel` crate (zot's
//! cel-go has `sets` too; this one has none). An expression whose value is
//! not a boolean, or that fails (a missing claim), does not grant: it is
//! logged and the entry is skipped, as in zot.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use berth_oci::Reference;
use cel::{Context, Env, Program, Value};

use crate::config::{Action, ConditionConfig};

/// The environment every condition is compiled and run in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Each extension declares functions of its own: adding one to the
    // standard library cannot clash, so a failure here is a bug in the
    // crate, and the function is then merely missing.
    for extension in [
        cel::extensions::strings,
        cel::extensions::lists,
        cel::extensions::math,
        cel::extensions::encoders,
    ] {
        if let Err(e) = env.add_extension(extension) {
            tracing::error!("a CEL extension could not be added: {e}");
        }
    }
    Arc::new(env)
});

/// The CEL environment, shared with the claim mappings of workload
/// identity tokens (`auth::oidc`).
pub(crate) fn env() -> Arc<Env> {
    ENV.clone()
}

/// Compiles a condition's expression: the parse error, if any, as text.
pub fn compile(expression: &str) -> Result<Program, String> {
    ENV.compile(expression).map_err(|e| e.to_string())
}

/// A compiled condition with the message a refusal carries.
#[derive(Debug)]
pub struct Condition {
    program: Program,
    expression: String,
    message: String,
}

impl Condition {
    /// Compiles `config`; `None` if it does not compile (the config check
    /// refuses such a config before this runs).
    pub fn new(config: &ConditionConfig) -> Option<Self> {
        match compile(&config.expression) {
            Ok(program) => Some(Self {
                program,
                expression: config.expression.clone(),
                message: config.message.clone(),
            }),
            Err(e) => {
                tracing::error!(expression = %config.expression, "a condition does not compile: {e}");
                None
            }
        }
    }
}

/// What a request is, beside its caller and repository: read from the
/// HTTP request once, for the conditions.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub method: String,
    pub user_agent: String,
    pub client_ip: String,
    pub forwarded_for: Vec<String>,
    /// The negotiated TLS version (`"1.2"`, `"1.3"`), `None` over plain HTTP.
    pub tls_version: Option<String>,
    /// The login's identity-token claims (a JSON object), if any.
    pub claims: Option<Arc<serde_json::Value>>,
}

impl RequestFacts {
    /// The facts of a request with these headers, from `peer`, over `tls`.
    pub fn from_request(
        method: &http::Method,
        headers: &http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        tls_version: Option<String>,
    ) -> Self {
        let text = |name: http::HeaderName| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
        };
        Self {
            method: method.as_str().to_string(),
            user_agent: text(http::header::USER_AGENT)
                .first()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            client_ip: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            forwarded_for: text(http::HeaderName::from_static("x-forwarded-for"))
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            tls_version,
            claims: None,
        }
    }
}

/// Who asks what of which repository: the rest of `req`.
pub struct Asked<'a> {
    pub facts: &'a RequestFacts,
    pub repo: &'a str,
    pub action: Action,
    pub reference: Option<&'a Reference>,
    pub user: &'a str,
    pub groups: Vec<&'a str>,
    pub admin: bool,
}

impl Asked<'_> {
    /// `req`, as CEL sees it.
    fn value(&self) -> Value {
        let (reference, kind, tag, digest) = match self.reference {
            Some(Reference::Tag(t)) => (t.to_string(), "tag", t.to_string(), String::new()),
            Some(Reference::Digest(d)) => (d.to_string(), "digest", String::new(), d.to_string()),
            None => Default::default(),
        };
        let map = |pairs: Vec<(&str, Value)>| -> Value {
            Value::from(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<HashMap<String, Value>>(),
            )
        };
        let strings =
            |list: &[&str]| Value::from(list.iter().map(|s| Value::from(*s)).collect::<Vec<_>>());
        let facts = self.facts;
        let claims = facts
            .claims
            .as_deref()
            .and_then(|c| cel::to_value(c).ok())
            .unwrap_or_else(|| map(Vec::new()));
        let forwarded: Vec<&str> = facts.forwarded_for.iter().map(String::as_str).collect();
        map(vec![
            ("time", Value::Timestamp(chrono::Utc::now().fixed_offset())),
            ("method", Value::from(facts.method.as_str())),
            ("userAgent", Value::from(facts.user_agent.as_str())),
            ("action", Value::from(action_name(self.action))),
            ("repository", Value::from(self.repo)),
            ("reference", Value::from(reference)),
            ("referenceType", Value::from(kind)),
            ("tag", Value::from(tag)),
            ("digest", Value::from(digest)),
            (
                "user",
                map(vec![
                    ("username", Value::from(self.user)),
                    ("groups", strings(&self.groups)),
                ]),
            ),
            (
                "auth",
                map(vec![
                    ("anonymous", Value::Bool(self.user.is_empty())),
                    ("admin", Value::Bool(self.admin)),
                ]),
            ),
            (
                "client",
                map(vec![
                    ("ip", Value::from(facts.client_ip.as_str())),
                    ("forwardedFor", strings(&forwarded)),
                ]),
            ),
            (
                "tls",
                map(vec![
                    ("enabled", Value::Bool(facts.tls_version.is_some())),
                    (
                        "version",
                        Value::from(facts.tls_version.clone().unwrap_or_default()),
                    ),
                ]),
            ),
            ("claims", claims),
        ])
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::DetectManifestCollision => "detectManifestCollision",
    }
}

/// Why conditions did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// One was false: its message (may be empty).
    False(String),
    /// One failed or was not a boolean (logged; no message for the caller).
    Failed,
}

/// Whether all of `conditions` hold for `asked` (the first that does not
/// says why).
pub fn check(conditions: &[Condition], asked: &Asked<'_>) -> Result<(), Unmet> {
    if conditions.is_empty() {
        return Ok(());
    }
    let mut context = Context::with_env(Arc::clone(&ENV));
    context.add_variable_from_value("req", asked.value());
    for c in conditions {
        match c.program.execute(&context) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                tracing::debug!(expression = %c.expression, repo = asked.repo, "condition false");
                return Err(Unmet::False(c.message.clone()));
            }
            Ok(other) => {
                tracing::warn!(expression = %c.expression, "condition gave {other:?}, not a boolean: not granted");
                return Err(Unmet::Failed);
            }
            Err(e) => {
                tracing::warn!(expression = %c.expression, "condition failed: {e}: not granted");
                return Err(Unmet::Failed);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(expression: &str, message: &str) -> Condition {
        Condition::new(&ConditionConfig {
            expression: expression.into(),
            message: message.into(),
        })
        .expect("compiles")
    }

    fn asked<'a>(facts: &'a RequestFacts, reference: Option<&'a Reference>) -> Asked<'a> {
        Asked {
            facts,
            repo: "team/app",
            action: Action::Create,
            reference,
            user: "ana",
            groups: vec!["devs"],
            admin: false,
        }
    }

    #[test]
    fn every_field_of_req() {
        let facts = RequestFacts {
            method: "PUT".into(),
            user_agent: "skopeo/1.0".into(),
            client_ip: "10.0.0.7".into(),
            forwarded_for: vec!["1.2.3.4".into(), "5.6.7.8".into()],
            tls_version: Some("1.3".into()),
            claims: Some(Arc::new(serde_json::json!({"sub": "ci", "env": ["prod"]}))),
        };
        let tag: Reference = "v1".parse().expect("tag");
        let a = asked(&facts, Some(&tag));
        for expr in [
            "req.method == 'PUT'",
            "req.userAgent.startsWith('skopeo/')",
            "req.action == 'create'",
            "req.repository.startsWith('team/')",
            "req.reference == 'v1' && req.referenceType == 'tag' && req.tag == 'v1' && req.digest == ''",
            "req.user.username == 'ana' && 'devs' in req.user.groups",
            "!req.auth.anonymous && !req.auth.admin",
            "req.client.ip == '10.0.0.7' && req.client.forwardedFor == ['1.2.3.4', '5.6.7.8']",
            "req.tls.enabled && req.tls.version == '1.3'",
            "req.claims.sub == 'ci' && 'prod' in req.claims.env",
            "req.time > timestamp('2020-01-01T00:00:00Z')",
            "req.repository.split('/')[0] == 'team'",
        ] {
            assert_eq!(check(&[cond(expr, "m")], &a), Ok(()), "{expr}");
        }
        let digest: Reference = format!("sha256:{}", "a".repeat(64))
            .parse()
            .expect("digest");
        let a = asked(&facts, Some(&digest));
        assert_eq!(
            check(
                &[cond("req.referenceType == 'digest' && req.tag == ''", "")],
                &a
            ),
            Ok(())
        );
    }

    #[test]
    fn all_must_hold_and_the_first_false_says_why() {
        let facts = RequestFacts::default();
        let a = asked(&facts, None);
        let conditions = [
            cond("true", "never"),
            cond("req.tls.enabled", "TLS only"),
            cond("false", "not reached"),
        ];
        assert_eq!(check(&conditions, &a), Err(Unmet::False("TLS only".into())));
        // No claims: a missing key fails (no grant), as does a non-boolean.
        assert_eq!(
            check(&[cond("req.claims.sub == 'x'", "m")], &a),
            Err(Unmet::Failed)
        );
        assert_eq!(
            check(&[cond("req.repository", "m")], &a),
            Err(Unmet::Failed)
        );
        assert_eq!(check(&[], &a), Ok(()));
    }

    #[test]
    fn a_bad_expression_does_not_compile() {
        assert!(compile("req.method ==").is_err());
        assert!(compile("req.method == 'GET'").is_ok());
    }

    #[test]
    fn facts_from_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::USER_AGENT, "podman/5".parse().expect("value"));
        headers.append(
            "x-forwarded-for",
            "1.1.1.1, 2.2.2.2".parse().expect("value"),
        );
        headers.append("x-forwarded-for", " ,3.3.3.3".parse().expect("value"));
        let facts = RequestFacts::from_request(
            &http::Method::GET,
            &headers,
            Some("127.0.0.1:5000".parse().expect("addr")),
            None,
        );
        assert_eq!(facts.user_agent, "podman/5");
        assert_eq!(facts.client_ip, "127.0.0.1");
        assert_eq!(facts.forwarded_for, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
    }
}

//! `claimMapping`: who a verified workload identity token names, computed
//! by CEL expressions over its claims (the `cel` crate).
//!
//! Expressions see `claims` (the token's payload) and `vars` (the
//! variables computed so far). Variables are computed in order, then every
//! validation must be true, then `username` must give a non-empty string
//! and `groups`, when set, a list of strings. Everything is compiled when
//! the config is loaded (a name that is neither `claims`, `vars` nor a
//! macro's variable is found only when a token is checked: cel-rust does
//! not type-check, and the token is then refused).

use std::collections::HashMap;
use std::sync::Arc;

use cel::{Context, Env, Program, Value};

use crate::auth::TokenError;
use crate::config::ClaimMappingConfig;

/// zot's default user name: the issuer and the subject.
const DEFAULT_USERNAME: &str = "claims.iss + '/' + claims.sub";

/// A compiled `claimMapping`.
pub struct ClaimMapping {
    /// CEL's standard library and extensions (`split`, `lowerAscii`, …):
    /// the access-control conditions' environment.
    env: Arc<Env>,
    variables: Vec<(String, Program)>,
    validations: Vec<(Program, String)>,
    username: Program,
    groups: Option<Program>,
}

/// An expression that does not compile: the key under `claimMapping` and
/// why.
#[derive(Debug)]
pub struct CompileError {
    pub key: String,
    pub message: String,
}

/// The user a token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedUser {
    pub name: String,
    pub groups: Vec<String>,
    /// The token's claims, for access-control conditions.
    pub claims: Arc<serde_json::Value>,
}

fn compile(env: &Env, key: String, source: &str) -> Result<Program, CompileError> {
    env.compile(source).map_err(|e| CompileError {
        key,
        // One line, as every config error.
        message: format!(
            "invalid CEL expression: {}",
            e.to_string().replace('\n', " ")
        ),
    })
}

impl ClaimMapping {
    /// Compiles every expression; the error names the key under
    /// `claimMapping`, e.g. `variables[1].expression`.
    pub fn compile(config: &ClaimMappingConfig) -> Result<Self, CompileError> {
        let env = crate::auth::conditions::env();
        let mut variables = Vec::with_capacity(config.variables.len());
        for (i, v) in config.variables.iter().enumerate() {
            let valid = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !v.name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(CompileError {
                    key: format!("variables[{i}].name"),
                    message: "must be an identifier (letters, digits, _)".into(),
                });
            }
            if variables.iter().any(|(n, _)| n == &v.name) {
                return Err(CompileError {
                    key: format!("variables[{i}].name"),
                    message: format!("`{}` is defined twice", v.name),
                });
            }
            let program = compile(&env, format!("variables[{i}].expression"), &v.expression)?;
            variables.push((v.name.clone(), program));
        }
        let validations = config
            .validations
            .iter()
            .enumerate()
            .map(|(i, v)| {
                compile(&env, format!("validations[{i}].expression"), &v.expression)
                    .map(|p| (p, v.message.clone()))
            })
            .collect::<Result<_, _>>()?;
        let username = compile(
            &env,
            "username".into(),
            config.username.as_deref().unwrap_or(DEFAULT_USERNAME),
        )?;
        let groups = match &config.groups {
            Some(g) => Some(compile(&env, "groups".into(), g)?),
            None => None,
        };
        Ok(Self {
            env,
            variables,
            validations,
            username,
            groups,
        })
    }

    /// The user of a verified token's `claims`; a refusal says why (for
    /// the log: a client is only told 401).
    pub fn apply(&self, claims: serde_json::Value) -> Result<MappedUser, TokenError> {
        let mut ctx = Context::with_env(self.env.clone());
        ctx.add_variable("claims", &claims)
            .map_err(|e| TokenError::invalid(format!("claims: {e}")))?;
        let mut vars: HashMap<String, Value> = HashMap::new();
        for (name, program) in &self.variables {
            ctx.add_variable_from_value("vars", vars.clone());
            let value = program
                .execute(&ctx)
                .map_err(|e| TokenError::invalid(format!("claimMapping variable {name}: {e}")))?;
            vars.insert(name.clone(), value);
        }
        ctx.add_variable_from_value("vars", vars);
        for (program, message) in &self.validations {
            match program.execute(&ctx) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    return Err(TokenError::invalid(format!(
                        "claimMapping validation failed: {message}"
                    )));
                }
                Ok(other) => {
                    return Err(TokenError::invalid(format!(
                        "claimMapping validation gave {other:?}, not a bool"
                    )));
                }
                Err(e) => {
                    return Err(TokenError::invalid(format!("claimMapping validation: {e}")));
                }
            }
        }
        let name = match self.username.execute(&ctx) {
            Ok(Value::String(s)) if !s.is_empty() => s.as_str().to_string(),
            Ok(other) => {
                return Err(TokenError::invalid(format!(
                    "claimMapping username gave {other:?}, not a non-empty string"
                )));
            }
            Err(e) => return Err(TokenError::invalid(format!("claimMapping username: {e}"))),
        };
        let groups = match &self.groups {
            None => Vec::new(),
            Some(program) => match program.execute(&ctx) {
                Ok(Value::List(items)) => strings(&items)?,
                Ok(other) => {
                    return Err(TokenError::invalid(format!(
                        "claimMapping groups gave {other:?}, not a list of strings"
                    )));
                }
                Err(e) => return Err(TokenError::invalid(format!("claimMapping groups: {e}"))),
            },
        };
        Ok(MappedUser {
            name,
            groups,
            claims: Arc::new(claims),
        })
    }
}

fn strings(items: &Arc<Vec<Value>>) -> Result<Vec<String>, TokenError> {
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.as_str().to_string()),
            other => Err(TokenError::invalid(format!(
                "claimMapping groups holds {other:?}, not a string"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(config: serde_json::Value) -> Result<ClaimMapping, CompileError> {
        ClaimMapping::compile(&serde_json::from_value(config).expect("config"))
    }

    #[test]
    fn default_username_is_issuer_and_subject() {
        let m = mapping(json!({})).expect("compiles");
        let user = m
            .apply(json!({"iss": "https://i", "sub": "ci"}))
            .expect("maps");
        assert_eq!(user.name, "https://i/ci");
        assert!(user.groups.is_empty());
    }

    #[test]
    fn variables_validations_username_and_groups() {
        let m = mapping(json!({
            "variables": [
                {"name": "org", "expression": "claims.repository.split('/')[0]"},
                {"name": "who", "expression": "vars.org + ':' + claims.sub"},
            ],
            "validations": [
                {"expression": "claims.ref == 'refs/heads/main'", "message": "main only"},
            ],
            "username": "vars.who",
            "groups": "[vars.org, 'ci']",
        }));
        let m = m.expect("compiles");
        let claims = json!({"sub": "build", "owner": "acme", "repository": "acme/app", "ref": "refs/heads/main"});
        let user = m.apply(claims.clone()).expect("maps");
        assert_eq!(user.name, "acme:build");
        assert_eq!(user.groups, vec!["acme".to_string(), "ci".to_string()]);
        let mut other = claims.clone();
        other["ref"] = json!("refs/heads/dev");
        let err = m.apply(other).expect_err("validation false");
        assert!(err.to_string().contains("main only"), "{err}");
    }

    #[test]
    fn bad_expressions_name_their_key() {
        let cases = [
            (json!({"username": "claims.sub +"}), "username"),
            (json!({"groups": "claims.("}), "groups"),
            (
                json!({"validations": [{"expression": "true"}, {"expression": "1 +", "message": "m"}]}),
                "validations[1].expression",
            ),
            (
                json!({"variables": [{"name": "a-b", "expression": "1"}]}),
                "variables[0].name",
            ),
            (
                json!({"variables": [{"name": "a", "expression": "1"}, {"name": "a", "expression": "2"}]}),
                "variables[1].name",
            ),
        ];
        for (config, key) in cases {
            let err = mapping(config.clone()).err().expect("refused");
            assert_eq!(err.key, key, "{config}");
            assert!(!err.message.contains('\n'), "{}", err.message);
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        let claims = json!({"sub": "s", "iss": "i", "n": 3});
        for config in [
            json!({"username": "claims.n"}),
            json!({"username": "''"}),
            json!({"groups": "claims.sub"}),
            json!({"groups": "[claims.n]"}),
            json!({"validations": [{"expression": "claims.sub", "message": "m"}]}),
            json!({"username": "claims.missing"}),
            json!({"username": "user.name"}),
        ] {
            let m = mapping(config.clone()).expect("compiles");
            assert!(m.apply(claims.clone()).is_err(), "{config}");
        }
    }
}

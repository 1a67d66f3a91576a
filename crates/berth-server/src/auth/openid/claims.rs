//! The user and groups an OpenID login gives, from the claims of the ID
//! token (verified) and of the userinfo answer, by `claimMapping` (zot's
//! defaults: the user is `email`, the groups `groups`).

use serde_json::{Map, Value};

/// The payload of a JWS compact token, as JSON (its signature is checked
/// before this is called).
pub(super) fn jwt_payload(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The user name: the mapped claim as a string (userinfo's first, then the
/// ID token's); when a claim other than `email` is missing, `email`, as
/// zot falls back.
pub(super) fn username(claim: &str, claims: &[&Map<String, Value>]) -> Option<String> {
    let find = |name: &str| {
        claims
            .iter()
            .find_map(|c| c.get(name).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    find(claim).or_else(|| (claim != "email").then(|| find("email")).flatten())
}

/// The groups: the mapped claim, a list of strings or one string, from
/// every claim set, merged, sorted, without duplicates or empty names.
pub(super) fn groups(claim: &str, claims: &[&Map<String, Value>]) -> Vec<String> {
    let mut out: Vec<String> = claims
        .iter()
        .filter_map(|c| c.get(claim))
        .flat_map(|v| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        })
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn the_user_is_the_mapped_claim_or_else_the_email() {
        let info = map(json!({"preferred_username": "alice", "email": "a@x.io"}));
        let id = map(json!({"email": "other@x.io"}));
        assert_eq!(
            super::username("preferred_username", &[&info, &id]).as_deref(),
            Some("alice")
        );
        assert_eq!(
            super::username("email", &[&info, &id]).as_deref(),
            Some("a@x.io")
        );
        assert_eq!(
            super::username("nickname", &[&info]).as_deref(),
            Some("a@x.io")
        );
        let none = map(json!({"sub": "1"}));
        assert_eq!(super::username("email", &[&none]), None);
        let blank = map(json!({"email": "  "}));
        assert_eq!(super::username("email", &[&blank]), None);
    }

    #[test]
    fn groups_are_merged_from_lists_and_strings() {
        let a = map(json!({"groups": ["dev", "ops", "", 7]}));
        let b = map(json!({"groups": "dev"}));
        let c = map(json!({"roles": ["admin"]}));
        assert_eq!(super::groups("groups", &[&a, &b, &c]), vec!["dev", "ops"]);
        assert_eq!(super::groups("roles", &[&a, &c]), vec!["admin"]);
        assert!(super::groups("missing", &[&a]).is_empty());
    }

    #[test]
    fn a_payload_is_read_from_the_middle_part() {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        let m = super::jwt_payload(&format!("h.{body}.s")).expect("payload");
        assert_eq!(m.get("sub"), Some(&json!("x")));
        assert!(super::jwt_payload("nope").is_none());
    }
}

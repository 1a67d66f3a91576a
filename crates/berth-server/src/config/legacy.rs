//! zot 1.x's layouts, read as zot 2 reads their successors, so a config
//! from an older zot runs unchanged: `version` (now `distSpecVersion`),
//! and `http.accessControl` holding its repository rules at the top (now
//! under `repositories`). Applied to the parsed file before it is
//! deserialised; keys are matched in any case, as zot reads them.

use serde_json::{Map, Value};

/// The keys `http.accessControl` has beside its repository rules.
const ACCESS_KEYS: [&str; 4] = ["repositories", "adminPolicy", "groups", "metrics"];

fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Rewrites zot 1.x's layouts in `config` into zot 2's.
pub(super) fn upgrade(config: &mut Value) {
    let Some(top) = config.as_object_mut() else {
        return;
    };
    if let Some(old) = key_of(top, "version")
        && let Some(v) = top.remove(&old)
        && key_of(top, "distSpecVersion").is_none()
    {
        top.insert("distSpecVersion".into(), v);
    }
    let access = key_of(top, "http")
        .and_then(|h| top.get_mut(&h))
        .and_then(Value::as_object_mut)
        .and_then(|http| key_of(http, "accessControl").and_then(|a| http.get_mut(&a)))
        .and_then(Value::as_object_mut);
    let Some(access) = access else {
        return;
    };
    let globs: Vec<String> = access
        .keys()
        .filter(|k| !ACCESS_KEYS.iter().any(|a| k.eq_ignore_ascii_case(a)))
        .cloned()
        .collect();
    if globs.is_empty() {
        return;
    }
    let repos_key = key_of(access, "repositories").unwrap_or_else(|| "repositories".into());
    let mut moved = Map::new();
    for glob in globs {
        if let Some(rule) = access.remove(&glob) {
            moved.insert(glob, rule);
        }
    }
    match access.get_mut(&repos_key).and_then(Value::as_object_mut) {
        // Both layouts at once: the newer one's rule wins for a glob in both.
        Some(repos) => {
            for (glob, rule) in moved {
                repos.entry(glob).or_insert(rule);
            }
        }
        None => {
            access.insert(repos_key, Value::Object(moved));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zot_1_layouts_become_zot_2s() {
        let mut v = serde_json::json!({
            "version": "0.1.0-dev",
            "http": {"accessControl": {
                "**": {"policies": [{"users": ["a"], "actions": ["read"]}], "defaultPolicy": ["read"]},
                "adminPolicy": {"users": ["admin"], "actions": ["read"]}
            }}
        });
        upgrade(&mut v);
        assert_eq!(v["distSpecVersion"], "0.1.0-dev");
        assert!(v.get("version").is_none());
        let access = &v["http"]["accessControl"];
        assert_eq!(access["repositories"]["**"]["defaultPolicy"][0], "read");
        assert_eq!(access["adminPolicy"]["users"][0], "admin");
        assert!(access.get("**").is_none());

        // zot 2's layout is left as it is; a newer `distSpecVersion` wins.
        let mut v = serde_json::json!({"distSpecVersion": "1.1.1", "version": "0.1",
            "http": {"accessControl": {"repositories": {"x": {}}, "Metrics": {}}}});
        let before = v["http"].clone();
        upgrade(&mut v);
        assert_eq!(v["distSpecVersion"], "1.1.1");
        assert_eq!(v["http"], before);
    }
}

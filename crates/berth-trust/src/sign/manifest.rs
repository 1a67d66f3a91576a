//! JSON written with its fields in the order the Go tools write them
//! (struct order; map keys sorted), so the artifacts look like theirs.
//! serde_json's `Map` would sort every object's keys.

use std::collections::BTreeMap;

/// A JSON string literal.
pub(super) fn string(text: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// A JSON object of already-serialized values, in this order.
pub(super) fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{value}", string(name)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A JSON array of already-serialized values.
pub(super) fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// A JSON object of strings, keys sorted (as Go writes a map).
pub(super) fn string_map(map: &BTreeMap<String, String>) -> String {
    let fields: Vec<(&str, String)> = map
        .iter()
        .map(|(name, value)| (name.as_str(), string(value)))
        .collect();
    object(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_field_order_and_escapes() {
        let json = object(&[
            ("z", string("a\"b")),
            ("a", "2".to_owned()),
            ("m", array(&["1".to_owned(), string("x")])),
        ]);
        assert_eq!(json, r#"{"z":"a\"b","a":2,"m":[1,"x"]}"#);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(parsed["z"], "a\"b");
    }
}

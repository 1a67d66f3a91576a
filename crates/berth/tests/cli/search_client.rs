//! zot's clients as they send GraphQL to `/v2/_zot/ext/search`, and a
//! checker for the paths they read from the answer.

use std::fmt::Write;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::Berth;

/// The zot GraphQL documents zli and zui send (see `tests/zot/README.md`).
pub fn documents() -> Vec<Value> {
    let raw = include_str!("../../../../tests/zot/graphql-queries.json");
    let docs: Vec<Value> = serde_json::from_str(raw).expect("graphql-queries.json");
    assert_eq!(docs.len(), 30, "14 zli and 16 zui documents");
    docs
}

/// How a document reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// zli: `GET ?query=` escaped as Go's `url.QueryEscape` does, the same
    /// text again as the body, `Content-Type: application/json` and Basic
    /// credentials (empty ones, `Og==`, when it has none).
    Zli,
    /// zui (axios in a browser): `GET ?query=` with only what a browser
    /// escapes escaped, `Accept: application/json`.
    Zui,
    /// A `POST` of `{"query": …}` as JSON.
    Post,
}

/// An answer: its status and JSON body (null when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The `errors` messages (none when absent).
    pub fn errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["message"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A client of one server's search extension, as one user (or none).
pub struct Search {
    client: reqwest::blocking::Client,
    base: String,
    creds: Option<(String, String)>,
}

impl Search {
    pub fn new(b: &Berth, creds: Option<(&str, &str)>) -> Self {
        Self {
            client: reqwest::blocking::Client::new(),
            base: b.url(""),
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    fn basic(&self) -> String {
        let (u, p) = self
            .creds
            .clone()
            .unwrap_or_else(|| (String::new(), String::new()));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    /// Sends `query` the way `via` does.
    pub fn send(&self, via: Via, query: &str) -> Answer {
        let url = format!("{}/v2/_zot/ext/search", self.base);
        let req = match via {
            Via::Zli => self
                .client
                .get(format!("{url}?query={}", go_query_escape(query)))
                .header("Content-Type", "application/json")
                .header("Authorization", self.basic())
                .body(query.to_string()),
            Via::Zui => {
                let mut r = self
                    .client
                    .get(format!("{url}?query={}", browser_escape(query)))
                    .header("Accept", "application/json");
                if self.creds.is_some() {
                    r = r
                        .header("Authorization", self.basic())
                        .header("X-ZOT-API-CLIENT", "zot-ui");
                }
                r
            }
            Via::Post => {
                let mut r = self
                    .client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(json!({"query": query}).to_string());
                if self.creds.is_some() {
                    r = r.header("Authorization", self.basic());
                }
                r
            }
        };
        let resp = req.send().expect("search request");
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// POSTs `query`, requires a 200 without errors, and answers `data`.
    pub fn data(&self, query: &str) -> Value {
        let a = self.send(Via::Post, query);
        assert_eq!(a.status, 200, "{query}\n→ {}", a.text);
        assert!(a.errors().is_empty(), "{query}\n→ {}", a.text);
        a.body["data"].clone()
    }

    /// A `PUT /v2/_zot/ext/userprefs?…` as this user; answers the status.
    pub fn userprefs(&self, query: &str) -> u16 {
        let mut r = self
            .client
            .put(format!("{}/v2/_zot/ext/userprefs?{query}", self.base));
        if self.creds.is_some() {
            r = r.header("Authorization", self.basic());
        }
        r.send().expect("userprefs").status().as_u16()
    }
}

/// Go's `url.QueryEscape`: `[A-Za-z0-9_.~-]` as is, space as `+`, every
/// other byte as `%XX`.
pub fn go_query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => write!(out, "%{b:02X}").expect("write"),
        }
    }
    out
}

/// What a browser does to a URL's query as typed: space, `"`, `<`, `>`,
/// `#` and `'` escaped, braces, parentheses, colons and commas left raw.
pub fn browser_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            ' ' | '"' | '<' | '>' | '#' | '\'' | '\n' | '\t' => {
                write!(out, "%{:02X}", c as u32).expect("write")
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether a GraphQL `Time` (RFC 3339) is the instant `want`
/// (`YYYY-MM-DDTHH:MM:SS`, UTC).
pub fn same_instant(got: &Value, want: &str) -> bool {
    let Some(got) = got.as_str() else {
        return false;
    };
    if got.len() < 19 || &got[..19] != want {
        return false;
    }
    let mut rest = &got[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if !frac[..digits].bytes().all(|b| b == b'0') {
            return false;
        }
        rest = &frac[digits..];
    }
    matches!(rest, "Z" | "+00:00" | "-00:00")
}

/// One step of an `expect` path: a key, then `?` (may be null or absent),
/// `[]` or `[+]` (a list, or a non-empty one, whose every element the rest
/// of the path applies to) and `!` (not null). A key with no mark must be
/// present; a null there ends the path.
struct Step<'a> {
    key: &'a str,
    optional: bool,
    list: Option<bool>,
    non_null: bool,
}

fn parse_step(s: &str) -> Step<'_> {
    let mut rest = s;
    let non_null = rest.ends_with('!');
    rest = rest.trim_end_matches('!');
    let list = if let Some(r) = rest.strip_suffix("[+]") {
        rest = r;
        Some(true)
    } else if let Some(r) = rest.strip_suffix("[]") {
        rest = r;
        Some(false)
    } else {
        None
    };
    let optional = rest.ends_with('?');
    Step {
        key: rest.trim_end_matches('?'),
        optional,
        list,
        non_null,
    }
}

/// Checks each of `paths` in `body`; answers what failed.
pub fn check_paths(body: &Value, paths: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    for path in paths {
        let steps: Vec<Step> = path.split('.').map(parse_step).collect();
        walk(body, &steps, String::new(), path, &mut failures);
    }
    failures
}

fn walk(v: &Value, steps: &[Step], at: String, path: &str, failures: &mut Vec<String>) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    let here = if at.is_empty() {
        step.key.to_string()
    } else {
        format!("{at}.{}", step.key)
    };
    let Some(obj) = v.as_object() else {
        failures.push(format!("{path}: {at} is not an object: {v}"));
        return;
    };
    let child = obj.get(step.key);
    match child {
        None | Some(Value::Null) if step.optional => return,
        None => {
            failures.push(format!("{path}: {here} is missing"));
            return;
        }
        Some(Value::Null) => {
            if step.non_null || step.list.is_some() || !rest.is_empty() {
                failures.push(format!("{path}: {here} is null"));
            }
            return;
        }
        Some(_) => {}
    }
    let child = child.expect("checked");
    match step.list {
        Some(non_empty) => {
            let Some(items) = child.as_array() else {
                failures.push(format!("{path}: {here} is not a list: {child}"));
                return;
            };
            if non_empty && items.is_empty() {
                failures.push(format!("{path}: {here} is an empty list"));
            }
            if !rest.is_empty() {
                for (i, item) in items.iter().enumerate() {
                    walk(item, rest, format!("{here}[{i}]"), path, failures);
                }
            }
        }
        None => walk(child, rest, here, path, failures),
    }
}

#[test]
fn the_path_checker_reads_the_marks() {
    let body = json!({"data": {"L": [{"a": 1, "b": null, "c": [], "d": null}], "E": []}});
    let ok = [
        "data.L[+].a!",
        "data.L[].b",
        "data.L[].c[]",
        "data.L[].d?[].x",
        "data.L[].z?",
        "data.E[]",
        "data.E[].x!",
    ];
    assert_eq!(check_paths(&body, &ok), Vec::<String>::new());
    for bad in [
        "data.L[].b!",
        "data.L[].z",
        "data.E[+]",
        "data.L[].c[+]",
        "data.L[].a[]",
        "data.L[].b.x",
    ] {
        assert_eq!(check_paths(&body, &[bad]).len(), 1, "{bad}");
    }
    assert_eq!(
        go_query_escape("{a(b: \"c d\")}~\n"),
        "%7Ba%28b%3A+%22c+d%22%29%7D~%0A"
    );
    assert_eq!(browser_escape("{a(b: \"c\")}"), "{a(b:%20%22c%22)}");
    assert!(same_instant(
        &json!("2024-01-02T03:04:05Z"),
        "2024-01-02T03:04:05"
    ));
    assert!(same_instant(
        &json!("2024-01-02T03:04:05.000+00:00"),
        "2024-01-02T03:04:05"
    ));
    assert!(!same_instant(
        &json!("2024-01-02T03:04:05.5Z"),
        "2024-01-02T03:04:05"
    ));
    assert!(!same_instant(
        &json!("2024-01-02T03:04:05+01:00"),
        "2024-01-02T03:04:05"
    ));
}

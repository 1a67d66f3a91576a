//! The API document and Swagger UI: served from the binary with no
//! outside URL, and a property-based fuzzer (schemathesis) run over the
//! document finds no request that gets a 500.

use std::process::Command;

use serde_json::json;

use crate::support::*;

#[test]
fn document_and_swagger_ui_are_served_offline() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let c = reqwest::blocking::Client::new();
    let doc: serde_json::Value = c
        .get(b.url("/openapi.json"))
        .send()
        .expect("doc")
        .json()
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(doc["paths"]["/v2/{name}/manifests/{reference}"]["put"].is_object());
    let index = c.get(b.url("/swagger/v2/")).send().expect("ui");
    assert_eq!(index.status(), 200);
    let html = index.text().expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let r = c
            .get(b.url(&format!("/swagger/v2/{asset}")))
            .send()
            .expect("asset");
        assert_eq!(r.status(), 200, "{asset}");
        let body = r.text().expect("text");
        if asset == "swagger-initializer.js" {
            assert!(body.contains("/openapi.json"), "{body}");
            assert!(!body.contains("https://"), "no outside URL: {body}");
        }
    }
    assert!(!html.contains("https://"), "no CDN in the page");
}

#[test]
fn schemathesis_finds_no_server_error() {
    let python = oras_python();
    let st = python.with_file_name("schemathesis");
    assert!(
        st.exists(),
        "{} is missing: the README's test command installs schemathesis",
        st.display()
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("st.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": tmp.path().join("root")},
               "http": {"address": "127.0.0.1", "port": "0"},
               "extensions": {"metrics": {}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    let out = Command::new(&st)
        .current_dir(tmp.path())
        .args(["run", &b.url("/openapi.json")])
        .args(["--checks", "not_a_server_error", "-n", "25", "--seed", "1"])
        .args(["--request-timeout", "30"])
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

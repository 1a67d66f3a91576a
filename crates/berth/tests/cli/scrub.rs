//! `berth scrub CONFIG`: offline, a table or JSON, non-zero when affected.

use serde_json::{Value, json};

use crate::support::*;

fn config(dir: &std::path::Path, root: &std::path::Path, port: u16) -> std::path::PathBuf {
    let p = dir.join("scrub.json");
    std::fs::write(
        &p,
        json!({"storage":{"rootDirectory":root},"http":{"address":"127.0.0.1","port":port}})
            .to_string(),
    )
    .expect("config");
    p
}

#[test]
fn scrub_reports_ok_then_affected() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    write_layout(&root.join("team/app"), "v1", &["amd64", "arm64"]);
    let cfg = config(tmp.path(), &root, 0);

    let out = berth().arg("scrub").arg(&cfg).output().expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("REPOSITORY")),
        "{table}"
    );
    assert!(
        table.contains("team/app") && table.contains(" ok"),
        "{table}"
    );

    // Damage one layer of one platform.
    let blobs = root.join("team/app/blobs/sha256");
    let victim = layout_blobs(&root.join("team/app"))
        .into_iter()
        .find(|(_, bytes)| bytes.starts_with(&[0x1f, 0x8b]))
        .map(|(name, _)| name)
        .expect("a gzip layer");
    std::fs::write(blobs.join(&victim), b"not the layer").expect("damage");
    let out = berth()
        .args(["scrub", "--format", "json"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "non-zero when affected");
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json rows");
    assert_eq!(rows[0]["repository"], "team/app");
    assert_eq!(rows[0]["tag"], "v1");
    assert_eq!(rows[0]["status"], "affected");
    assert_eq!(rows[0]["affectedBlob"], format!("sha256:{victim}"));
    assert_eq!(
        std::fs::read(blobs.join(&victim)).expect("still there"),
        b"not the layer"
    );
}

#[test]
fn scrub_refuses_while_the_server_listens() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let b = Berth::start(&root);
    let port: u16 = b
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let cfg = config(tmp.path(), &root, port);
    let out = berth().arg("scrub").arg(&cfg).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop the server first"));
}

//! `berth scan`: an OCI layout built here (Debian 12 with dpkg packages,
//! Python distributions, a whiteout in an upper layer) scanned with OSV
//! dumps written here, from a directory and over HTTP, as a layout and
//! pushed by skopeo to a real `berth serve`; exit statuses and errors.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_oci::Digest;
use serde_json::{Value, json};
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::support::{Berth, berth, put_blob, skopeo_push, with_media};

pub(crate) const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// libssl3 from a vulnerable openssl; zlib1g at the version an advisory
/// says fixes it.
pub(crate) const DPKG_STATUS: &str = "\
Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime

";

const SITE: &str = "usr/lib/python3/dist-packages";

/// Debian's records: three that affect the installed openssl, one of
/// another release, one fixed at the installed zlib.
fn debian_records() -> Vec<(String, String)> {
    let record = |id: &str, extra: &str, eco: &str, name: &str, fixed: &str| {
        (
            format!("{id}.json"),
            format!(
                r#"{{"id":"{id}",{extra}"details":"Issue summary: {id} in {name}.","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
            ),
        )
    };
    vec![
        record(
            "DSA-5532-1",
            r#""summary":"openssl - security update","upstream":["CVE-2023-5363","CVE-2023-5678"],"#,
            "Debian:12",
            "openssl",
            "3.0.11-1~deb12u2",
        ),
        record(
            "DEBIAN-CVE-2023-5678",
            r#""upstream":["CVE-2023-5678"],"database_specific":{"urgency":"low"},"#,
            "Debian:12",
            "openssl",
            "3.0.13-1~deb12u1",
        ),
        record(
            "DEBIAN-CVE-2024-0727",
            r#""upstream":["CVE-2024-0727"],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],"#,
            "Debian:12",
            "openssl",
            "3.0.13-1~deb12u1",
        ),
        record(
            "DLA-3530-1",
            r#""summary":"openssl - security update","upstream":["CVE-2023-2650"],"#,
            "Debian:11",
            "openssl",
            "1.1.1n-0+deb11u5",
        ),
        record(
            "DEBIAN-CVE-2023-45853",
            r#""upstream":["CVE-2023-45853"],"#,
            "Debian:12",
            "zlib",
            "1:1.2.13.dfsg-1",
        ),
    ]
}

/// PyPI's: Jinja2 (installed), urllib3 (whited out), a withdrawn one and
/// a file that is no record.
fn pypi_records() -> Vec<(String, String)> {
    vec![
        (
            "GHSA-h5c8-rqwp-cp95.json".into(),
            r#"{"id":"GHSA-h5c8-rqwp-cp95","aliases":["CVE-2024-22195"],
              "summary":"Jinja vulnerable to HTML attribute injection when passing user input as keys to xmlattr filter",
              "details":"The xmlattr filter in affected versions of Jinja accepts keys containing spaces.",
              "affected":[{"package":{"ecosystem":"PyPI","name":"jinja2"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.1.3"}]}]}],
              "references":[{"type":"WEB","url":"https://github.com/pallets/jinja/security/advisories/GHSA-h5c8-rqwp-cp95"}],
              "database_specific":{"severity":"MODERATE"}}"#
                .into(),
        ),
        (
            "GHSA-v845-jxx5-vc9f.json".into(),
            r#"{"id":"GHSA-v845-jxx5-vc9f","aliases":["CVE-2023-43804"],
              "summary":"Cookie HTTP header isn't stripped on cross-origin redirects",
              "details":"urllib3 doesn't treat the Cookie HTTP header special.",
              "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"}],
              "affected":[{"package":{"ecosystem":"PyPI","name":"urllib3"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.26.17"}]}]}]}"#
                .into(),
        ),
        (
            "GHSA-xxxx-withdrawn.json".into(),
            r#"{"id":"GHSA-xxxx-withdrawn","withdrawn":"2024-01-01T00:00:00Z","aliases":["CVE-2024-0001"],
              "affected":[{"package":{"ecosystem":"PyPI","name":"jinja2"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#
                .into(),
        ),
        ("broken.json".into(), "not json".into()),
    ]
}

fn zip(records: &[(String, String)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in records {
        zip.start_file(name.as_str(), SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

/// An OSV directory: `Debian/all.zip` and `PyPI/all.zip`.
fn write_osv(dir: &Path) {
    for (eco, records) in [("Debian", debian_records()), ("PyPI", pypi_records())] {
        std::fs::create_dir_all(dir.join(eco)).expect("mkdir");
        std::fs::write(dir.join(eco).join("all.zip"), zip(&records)).expect("write zip");
    }
}

/// A gzip-compressed tar of `files` (an empty content under a `.wh.`
/// name is a whiteout), and its uncompressed digest.
pub(crate) fn tar_gz(files: &[(&str, &str)]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, content.as_bytes())
            .expect("tar");
    }
    let raw = tar.into_inner().expect("tar");
    let diff_id = Digest::sha256(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

/// The image's layout at `dir`, tagged `v1`: one image, or an index of
/// one per architecture when several are given.
fn write_image(dir: &Path, archs: &[&str]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let jinja = format!("{SITE}/Jinja2-3.1.2.dist-info/METADATA");
    let urllib3 = format!("{SITE}/urllib3-1.26.0.dist-info/METADATA");
    let base = tar_gz(&[
        ("etc/os-release", OS_RELEASE),
        ("var/lib/dpkg/status", DPKG_STATUS),
        (
            &jinja,
            "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n",
        ),
        (
            &urllib3,
            "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.0\n",
        ),
    ]);
    let upper = tar_gz(&[(&format!("{SITE}/.wh.urllib3-1.26.0.dist-info"), "")]);
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let layers = vec![
        with_media(put_blob(dir, &base.0), gzip),
        with_media(put_blob(dir, &upper.0), gzip),
    ];
    let mut manifests = Vec::new();
    for arch in archs {
        let config = json!({"architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [base.1.to_string(), upper.1.to_string()]}});
        let config = with_media(
            put_blob(dir, config.to_string().as_bytes()),
            "application/vnd.oci.image.config.v1+json",
        );
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": layers});
        let mut d = with_media(
            put_blob(dir, m.to_string().as_bytes()),
            "application/vnd.oci.image.manifest.v1+json",
        );
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        manifests.push(d);
    }
    let mut top = if let [one] = &manifests[..] {
        let mut one = one.clone();
        one.as_object_mut().map(|o| o.remove("platform"));
        one
    } else {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests});
        with_media(
            put_blob(dir, idx.to_string().as_bytes()),
            "application/vnd.oci.image.index.v1+json",
        )
    };
    top["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [top]}).to_string(),
    )
    .expect("index");
}

/// A temporary directory with the image (amd64 only) and the OSV dumps.
pub(crate) struct Fixture {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) layout: PathBuf,
    pub(crate) osv: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let layout = root.join("layout");
    write_image(&layout, &["amd64"]);
    let osv = root.join("osv");
    write_osv(&osv);
    Fixture {
        _tmp: tmp,
        root,
        layout,
        osv,
    }
}

fn scan(args: &[&str]) -> Output {
    berth()
        .arg("scan")
        .args(args)
        .output()
        .expect("run berth scan")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a scan with `-o json` that must succeed (exit 0) and parses it.
fn scan_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = scan(&all);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The findings of one report as (id, severity, package, installed, fixed).
fn found(report: &Value) -> Vec<(String, String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                s(&f["id"]),
                s(&f["severity"]),
                s(&f["package"]["name"]),
                s(&f["package"]["version"]),
                s(&f["fixed_version"]),
            )
        })
        .collect()
}

/// What the image must report, worst first.
pub(crate) fn expected() -> Vec<(String, String, String, String, String)> {
    [
        (
            "CVE-2024-0727",
            "High",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.13-1~deb12u1",
        ),
        ("CVE-2024-22195", "Medium", "jinja2", "3.1.2", "3.1.3"),
        (
            "CVE-2023-5678",
            "Low",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.13-1~deb12u1",
        ),
        (
            "DSA-5532-1",
            "Unknown",
            "libssl3",
            "3.0.11-1~deb12u1",
            "3.0.11-1~deb12u2",
        ),
    ]
    .iter()
    .map(|(a, b, c, d, e)| {
        (
            a.to_string(),
            b.to_string(),
            c.to_string(),
            d.to_string(),
            e.to_string(),
        )
    })
    .collect()
}

/// Checks a report of the fixture's image.
fn check_report(report: &Value, image: &str) {
    assert_eq!(found(report), expected(), "{report:#}");
    let text = report.to_string();
    for absent in [
        "CVE-2023-2650",
        "CVE-2023-45853",
        "CVE-2023-43804",
        "CVE-2024-0001",
    ] {
        assert!(
            !text.contains(absent),
            "{absent} must not be found: {report:#}"
        );
    }
    assert_eq!(report["image"], image);
    assert_eq!(report["packages"], 3, "libssl3, zlib1g, jinja2: {report:#}");
    assert_eq!(report["os"]["id"], "debian");
    assert_eq!(report["os"]["version_id"], "12");
    assert_eq!(report["platform"], "linux/amd64");
    assert!(
        report["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(
        report["summary"],
        json!({"critical": 0, "high": 1, "medium": 1, "low": 1, "unknown": 1, "total": 4})
    );
    let jinja = &report["findings"][1];
    assert_eq!(jinja["advisory"], "GHSA-h5c8-rqwp-cp95");
    assert_eq!(
        jinja["title"],
        "Jinja vulnerable to HTML attribute injection when passing user input as keys to xmlattr filter"
    );
    assert_eq!(jinja["package"]["ecosystem"], "PyPI");
    assert_eq!(report["findings"][0]["package"]["source"], "openssl");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("1 of the 4 records of") && notes.contains("broken.json"),
        "the record that is not JSON is a note: {notes}"
    );
}

#[test]
fn a_layout_is_scanned_with_a_local_osv_directory() {
    let f = fixture();
    let osv = f.osv.to_str().expect("utf-8");
    let image = format!("oci:{}:v1", f.layout.display());
    let report = scan_json(&[&image, "--osv", osv]);
    check_report(&report, &image);

    // A plain directory: its only manifest.
    let plain = f.layout.display().to_string();
    check_report(&scan_json(&[&plain, "--osv", osv]), &plain);

    // The ecosystems named: only Debian's advisories.
    let debian = scan_json(&[&image, "--osv", osv, "--ecosystem", "Debian"]);
    let ids: Vec<String> = found(&debian).into_iter().map(|f| f.0).collect();
    assert_eq!(ids, ["CVE-2024-0727", "CVE-2023-5678", "DSA-5532-1"]);
}

#[test]
fn fail_on_sets_the_exit_status() {
    let f = fixture();
    let osv = f.osv.to_str().expect("utf-8");
    let image = format!("oci:{}:v1", f.layout.display());
    let high = scan(&[&image, "--osv", osv, "--fail-on", "HIGH"]);
    assert_eq!(code(&high), 1, "a HIGH finding: {}", stderr(&high));
    let low = scan(&[&image, "--osv", osv, "--fail-on", "low"]);
    assert_eq!(code(&low), 1);
    let critical = scan(&[&image, "--osv", osv, "--fail-on", "CRITICAL"]);
    assert_eq!(
        code(&critical),
        0,
        "no CRITICAL finding: {}",
        stderr(&critical)
    );
    let bad = scan(&[&image, "--osv", osv, "--fail-on", "UNKNOWN"]);
    assert_eq!(code(&bad), 2, "not a --fail-on severity");
}

#[test]
fn the_text_report_is_a_table_and_a_summary() {
    let f = fixture();
    let image = format!("oci:{}:v1", f.layout.display());
    let out = scan(&[&image, "--osv", f.osv.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "CVE-2024-0727",
        "CVE-2024-22195",
        "CVE-2023-5678",
        "DSA-5532-1",
    ] {
        assert!(text.contains(id), "{id} in:\n{text}");
    }
    let header = text.lines().find(|l| l.contains("SEVERITY")).unwrap_or("");
    for column in ["ID", "PACKAGE", "INSTALLED", "FIXED", "TITLE"] {
        assert!(header.contains(column), "{column} in {header:?}");
    }
    let row = text
        .lines()
        .find(|l| l.contains("CVE-2024-0727"))
        .unwrap_or("");
    for cell in [
        "HIGH",
        "libssl3 (openssl)",
        "3.0.11-1~deb12u1",
        "3.0.13-1~deb12u1",
    ] {
        assert!(row.contains(cell), "{cell} in {row:?}");
    }
    assert!(
        text.contains("Debian GNU/Linux 12 (bookworm), 3 packages"),
        "{text}"
    );
    assert!(
        text.contains("4 vulnerabilities: 0 critical, 1 high, 1 medium, 1 low, 1 unknown"),
        "{text}"
    );
    assert!(text.contains("note: 1 of the 4 records of"), "{text}");
}

#[test]
fn every_platform_of_an_index_is_reported() {
    let f = fixture();
    let layout = f.root.join("multi");
    write_image(&layout, &["amd64", "arm64"]);
    let osv = f.osv.to_str().expect("utf-8");
    let image = format!("oci:{}:v1", layout.display());
    let reports = scan_json(&[&image, "--osv", osv]);
    let platforms: Vec<&str> = reports
        .as_array()
        .expect("an array for an index")
        .iter()
        .map(|r| {
            assert_eq!(found(r), expected());
            r["platform"].as_str().unwrap_or("")
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let arm = scan_json(&[&image, "--osv", osv, "--platform", "linux/arm64"]);
    assert_eq!(arm["platform"], "linux/arm64");
    assert_eq!(found(&arm), expected());
    let none = scan(&[&image, "--osv", osv, "--platform", "linux/s390x"]);
    assert_eq!(code(&none), 2);
    assert!(
        stderr(&none).contains("linux/amd64, linux/arm64"),
        "{}",
        stderr(&none)
    );
}

/// Exit 2 with one line on stderr naming what is wrong.
fn assert_input_error(args: &[&str], says: &str) {
    let out = scan(args);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(says), "{says:?} in {err}");
    assert!(out.stdout.is_empty(), "no report on an error");
}

#[test]
fn bad_inputs_exit_2_with_one_line() {
    let f = fixture();
    let osv = f.osv.to_str().expect("utf-8");
    let missing = f.root.join("no-such-layout");
    let missing_oci = format!("oci:{}:v1", missing.display());
    assert_input_error(&[&missing_oci, "--osv", osv], "no-such-layout");
    assert_input_error(
        &[missing.to_str().expect("utf-8"), "--osv", osv],
        "no-such-layout",
    );
    let wrong_tag = format!("oci:{}:v2", f.layout.display());
    assert_input_error(&[&wrong_tag, "--osv", osv], "no manifest tagged v2");
    assert_input_error(
        &["docker://127.0.0.1:1/Bad/Name:v1", "--osv", osv],
        "Bad/Name",
    );
    assert_input_error(&["debian:12", "--osv", osv], "debian:12");
    let image = format!("oci:{}:v1", f.layout.display());
    let no_osv = f.root.join("no-osv");
    assert_input_error(
        &[&image, "--osv", no_osv.to_str().expect("utf-8")],
        "no-osv",
    );
    assert_input_error(
        &[&image, "--osv", osv, "--ecosystem", "Go"],
        "no advisories for ecosystem Go",
    );
    assert_input_error(
        &["docker://127.0.0.1:1/app:v1", "--insecure", "--osv", osv],
        "cannot reach registry 127.0.0.1:1",
    );
    assert_input_error(
        &[&image, "--osv", "http://127.0.0.1:1/osv"],
        "cannot download http://127.0.0.1:1/osv/",
    );
}

/// Serves `dir` over HTTP/1.1 on 127.0.0.1 (GET only, one request per
/// connection) from a thread, for as long as the test runs.
fn serve_dir(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let file = dir.join(path.trim_start_matches('/'));
            let mut body = Vec::new();
            let status = match std::fs::File::open(&file).and_then(|mut f| f.read_to_end(&mut body))
            {
                Ok(_) if !path.contains("..") => "200 OK",
                _ => {
                    body.clear();
                    "404 Not Found"
                }
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn advisories_come_over_http() {
    let f = fixture();
    let base = serve_dir(f.osv.clone());
    let image = format!("oci:{}:v1", f.layout.display());
    let report = scan_json(&[&image, "--osv", &format!("{base}/")]);
    assert_eq!(found(&report), expected(), "{report:#}");

    // An ecosystem the source does not have is a note, unless named.
    std::fs::remove_dir_all(f.osv.join("PyPI")).expect("rm");
    let report = scan_json(&[&image, "--osv", &base]);
    let ids: Vec<String> = found(&report).into_iter().map(|f| f.0).collect();
    assert_eq!(ids, ["CVE-2024-0727", "CVE-2023-5678", "DSA-5532-1"]);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "no advisories for ecosystem PyPI: {base}/PyPI/all.zip"
        )),
        "{notes}"
    );
    assert_input_error(
        &[&image, "--osv", &base, "--ecosystem", "PyPI"],
        "no advisories for ecosystem PyPI",
    );
}

#[test]
fn a_registry_image_is_scanned_as_its_layout() {
    let f = fixture();
    let data = f.root.join("data");
    let server = Berth::start(&data);
    let pushed = skopeo_push(
        &f.root,
        &f.layout,
        &format!("{}/scan/app:v1", server.addr),
        None,
    );
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let osv = f.osv.to_str().expect("utf-8");
    let image = format!("docker://{}/scan/app:v1", server.addr);
    let report = scan_json(&[&image, "--insecure", "--osv", osv]);
    check_report(&report, &image);

    // By digest, and without the docker:// prefix.
    let digest = report["digest"].as_str().expect("digest").to_owned();
    let by_digest = format!("{}/scan/app@{digest}", server.addr);
    check_report(
        &scan_json(&[&by_digest, "--insecure", "--osv", osv]),
        &by_digest,
    );

    // Without --insecure, only HTTPS is tried.
    assert_input_error(&[&image, "--osv", osv], "--insecure allows plain HTTP");
    let missing = format!("docker://{}/scan/app:v9", server.addr);
    assert_input_error(&[&missing, "--insecure", "--osv", osv], "404");
}

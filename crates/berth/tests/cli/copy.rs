//! `berth copy` and its short forms against real registries: two Berths
//! (one with htpasswd, one over TLS with a test CA), Debian's
//! `docker-registry`, OCI layouts and docker-archives that skopeo reads
//! and writes; blobs already there cost no upload; credentials from
//! Docker's and Podman's auth files; `--all` and `--platform`;
//! `--with-referrers`; a copy cut short leaves no tag and runs again.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::proxy::Proxy;
use crate::support::*;
use crate::upstream::{DockerRegistry, Upstream, UpstreamOptions};

/// `berth ARGS` with no auth file of the user's found.
fn run(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = berth();
    c.args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", "/nonexistent")
        .env("XDG_RUNTIME_DIR", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DOCKER_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("berth")
}

/// `berth ARGS`, which must succeed; its standard output, trimmed.
fn ok(args: &[&str]) -> String {
    let out = run(args, &[]);
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `berth ARGS`, which must fail with one line on standard error.
fn fails(args: &[&str]) -> String {
    let out = run(args, &[]);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(1), "berth {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// The digest `tag` names in `repo` of the plain-HTTP registry `addr`.
fn tag_digest(addr: &str, repo: &str, tag: &str) -> Option<String> {
    tag_digest_as(addr, repo, tag, None)
}

/// [`tag_digest`] with Basic credentials (`user:password`).
fn tag_digest_as(addr: &str, repo: &str, tag: &str, creds: Option<&str>) -> Option<String> {
    let mut r = reqwest::blocking::Client::new()
        .head(format!("http://{addr}/v2/{repo}/manifests/{tag}"))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        );
    if let Some((user, password)) = creds.and_then(|c| c.split_once(':')) {
        r = r.basic_auth(user, Some(password));
    }
    let r = r.send().expect("head");
    r.status().is_success().then(|| {
        r.headers()["docker-content-digest"]
            .to_str()
            .expect("digest")
            .to_string()
    })
}

#[test]
fn registry_to_registry_with_htpasswd_and_tls_and_skopeo_reads_the_result() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd_file(tmp.path(), &[("alice", "wonderland")]);
    let src = Berth::start_full(
        &tmp.path().join("src"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0}}),
        &[],
    );
    let pki = tmp.path().join("pki");
    crate::tls::make_pki(&pki, "copy");
    let p = |f: &str| pki.join(f).display().to_string();
    let dst = Berth::start_full(
        &tmp.path().join("dst"),
        json!({}),
        json!({"tls": {"cert": p("server.crt"), "key": p("server.key")}}),
        &[],
    );
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(pki.join("ca.crt"), certs.join("ca.crt")).expect("copy");
    let certs = certs.display().to_string();

    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64"]).to_string();
    let pushed = ok(&[
        "push",
        layout.to_str().expect("utf-8"),
        &format!("{}/app:v1", src.addr),
        "--creds",
        "alice:wonderland",
    ]);
    assert_eq!(pushed, digest);
    // Without credentials: refused, on one line naming the source.
    let err = fails(&[
        "copy",
        &format!("docker://{}/app:v1", src.addr),
        &format!("docker://{}/app:v1", dst.addr),
        "--dest-cert-dir",
        &certs,
    ]);
    assert!(
        err.starts_with(&format!("berth copy: docker://{}/app:v1: ", src.addr)),
        "{err}"
    );
    // An unknown CA is refused; the test CA is trusted.
    fails(&[
        "copy",
        "--src-creds",
        "alice:wonderland",
        &format!("docker://{}/app:v1", src.addr),
        &format!("docker://{}/app:v1", dst.addr),
        "--dest-cert-dir",
        tmp.path().join("src").to_str().expect("utf-8"),
    ]);
    let copied = ok(&[
        "copy",
        "--src-creds",
        "alice:wonderland",
        "--dest-cert-dir",
        &certs,
        &format!("docker://{}/app:v1", src.addr),
        &format!("docker://{}/mirror/app:v2", dst.addr),
    ]);
    assert_eq!(copied, digest);
    let out = Command::new("skopeo")
        .args(["inspect", "--cert-dir", &certs])
        .arg(format!("docker://{}/mirror/app:v2", dst.addr))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(inspected["Digest"], digest);
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(2));
}

#[test]
fn layouts_and_docker_archives_both_ways_with_skopeo() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64"]).to_string();
    let oci = |dir: &Path, tag: &str| format!("oci:{}:{tag}", dir.display());
    let reg = |r: &str| format!("docker://{}/{r}", b.addr);

    // Layout → registry → layout: the same manifest and blobs.
    assert_eq!(ok(&["copy", &oci(&layout, "v1"), &reg("app:v1")]), digest);
    let pulled = tmp.path().join("pulled");
    assert_eq!(
        ok(&[
            "pull",
            &format!("{}/app:v1", b.addr),
            pulled.to_str().expect("utf-8")
        ]),
        digest
    );
    assert_eq!(layout_blobs(&pulled), layout_blobs(&layout));
    let index: Value =
        serde_json::from_slice(&std::fs::read(pulled.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["manifests"][0]["digest"], digest);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    let leftovers: Vec<_> = std::fs::read_dir(pulled.join("blobs/sha256"))
        .expect("blobs")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Registry → docker-archive, which skopeo reads.
    let archive = tmp.path().join("app.tar");
    let archive_ref = format!("docker-archive:{}:app:v1", archive.display());
    ok(&["copy", &reg("app:v1"), &archive_ref]);
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", archive.display()))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("json");
    // skopeo names a docker-archive's layers by their uncompressed digests.
    assert_eq!(seen["Layers"], json!(diff_ids(&layout, &digest)));
    assert_eq!(seen["Architecture"], "amd64");

    // skopeo's docker-archive → berth → registry: the same layers.
    let theirs = tmp.path().join("skopeo.tar");
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(tmp.path()))
        .args(["copy", "--src-tls-verify=false"])
        .arg(reg("app:v1"))
        .arg(format!("docker-archive:{}:theirs:v3", theirs.display()))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_archive = ok(&[
        "copy",
        &format!("docker-archive:{}", theirs.display()),
        &reg("theirs:v3"),
    ]);
    let inspected: Value =
        serde_json::from_str(&ok(&["inspect", &format!("{}/theirs:v3", b.addr)])).expect("json");
    assert_eq!(inspected["Digest"], from_archive);
    assert_eq!(
        inspected["MediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // skopeo decompressed the layers: the same contents, as plain tars.
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        inspected["LayersData"][0]["MIMEType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    // And berth reads its own archive back.
    ok(&["copy", &archive_ref, &oci(&tmp.path().join("again"), "v1")]);
}

/// The config's `diff_ids` of image `digest` in the layout `dir`.
fn diff_ids(dir: &Path, digest: &str) -> Value {
    let read = |d: &str| -> Value {
        let hex = d.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob"))
            .expect("json")
    };
    let m = read(digest);
    read(m["config"]["digest"].as_str().expect("config"))["rootfs"]["diff_ids"].clone()
}

#[test]
fn blobs_the_destination_has_cost_no_upload_and_same_registry_blobs_are_mounted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let proxy = Proxy::start(&format!("http://{}", b.addr));
    let layout = tmp.path().join("layout");
    write_layout(&layout, "v1", &["amd64"]);
    let dest = |r: &str| format!("docker://{}/{r}", proxy.host());
    ok(&[
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &dest("app:v1"),
    ]);
    assert!(
        proxy.count("POST", "/v2/app/blobs/uploads") >= 3,
        "{:?}",
        proxy.requests()
    );

    proxy.reset_counts();
    ok(&[
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &dest("app:v2"),
    ]);
    assert_eq!(
        proxy.count("POST", "/v2/app/blobs/uploads"),
        0,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("PATCH", "/v2/"), 0);
    assert!(proxy.count("HEAD", "/v2/app/blobs/") >= 3);

    // Within one registry, another repository: mounted, no bytes sent.
    proxy.reset_counts();
    ok(&["copy", &dest("app:v1"), &dest("other:v1")]);
    assert_eq!(
        proxy.count("GET", "/v2/app/blobs/"),
        0,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count("PUT", "/v2/other/blobs/"),
        0,
        "{:?}",
        proxy.requests()
    );
    assert!(tag_digest(&b.addr, "other", "v1").is_some());
}

#[test]
fn credentials_come_from_docker_and_podman_auth_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let htpasswd = htpasswd_file(tmp.path(), &[("bob", "builder")]);
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd}, "failDelay": 0}}),
        &[],
    );
    let layout = tmp.path().join("layout");
    write_layout(&layout, "v1", &["amd64"]);
    let src = format!("oci:{}:v1", layout.display());
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:builder");

    // Docker's ~/.docker/config.json (through DOCKER_CONFIG).
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    std::fs::write(
        docker.join("config.json"),
        json!({"auths": {b.addr.clone(): {"auth": auth}}}).to_string(),
    )
    .expect("write");
    let dest = format!("docker://{}/app:v1", b.addr);
    let out = run(&["copy", &src, &dest], &[("DOCKER_CONFIG", &docker)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Podman's $XDG_RUNTIME_DIR/containers/auth.json, with a scheme in the key.
    let runtime = tmp.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).expect("mkdir");
    std::fs::write(
        runtime.join("containers/auth.json"),
        json!({"auths": {format!("http://{}", b.addr): {"auth": auth}}}).to_string(),
    )
    .expect("write");
    let dest2 = format!("docker://{}/app:v2", b.addr);
    let out = run(&["copy", &src, &dest2], &[("XDG_RUNTIME_DIR", &runtime)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No file: refused, one line, exit 1.
    let err = fails(&["copy", &src, &format!("docker://{}/app:v3", b.addr)]);
    assert!(err.starts_with("berth copy: docker://"), "{err}");
}

#[test]
fn all_platforms_or_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let layout = tmp.path().join("layout");
    let index = write_layout(&layout, "v1", &["amd64", "arm64"]).to_string();
    let src = format!("oci:{}:v1", layout.display());
    let reg = |r: &str| format!("docker://{}/{r}", b.addr);
    assert_eq!(ok(&["copy", "--all", &src, &reg("app:all")]), index);
    assert_eq!(
        tag_digest(&b.addr, "app", "all").as_deref(),
        Some(index.as_str())
    );

    let arm = ok(&["copy", "--platform", "linux/arm64", &src, &reg("app:arm")]);
    assert_ne!(arm, index);
    let inspected: Value =
        serde_json::from_str(&ok(&["inspect", &format!("{}/app:arm", b.addr)])).expect("json");
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Digest"], arm);
    let all: Value = serde_json::from_str(&ok(&[
        "inspect",
        &format!("{}/app:all", b.addr),
        "--platform",
        "linux/arm64",
    ]))
    .expect("json");
    assert_eq!(all["Platforms"], json!(["linux/amd64", "linux/arm64"]));
    assert_eq!(all["ImageDigest"], arm);
    let err = fails(&["copy", "--platform", "linux/s390x", &src, &reg("app:none")]);
    assert!(err.contains("linux/s390x"), "{err}");
}

#[test]
fn referrers_and_cosign_tags_go_with_with_referrers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Berth::start(&tmp.path().join("a"));
    let b = Berth::start(&tmp.path().join("b"));
    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64"]).to_string();
    ok(&[
        "push",
        layout.to_str().expect("utf-8"),
        &format!("{}/app:v1", a.addr),
    ]);
    let http = reqwest::blocking::Client::new();
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let r = http
        .post(format!(
            "http://{}/v2/app/blobs/uploads/?digest={empty}",
            a.addr
        ))
        .body("{}")
        .send()
        .expect("blob");
    assert!(r.status().is_success(), "{}", r.status());
    // A manifest put under `reference`, or by its digest.
    let put = |reference: Option<&str>, doc: Value| {
        let body = doc.to_string();
        let by_digest = berth_oci::Digest::sha256(body.as_bytes()).to_string();
        let r = http
            .put(format!(
                "http://{}/v2/app/manifests/{}",
                a.addr,
                reference.unwrap_or(&by_digest)
            ))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body)
            .send()
            .expect("put");
        assert!(r.status().is_success(), "{}", r.status());
        by_digest
    };
    let config =
        json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2});
    let referrer = put(
        None,
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json", "config": config, "layers": [config],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1}}),
    );
    let sig_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    put(
        Some(&sig_tag),
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [config]}),
    );

    let src = format!("docker://{}/app:v1", a.addr);
    ok(&["copy", &src, &format!("docker://{}/plain:v1", b.addr)]);
    assert!(tag_digest(&b.addr, "plain", &sig_tag).is_none());
    assert!(tag_digest(&b.addr, "plain", &referrer).is_none());

    ok(&[
        "copy",
        "--with-referrers",
        &src,
        &format!("docker://{}/full:v1", b.addr),
    ]);
    assert!(tag_digest(&b.addr, "full", &sig_tag).is_some());
    assert_eq!(
        tag_digest(&b.addr, "full", &referrer).as_deref(),
        Some(referrer.as_str())
    );
    let listed: Value = http
        .get(format!("http://{}/v2/full/referrers/{digest}", b.addr))
        .send()
        .expect("referrers")
        .json()
        .expect("json");
    assert_eq!(listed["manifests"][0]["digest"], referrer);

    // Into a layout and back out: the referrer goes along.
    let out = tmp.path().join("out");
    ok(&[
        "copy",
        "--with-referrers",
        &src,
        &format!("oci:{}:v1", out.display()),
    ]);
    ok(&[
        "copy",
        "--with-referrers",
        &format!("oci:{}:v1", out.display()),
        &format!("docker://{}/again:v1", b.addr),
    ]);
    assert!(tag_digest(&b.addr, "again", &referrer).is_some());
}

#[test]
fn a_copy_cut_short_leaves_no_tag_and_runs_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Berth::start(&tmp.path().join("a"));
    let b = Berth::start(&tmp.path().join("b"));
    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64"]).to_string();
    ok(&[
        "push",
        layout.to_str().expect("utf-8"),
        &format!("{}/app:v1", a.addr),
    ]);
    let proxy = Proxy::start(&format!("http://{}", a.addr));
    // Every blob (the config too) breaks off after 50 bytes.
    proxy.cut_blobs_after(Some(50));
    let src = format!("docker://{}/app:v1", proxy.host());
    let dst = format!("docker://{}/app:v1", b.addr);
    let err = fails(&["copy", &src, &dst]);
    assert!(err.starts_with("berth copy: "), "{err}");
    assert_eq!(tag_digest(&b.addr, "app", "v1"), None);
    // Into a layout: no index.json, no blob file half-written.
    let out = tmp.path().join("out");
    fails(&["copy", &src, &format!("oci:{}:v1", out.display())]);
    assert!(!out.join("index.json").exists());
    assert!(
        std::fs::read_dir(out.join("blobs/sha256"))
            .expect("dir")
            .all(|e| {
                !e.expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
    );

    proxy.cut_blobs_after(None);
    assert_eq!(ok(&["copy", &src, &dst]), digest);
    assert_eq!(
        tag_digest(&b.addr, "app", "v1").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn to_and_from_debian_docker_registry() {
    let tmp = tempfile::tempdir().expect("tmp");
    let upstream = DockerRegistry::start(UpstreamOptions::new());
    let b = Berth::start(&tmp.path().join("root"));
    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64", "arm64"]).to_string();
    let theirs = format!("docker://{}/lib/app:v1", upstream.host());
    assert_eq!(
        ok(&[
            "copy",
            "--all",
            &format!("oci:{}:v1", layout.display()),
            &theirs
        ]),
        digest
    );
    assert_eq!(
        ok(&[
            "copy",
            "--all",
            &theirs,
            &format!("docker://{}/app:v1", b.addr)
        ]),
        digest
    );
    assert_eq!(ok(&["ls", &format!("{}/lib/app", upstream.host())]), "v1");
}

#[test]
fn tag_ls_inspect_and_delete_on_a_real_berth() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64"]).to_string();
    ok(&[
        "push",
        layout.to_str().expect("utf-8"),
        &format!("{}/app:v1", b.addr),
    ]);
    let tagged = ok(&["tag", &format!("docker://{}/app:v1", b.addr), "stable"]);
    assert!(tagged.ends_with(&digest), "{tagged}");
    assert_eq!(ok(&["ls", &format!("{}/app", b.addr)]), "stable\nv1");
    let inspected: Value =
        serde_json::from_str(&ok(&["inspect", &format!("{}/app:stable", b.addr)])).expect("json");
    assert_eq!(inspected["Digest"], digest);
    assert_eq!(inspected["Name"], format!("{}/app", b.addr));
    assert_eq!(inspected["RepoTags"], json!(["stable", "v1"]));
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(2));
    assert!(inspected["LayersData"][1]["Size"].as_u64().is_some());
    let raw: Value = serde_json::from_str(&ok(&[
        "inspect",
        "--raw",
        &format!("{}/app@{digest}", b.addr),
    ]))
    .expect("json");
    assert_eq!(raw["schemaVersion"], 2);

    ok(&["delete", &format!("{}/app:stable", b.addr)]);
    assert_eq!(tag_digest(&b.addr, "app", "v1"), None);
    let err = fails(&["inspect", &format!("{}/app:v1", b.addr)]);
    assert_eq!(
        err,
        format!(
            "berth inspect: docker://{}/app:v1: manifest unknown",
            b.addr
        )
    );
    for cmd in ["copy", "pull", "push", "tag", "delete", "inspect", "ls"] {
        let help = ok(&[cmd, "--help"]);
        assert!(help.contains("Example"), "{cmd}: {help}");
    }
}

/// `berth sync`: every tag of a repository, then every repository of a
/// registry, copied to another under a prefix; a second run uploads
/// nothing; an image the source cannot give is said on its own line, the
/// others copied, and the exit is 1.
#[test]
fn sync_copies_every_tag_and_every_repository() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = Berth::start_full(
        &tmp.path().join("src"),
        json!({}),
        json!({"auth": {"htpasswd": {"path": htpasswd_file(tmp.path(), &[("bob", "builder")])}}}),
        &[],
    );
    let dst = Berth::start(&tmp.path().join("dst"));
    let proxy = Proxy::start(&format!("http://{}", dst.addr));
    let layout = tmp.path().join("layout");
    for (i, tag) in ["v1", "v2", "v3"].iter().enumerate() {
        write_layout(&layout, tag, &["amd64"]);
        for repo in ["team/app", "team/db"] {
            if repo == "team/db" && i > 0 {
                continue;
            }
            ok(&[
                "copy",
                "--dest-creds",
                "bob:builder",
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker://{}/{repo}:{tag}", src.addr),
            ]);
        }
    }
    let from = |path: &str| format!("docker://{}{path}", src.addr);
    let out = ok(&[
        "sync",
        "--src-creds",
        "bob:builder",
        &from("/team/app"),
        &format!("docker://{}/mirror", proxy.host()),
    ]);
    assert_eq!(out, "3 images copied");
    for tag in ["v1", "v2", "v3"] {
        assert_eq!(
            tag_digest(&dst.addr, "mirror/team/app", tag),
            tag_digest_as(&src.addr, "team/app", tag, Some("bob:builder")),
            "{tag}"
        );
    }
    assert_eq!(tag_digest(&dst.addr, "mirror/team/db", "v1"), None);
    // Again: everything is there, nothing is uploaded.
    proxy.reset_counts();
    ok(&[
        "sync",
        "--src-creds",
        "bob:builder",
        &from("/team/app"),
        &format!("docker://{}/mirror", proxy.host()),
    ]);
    assert_eq!(proxy.count("POST", "/v2/"), 0, "{:?}", proxy.requests());
    assert_eq!(proxy.count("PUT", "/v2/mirror/team/app/manifests/"), 3);
    // The whole registry, without a prefix.
    let out = ok(&[
        "sync",
        "--src-creds",
        "bob:builder",
        &from(""),
        &format!("docker://{}", dst.addr),
    ]);
    assert_eq!(out, "4 images copied");
    assert!(tag_digest(&dst.addr, "team/db", "v1").is_some());
    // Wrong credentials: the catalog is refused, one line.
    let err = fails(&[
        "sync",
        "--src-creds",
        "bob:wrong",
        &from(""),
        &format!("docker://{}", dst.addr),
    ]);
    assert!(err.contains("401"), "{err}");
    // A tag the source lists but cannot give: said, the rest copied.
    std::fs::remove_dir_all(tmp.path().join("src/team/app/blobs")).expect("break the source");
    let out = run(
        &[
            "sync",
            "--src-creds",
            "bob:builder",
            &from("/team/app"),
            &format!("docker://{}/broken", dst.addr),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 of 3 images failed"), "{err}");
    assert!(
        err.lines()
            .filter(|l| l.starts_with("berth sync: docker://"))
            .count()
            == 3,
        "{err}"
    );
}

/// A registry behind a Docker token server: copy there and back with the
/// token server's user (the Bearer challenge followed, a token per scope).
#[test]
fn copies_to_and_from_a_registry_behind_a_token_server() {
    use crate::token_server::{SERVICE, Signer, TokenServer};
    let tmp = tempfile::tempdir().expect("tmp");
    let signer = Signer::new(tmp.path(), "issuer");
    let cert = signer.cert.clone();
    let tokens = TokenServer::start(signer);
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"bearer": {"realm": tokens.realm, "service": SERVICE, "cert": cert}}}),
        &[],
    );
    let layout = tmp.path().join("layout");
    let digest = write_layout(&layout, "v1", &["amd64"]).to_string();
    let dst = format!("docker://{}/team/app:v1", b.addr);
    let err = fails(&["copy", &format!("oci:{}:v1", layout.display()), &dst]);
    assert!(err.contains("401"), "{err}");
    let copied = ok(&[
        "copy",
        "--dest-creds",
        "alice:wonderland",
        &format!("oci:{}:v1", layout.display()),
        &dst,
    ]);
    assert_eq!(copied, digest);
    let back = tmp.path().join("back");
    ok(&[
        "copy",
        "--src-creds",
        "alice:wonderland",
        &dst,
        &format!("oci:{}:v1", back.display()),
    ]);
    assert_eq!(layout_blobs(&back), layout_blobs(&layout));
    // The token server grants only pull under locked/.
    let err = fails(&[
        "copy",
        "--dest-creds",
        "alice:wonderland",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/locked/app:v1", b.addr),
    ]);
    assert!(err.starts_with("berth copy: docker://"), "{err}");
    // The short forms and `status` through the same token flow.
    let image = format!("{}/team/app:v1", b.addr);
    let creds = ["--creds", "alice:wonderland"];
    ok(&[&["tag", &image, "v2"][..], &creds[..]].concat());
    let tags = ok(&[&["ls", &format!("{}/team/app", b.addr)][..], &creds[..]].concat());
    assert_eq!(tags.lines().collect::<Vec<_>>(), ["v1", "v2"]);
    let inspected: Value =
        serde_json::from_str(&ok(&[&["inspect", &image][..], &creds[..]].concat()))
            .expect("inspect JSON");
    assert_eq!(inspected["Digest"], digest.as_str());
    let status: Value = serde_json::from_str(&ok(&[
        "status",
        "--url",
        &b.addr,
        "-u",
        "alice:wonderland",
        "-o",
        "json",
    ]))
    .expect("status JSON");
    assert_eq!(status["loggedIn"], true);
}

/// Ctrl-C (a real SIGINT) in the middle of a copy: exit 130, nothing
/// tagged at the destination, no temporary file left in a layout.
#[test]
fn ctrl_c_leaves_nothing_half_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Berth::start(&tmp.path().join("a"));
    let b = Berth::start(&tmp.path().join("b"));
    let layout = tmp.path().join("layout");
    write_layout(&layout, "v1", &["amd64"]);
    ok(&[
        "push",
        layout.to_str().expect("utf-8"),
        &format!("{}/app:v1", a.addr),
    ]);
    let proxy = Proxy::start(&format!("http://{}", a.addr));
    // Slow enough that the copy is still running when interrupted.
    proxy.throttle(Some(100));
    let src = format!("docker://{}/app:v1", proxy.host());
    let out = tmp.path().join("out");
    for dst in [
        format!("docker://{}/app:v1", b.addr),
        format!("oci:{}:v1", out.display()),
    ] {
        let child = berth()
            .args(["copy", "-q", &src, &dst])
            .env("HOME", "/nonexistent")
            .env_remove("REGISTRY_AUTH_FILE")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("berth copy");
        // Until it is reading blobs through the proxy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while proxy.count("GET", "/v2/app/blobs/") == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the copy never read a blob"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = child.id().to_string();
        // The shell's own `kill`: no procps needed.
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -INT {pid}")])
            .status()
            .expect("sh");
        assert!(sent.success());
        let done = child.wait_with_output().expect("wait");
        assert_eq!(
            done.status.code(),
            Some(130),
            "{dst}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(err.trim().ends_with("interrupted"), "{err}");
        proxy.reset_counts();
    }
    assert_eq!(tag_digest(&b.addr, "app", "v1"), None);
    assert!(!out.join("index.json").exists());
    if let Ok(entries) = std::fs::read_dir(out.join("blobs/sha256")) {
        for e in entries {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "a temporary file left: {name}");
        }
    }
}

/// A chunk whose connection drops on its way to the registry is resumed
/// where the registry's upload session says it stands, not sent whole
/// again, and the copy completes.
#[test]
fn a_dropped_chunk_is_resumed_from_the_registrys_offset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let proxy = Proxy::start(&format!("http://{}", b.addr));
    let layout = tmp.path().join("layout");
    // One layer of 3 MiB: three 1 MiB chunks.
    let made = Command::new("python3")
        .arg(workspace().join("scripts/make-layout.py"))
        .arg(&layout)
        .args(["v1", "1", "3"])
        .status()
        .expect("python3");
    assert!(made.success());
    proxy.cut_next_patch_after(300 * 1024);
    let digest = ok(&[
        "copy",
        "--chunk-mib",
        "1",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/app:v1", proxy.host()),
    ]);
    assert_eq!(
        tag_digest(&b.addr, "app", "v1").as_deref(),
        Some(digest.as_str())
    );
    // The session's status was asked, and the chunks sent add up to no
    // more than the layer and the cut piece.
    assert!(
        proxy.count_matching("GET", "^/v2/app/blobs/uploads/.+") >= 1,
        "{:?}",
        proxy.requests()
    );
    let patches = proxy.count("PATCH", "/v2/app/blobs/uploads/");
    assert!(
        (3..=5).contains(&patches),
        "{patches} PATCHes: {:?}",
        proxy.requests()
    );
    let back = tmp.path().join("back");
    ok(&[
        "copy",
        &format!("docker://{}/app:v1", b.addr),
        &format!("oci:{}:v1", back.display()),
    ]);
    assert_eq!(layout_blobs(&back), layout_blobs(&layout));
}

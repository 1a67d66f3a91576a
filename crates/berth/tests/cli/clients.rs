//! Real clients against the real binary: skopeo (single image, multi-arch
//! index, Docker schema2, delete, a layout skopeo wrote), buildah (build,
//! push as OCI and Docker, pull back and read a file), podman (build, push,
//! pull back the same image) and oras-py (an artifact with a subject, then
//! the referrers list).
//!
//! The README's test command installs both; run without them these tests
//! fail and say so rather than pass silently.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn skopeo(args: &[&str], policy: &Path) -> String {
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("skopeo is required (the README's test command installs it): {e}")
        });
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

#[test]
fn skopeo_round_trips_an_image_and_an_index_byte_identical() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pol = skopeo_policy(tmp.path());
    let b = Berth::start(&tmp.path().join("root"));
    for (name, platforms, all) in [
        ("single", &["amd64"][..], false),
        ("multi", &["amd64", "arm64", "s390x"][..], true),
    ] {
        let src = tmp.path().join(format!("{name}-src"));
        let top = write_layout(&src, "v1", platforms);
        let dest = format!("docker://{}/skopeo/{name}:v1", b.addr);
        let mut push = vec!["copy", "--dest-tls-verify=false"];
        let mut pull = vec!["copy", "--src-tls-verify=false"];
        if all {
            push.push("--all");
            pull.push("--all");
        }
        let src_ref = oci(&src, "v1");
        push.extend([src_ref.as_str(), dest.as_str()]);
        skopeo(&push, &pol);

        // The registry serves the very manifest that was pushed.
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest], &pol);
        assert_eq!(
            berth_oci::Digest::sha256(raw.as_bytes()),
            top,
            "{name}: top manifest digest"
        );

        let out = tmp.path().join(format!("{name}-out"));
        let out_ref = oci(&out, "v1");
        pull.extend([dest.as_str(), out_ref.as_str()]);
        skopeo(&pull, &pol);
        assert_eq!(
            layout_blobs(&src),
            layout_blobs(&out),
            "{name}: every blob byte-identical"
        );

        let tags: Value = reqwest::blocking::get(b.url(&format!("/v2/skopeo/{name}/tags/list")))
            .expect("tags")
            .json()
            .expect("json");
        assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    }

    // skopeo delete resolves the tag and deletes the manifest by digest.
    let dest = format!("docker://{}/skopeo/single:v1", b.addr);
    skopeo(&["delete", "--tls-verify=false", &dest], &pol);
    let r = reqwest::blocking::get(b.url("/v2/skopeo/single/manifests/v1")).expect("get");
    assert_eq!(r.status(), 404);
}

#[test]
fn skopeo_pushes_docker_schema2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pol = skopeo_policy(tmp.path());
    let b = Berth::start(&tmp.path().join("root"));
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let dest = format!("docker://{}/docker/image:v2s2", b.addr);
    skopeo(
        &[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &oci(&src, "v1"),
            &dest,
        ],
        &pol,
    );
    let r = reqwest::blocking::get(b.url("/v2/docker/image/manifests/v2s2")).expect("get");
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let digest = r.headers()["docker-content-digest"]
        .to_str()
        .expect("d")
        .to_string();
    let body = r.bytes().expect("body");
    assert_eq!(
        berth_oci::Digest::sha256(&body).to_string(),
        digest,
        "served byte-exact"
    );
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest], &pol);
    assert_eq!(raw.as_bytes(), body.as_ref());
    let out = tmp.path().join("out");
    skopeo(
        &[
            "copy",
            "--src-tls-verify=false",
            &dest,
            &format!("dir:{}", out.display()),
        ],
        &pol,
    );
    assert_eq!(
        std::fs::read(out.join("manifest.json")).expect("manifest"),
        body.as_ref()
    );
}

#[test]
fn serves_a_layout_that_skopeo_wrote() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pol = skopeo_policy(tmp.path());
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64", "arm64"]);
    let root = tmp.path().join("root");
    let made = root.join("made/by/skopeo");
    std::fs::create_dir_all(made.parent().expect("parent")).expect("mkdir");
    skopeo(
        &["copy", "--all", &oci(&src, "v1"), &oci(&made, "latest")],
        &pol,
    );
    let b = Berth::start(&root);
    let catalog: Value = reqwest::blocking::get(b.url("/v2/_catalog"))
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["made/by/skopeo"])
    );
    let out = tmp.path().join("out");
    skopeo(
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{}/made/by/skopeo:latest", b.addr),
            &oci(&out, "latest"),
        ],
        &pol,
    );
    assert_eq!(layout_blobs(&made), layout_blobs(&out));
}

#[test]
fn oras_pushes_an_artifact_with_a_subject_and_referrers_list_it() {
    let python = oras_python();
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let out = Command::new(&python)
        .arg(workspace().join("tests/clients/oras_referrers.py"))
        .arg(&b.addr)
        .output()
        .expect("run oras script");
    assert!(
        out.status.success(),
        "oras-py check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs buildah with its own vfs store under `dir` (no daemon, no overlay
/// mounts needed).
fn buildah(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("buildah")
        .args(["--storage-driver", "vfs", "--root"])
        .arg(dir.join("store"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("buildah is required (the README's test command installs it): {e}")
        });
    assert!(
        out.status.success(),
        "buildah {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn buildah_builds_pushes_and_pulls_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let work = tmp.path();
    let file = work.join("greeting");
    std::fs::write(&file, b"hello from buildah\n").expect("write");
    let w = buildah(work, &["from", "scratch"]);
    buildah(
        work,
        &["copy", &w, file.to_str().expect("path"), "/greeting"],
    );
    for (format, repo, media_type) in [
        (
            "oci",
            "buildah/oci",
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            "docker",
            "buildah/docker",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let local = format!("local-{format}");
        buildah(work, &["commit", "--format", format, &w, &local]);
        let dest = format!("docker://{}/{repo}:v1", b.addr);
        buildah(work, &["push", "--tls-verify=false", &local, &dest]);
        let r = reqwest::blocking::get(b.url(&format!("/v2/{repo}/manifests/v1"))).expect("get");
        assert_eq!(r.status(), 200, "{format}");
        assert_eq!(r.headers()["content-type"], media_type, "{format}");
    }
    // Forget everything local, then pull from Berth and read the file back.
    buildah(work, &["rm", "--all"]);
    buildah(work, &["rmi", "--all", "--force"]);
    for repo in ["buildah/oci", "buildah/docker"] {
        let src = format!("docker://{}/{repo}:v1", b.addr);
        let c = buildah(work, &["from", "--pull-always", "--tls-verify=false", &src]);
        let c = c.lines().last().expect("container name").to_string();
        let mnt = buildah(work, &["mount", &c]);
        let got = std::fs::read(Path::new(&mnt).join("greeting")).expect("file in the image");
        assert_eq!(got, b"hello from buildah\n", "{repo}");
        buildah(work, &["umount", &c]);
        buildah(work, &["rm", &c]);
    }
}

#[test]
fn podman_builds_pushes_and_pulls_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let work = tmp.path();
    let podman = |args: &[&str]| -> String {
        let out = Command::new("podman")
            .args(["--storage-driver", "vfs", "--root"])
            .arg(work.join("store"))
            .arg("--runroot")
            .arg(work.join("run"))
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("podman is required (the README's test command installs it): {e}")
            });
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ctx = work.join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("motd"), b"built by podman\n").expect("write");
    std::fs::write(ctx.join("Containerfile"), "FROM scratch\nCOPY motd /motd\n").expect("write");
    podman(&["build", "-t", "localhost/p:v1", ctx.to_str().expect("path")]);
    let built = podman(&["image", "inspect", "--format", "{{.Id}}", "localhost/p:v1"]);
    let remote = format!("{}/podman/img:v1", b.addr);
    podman(&[
        "push",
        "--tls-verify=false",
        "localhost/p:v1",
        &format!("docker://{remote}"),
    ]);
    podman(&["rmi", "--all", "--force"]);
    podman(&["pull", "--tls-verify=false", &remote]);
    let pulled = podman(&["image", "inspect", "--format", "{{.Id}}", &remote]);
    assert_eq!(built, pulled, "the image pulled back is the image built");
}

//! The delivery files under `deploy/` and the commands they use: the
//! container image (`Containerfile`, `deploy/image-context.sh`) built with
//! buildah and run with podman, the Helm chart checked with Helm's own code,
//! the systemd unit checked with `systemd-analyze`, SIGHUP (the unit's
//! `ExecReload`), and the completions and man pages.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Berth, berth, free_port, oras_python, workspace};

/// Runs `cmd`, panicking with its output unless it succeeds; its standard
/// output, trimmed.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?} (the README's test command installs it): {e}"))
}

/// Waits until `url` answers 200.
fn wait_ok(url: &str, within: Duration, what: &dyn Fn() -> String) {
    let deadline = Instant::now() + within;
    loop {
        if reqwest::blocking::get(url).is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200:\n{}",
            what()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// podman and buildah with their own vfs store under `dir` (no daemon, no
/// overlay mounts), run as this sandbox allows: the container's limits are
/// set below the ones podman would ask for (raising a hard limit needs
/// CAP_SYS_RESOURCE, which a container host may not have), the container
/// gets no cgroups (`--cgroups disabled`), and on a host with cgroup v1
/// and a v2 hierarchy beside it (crun refuses that "hybrid" mode) the
/// runtime is crun started in a mount namespace of its own without the v2
/// mount (`runtime`).
struct Containers {
    dir: PathBuf,
    /// A `crun` wrapper, on a hybrid cgroup host.
    runtime: Option<PathBuf>,
}

/// The limits the container gets.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

impl Containers {
    fn new(dir: PathBuf) -> Self {
        let hybrid = std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|m| m.lines().any(|l| l.contains(" /sys/fs/cgroup/unified ")));
        let runtime = hybrid.then(|| {
            // Named crun: podman knows what a runtime can do by its name.
            let wrapper = dir.join("runtime/crun");
            std::fs::create_dir_all(wrapper.parent().expect("parent")).expect("mkdir");
            std::fs::write(
                &wrapper,
                "#!/bin/sh\nexec unshare -m --propagation private sh -c \
                 'umount /sys/fs/cgroup/unified; exec crun \"$@\"' crun \"$@\"\n",
            )
            .expect("write");
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(&wrapper, mode).expect("chmod");
            wrapper
        });
        Self { dir, runtime }
    }

    fn tool(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args(["--storage-driver", "vfs", "--root"])
            .arg(self.dir.join("store"))
            .arg("--runroot")
            .arg(self.dir.join("run"));
        c
    }

    fn podman_command(&self) -> Command {
        let mut c = self.tool("podman");
        c.args(["--cgroup-manager", "cgroupfs"]);
        if let Some(r) = &self.runtime {
            c.arg("--runtime").arg(r);
        }
        c
    }

    fn podman(&self, args: &[&str]) -> String {
        run(self.podman_command().args(args))
    }

    fn buildah(&self, args: &[&str]) -> String {
        run(self.tool("buildah").args(args))
    }
}

/// Removes the test's container however the test ends.
struct Running<'a> {
    containers: &'a Containers,
    name: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = output(
            self.containers
                .podman_command()
                .args(["rm", "-f", "-t", "0", &self.name]),
        );
    }
}

#[test]
fn the_image_builds_runs_as_non_root_answers_livez_and_round_trips() {
    let tmp = tempfile::tempdir().expect("tmp");
    let work = tmp.path();
    let ctx = work.join("ctx");
    // The debug binary without its line tables: the same program, a
    // smaller layer to copy, compress and push.
    let binary = work.join("berth");
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg(&binary));
    run(Command::new(workspace().join("deploy/image-context.sh"))
        .arg(&binary)
        .arg(&ctx));
    for f in [
        "rootfs/usr/bin/berth",
        "rootfs/etc/passwd",
        "rootfs/etc/berth/config.json",
        "rootfs/usr/share/bash-completion/completions/berth",
        "rootfs/usr/share/man/man1/berth.1",
    ] {
        assert!(ctx.join(f).is_file(), "{f} is in the context");
    }
    run(berth()
        .arg("verify")
        .arg(ctx.join("rootfs/etc/berth/config.json")));

    let c = Containers::new(work.to_path_buf());
    c.buildah(&[
        "bud",
        "--format",
        "docker",
        "-f",
        workspace().join("Containerfile").to_str().expect("path"),
        "-t",
        "localhost/berth:test",
        ctx.to_str().expect("path"),
    ]);
    let inspect: Value =
        serde_json::from_str(&c.buildah(&["inspect", "--type", "image", "localhost/berth:test"]))
            .expect("inspect json");
    let config = &inspect["Docker"]["config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert!(config["ExposedPorts"]["5000/tcp"].is_object(), "{config}");
    assert!(config["Volumes"]["/var/lib/berth"].is_object(), "{config}");
    let health = config["Healthcheck"]["Test"].to_string();
    assert!(health.contains("/livez"), "{health}");

    // Run it as it is (its own config, its volume), port 5000 published
    // on a port of the host's loopback.
    let port = free_port();
    let name = format!("berth-test-{port}");
    let publish = format!("127.0.0.1:{port}:5000");
    let running = Running {
        containers: &c,
        name: name.clone(),
    };
    let mut args = vec!["run", "-d", "--name", &name, "--cgroups", "disabled"];
    args.extend(ULIMITS);
    args.extend(["-p", &publish, "localhost/berth:test"]);
    c.podman(&args);
    let logs = || c.podman(&["logs", &name]);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{base}/livez"), Duration::from_secs(60), &logs);

    // Not root: the container's process, seen from the host.
    let pid = c.podman(&["inspect", "--format", "{{.State.Pid}}", &name]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uid.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65532"; 4],
        "{uid}"
    );
    // The image's HEALTHCHECK (`berth health` in the container) passes.
    c.podman(&["healthcheck", "run", &name]);
    // Its man pages and completions are in it.
    let man = work.join("berth-serve.1");
    let from = format!("{name}:/usr/share/man/man1/berth-serve.1");
    c.podman(&["cp", &from, man.to_str().expect("path")]);
    assert!(
        std::fs::read_to_string(&man)
            .expect("man page")
            .contains("serve")
    );

    // The image pushed to the Berth it runs (its data on the image's
    // volume), then pulled back into a store of its own: the same image.
    let pushed = format!("127.0.0.1:{port}/berth/server:test");
    let remote = format!("docker://{pushed}");
    c.buildah(&[
        "push",
        "--tls-verify=false",
        "localhost/berth:test",
        &remote,
    ]);
    let id = c.podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost/berth:test",
    ]);
    let back = Containers::new(work.join("back"));
    back.podman(&["pull", "--tls-verify=false", &remote]);
    let pulled = back.podman(&["image", "inspect", "--format", "{{.Id}}", &pushed]);
    assert_eq!(id, pulled, "the image pulled back is the image built");

    // SIGTERM (podman stop) ends it cleanly.
    c.podman(&["stop", "-t", "20", &name]);
    let code = c.podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code, "0", "{}", logs());
    drop(running);
}

#[test]
fn the_helm_chart_lints_renders_to_valid_manifests_and_round_trips_as_an_oci_chart() {
    let python = oras_python();
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    let out = tmp.path().join("out");
    run(Command::new(&python)
        .arg(workspace().join("tests/deploy/helm_chart.py"))
        .arg(workspace().join("deploy/helm/berth"))
        .arg(&b.addr)
        .arg(&out));
    // The config each rendering carries is one Berth accepts (the S3 and
    // Redis one, by a build with those features).
    run(berth().arg("verify").arg(out.join("config-default.json")));
    if cfg!(all(feature = "s3", feature = "redis")) {
        run(berth().arg("verify").arg(out.join("config-s3-redis.json")));
    }
    if cfg!(all(feature = "azure", feature = "dynamodb")) {
        run(berth()
            .arg("verify")
            .arg(out.join("config-azure-dynamodb.json")));
    }
    if cfg!(all(feature = "gcs", feature = "redis")) {
        run(berth().arg("verify").arg(out.join("config-gcs-redis.json")));
    }
    // Stored as Helm's OCI chart: its config and layer media types.
    let manifest: Value = reqwest::blocking::Client::new()
        .get(b.url("/v2/charts/berth/manifests/0.1.0"))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    let pushed: Value =
        serde_json::from_slice(&std::fs::read(out.join("pushed.json")).expect("read"))
            .expect("json");
    assert_eq!(
        manifest["layers"][0]["digest"],
        format!("sha256:{}", pushed["sha256"].as_str().expect("sha256")),
        "the layer is the packaged chart"
    );
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The unit as installed, but with this test's binary: `verify` wants
    // ExecStart's program to exist.
    let unit =
        std::fs::read_to_string(workspace().join("deploy/systemd/berth.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/berth serve"));
    let unit = unit.replace("/usr/local/bin/berth", env!("CARGO_BIN_EXE_berth"));
    let path = tmp.path().join("berth.service");
    std::fs::write(&path, unit).expect("write");
    // Documentation= names the man pages: `verify` looks them up.
    let man = tmp.path().join("man");
    run(berth().arg("man").arg(man.join("man1")));
    run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", &man));
    let security = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path));
    let level: f64 = security
        .lines()
        .find_map(|l| l.split("Overall exposure level for berth.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{security}"));
    assert!(level <= 2.0, "exposure {level}:\n{security}");
}

/// A config file seen through two symbolic links, `config.json` →
/// `link/current` → `vN/config.json`: re-pointing the middle link changes
/// the config without an event the file watcher sees (it watches the
/// config's directory and the one the links end in), so only SIGHUP can
/// make Berth read it again.
#[cfg(unix)]
#[test]
fn sighup_reloads_the_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let htpasswd = dir.join("htpasswd");
    let hash = bcrypt::hash("a", 4).expect("hash");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).expect("write");
    let version = |n: u32, anonymous: &[&str]| {
        let d = dir.join(format!("v{n}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        let c = json!({
            "storage": {"rootDirectory": dir.join("root")},
            "http": {
                "address": "127.0.0.1", "port": "0",
                "auth": {"htpasswd": {"path": htpasswd}},
                "accessControl": {"repositories": {
                    "**": {"defaultPolicy": ["read"], "anonymousPolicy": anonymous}
                }}
            }
        });
        std::fs::write(d.join("config.json"), c.to_string()).expect("write");
        d.join("config.json")
    };
    let links = dir.join("link");
    std::fs::create_dir_all(&links).expect("mkdir");
    std::os::unix::fs::symlink(version(1, &[]), links.join("current")).expect("link");
    let config = dir.join("conf").join("config.json");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(links.join("current"), &config).expect("link");

    let b = Berth::start_config(&config);
    let anonymous = || {
        reqwest::blocking::get(b.url("/v2/app/tags/list"))
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(anonymous(), 401);
    // Anonymous reads allowed in a new version, swapped in out of sight.
    let next = version(2, &["read"]);
    let tmp_link = links.join("next");
    std::os::unix::fs::symlink(&next, &tmp_link).expect("link");
    std::fs::rename(&tmp_link, links.join("current")).expect("rename");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(anonymous(), 401, "the watcher did not see the swap");

    let pid = b.child.id().to_string();
    run(Command::new("kill").args(["-HUP", &pid]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while anonymous() == 401 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the config:\n{}",
            b.log.lock().expect("log").join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        anonymous(),
        404,
        "anonymous reads are allowed (no such repository)"
    );
    let log = b.log.lock().expect("log").join("\n");
    assert!(log.contains("SIGHUP"), "{log}");
    // Still serving: SIGHUP does not stop it.
    assert!(b.child.id() > 0);
    assert_eq!(
        reqwest::blocking::get(b.url("/livez"))
            .expect("get")
            .status(),
        200
    );
}

/// The subcommands every build has (`scan` is a feature's).
const SUBCOMMANDS: [&str; 7] = [
    "serve",
    "verify",
    "scrub",
    "bench",
    "completions",
    "man",
    "health",
];

#[test]
fn completions_and_man_pages_come_from_the_command_line_definitions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bash = run(berth().args(["completions", "bash"]));
    let file = tmp.path().join("berth.bash");
    std::fs::write(&file, &bash).expect("write");
    run(Command::new("bash").arg("-n").arg(&file));
    for word in SUBCOMMANDS {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = run(berth().args(["completions", shell]));
        assert!(script.contains("serve"), "{shell}: {script}");
    }
    let refused = output(berth().args(["completions", "tcsh"]));
    assert!(!refused.status.success());

    let dir = tmp.path().join("man1");
    run(berth().arg("man").arg(&dir));
    let page = std::fs::read_to_string(dir.join("berth.1")).expect("berth.1");
    assert!(page.contains(".TH berth 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "berth.1 lacks {sub}");
        assert!(
            dir.join(format!("berth-{sub}.1")).is_file(),
            "berth-{sub}.1 is written"
        );
    }
    let serve = std::fs::read_to_string(dir.join("berth-serve.1")).expect("berth-serve.1");
    assert!(serve.contains("force\\-reparse"), "{serve}");
    // `man` reads it.
    let text = run(Command::new("man")
        .arg("-l")
        .arg(dir.join("berth-serve.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80"));
    assert!(text.contains("force-reparse"), "{text}");
}

/// `berth health URL`: the image's HEALTHCHECK. Success on 200, failure
/// otherwise (and when nothing answers).
#[test]
fn health_succeeds_only_on_a_200() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = Berth::start(&tmp.path().join("root"));
    run(berth().arg("health").arg(b.url("/livez")));
    let missing = output(berth().arg("health").arg(b.url("/no-such-route")));
    assert!(!missing.status.success());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/livez");
    let nobody = output(berth().arg("health").arg(&url));
    assert!(!nobody.status.success());
    let said = String::from_utf8_lossy(&nobody.stderr);
    assert!(
        said.starts_with("berth: health: ") && said.contains(&url),
        "{said}"
    );
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("404"), "{said}");
}

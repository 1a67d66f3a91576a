//! Spawning `berth serve` on port 0 and building OCI layouts to push.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oci::Digest;
use serde_json::{Value, json};

pub fn berth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_berth"))
}

/// A response's `WWW-Authenticate` value ("" without one).
pub fn www_authenticate(r: &reqwest::blocking::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default()
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The workspace root (for `examples/` and `tests/clients/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `berth serve` process on 127.0.0.1 with a port the OS picked.
pub struct Berth {
    pub child: Child,
    /// `host:port`.
    pub addr: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Berth {
    /// Writes a config for `root` and starts the server on it.
    pub fn start(root: &Path) -> Self {
        Self::start_with(root, json!({}))
    }

    /// Like [`Berth::start`], with more `storage` keys.
    pub fn start_with(root: &Path, storage: Value) -> Self {
        Self::start_with_args(root, storage, &[])
    }

    /// Like [`Berth::start_with`], with more arguments to `serve`.
    pub fn start_with_args(root: &Path, storage: Value, args: &[&str]) -> Self {
        Self::start_full(root, storage, json!({}), args)
    }

    /// The general form: more `storage` keys, more `http` keys, and more
    /// arguments to `serve`.
    pub fn start_full(root: &Path, storage: Value, http: Value, args: &[&str]) -> Self {
        let config = root.with_extension("json");
        let mut storage_obj = json!({ "rootDirectory": root });
        if let (Some(o), Value::Object(extra)) = (storage_obj.as_object_mut(), storage) {
            o.extend(extra);
        }
        let mut http_obj = json!({"address": "127.0.0.1", "port": "0"});
        if let (Some(o), Value::Object(extra)) = (http_obj.as_object_mut(), http) {
            o.extend(extra);
        }
        std::fs::write(
            &config,
            json!({"storage": storage_obj, "http": http_obj}).to_string(),
        )
        .expect("write config");
        Self::start_config_args(&config, args)
    }

    /// Starts the server on a config file written by the caller (whose
    /// `http.port` should be "0").
    pub fn start_config(config: &Path) -> Self {
        Self::start_config_args(config, &[])
    }

    fn start_config_args(config: &Path, args: &[&str]) -> Self {
        let child = berth()
            .arg("serve")
            .arg(config)
            .args(args)
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn berth");
        Self::attach(child)
    }

    /// Takes over a spawned `berth serve` (its standard error piped):
    /// gathers its log and waits for the address it listens on.
    pub fn attach(mut child: Child) -> Self {
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1))
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().expect("log").push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| {
                let log = log.lock().expect("log").join("\n");
                panic!("berth did not start ({e}):\n{log}")
            });
        Self { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        self.terminate_wait()
    }

    /// Waits for the process to exit (after a signal was sent).
    pub fn terminate_wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "berth did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gzip-compressed tar holding one file, with its uncompressed digest
/// (the config's `diff_id`). The same name and content give the same bytes.
pub fn layer(name: &str, content: &[u8]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, name, content).expect("tar");
    let raw = tar.into_inner().expect("tar");
    let diff_id = Digest::sha256(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

/// Writes `data` into the layout at `dir` and answers its descriptor
/// (`digest` and `size`, no media type yet).
pub fn put_blob(dir: &Path, data: &[u8]) -> Value {
    let d = Digest::sha256(data);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), data).expect("write blob");
    json!({"digest": d.to_string(), "size": data.len()})
}

/// The descriptor `v` with its `mediaType` set.
pub fn with_media(mut v: Value, media_type: &str) -> Value {
    v["mediaType"] = json!(media_type);
    v
}

/// Writes an OCI layout at `dir` with tag `tag`. One platform gives an
/// image manifest; several give an index of them.
pub fn write_layout(dir: &Path, tag: &str, platforms: &[&str]) -> Digest {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let mut manifests = Vec::new();
    for arch in platforms {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for i in 0..2 {
            let payload: Vec<u8> = format!("{arch} layer {i} ").repeat(5000).into_bytes();
            let (gz, diff) = layer(&format!("file{i}.txt"), &payload);
            layers.push(with_media(
                put_blob(dir, &gz),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ));
            diff_ids.push(diff.to_string());
        }
        let config = json!({"architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let cfg = with_media(
            put_blob(dir, config.to_string().as_bytes()),
            "application/vnd.oci.image.config.v1+json",
        );
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg, "layers": layers});
        let mut d = with_media(
            put_blob(dir, m.to_string().as_bytes()),
            "application/vnd.oci.image.manifest.v1+json",
        );
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        manifests.push(d);
    }
    let mut top = if manifests.len() == 1 {
        manifests.remove(0)
    } else {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        with_media(
            put_blob(dir, idx.to_string().as_bytes()),
            "application/vnd.oci.image.index.v1+json",
        )
    };
    if let Some(o) = top.as_object_mut() {
        o.remove("platform");
    }
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let digest: Digest = top["digest"]
        .as_str()
        .expect("digest")
        .parse()
        .expect("digest");
    std::fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [top]}).to_string(),
    )
    .expect("index");
    digest
}

/// The blobs of a layout, as file name → bytes.
pub fn layout_blobs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// A skopeo policy file that accepts any image (the tests' images are unsigned).
pub fn skopeo_policy(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("policy.json");
    std::fs::write(&p, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).expect("policy");
    p
}

/// `skopeo copy` of the layout `src` (tag v1) to `docker://dest` over
/// plain HTTP, with `creds` (user:password) when given; the trust policy
/// is written under `dir`.
pub fn skopeo_push(
    dir: &Path,
    src: &Path,
    dest: &str,
    creds: Option<&str>,
) -> std::process::Output {
    let mut c = Command::new("skopeo");
    c.arg("--policy")
        .arg(skopeo_policy(dir))
        .args(["copy", "--dest-tls-verify=false"]);
    if let Some(creds) = creds {
        c.args(["--dest-creds", creds]);
    }
    c.arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo is required (the README's test command installs it)")
}

/// The Python with oras-py that the README's test command sets up.
pub fn oras_python() -> PathBuf {
    let python = std::env::var("BERTH_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: the README's test command creates it with oras-py",
        python.display()
    );
    python
}

/// An htpasswd file under `dir` with these users and passwords (bcrypt
/// at the lowest cost, for speed).
pub fn htpasswd_file(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("htpasswd");
    let lines: String = users
        .iter()
        .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt")))
        .collect();
    std::fs::write(&path, lines).expect("write htpasswd");
    path
}

/// Pushes an image of an empty config and no layer as `repo:tag`, with
/// Basic `creds` when given; answers the manifest's digest and text.
pub fn push_empty_image_as(
    b: &Berth,
    repo: &str,
    tag: &str,
    creds: Option<(&str, &str)>,
) -> (Digest, String) {
    let c = reqwest::blocking::Client::new();
    let with_creds = |r: reqwest::blocking::RequestBuilder| match creds {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    let config_blob = b"{}".to_vec();
    let cd = Digest::sha256(&config_blob);
    let r = with_creds(c.post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={cd}"))))
        .body(config_blob)
        .send()
        .expect("blob");
    assert_eq!(r.status(), 201);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": []})
    .to_string();
    let r = with_creds(c.put(b.url(&format!("/v2/{repo}/manifests/{tag}"))))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .expect("manifest");
    assert_eq!(r.status(), 201);
    (Digest::sha256(manifest.as_bytes()), manifest)
}

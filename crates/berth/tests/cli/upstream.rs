//! Upstream registries for the sync tests: the real CNCF distribution
//! (Debian's `docker-registry`) and a second Berth, each on a free port of
//! 127.0.0.1, with htpasswd users and TLS from a test CA when asked, and a
//! way to stop one and start it again on the same port and data (an
//! upstream that dies and comes back).
//!
//! Both implement [`Upstream`], so a test can run against either.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_client::{Client, ClientOptions};
use serde_json::json;

use crate::support::Berth;

/// What an upstream is started with. `UpstreamOptions::new()` is plain
/// HTTP, anonymous, deletes allowed.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// htpasswd users (name, password); none means anonymous access.
    users: Vec<(String, String)>,
    /// HTTPS with a certificate from a fresh test CA.
    tls: bool,
    /// With `tls`, clients must present a certificate of the test CA
    /// (a second Berth only: `http.tls.cacert`).
    mtls: bool,
    /// docker-registry's `storage.delete.enabled` (manifest and blob
    /// deletes; Berth always allows them).
    delete: bool,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamOptions {
    pub fn new() -> Self {
        Self {
            users: Vec::new(),
            tls: false,
            mtls: false,
            delete: true,
        }
    }

    /// Adds an htpasswd user (bcrypt, cost 4: the tests log in often).
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_string(), password.to_string()));
        self
    }

    /// Serves HTTPS with a certificate for 127.0.0.1 and localhost from a
    /// test CA (see [`Upstream::ca_pem`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// HTTPS that asks every client for a certificate of the test CA
    /// (mTLS; [`BerthUpstream`] only). Its `cert_dir` then holds the
    /// client certificate and key too, as zot's `certDir` would.
    pub fn mtls(mut self) -> Self {
        self.tls = true;
        self.mtls = true;
        self
    }

    /// Refuses deletes (docker-registry's default).
    pub fn without_delete(mut self) -> Self {
        self.delete = false;
        self
    }

    /// Writes the htpasswd file under `dir` when there are users.
    fn write_htpasswd(&self, dir: &Path) -> Option<PathBuf> {
        if self.users.is_empty() {
            return None;
        }
        let path = dir.join("htpasswd");
        let lines: String = self
            .users
            .iter()
            .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt")))
            .collect();
        std::fs::write(&path, lines).expect("write htpasswd");
        Some(path)
    }

    /// Writes the test PKI under `dir/pki` when TLS is on: `ca.crt`,
    /// `server.crt`, `server.key` (and client certificates, unused here).
    fn write_pki(&self, dir: &Path) -> Option<Pki> {
        if !self.tls {
            return None;
        }
        let pki = dir.join("pki");
        crate::tls::make_pki(&pki, "upstream");
        // The CA alone: zot's `certDir` would also present a client
        // certificate found beside it.
        let cert_dir = dir.join("ca");
        std::fs::create_dir_all(&cert_dir).expect("mkdir");
        std::fs::copy(pki.join("ca.crt"), cert_dir.join("ca.crt")).expect("copy ca");
        if self.mtls {
            for f in ["client.cert", "client.key"] {
                std::fs::copy(pki.join(f), cert_dir.join(f)).expect("copy client certificate");
            }
        }
        let identity_pem = self.mtls.then(|| {
            let mut pem = std::fs::read(pki.join("client.cert")).expect("client cert");
            pem.extend(std::fs::read(pki.join("client.key")).expect("client key"));
            pem
        });
        Some(Pki {
            identity_pem,
            ca_pem: std::fs::read_to_string(pki.join("ca.crt")).expect("read ca"),
            ca: pki.join("ca.crt"),
            cert_dir,
            cert: pki.join("server.crt"),
            key: pki.join("server.key"),
        })
    }
}

/// The files of a test CA and the server certificate it signed.
#[derive(Debug, Clone)]
struct Pki {
    /// The client certificate and key a client presents under mTLS.
    identity_pem: Option<Vec<u8>>,
    ca_pem: String,
    ca: PathBuf,
    /// A directory holding only `ca.crt`.
    cert_dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A registry the sync extension copies from.
pub trait Upstream {
    /// `127.0.0.1:port`: what a sync config's `urls` and an image
    /// reference name.
    fn host(&self) -> &str;

    /// Whether it serves HTTPS.
    fn is_tls(&self) -> bool;

    /// The PEM of the CA that signed its certificate, when it serves HTTPS.
    fn ca_pem(&self) -> Option<&str>;

    /// The CA's file, when it serves HTTPS (curl's `--cacert`).
    fn ca_path(&self) -> Option<&Path>;

    /// A directory holding the CA, as `ca.crt`, when it serves HTTPS (a
    /// sync config's `certDir`, skopeo's `--src-cert-dir`); under mTLS
    /// also `client.cert` and `client.key`.
    fn cert_dir(&self) -> Option<&Path>;

    /// The client certificate and key to present, under mTLS.
    fn identity_pem(&self) -> Option<Vec<u8>> {
        None
    }

    /// Kills the process (no graceful shutdown: it dies). Its port then
    /// refuses connections; its data stays.
    fn stop(&mut self);

    /// Starts it again on the same port and data, and waits until it
    /// answers.
    fn restart(&mut self);

    /// `http://host:port` or `https://host:port`.
    fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// A client for it with `creds` (`user:password`), trusting its test
    /// CA over HTTPS.
    fn client(&self, creds: Option<&str>) -> Client {
        Client::with_options(
            &self.url(),
            creds,
            ClientOptions {
                ca_certs_pem: self
                    .ca_pem()
                    .map(|p| vec![p.as_bytes().to_vec()])
                    .unwrap_or_default(),
                identity_pem: self.identity_pem(),
                ..ClientOptions::default()
            },
        )
        .expect("client")
    }
}

/// A reqwest client that trusts only `ca_pem` (and no system roots).
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).expect("ca pem");
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// The status of `GET url/v2/`, asked from a thread of its own (so that
/// this works from inside an async test too); `None` when nothing answers.
fn v2_status(url: &str, ca_pem: Option<&str>) -> Option<u16> {
    let url = format!("{url}/v2/");
    let ca_pem = ca_pem.map(str::to_string);
    std::thread::spawn(move || {
        let mut builder = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            builder = builder.tls_certs_only(
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).expect("ca pem"),
            );
        }
        let client = builder.build().expect("client");
        client.get(&url).send().ok().map(|r| r.status().as_u16())
    })
    .join()
    .expect("readiness thread")
}

/// Polls `GET /v2/` until it answers (200 or 401), for at most 30 s.
fn wait_answers(url: &str, ca_pem: Option<&str>, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = v2_status(url, ca_pem) {
            assert!(
                status == 200 || status == 401,
                "{url}/v2/ answered {status}:\n{}",
                log()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}/v2/ did not answer:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `docker-registry serve` process (CNCF distribution 2.8, filesystem
/// storage) in a temporary directory of its own, killed on drop.
pub struct DockerRegistry {
    /// Holds the config, the data, the htpasswd file and the PKI; removed
    /// after the process is killed.
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `127.0.0.1:port`, kept across restarts.
    addr: String,
    pki: Option<Pki>,
    htpasswd: Option<PathBuf>,
    /// `storage.delete.enabled`.
    delete: bool,
    /// Every line the process wrote on stderr, across restarts.
    log: Arc<Mutex<Vec<String>>>,
}

impl DockerRegistry {
    /// Starts it on a port the OS picks and waits until `/v2/` answers.
    pub fn start(options: UpstreamOptions) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let pki = options.write_pki(dir.path());
        let htpasswd = options.write_htpasswd(dir.path());
        let mut reg = Self {
            dir,
            child: None,
            addr: "127.0.0.1:0".to_string(),
            pki,
            htpasswd,
            delete: options.delete,
            log: Arc::new(Mutex::new(Vec::new())),
        };
        reg.spawn();
        reg
    }

    /// The registry's storage root (`docker/registry/v2/...` below it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Whether the process is alive (not stopped, and not exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("wait").is_none(),
            None => false,
        }
    }

    /// The config for `self.addr` (port 0 the first time), as JSON, which
    /// distribution's YAML parser reads.
    fn write_config(&self) -> PathBuf {
        let mut config = json!({
            "version": "0.1",
            "log": {"level": "info", "accesslog": {"disabled": true}},
            "storage": {
                "filesystem": {"rootdirectory": self.data_dir()},
                "delete": {"enabled": self.delete},
                "maintenance": {"uploadpurging": {"enabled": false}},
            },
            // A fixed secret keeps upload sessions valid across a restart.
            "http": {"addr": self.addr, "secret": "berth-sync-tests"},
        });
        if let Some(pki) = &self.pki {
            config["http"]["tls"] = json!({"certificate": pki.cert, "key": pki.key});
        }
        if let Some(path) = &self.htpasswd {
            config["auth"] = json!({"htpasswd": {"realm": "berth-upstream", "path": path}});
        }
        let path = self.dir.path().join("config.yml");
        std::fs::write(&path, config.to_string()).expect("write config");
        path
    }

    /// Starts the process on `self.addr`, learns its port from the log
    /// line `listening on 127.0.0.1:PORT`, and waits until it answers.
    fn spawn(&mut self) {
        let config = self.write_config();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is required (scripts/test.sh installs it)");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = line.split("listening on ").nth(1).map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect::<String>()
                });
                sink.lock().expect("log").push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => self.addr = addr,
            Err(e) => panic!("docker-registry did not start ({e}):\n{}", self.log()),
        }
        let url = self.url();
        let log = self.log.clone();
        wait_answers(&url, self.ca_pem(), || log.lock().expect("log").join("\n"));
    }
}

impl Upstream for DockerRegistry {
    fn host(&self) -> &str {
        &self.addr
    }

    fn is_tls(&self) -> bool {
        self.pki.is_some()
    }

    fn ca_pem(&self) -> Option<&str> {
        self.pki.as_ref().map(|p| p.ca_pem.as_str())
    }

    fn ca_path(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.ca.as_path())
    }

    fn cert_dir(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.cert_dir.as_path())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A second `berth serve` as an upstream, in a temporary directory of its
/// own: htpasswd users (`http.auth.htpasswd`, no fail delay) and TLS
/// (`http.tls`) as [`UpstreamOptions`] say.
pub struct BerthUpstream {
    dir: tempfile::TempDir,
    berth: Option<Berth>,
    /// `127.0.0.1:port`, kept across restarts.
    addr: String,
    pki: Option<Pki>,
}

impl BerthUpstream {
    /// Starts it on a port the OS picks and waits until `/v2/` answers.
    pub fn start(options: UpstreamOptions) -> Self {
        Self::start_with(options, json!({}))
    }

    /// [`BerthUpstream::start`] with more `http` config keys (e.g.
    /// `accessControl`).
    pub fn start_with(options: UpstreamOptions, http: serde_json::Value) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let pki = options.write_pki(dir.path());
        let mut http_obj = json!({});
        if let Some(path) = options.write_htpasswd(dir.path()) {
            http_obj["auth"] = json!({"htpasswd": {"path": path}, "failDelay": 0});
        }
        if let Some(pki) = &pki {
            http_obj["tls"] = json!({"cert": pki.cert, "key": pki.key});
            if options.mtls {
                http_obj["tls"]["cacert"] = json!(pki.ca);
            }
        }
        if let (Some(o), serde_json::Value::Object(extra)) = (http_obj.as_object_mut(), http) {
            o.extend(extra);
        }
        let berth = Berth::start_full(&dir.path().join("root"), json!({}), http_obj, &[]);
        let addr = berth.addr.clone();
        let up = Self {
            dir,
            berth: Some(berth),
            addr,
            pki,
        };
        // (Under mTLS the probe, which has no client certificate, would be
        // refused; `start_full` waited for the server's "listening" line.)
        if !options.mtls {
            wait_answers(&up.url(), up.ca_pem(), || up.log());
        }
        up
    }

    /// The running server (its log, its process).
    pub fn berth(&self) -> &Berth {
        self.berth.as_ref().expect("the upstream Berth is stopped")
    }

    /// Its storage root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.berth
            .as_ref()
            .map(|b| b.log.lock().expect("log").join("\n"))
            .unwrap_or_default()
    }
}

impl Upstream for BerthUpstream {
    fn host(&self) -> &str {
        &self.addr
    }

    fn is_tls(&self) -> bool {
        self.pki.is_some()
    }

    fn ca_pem(&self) -> Option<&str> {
        self.pki.as_ref().map(|p| p.ca_pem.as_str())
    }

    fn ca_path(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.ca.as_path())
    }

    fn cert_dir(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.cert_dir.as_path())
    }

    fn identity_pem(&self) -> Option<Vec<u8>> {
        self.pki.as_ref().and_then(|p| p.identity_pem.clone())
    }

    fn stop(&mut self) {
        // Dropping a `Berth` kills it.
        self.berth = None;
    }

    fn restart(&mut self) {
        self.stop();
        // The config `Berth::start_full` wrote, now with the port it got.
        let config = self.root().with_extension("json");
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).expect("read config")).expect("json");
        let port = self.addr.rsplit(':').next().expect("port").to_string();
        value["http"]["port"] = json!(port);
        std::fs::write(&config, value.to_string()).expect("write config");
        let berth = Berth::start_config(&config);
        assert_eq!(berth.addr, self.addr, "restarted on the same port");
        self.berth = Some(berth);
        wait_answers(&self.url(), self.ca_pem(), || self.log());
    }
}

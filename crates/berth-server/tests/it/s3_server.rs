//! A real S3 protocol server for tests: `s3s-fs` (installed by
//! `scripts/test.sh` with `cargo install s3s-fs`), serving a temporary
//! directory on a free loopback port and checking every request's SigV4
//! signature against its access key. Killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::listening::{free_port, wait_listening};
use berth_server::storage::{BucketStore, RepoLocks, S3Options, Store};

pub const ACCESS_KEY: &str = "berth-test";
pub const SECRET_KEY: &str = "berth-test-secret-0123456789";

pub struct S3Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// The `s3s-fs` binary: on PATH or in cargo's bin directory.
pub fn binary() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "s3s-fs is required by the S3 tests: run scripts/test.sh, or \
                 `cargo install s3s-fs@0.14.1 --features binary --locked`"
            )
        })
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    Command::new(binary())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("s3s.log")).expect("log"),
        ))
        .spawn()
        .expect("start s3s-fs")
}

impl S3Server {
    /// Stops the server (its data stays), as an outage would.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        for _ in 0..50 {
            self.child = spawn(self.dir.path(), self.port);
            if wait_listening(&mut self.child, self.port, Duration::from_secs(10)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("s3s-fs did not restart on port {}", self.port);
    }

    /// Starts a server with one bucket, `berth`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("data/berth")).expect("bucket dir");
        for _ in 0..5 {
            let port = free_port();
            let mut child = spawn(dir.path(), port);
            if wait_listening(&mut child, port, Duration::from_secs(10)) {
                return Self { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("s3s.log")).unwrap_or_default();
        panic!("s3s-fs did not start: {log}");
    }
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `storage.storageDriver` section for this server, keys under
    /// `rootdirectory`.
    pub fn driver(&self, rootdirectory: &str) -> serde_json::Value {
        serde_json::json!({
            "name": "s3",
            "rootdirectory": rootdirectory,
            "region": "us-east-1",
            "regionendpoint": self.endpoint(),
            "bucket": "berth",
            "forcepathstyle": true,
            "secure": false,
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
        })
    }

    pub fn options(&self, rootdirectory: &str) -> S3Options {
        S3Options {
            root_directory: rootdirectory.into(),
            region: Some("us-east-1".into()),
            region_endpoint: Some(self.endpoint()),
            bucket: "berth".into(),
            force_path_style: true,
            secure: false,
            skip_verify: false,
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
            redirect_blob_url: false,
            dedupe: true,
        }
    }

    /// A store on this server, keys under `rootdirectory`.
    pub fn store(&self, rootdirectory: &str) -> Store {
        BucketStore::open_s3(&self.options(rootdirectory), RepoLocks::default())
            .expect("open")
            .into_store()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

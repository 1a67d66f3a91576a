//! A real Azure Blob Storage emulator for tests: Azurite (npm, installed by
//! `scripts/test.sh` into `.npm-test/`, run with Debian's `nodejs`), its
//! blob service on a free loopback port with one account of ours, checking
//! every request's SharedKey signature. Killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::listening::{free_port, wait_listening};
use berth_server::storage::{
    AzureCredentials, AzureOptions, BucketSettings, BucketStore, RepoLocks, Store,
};

pub const ACCOUNT: &str = "bertha";
/// The account's key, base64 (of `berth-test-azure-key-0123456789ab`).
pub const KEY: &str = "YmVydGgtdGVzdC1henVyZS1rZXktMDEyMzQ1Njc4OWFi";
pub const CONTAINER: &str = "berth";

/// Creates a container with a SharedKey-signed request (node's own
/// crypto: Azurite ships no client, and object_store creates none).
const CREATE_CONTAINER: &str = r#"
const [url, account, key, container] = process.argv.slice(1);
const crypto = require('crypto');
const date = new Date().toUTCString();
const version = '2021-08-06';
const path = `/${account}/${container}`;
const toSign = ['PUT', '', '', '', '', '', '', '', '', '', '', '',
  `x-ms-date:${date}\nx-ms-version:${version}`,
  `/${account}${path}\nrestype:container`].join('\n');
const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64'))
  .update(toSign, 'utf8').digest('base64');
const req = require('http').request(new URL(`${url}${path}?restype=container`), {
  method: 'PUT',
  headers: {'x-ms-date': date, 'x-ms-version': version, 'Content-Length': 0,
    Authorization: `SharedKey ${account}:${sig}`},
}, (res) => {
  let body = '';
  res.on('data', (d) => body += d);
  res.on('end', () => {
    if (res.statusCode === 201 || res.statusCode === 409) process.exit(0);
    console.error(res.statusCode, body);
    process.exit(1);
  });
});
req.on('error', (e) => { console.error(e.message); process.exit(1); });
req.end();
"#;

pub struct AzuriteServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// Azurite's blob service: `BERTH_TEST_AZURITE`, else the workspace's
/// `.npm-test/node_modules/.bin/azurite-blob`.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_AZURITE") {
        return PathBuf::from(p);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = workspace.join(".npm-test/node_modules/.bin/azurite-blob");
    assert!(
        bin.is_file(),
        "Azurite is required by the Azure tests: run scripts/test.sh, or \
         `npm install --prefix .npm-test azurite@3.37.0`"
    );
    bin
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    Command::new(binary())
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir.join("data"))
        .args(["--silent", "--skipApiVersionCheck"])
        .env("AZURITE_ACCOUNTS", format!("{ACCOUNT}:{KEY}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("azurite.log")).expect("log"),
        ))
        .spawn()
        .expect("start azurite")
}

impl AzuriteServer {
    /// Starts Azurite with the account and its container `berth`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let mut child = spawn(dir.path(), port);
            if wait_listening(&mut child, port, Duration::from_secs(20)) {
                let server = Self { child, port, dir };
                server.create_container(CONTAINER);
                return server;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("azurite.log")).unwrap_or_default();
        panic!("azurite did not start: {log}");
    }

    /// Creates a container (nothing if it exists).
    pub fn create_container(&self, name: &str) {
        let out = Command::new("node")
            .args(["-e", CREATE_CONTAINER, &self.endpoint(), ACCOUNT, KEY, name])
            .output()
            .expect("run node");
        assert!(
            out.status.success(),
            "cannot create container {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The service URL, as zot's `serviceurl` names it (without the
    /// account: Berth adds it to an IP address's URL).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `storage.storageDriver` section for this server, keys under
    /// `rootdirectory`.
    pub fn driver(&self, rootdirectory: &str) -> serde_json::Value {
        serde_json::json!({
            "name": "azure",
            "rootdirectory": rootdirectory,
            "accountname": ACCOUNT,
            "accountkey": KEY,
            "container": CONTAINER,
            "serviceurl": self.endpoint(),
        })
    }

    pub fn options(&self, rootdirectory: &str) -> AzureOptions {
        AzureOptions {
            settings: BucketSettings {
                root_directory: rootdirectory.into(),
                redirect_blob_url: false,
                dedupe: true,
            },
            account_name: ACCOUNT.into(),
            container: CONTAINER.into(),
            credentials: AzureCredentials::SharedKey(KEY.into()),
            realm: None,
            service_url: Some(self.endpoint()),
        }
    }

    /// A store on this server, keys under `rootdirectory`.
    pub fn store(&self, rootdirectory: &str) -> Store {
        self.store_with(rootdirectory, true)
    }

    /// A store on this server, with `storage.dedupe` as given.
    pub fn store_with(&self, rootdirectory: &str, dedupe: bool) -> Store {
        let mut opts = self.options(rootdirectory);
        opts.settings.dedupe = dedupe;
        BucketStore::open_azure(&opts, RepoLocks::default())
            .expect("open")
            .into_store()
    }
}

impl Drop for AzuriteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

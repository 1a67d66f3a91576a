//! A real DynamoDB-compatible server for the tests: moto's server mode
//! (PyPI `moto[server]`, pinned in `scripts/test.sh`, which installs it
//! into `./.venv`) on a free loopback port, killed when dropped. moto
//! rather than dynalite: it implements `TransactWriteItems` with
//! conditions and cancellation reasons, which the store is built on.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DynamoServer {
    child: Child,
    pub port: u16,
}

/// `moto_server` beside the tests' Python, in the workspace's `.venv`, or
/// on the `PATH`.
pub fn binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let beside_python = std::env::var_os("BERTH_TEST_PYTHON")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(|d| d.join("moto_server")));
    let candidates = beside_python
        .into_iter()
        .chain([workspace.join(".venv/bin/moto_server")])
        .chain(std::env::var_os("PATH").into_iter().flat_map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("moto_server"))
                .collect::<Vec<_>>()
        }));
    for c in candidates {
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "moto_server is required by the DynamoDB tests: run scripts/test.sh, which \
         installs moto[server] into ./.venv"
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl DynamoServer {
    /// Starts a server and waits until it accepts connections; retried on
    /// another port if it does not come up.
    pub fn start() -> Self {
        for _ in 0..3 {
            let port = free_port();
            if let Some(child) = launch(port) {
                return Self { child, port };
            }
        }
        panic!("moto_server did not come up");
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, as a crash would) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn launch(port: u16) -> Option<Child> {
    let mut child = Command::new(binary())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for DynamoServer {
    fn drop(&mut self) {
        self.kill();
    }
}

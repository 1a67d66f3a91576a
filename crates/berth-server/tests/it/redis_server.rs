//! A real `redis-server` (Debian's package `redis-server`, installed by
//! `scripts/test.sh`) on a free loopback port, with no persistence, in a
//! temporary directory; killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// The extra `redis-server` arguments, for a restart.
    args: Vec<String>,
    /// Holds the log file and whatever Redis writes; removed on drop.
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    let packaged = Path::new("/usr/bin/redis-server");
    if packaged.exists() {
        return packaged.to_path_buf();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "redis-server is required by the Redis tests: install it \
             (`apt-get install redis-server`, or run scripts/test.sh)"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether a Redis server answers `PING` on `port` (or asks for a
/// password first).
fn pong(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`. A port is
    /// picked, freed and handed to redis-server; retried if another
    /// process takes it in between. Panics, asking to install it, when
    /// redis-server is missing.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`RedisServer::start`], with more `redis-server` arguments
    /// (such as `["--requirepass", "secret"]`).
    pub fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = launch(dir.path(), port, &args) {
                return Self {
                    child,
                    port,
                    args,
                    _dir: dir,
                };
            }
        }
        panic!(
            "redis-server did not come up; its log:\n{}",
            std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default()
        );
    }

    /// Starts the server again on its port (after [`RedisServer::kill`]),
    /// empty, as a server restarted without persistence would be.
    pub fn restart(&mut self) {
        self.kill();
        self.child = launch(self._dir.path(), self.port, &self.args)
            .unwrap_or_else(|| panic!("redis-server did not come back on port {}", self.port));
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the server (SIGSTOP): its port still accepts connections
    /// but nothing answers, as a hung server would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let ok = Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {which}");
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }
}

/// Runs redis-server on `port` with `args`, its files in `dir`, and waits
/// until it answers; `None` if it did not come up (the port was taken).
fn launch(dir: &Path, port: u16, args: &[String]) -> Option<Child> {
    let binary = binary();
    let mut child = Command::new(&binary)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if pong(port) {
            return Some(child);
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

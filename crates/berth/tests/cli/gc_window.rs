//! zot's `gcTimeWindow`: a GC run due outside the window waits for it;
//! inside it runs every `gcInterval`. The server runs with `TZ=UTC`, so
//! the windows are written from the UTC time of day.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::{Berth, berth};

fn clock(minute: u64) -> String {
    let m = minute % (24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// A server whose GC runs every second inside `window`.
fn start(dir: &std::path::Path, window: &str) -> Berth {
    std::fs::create_dir_all(dir).expect("dir");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": dir.join("root"), "gcDelay": "0s", "gcInterval": "1s",
                "gcTimeWindow": window},
               "http": {"address": "127.0.0.1", "port": "0"}})
        .to_string(),
    )
    .expect("config");
    let child = berth()
        .arg("serve")
        .arg(&config)
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn berth");
    Berth::attach(child)
}

fn gc_runs(b: &Berth) -> usize {
    b.log
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.contains("gc run finished"))
        .count()
}

#[test]
fn gc_runs_only_inside_its_time_window() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 60;
    let dir = tempfile::tempdir().expect("tmp");
    // Opens in two hours: no run within a few intervals.
    let later = start(
        &dir.path().join("later"),
        &format!("{} - {}", clock(now + 120), clock(now + 180)),
    );
    // Open now (from an hour ago to an hour on, across midnight or not).
    let open = start(
        &dir.path().join("open"),
        &format!("{}-{}", clock(now + 24 * 60 - 60), clock(now + 60)),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while gc_runs(&open) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(gc_runs(&open) >= 2, "GC did not run inside its window");
    assert_eq!(gc_runs(&later), 0, "GC ran outside its window");
}

#[test]
fn a_bad_window_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": dir.path(), "gcTimeWindow": "08:00 - 08:00"}})
            .to_string(),
    )
    .expect("config");
    let out = berth().arg("verify").arg(&config).output().expect("verify");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage.gcTimeWindow"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

//! The htpasswd file (`http.auth.htpasswd.path`): `user:bcrypt-hash`
//! lines, as zot accepts. It is re-read when it changes; a successful
//! check is remembered (by a hash of user, password and stored hash) so
//! bcrypt's deliberate slowness is paid once per credential, not per
//! request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::Digest as _;

use super::AuthConfigError;

/// Remembered successful checks at most.
const MAX_REMEMBERED: u64 = 10_000;

pub struct Htpasswd {
    /// Swapped when the config file names another file.
    path: RwLock<PathBuf>,
    /// A real bcrypt hash at the highest cost of the file's hashes,
    /// checked for unknown users, and how long every failed check takes
    /// at least (what checking that hash takes, with a margin), so the
    /// time of a failure tells nothing of which users exist or the cost
    /// of their hashes.
    dummy: RwLock<(String, std::time::Duration)>,
    users: RwLock<HashMap<String, String>>,
    /// Successful checks (a hash of user, password and stored hash), kept
    /// until the file is re-read.
    verified: moka::sync::Cache<[u8; 32], ()>,
    /// Tells the reload task that `path` changed.
    rewatch: Arc<tokio::sync::Notify>,
}

/// Parses the file; lines that are not `user:bcrypt` are skipped with a
/// warning (zot accepts only bcrypt).
fn parse(path: &Path) -> Result<HashMap<String, String>, AuthConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AuthConfigError::unreadable("http.auth.htpasswd.path", path, e))?;
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, hash)) if hash.starts_with("$2") => {
                users.insert(user.to_string(), hash.to_string());
            }
            _ => {
                tracing::warn!(path = %path.display(), line = n + 1, "htpasswd: not a user:bcrypt line, skipped")
            }
        }
    }
    Ok(users)
}

/// A bcrypt hash of nothing in particular at the highest cost of
/// `users`' hashes (`$2y$NN$…`; bcrypt's default without any), and the
/// floor of a failed check: the time making it took (a bcrypt check costs
/// what a hash costs), with a quarter more as margin.
fn dummy_for(users: &HashMap<String, String>) -> (String, std::time::Duration) {
    let cost = users
        .values()
        .filter_map(|hash| hash.get(4..6).and_then(|c| c.parse::<u32>().ok()))
        .max()
        .unwrap_or(bcrypt::DEFAULT_COST);
    let start = std::time::Instant::now();
    let hash = bcrypt::hash("berth-unknown-user", cost)
        .or_else(|_| bcrypt::hash("berth-unknown-user", bcrypt::DEFAULT_COST))
        .unwrap_or_default();
    let took = start.elapsed();
    (hash, took + took / 4)
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Self, AuthConfigError> {
        let users = parse(path)?;
        Ok(Self {
            dummy: RwLock::new(dummy_for(&users)),
            path: RwLock::new(path.to_path_buf()),
            users: RwLock::new(users),
            verified: moka::sync::Cache::new(MAX_REMEMBERED),
            rewatch: Arc::default(),
        })
    }

    /// Whether the file has `user`.
    pub fn knows(&self, user: &str) -> bool {
        self.users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(user)
    }

    fn path(&self) -> PathBuf {
        self.path.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn install(&self, users: HashMap<String, String>) {
        *self.dummy.write().unwrap_or_else(|p| p.into_inner()) = dummy_for(&users);
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = users;
        self.verified.invalidate_all();
    }

    /// Serves the users of another file from now on (the config file's
    /// `htpasswd.path` changed); an unreadable file changes nothing.
    pub fn switch_to(&self, path: &Path) -> Result<(), AuthConfigError> {
        if self.path() == path {
            return Ok(());
        }
        let users = parse(path)?;
        self.install(users);
        *self.path.write().unwrap_or_else(|p| p.into_inner()) = path.to_path_buf();
        self.rewatch.notify_one();
        tracing::info!(path = %path.display(), "htpasswd: now serving this file");
        Ok(())
    }

    fn remembered_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        for part in [user, password, hash] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        h.finalize().into()
    }

    /// Whether `password` is `user`'s. Unknown users cost a bcrypt check
    /// too, so timing does not tell which users exist.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let stored = self
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned();
        let started = tokio::time::Instant::now();
        let (dummy, floor) = self.dummy.read().unwrap_or_else(|p| p.into_inner()).clone();
        let hash = stored.clone().unwrap_or(dummy);
        let key = Self::remembered_key(user, password, &hash);
        if stored.is_some() && self.verified.contains_key(&key) {
            return true;
        }
        let (pw, h) = (password.to_string(), hash.clone());
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok && stored.is_some() {
            self.verified.insert(key, ());
            return true;
        }
        // Every failure ends at the same time after it began, whether the
        // user exists and whatever the cost of their hash.
        tokio::time::sleep_until(started + floor).await;
        false
    }

    /// Re-reads the file whenever it changes (see [`crate::watch`]); a
    /// broken edit is logged and the running users kept.
    pub fn spawn_reload(self: std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let files = crate::watch::Files {
            what: "htpasswd",
            paths: Box::new(move || vec![this.path()]),
            rewatch: Some(self.rewatch.clone()),
        };
        crate::watch::spawn(files, move || match parse(&self.path()) {
            Ok(users) => {
                let n = users.len();
                self.install(users);
                tracing::info!(users = n, "htpasswd file changed, reloaded");
            }
            Err(e) => {
                tracing::warn!("htpasswd not reloaded, keeping the running users: {e}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembered_checks_end_when_the_file_is_read_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("htpasswd");
        let line = |pw: &str| format!("alice:{}\n", bcrypt::hash(pw, 4).expect("hash"));
        std::fs::write(&file, line("one")).expect("write");
        let h = Htpasswd::load(&file).expect("load");
        assert!(h.verify("alice", "one").await);
        assert!(h.verify("alice", "one").await, "remembered");
        assert!(!h.verify("alice", "two").await);
        assert!(!h.verify("bob", "one").await, "unknown user");

        std::fs::write(&file, line("two")).expect("write");
        h.install(parse(&file).expect("parse"));
        assert!(
            !h.verify("alice", "one").await,
            "the old password is forgotten"
        );
        assert!(h.verify("alice", "two").await);
    }

    /// A failed check lasts at least what checking the costliest hash of
    /// the file takes, whether the user is unknown, has a cheap hash, or
    /// the costliest one: timing tells neither which users exist nor the
    /// cost of their hashes.
    #[tokio::test]
    async fn failures_take_as_long_whoever_the_user_is() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("htpasswd");
        let costly = bcrypt::hash("pw", 10).expect("hash");
        let cheap = bcrypt::hash("pw", 4).expect("hash");
        std::fs::write(&file, format!("costly:{costly}\ncheap:{cheap}\n")).expect("write");
        let h = Htpasswd::load(&file).expect("load");
        // What one check at the costliest cost takes here.
        let start = std::time::Instant::now();
        assert!(!bcrypt::verify("wrong", &costly).expect("verify"));
        let one_check = start.elapsed();
        for user in ["cheap", "costly", "nobody"] {
            let start = std::time::Instant::now();
            assert!(!h.verify(user, "wrong").await, "{user}");
            let took = start.elapsed();
            assert!(
                took >= one_check.mul_f64(0.8),
                "{user}: a failure took {took:?}, a costly check {one_check:?}"
            );
        }
        // A good password is not held back.
        assert!(h.verify("cheap", "pw").await);
    }
}

//! "Call me back when any of these files changes": the one file watcher
//! behind every live reload (the config file, the htpasswd file, the TLS
//! and bearer certificates).
//!
//! The parent directory of each file is watched, not the file, so an
//! editor or a tool that replaces a file by renaming a new one over it, or
//! deletes it and writes it again, is seen. Events are taken from `notify`'s
//! native watcher (inotify on Linux); where it cannot start or cannot watch
//! a directory (no inotify instances or watches left), from its
//! [`notify::PollWatcher`], which looks every 2 seconds. A burst of
//! events is waited out (until 150 ms pass without one) before the
//! callback runs, so a file is read once it is written. A file briefly
//! missing is the callback's to report; the next event (the file written
//! again) calls it again.
//!
//! SIGHUP (on unix; `systemctl reload`) calls every watcher's callback at
//! once, changed files or not: for edits no event reports (a file system
//! without inotify, a link re-pointed where nothing is watched).
//!
//! Besides events naming a watched file, a change of a watched file's
//! stamp (modification time, size, inode, read through symbolic links)
//! counts, so a symlink swapped elsewhere in the directory (as Kubernetes
//! updates a mounted secret) is seen too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{Notify, mpsc};

/// How long events must stop before the callback runs.
const QUIET: Duration = Duration::from_millis(150);
/// The longest a steady stream of events delays the callback.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// How often the poll fallback looks at the directories.
const POLL: Duration = Duration::from_secs(2);

/// What is watched: a list of files, which may change as the program runs.
pub struct Files {
    /// Named in the log.
    pub what: &'static str,
    /// The files, asked again after each callback and on `rewatch`.
    pub paths: Box<dyn Fn() -> Vec<PathBuf> + Send>,
    /// Signalled when `paths` would now give other files (e.g. the config
    /// names another htpasswd file), so they are watched from then on.
    pub rewatch: Option<Arc<Notify>>,
}

/// Calls `on_change` (on a blocking thread) whenever one of `files`
/// changes, until the task is aborted or the runtime stops.
pub fn spawn(
    files: Files,
    on_change: impl FnMut() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    spawn_with(files, on_change, false)
}

fn spawn_with(
    files: Files,
    on_change: impl FnMut() + Send + 'static,
    force_poll: bool,
) -> tokio::task::JoinHandle<()> {
    let on_change = Arc::new(Mutex::new(on_change));
    let mut hangups = Hangups::listen();
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut dirs = Dirs::new(files.what, tx, force_poll);
        let rewatch = files.rewatch.clone().unwrap_or_default();
        let mut watched = Watched::new(&(files.paths)());
        dirs.follow(&watched);
        loop {
            let mut relevant = tokio::select! {
                event = rx.recv() => match event {
                    Some(e) => watched.relevant(&e),
                    None => return,
                },
                () = rewatch.notified() => {
                    watched = Watched::new(&(files.paths)());
                    dirs.follow(&watched);
                    continue;
                }
                () = hangups.next() => {
                    tracing::info!(what = files.what, "SIGHUP: reading the files again");
                    true
                }
            };
            // Let the writer finish: wait until the events stop.
            let deadline = tokio::time::Instant::now() + MAX_WAIT;
            while let Ok(Some(e)) = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + QUIET),
                rx.recv(),
            )
            .await
            {
                relevant |= watched.relevant(&e);
            }
            let stamps = watched.stamps();
            if !relevant && stamps == watched.seen {
                continue;
            }
            watched.seen = stamps;
            let f = on_change.clone();
            let ran = tokio::task::spawn_blocking(move || {
                (f.lock().unwrap_or_else(|p| p.into_inner()))()
            })
            .await;
            if let Err(e) = ran {
                tracing::error!(what = files.what, "reload failed: {e}");
            }
            let now = Watched::new(&(files.paths)());
            if now.files != watched.files {
                watched = now;
                dirs.follow(&watched);
            }
        }
    })
}

/// SIGHUP, as a stream (unix; never elsewhere). Each listener is told of
/// each signal, so every watcher has its own. Listening replaces the
/// default action (ending the process) for good.
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Needs a runtime.
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|e| tracing::warn!("cannot listen for SIGHUP: {e}"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the next SIGHUP.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.signal
            && s.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await
    }
}

/// Keeps SIGHUP from ending a server that has no config file to read
/// again (it serves the embedded default): each one is logged.
pub(crate) fn ignore_hangups() -> tokio::task::JoinHandle<()> {
    let mut hangups = Hangups::listen();
    tokio::spawn(async move {
        loop {
            hangups.next().await;
            tracing::info!("SIGHUP: no config file to read again");
        }
    })
}

/// A file's modification time, size and inode, `None` while it is missing.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), crate::os::inode(&m)))
}

/// The files watched, by absolute path, with the stamps last acted on.
struct Watched {
    files: Vec<PathBuf>,
    /// Each file and where a symbolic link at it leads: the names events
    /// may carry.
    names: Vec<PathBuf>,
    seen: Vec<Stamp>,
}

impl Watched {
    fn new(paths: &[PathBuf]) -> Self {
        let files: Vec<PathBuf> = paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let mut names = files.clone();
        names.extend(
            files
                .iter()
                .filter_map(|f| std::fs::canonicalize(f).ok().filter(|c| !files.contains(c))),
        );
        let mut w = Self {
            files,
            names,
            seen: Vec::new(),
        };
        w.seen = w.stamps();
        w
    }

    fn stamps(&self) -> Vec<Stamp> {
        self.files.iter().map(|f| stamp(f)).collect()
    }

    /// The directories to watch.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .names
            .iter()
            .filter_map(|n| n.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Whether an event says a watched file was (or may have been)
    /// written, created, removed or renamed. Reads (ours included) are not.
    fn relevant(&self, event: &notify::Result<notify::Event>) -> bool {
        let Ok(event) = event else {
            // Events may have been lost (a queue overflow): look again.
            return true;
        };
        let read =
            matches!(event.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write));
        !read && event.paths.iter().any(|p| self.names.contains(p))
    }
}

/// The watched directories and the watchers watching them.
struct Dirs {
    what: &'static str,
    tx: mpsc::UnboundedSender<notify::Result<notify::Event>>,
    native: Option<notify::RecommendedWatcher>,
    poll: Option<notify::PollWatcher>,
    /// Each directory watched, and whether by the poll fallback.
    watching: HashMap<PathBuf, bool>,
}

impl Dirs {
    fn new(
        what: &'static str,
        tx: mpsc::UnboundedSender<notify::Result<notify::Event>>,
        force_poll: bool,
    ) -> Self {
        let native = match force_poll {
            true => None,
            false => {
                let tx = tx.clone();
                notify::recommended_watcher(move |e| {
                    let _ = tx.send(e);
                })
                .map_err(|e| tracing::warn!(what, "file watcher unavailable, polling instead: {e}"))
                .ok()
            }
        };
        Self {
            what,
            tx,
            native,
            poll: None,
            watching: HashMap::new(),
        }
    }

    fn poll_watcher(&mut self) -> Option<&mut notify::PollWatcher> {
        if self.poll.is_none() {
            let tx = self.tx.clone();
            let config = notify::Config::default().with_poll_interval(POLL);
            match notify::PollWatcher::new(move |e| drop(tx.send(e)), config) {
                Ok(p) => self.poll = Some(p),
                Err(e) => tracing::warn!(what = self.what, "cannot poll files either: {e}"),
            }
        }
        self.poll.as_mut()
    }

    /// Watches the directories of `watched` and no others.
    fn follow(&mut self, watched: &Watched) {
        let want = watched.dirs();
        let gone: Vec<PathBuf> = self
            .watching
            .keys()
            .filter(|d| !want.contains(d))
            .cloned()
            .collect();
        for dir in gone {
            let polled = self.watching.remove(&dir).unwrap_or(false);
            let _ = match polled {
                true => self.poll.as_mut().map(|w| w.unwatch(&dir)),
                false => self.native.as_mut().map(|w| w.unwatch(&dir)),
            };
        }
        for dir in want {
            if self.watching.contains_key(&dir) {
                continue;
            }
            let native = self
                .native
                .as_mut()
                .map(|w| w.watch(&dir, RecursiveMode::NonRecursive));
            match native {
                Some(Ok(())) => {
                    self.watching.insert(dir, false);
                    continue;
                }
                Some(Err(e)) => {
                    tracing::warn!(what = self.what, dir = %dir.display(), "cannot watch, polling instead: {e}")
                }
                None => {}
            }
            let what = self.what;
            match self
                .poll_watcher()
                .map(|w| w.watch(&dir, RecursiveMode::NonRecursive))
            {
                Some(Ok(())) => {
                    self.watching.insert(dir, true);
                }
                Some(Err(e)) => {
                    tracing::warn!(what, dir = %dir.display(), "cannot watch; changes there are not seen: {e}")
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;

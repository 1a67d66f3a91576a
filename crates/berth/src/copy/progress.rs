//! A progress bar per blob (indicatif) on a terminal; nothing in a pipe
//! (indicatif draws to standard error only when it is a terminal).

use berth_client::copy::{BlobDone, BlobProgress, Progress};
use berth_oci::manifest::Descriptor;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Bars for the blobs of one copy.
pub(crate) struct Bars {
    multi: MultiProgress,
}

impl Bars {
    /// Bars on standard error, or hidden (`quiet`).
    pub(crate) fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
        }
    }
}

impl Progress for Bars {
    fn start(&self, blob: &Descriptor) -> Box<dyn BlobProgress> {
        let bar = self.multi.add(ProgressBar::new(blob.size));
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!(
            "blob {}",
            blob.digest.hex().get(..12).unwrap_or_default()
        ));
        Box::new(Bar(bar))
    }
}

struct Bar(ProgressBar);

impl BlobProgress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self, how: BlobDone) {
        let word = match how {
            BlobDone::Exists => "skipped: already there",
            BlobDone::Mounted => "mounted",
            BlobDone::Copied => "done",
        };
        self.0.finish_with_message(word);
    }
}

//! `berth completions SHELL` and `berth man DIR`: shell completions and
//! man pages made from the command line's own definitions (`cli.rs`), so
//! they always list what this binary accepts.

use std::path::Path;

use clap::CommandFactory as _;

use crate::cli::Cli;

/// Writes the completion script for `shell` to standard output.
pub(crate) fn completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "berth", &mut std::io::stdout());
}

/// Writes `berth.1` and a page per subcommand (`berth-serve.1`, …) into
/// `dir`, creating it.
pub(crate) fn man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)
}

//! The command line: what `berth` accepts (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::bench;

/// `berth --version`: the version, the commit it was built from and the
/// features compiled in.
fn version_text() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let features: Vec<&str> = [
            ("metrics", cfg!(feature = "metrics")),
            ("ratelimit", cfg!(feature = "ratelimit")),
            ("events", cfg!(feature = "events")),
            ("openapi", cfg!(feature = "openapi")),
            ("s3", cfg!(feature = "s3")),
            ("gcs", cfg!(feature = "gcs")),
            ("azure", cfg!(feature = "azure")),
            ("redis", cfg!(feature = "redis")),
            ("dynamodb", cfg!(feature = "dynamodb")),
            ("search", cfg!(feature = "search")),
            ("trust", cfg!(feature = "trust")),
            ("scan", cfg!(feature = "scan")),
            ("sync", cfg!(feature = "sync")),
            ("ecr", cfg!(feature = "ecr")),
            ("cluster", cfg!(feature = "cluster")),
            ("secretsmanager", cfg!(feature = "secretsmanager")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        format!(
            "{} (commit {}; features: {})",
            env!("CARGO_PKG_VERSION"),
            berth_server::COMMIT.unwrap_or("unknown"),
            if features.is_empty() {
                "none".to_string()
            } else {
                features.join(" ")
            }
        )
    });
    &TEXT
}

#[derive(Parser)]
#[command(name = "berth", version = version_text(), about = "An OCI container registry")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the registry. Without CONFIG: 127.0.0.1:8080, data in ./berth-data.
    Serve {
        /// A config file in zot's schema (.json, .yaml, .yml or .toml).
        config: Option<PathBuf>,
        /// Rebuild the metadata store from storage before serving.
        #[arg(long)]
        force_reparse: bool,
    },
    /// Check a config file and exit non-zero, naming the bad key, if it is not valid.
    Verify {
        /// The config file to check.
        config: PathBuf,
    },
    /// Re-hash and check every image offline (the server must be stopped);
    /// exit non-zero if anything is affected. Changes nothing.
    Scrub {
        /// The server's config file.
        config: PathBuf,
        /// Output: an aligned table, or JSON rows.
        #[arg(long, value_enum, default_value = "table")]
        format: ScrubFormat,
    },
    /// Measure a registry the way zot's zb does (and, with --compare, two
    /// side by side).
    Bench(bench::BenchArgs),
    /// Scan an image (an OCI layout or a registry's) for known
    /// vulnerabilities with OSV's advisories, without a server; exit 1 when
    /// something at or above --fail-on is found, 2 when the scan cannot
    /// be made.
    #[cfg(feature = "scan")]
    Scan(crate::scan::ScanArgs),
    /// Print the shell completion script for SHELL (from this command
    /// line's own definitions), e.g. `berth completions bash >
    /// /usr/share/bash-completion/completions/berth`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (berth.1 and one per subcommand, berth-serve.1
    /// …) into DIR, e.g. /usr/local/share/man/man1.
    Man {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Log in to a registry: the credentials are checked, then kept in the
    /// Docker/Podman auth file (so docker, podman and skopeo use them too).
    Login(crate::login::LoginArgs),
    /// Forget a registry's credentials (in every auth file berth reads).
    Logout(crate::login::LogoutArgs),
    /// Name registries for the query commands (profiles; credentials stay
    /// in the auth file of `berth login`).
    #[command(subcommand)]
    Remote(crate::query::RemoteCommand),
    /// List images (every repository's, or REPO's), over zot's search API.
    #[command(
        after_help = "Example:\n  berth images --url 127.0.0.1:5000\n  berth images myapp -o json"
    )]
    Images {
        /// Only this repository's.
        repo: Option<String>,
        #[command(flatten)]
        target: crate::query::Target,
    },
    /// One image (REPO:TAG), the images holding a digest (--digest), or
    /// those built on one (derived) or that one is built on (base).
    #[command(
        after_help = "Example:\n  berth image myapp:1.4\n  berth image --digest sha256:4f6e…\n  berth image derived debian:12"
    )]
    Image(crate::query::ImageArgs),
    /// Vulnerabilities: of an image, the images one affects, where it is
    /// fixed, and between two images (needs scanning on the server).
    Cve {
        #[command(subcommand)]
        command: crate::query::CveCommand,
        #[command(flatten)]
        target: crate::query::Target,
    },
    /// List repositories, with their size, platforms and popularity.
    #[command(after_help = "Example:\n  berth repos --remote prod --sort-by update-time")]
    Repos {
        #[command(flatten)]
        target: crate::query::Target,
    },
    /// Search repositories (TEXT) or images (REPO:TAG).
    #[command(after_help = "Example:\n  berth search nginx\n  berth search nginx:1.27 -o yaml")]
    Search {
        text: String,
        #[command(flatten)]
        target: crate::query::Target,
    },
    /// The artifacts (signatures, SBOMs…) referring to REPO@DIGEST.
    #[command(after_help = "Example:\n  berth referrers myapp@sha256:4f6e…")]
    Referrers {
        artifact: String,
        #[command(flatten)]
        target: crate::query::Target,
    },
    /// Whether the registry answers, the login is accepted, and what it
    /// offers (spec version, extensions).
    #[command(after_help = "Example:\n  berth status --url https://registry.example.com")]
    Status {
        #[command(flatten)]
        target: crate::query::Target,
    },
    /// Copy an image between registries (docker://), OCI layouts (oci:) and
    /// docker-archives (docker-archive:), as skopeo names them.
    Copy(crate::copy::CopyArgs),
    /// Copy an image from a registry into an OCI layout (a short `copy`).
    Pull(crate::copy::PullArgs),
    /// Copy an OCI layout or a docker-archive to a registry (a short `copy`).
    Push(crate::copy::PushArgs),
    /// Tag an image again on its registry (no blob moves).
    Tag(crate::copy::TagArgs),
    /// Delete a manifest (by the digest its tag names).
    Delete(crate::copy::DeleteArgs),
    /// Describe an image in JSON (digest, media type, platforms, layers,
    /// config), as skopeo inspect does.
    Inspect(crate::copy::InspectArgs),
    /// List a repository's tags.
    Ls(crate::copy::LsArgs),
    /// Copy every tag of a repository, or every repository of a registry,
    /// to another registry (skopeo sync's role), several images at once.
    Sync(crate::copy::SyncArgs),
    /// Exit 0 if URL answers 200 within 5 seconds, 1 otherwise: a health
    /// probe for where there is no curl (the container image's
    /// HEALTHCHECK).
    Health {
        /// What to ask.
        #[arg(default_value = "http://127.0.0.1:5000/livez")]
        url: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ScrubFormat {
    Table,
    Json,
}

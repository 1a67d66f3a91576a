//! `berth copy SRC DST` and its short forms (`pull`, `push`, `tag`,
//! `delete`, `inspect`, `ls`): images moved between registries
//! (`docker://`), OCI layouts (`oci:`) and docker-archives
//! (`docker-archive:`), named as skopeo names them, through
//! `berth-client`'s copy engine (the one sync uses).
//!
//! - `ends.rs` — a registry's client (scheme, TLS, credentials), the
//!   source opened from a location;
//! - `short.rs` — the short forms;
//! - `inspect.rs` — `berth inspect`'s JSON;
//! - `progress.rs` — a bar per blob on a terminal.
//!
//! Platforms: without `--all` or `--platform`, an index is cut to the
//! host's platform and that image alone is stored under the tag, as
//! skopeo does; `--all` copies the index whole (same digest).

mod ends;
mod inspect;
mod progress;
mod short;
mod sync;

use std::sync::Arc;

use berth_client::copy::{
    ArchiveTarget, CopyError, CopyOptions, ImageCopy, LayoutTarget, Location, Platform, Resolved,
    Source, Target, TargetKind,
};
use berth_oci::media::ManifestKind;

pub(crate) use ends::{Access, read_cert_dir};
pub(crate) use inspect::{InspectArgs, inspect};
pub(crate) use short::{
    DeleteArgs, LsArgs, PullArgs, PushArgs, TagArgs, delete, ls, pull, push, tag,
};
pub(crate) use sync::{SyncArgs, sync};

/// Why a command failed (said on one line, after the command's name).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Copy(#[from] CopyError),
    #[error("{0}")]
    Client(#[from] berth_client::ClientError),
    #[error(transparent)]
    AuthFile(#[from] berth_client::auth_file::AuthFileError),
    #[error("{0}: {1}")]
    At(String, Box<CliError>),
    #[error("interrupted")]
    Interrupted,
}

impl CliError {
    /// This error, said as happening at `what`.
    fn at(self, what: &(impl std::fmt::Display + ?Sized)) -> Self {
        match self {
            Self::At(..) | Self::Interrupted => self,
            e => Self::At(what.to_string(), Box::new(e)),
        }
    }
}

/// `berth copy`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  berth copy docker://127.0.0.1:5000/app:v1 docker://registry.example.com/app:v1\n  berth copy --all --with-referrers docker://a.example/app:v1 oci:./app-layout:v1\n  berth copy docker-archive:app.tar docker://localhost:5000/app:v1\n\nPlatforms: without --all or --platform, an index is cut to this host's platform and that image\nalone is stored under the tag (as skopeo does); --all keeps the index as signed.\nLoopback registries (127.0.0.0/8, ::1, localhost) are plain HTTP unless --*-cert-dir is given."
)]
pub(crate) struct CopyArgs {
    /// The image to copy: `docker://HOST/REPO[:TAG|@DIGEST]`, `oci:DIR[:REF]` or `docker-archive:FILE[:REF]`.
    src: String,
    /// Where to: `docker://HOST/REPO[:TAG]`, `oci:DIR[:TAG]` or `docker-archive:FILE[:NAME:TAG]`.
    dst: String,
    #[command(flatten)]
    options: CopyFlags,
    #[command(flatten)]
    access: AccessFlags,
}

/// How `copy` and `sync` reach their two registries.
#[derive(clap::Args, Clone)]
pub(crate) struct AccessFlags {
    /// Check the source registry's TLS certificate.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    src_tls_verify: bool,
    /// Check the destination registry's TLS certificate.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    dest_tls_verify: bool,
    /// The source registry's USER:PASSWORD (else the auth files).
    #[arg(long)]
    src_creds: Option<String>,
    /// The destination registry's USER:PASSWORD (else the auth files).
    #[arg(long)]
    dest_creds: Option<String>,
    /// CA certificates (*.crt) and a client certificate (*.cert, *.key) for the source.
    #[arg(long)]
    src_cert_dir: Option<std::path::PathBuf>,
    /// CA certificates (*.crt) and a client certificate (*.cert, *.key) for the destination.
    #[arg(long)]
    dest_cert_dir: Option<std::path::PathBuf>,
    /// The auth file to read credentials from (default: Podman's, then Docker's).
    #[arg(long)]
    authfile: Option<std::path::PathBuf>,
}

impl AccessFlags {
    /// The source's access and the destination's.
    pub(crate) fn sides(self) -> (Access, Access) {
        (
            Access {
                tls_verify: self.src_tls_verify,
                creds: self.src_creds,
                cert_dir: self.src_cert_dir,
                authfile: self.authfile.clone(),
            },
            Access {
                tls_verify: self.dest_tls_verify,
                creds: self.dest_creds,
                cert_dir: self.dest_cert_dir,
                authfile: self.authfile,
            },
        )
    }
}

/// What every copy (and pull, push) takes.
#[derive(clap::Args, Clone)]
pub(crate) struct CopyFlags {
    /// Copy every platform of an index (the index as it is).
    #[arg(long, conflicts_with = "platform")]
    all: bool,
    /// Copy this platform of an index: `OS/ARCH[/VARIANT]` (default: this host's).
    #[arg(long)]
    platform: Option<String>,
    /// Copy the image's OCI referrers (signatures, SBOMs) and cosign's sha256-….sig|att|sbom tags too.
    #[arg(long)]
    with_referrers: bool,
    /// Blobs in flight at once.
    #[arg(long, default_value_t = 6)]
    parallel: usize,
    /// Blobs larger than this many MiB go to a registry in chunks this large.
    #[arg(long, default_value_t = 64)]
    chunk_mib: u64,
    /// No progress bars.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `berth copy`; returns what to print (the digest copied).
pub(crate) async fn copy(args: CopyArgs) -> Result<String, CliError> {
    let (src_access, dst_access) = args.access.sides();
    let src = Location::parse(&args.src).map_err(|e| CliError::Usage(e.0))?;
    let dst = Location::parse(&args.dst).map_err(|e| CliError::Usage(e.0))?;
    interruptible(run(&src, &src_access, &dst, &dst_access, &args.options)).await
}

/// `work`, or [`CliError::Interrupted`] at Ctrl-C (the copy dropped: its
/// temporary files removed, nothing tagged).
pub(crate) async fn interruptible<T>(
    work: impl Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::select! {
        done = work => done,
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
    }
}

/// Copies `src` to `dst`.
pub(crate) async fn run(
    src: &Location,
    src_access: &Access,
    dst: &Location,
    dst_access: &Access,
    flags: &CopyFlags,
) -> Result<String, CliError> {
    let opened = ends::open_source(src, src_access)
        .await
        .map_err(|e| e.at(src))?;
    let (kind, tag) = match dst {
        Location::Registry(r) => {
            if r.reference.as_deref().is_some_and(|d| d.contains(':')) {
                return Err(CliError::Usage(format!(
                    "{dst}: a destination takes a tag, not a digest"
                )));
            }
            let client = ends::client(r, dst_access).map_err(|e| e.at(dst))?;
            let tag = r.tag().unwrap_or("latest").to_string();
            let repo = client.upstream_repo(&r.repo);
            (TargetKind::Registry { client, repo }, Some(tag))
        }
        Location::Layout { dir, reference } => (
            TargetKind::Layout(LayoutTarget::open(dir).map_err(|e| CliError::from(e).at(dst))?),
            Some(
                reference
                    .clone()
                    .or_else(|| opened.tag.clone())
                    .unwrap_or_else(|| "latest".to_string()),
            ),
        ),
        Location::Archive { file, reference } => (
            TargetKind::Archive(
                ArchiveTarget::create(file, reference.clone())
                    .map_err(|e| CliError::from(e).at(dst))?,
            ),
            None,
        ),
    };
    copy_opened(opened, kind, tag, src, dst, flags).await
}

/// Copies the image `opened` names to the destination `kind`, under `tag`
/// (`src` and `dst` name the two in errors).
pub(crate) async fn copy_opened(
    opened: ends::Opened,
    kind: TargetKind,
    tag: Option<String>,
    src: &dyn std::fmt::Display,
    dst: &dyn std::fmt::Display,
    flags: &CopyFlags,
) -> Result<String, CliError> {
    let source = Arc::new(opened.source);
    let to_archive = matches!(kind, TargetKind::Archive(_));
    let target = Target {
        kind,
        source: source.clone(),
        source_repo: opened.repo.clone(),
        progress: Arc::new(progress::Bars::new(flags.quiet)),
        chunk: flags.chunk_mib.max(1) << 20,
    };
    let options = CopyOptions {
        cosign_tags: flags.with_referrers,
        parallel_blobs: flags.parallel.max(1),
        ..CopyOptions::default()
    };
    let walk = ImageCopy {
        source: &*source,
        target: &target,
        repo: &opened.repo,
        options: &options,
    };
    let missing = || CliError::Usage(format!("{src}: manifest unknown"));
    let resolved = walk
        .resolve(&opened.reference)
        .await
        .map_err(|e| CliError::from(e).at(src))?
        .ok_or_else(missing)?;
    let resolved = if resolved.parsed.kind == ManifestKind::Index && (!flags.all || to_archive) {
        if flags.all {
            return Err(CliError::Usage(format!(
                "{dst}: a docker-archive holds one image: use --platform, not --all"
            )));
        }
        one_platform(&walk, &resolved, flags.platform.as_deref())
            .await
            .map_err(|e| e.at(src))?
    } else {
        resolved
    };
    walk.store(&resolved, tag.as_deref())
        .await
        .map_err(|e| CliError::from(e).at(dst))?;
    if flags.with_referrers {
        walk.extras(&resolved.manifest.digest)
            .await
            .map_err(|e| CliError::from(e).at(dst))?;
    }
    target
        .finish()
        .await
        .map_err(|e| CliError::from(e).at(dst))?;
    Ok(resolved.manifest.digest.to_string())
}

/// The image of `index` for `platform` (`OS/ARCH[/VARIANT]`, default the
/// host's).
async fn one_platform(
    walk: &ImageCopy<'_, Source, Target>,
    index: &Resolved,
    platform: Option<&str>,
) -> Result<Resolved, CliError> {
    let wanted = platform.map_or_else(host_platform, String::from);
    let mut parts = wanted.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    let (Some(os), Some(arch)) = (os, arch) else {
        return Err(CliError::Usage(format!(
            "--platform {wanted}: not OS/ARCH[/VARIANT]"
        )));
    };
    let matches = |p: &Platform<'_>| {
        p.os == os && p.architecture == arch && (variant.is_none() || p.variant == variant)
    };
    let entry = index.children.iter().find(|d| {
        let p = d.extra.get("platform");
        let field = |k: &str| p.and_then(|p| p.get(k)).and_then(|v| v.as_str());
        match (field("os"), field("architecture")) {
            (Some(o), Some(a)) => matches(&Platform {
                os: o,
                architecture: a,
                variant: field("variant"),
            }),
            _ => false,
        }
    });
    let Some(entry) = entry else {
        return Err(CliError::Usage(format!(
            "the index has no image for {wanted} (--all copies every platform)"
        )));
    };
    walk.resolve(&entry.digest.to_string())
        .await?
        .ok_or_else(|| CliError::Usage(format!("{}: manifest unknown", entry.digest)))
}

/// This host's platform as OCI names it (Go's names).
pub(crate) fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm/v7",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

//! The short forms: `pull` and `push` are copies with one end a registry;
//! `tag` (a manifest read and put again under another tag: no blob
//! moves), `delete` (a manifest by digest) and `ls` (tags) act on one
//! registry.

use std::path::PathBuf;

use berth_client::copy::{Location, RegistryRef};

use super::{Access, CliError, CopyFlags, ends, interruptible, run};

/// How a registry is reached (the short forms' one registry).
#[derive(clap::Args, Clone)]
pub(crate) struct RegistryFlags {
    /// Check the registry's TLS certificate.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
    /// USER:PASSWORD (else the auth files).
    #[arg(long)]
    creds: Option<String>,
    /// CA certificates (*.crt) and a client certificate (*.cert, *.key).
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// The auth file to read credentials from (default: Podman's, then Docker's).
    #[arg(long)]
    authfile: Option<PathBuf>,
}

impl RegistryFlags {
    pub(crate) fn access(&self) -> Access {
        Access {
            tls_verify: self.tls_verify,
            creds: self.creds.clone(),
            cert_dir: self.cert_dir.clone(),
            authfile: self.authfile.clone(),
        }
    }
}

/// `berth pull`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  berth pull 127.0.0.1:5000/app:v1 ./app-layout\n  (the same as: berth copy docker://127.0.0.1:5000/app:v1 oci:./app-layout:v1)"
)]
pub(crate) struct PullArgs {
    /// `HOST/REPO[:TAG|@DIGEST]` (docker:// optional).
    reference: String,
    /// The OCI layout to write (created if missing), or any copy destination (oci:DIR:TAG, docker-archive:FILE).
    dest: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    copy: CopyFlags,
}

/// `berth push`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  berth push ./app-layout 127.0.0.1:5000/app:v1\n  berth push docker-archive:app.tar docker://registry.example.com/app:v1"
)]
pub(crate) struct PushArgs {
    /// An OCI layout directory, a docker-archive file, or `oci:DIR[:REF]` / `docker-archive:FILE[:REF]`.
    source: String,
    /// `HOST/REPO[:TAG]` (docker:// optional).
    reference: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    copy: CopyFlags,
}

/// `berth tag`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  berth tag 127.0.0.1:5000/app:v1 stable\n  (the manifest is read and put again as app:stable; no blob moves)"
)]
pub(crate) struct TagArgs {
    /// `HOST/REPO[:TAG|@DIGEST]` (docker:// optional).
    reference: String,
    /// The new tag, in the same repository.
    new_tag: String,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// `berth delete`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  berth delete 127.0.0.1:5000/app:v1\n  (the manifest the tag names is deleted by its digest, with every tag naming it)"
)]
pub(crate) struct DeleteArgs {
    /// HOST/REPO:TAG or HOST/REPO@DIGEST (docker:// optional).
    reference: String,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// `berth ls`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  berth ls 127.0.0.1:5000/app")]
pub(crate) struct LsArgs {
    /// HOST/REPO (docker:// optional).
    repository: String,
    #[command(flatten)]
    registry: RegistryFlags,
}

fn registry_ref(text: &str) -> Result<RegistryRef, CliError> {
    RegistryRef::parse(text).map_err(|e| CliError::Usage(e.0))
}

/// `berth pull`: a copy into an OCI layout.
pub(crate) async fn pull(args: PullArgs) -> Result<String, CliError> {
    let src = Location::Registry(registry_ref(&args.reference)?);
    let dst = if args.dest.starts_with("oci:") || args.dest.starts_with("docker-archive:") {
        Location::parse(&args.dest).map_err(|e| CliError::Usage(e.0))?
    } else {
        Location::Layout {
            dir: PathBuf::from(&args.dest),
            reference: None,
        }
    };
    let access = args.registry.access();
    interruptible(run(&src, &access, &dst, &Access::default(), &args.copy)).await
}

/// `berth push`: a copy from a layout or an archive.
pub(crate) async fn push(args: PushArgs) -> Result<String, CliError> {
    let src = if args.source.starts_with("oci:") || args.source.starts_with("docker-archive:") {
        Location::parse(&args.source).map_err(|e| CliError::Usage(e.0))?
    } else if std::path::Path::new(&args.source).is_dir() {
        Location::Layout {
            dir: PathBuf::from(&args.source),
            reference: None,
        }
    } else {
        Location::Archive {
            file: PathBuf::from(&args.source),
            reference: None,
        }
    };
    let dst = Location::Registry(registry_ref(&args.reference)?);
    let access = args.registry.access();
    interruptible(run(&src, &Access::default(), &dst, &access, &args.copy)).await
}

/// `berth tag`: the manifest put again under `new_tag`.
pub(crate) async fn tag(args: TagArgs) -> Result<String, CliError> {
    let r = registry_ref(&args.reference)?;
    let new: berth_oci::Tag = args
        .new_tag
        .parse()
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.new_tag)))?;
    let client = ends::client(&r, &args.registry.access())?;
    let repo = client.upstream_repo(&r.repo);
    let manifest = client
        .get_manifest_raw(&repo, r.reference_or_latest())
        .await
        .map_err(|e| CliError::from(e).at(&r))?
        .ok_or_else(|| CliError::Usage(format!("{r}: manifest unknown")))?;
    client
        .put_manifest(&repo, new.as_str(), &manifest.media_type, manifest.bytes)
        .await
        .map_err(|e| CliError::from(e).at(&r))?;
    Ok(format!(
        "{}/{}:{} {}",
        r.host,
        r.repo,
        new.as_str(),
        manifest.digest
    ))
}

/// `berth delete`: the manifest deleted by its digest.
pub(crate) async fn delete(args: DeleteArgs) -> Result<String, CliError> {
    let r = registry_ref(&args.reference)?;
    let client = ends::client(&r, &args.registry.access())?;
    let repo = client.upstream_repo(&r.repo);
    let head = client
        .head_manifest_digest(&repo, r.reference_or_latest())
        .await
        .map_err(|e| CliError::from(e).at(&r))?
        .ok_or_else(|| CliError::Usage(format!("{r}: manifest unknown")))?;
    client
        .delete_manifest(&repo, &head.digest.to_string())
        .await
        .map_err(|e| CliError::from(e).at(&r))?;
    Ok(format!("deleted {}/{}@{}", r.host, r.repo, head.digest))
}

/// `berth ls`: the repository's tags, one a line.
pub(crate) async fn ls(args: LsArgs) -> Result<String, CliError> {
    let r = registry_ref(&args.repository)?;
    if r.reference.is_some() {
        return Err(CliError::Usage(format!(
            "{}: a repository, without a tag",
            args.repository
        )));
    }
    let client = ends::client(&r, &args.registry.access())?;
    let tags = client
        .tags_all(&client.upstream_repo(&r.repo))
        .await
        .map_err(|e| CliError::from(e).at(&r))?;
    Ok(tags.join("\n"))
}

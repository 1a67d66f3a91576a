//! `berth inspect`: an image described in JSON, in skopeo inspect's
//! names (`Name`, `Digest`, `RepoTags`, `Created`, `Architecture`, `Os`,
//! `Labels`, `Env`, `Layers`, `LayersData`) with `MediaType`,
//! `Platforms` and, for an index, its `Manifests`; the details are those
//! of the host's platform (or `--platform`'s) image.

use berth_client::copy::{CopySource, Location, Source};
use berth_oci::manifest::{Descriptor, Manifest};
use berth_oci::media::ManifestKind;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::short::RegistryFlags;
use super::{CliError, ends, host_platform};

/// The largest config read.
const MAX_CONFIG: usize = 16 << 20;

/// `berth inspect`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  berth inspect 127.0.0.1:5000/app:v1 | jq .Digest\n  berth inspect oci:./app-layout:v1 --raw"
)]
pub(crate) struct InspectArgs {
    /// `HOST/REPO[:TAG|@DIGEST]` (docker:// optional), `oci:DIR[:REF]` or `docker-archive:FILE[:REF]`.
    reference: String,
    /// The details of this platform's image of an index: `OS/ARCH[/VARIANT]` (default: this host's).
    #[arg(long)]
    platform: Option<String>,
    /// Print the manifest as stored, nothing else.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// Runs `berth inspect`; returns the JSON (or the raw manifest).
pub(crate) async fn inspect(args: InspectArgs) -> Result<String, CliError> {
    let location = Location::parse(&args.reference).map_err(|e| CliError::Usage(e.0))?;
    let opened = ends::open_source(&location, &args.registry.access())
        .await
        .map_err(|e| e.at(&location))?;
    let at = |e: berth_client::copy::CopyError| CliError::from(e).at(&location);
    let unknown = || CliError::Usage(format!("{location}: manifest unknown"));
    let source = &opened.source;
    let top = source
        .manifest(&opened.repo, &opened.reference)
        .await
        .map_err(at)?
        .ok_or_else(unknown)?;
    if args.raw {
        return Ok(String::from_utf8_lossy(&top.bytes).into_owned());
    }
    let parsed = Manifest::parse(&top.bytes, Some(&top.media_type))
        .map_err(|e| CliError::Usage(format!("{location}: {e}")))?;
    let (name, repo_tags) = match (&location, source) {
        (Location::Registry(r), Source::Registry(c)) => (
            format!("{}/{}", r.host, r.repo),
            c.tags_all(&c.upstream_repo(&r.repo))
                .await
                .map_err(|e| CliError::from(e).at(&location))?,
        ),
        (_, Source::Layout(l)) => (location.to_string(), l.tags()),
        (_, Source::Archive(a)) => (location.to_string(), a.repo_tags.clone()),
        _ => (location.to_string(), Vec::new()),
    };
    let mut out = json!({
        "Name": name,
        "Digest": top.digest.to_string(),
        "MediaType": top.media_type,
        "RepoTags": repo_tags,
    });
    let image = if parsed.kind == ManifestKind::Index {
        let wanted = args.platform.clone().unwrap_or_else(host_platform);
        out["Platforms"] = json!(
            parsed
                .manifests
                .iter()
                .filter_map(platform_of)
                .collect::<Vec<_>>()
        );
        out["Manifests"] = json!(
            parsed
                .manifests
                .iter()
                .map(|d| json!({
                    "Digest": d.digest.to_string(),
                    "MediaType": d.media_type,
                    "Size": d.size,
                    "Platform": platform_of(d),
                }))
                .collect::<Vec<_>>()
        );
        let chosen = parsed
            .manifests
            .iter()
            .find(|d| {
                platform_of(d).is_some_and(|p| p == wanted || p.starts_with(&format!("{wanted}/")))
            })
            .or_else(|| parsed.manifests.first());
        match chosen {
            Some(d) => {
                let m = source
                    .manifest(&opened.repo, &d.digest.to_string())
                    .await
                    .map_err(at)?
                    .ok_or_else(unknown)?;
                out["ImageDigest"] = json!(m.digest.to_string());
                Some(
                    Manifest::parse(&m.bytes, Some(&m.media_type))
                        .map_err(|e| CliError::Usage(format!("{location}: {e}")))?,
                )
            }
            None => None,
        }
    } else {
        Some(parsed)
    };
    if let Some(image) = image {
        describe(&mut out, &image, source, &opened.repo)
            .await
            .map_err(at)?;
    }
    serde_json::to_string_pretty(&out).map_err(|e| CliError::Usage(e.to_string()))
}

/// `os/arch[/variant]` of an index entry.
fn platform_of(d: &Descriptor) -> Option<String> {
    let p = d.extra.get("platform")?;
    let mut s = format!("{}/{}", p["os"].as_str()?, p["architecture"].as_str()?);
    if let Some(v) = p["variant"].as_str() {
        s = format!("{s}/{v}");
    }
    Some(s)
}

/// An image's layers and its config's summary, added to `out`.
async fn describe(
    out: &mut Value,
    image: &Manifest,
    source: &Source,
    repo: &str,
) -> Result<(), berth_client::copy::CopyError> {
    out["Layers"] = json!(
        image
            .layers
            .iter()
            .map(|l| l.digest.to_string())
            .collect::<Vec<_>>()
    );
    out["LayersData"] = json!(
        image
            .layers
            .iter()
            .map(|l| json!({
                "MIMEType": l.media_type,
                "Digest": l.digest.to_string(),
                "Size": l.size,
                "Annotations": l.annotations,
            }))
            .collect::<Vec<_>>()
    );
    out["Size"] = json!(image.layers.iter().map(|l| l.size).sum::<u64>());
    let Some(config) = &image.config else {
        return Ok(());
    };
    out["ConfigDigest"] = json!(config.digest.to_string());
    out["ConfigMediaType"] = json!(config.media_type);
    if config.size > MAX_CONFIG as u64 || !config.media_type.contains("config") {
        return Ok(());
    }
    let mut stream = source.blob(repo, &config.digest).await?;
    let mut bytes = Vec::new();
    while let Some(piece) = stream.next().await {
        bytes.extend_from_slice(&piece?);
        if bytes.len() > MAX_CONFIG {
            return Ok(());
        }
    }
    let Ok(c) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(());
    };
    let inner = &c["config"];
    for (key, value) in [
        ("Created", &c["created"]),
        ("Architecture", &c["architecture"]),
        ("Os", &c["os"]),
        ("Variant", &c["variant"]),
        ("Author", &c["author"]),
        ("Labels", &inner["Labels"]),
        ("Env", &inner["Env"]),
        ("Entrypoint", &inner["Entrypoint"]),
        ("Cmd", &inner["Cmd"]),
        ("User", &inner["User"]),
        ("WorkingDir", &inner["WorkingDir"]),
    ] {
        if !value.is_null() {
            out[key] = value.clone();
        }
    }
    Ok(())
}

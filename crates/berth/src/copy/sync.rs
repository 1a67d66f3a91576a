//! `berth sync SRC DST`: many images at once, skopeo sync's role. SRC is
//! a repository (`docker://HOST/REPO`: every tag of it) or a registry
//! (`docker://HOST`: every repository its catalog lists); each image goes
//! to `DST` (`docker://HOST[/PREFIX]`) as `PREFIX/REPO:TAG`, the source's
//! repository path kept. One client a side serves every image (its
//! connections and tokens reused); `--images` images are copied at once,
//! each as `berth copy` copies one (its blobs several at a time, those
//! the destination has skipped). A failed image is said and the others go
//! on; the exit is 1 if any failed.

use futures_util::StreamExt;

use berth_client::copy::{RegistryRef, Source, TargetKind};

use super::{AccessFlags, CliError, CopyFlags, copy_opened, ends};

/// `berth sync`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  berth sync docker://registry.example.com/team/app docker://127.0.0.1:5000/mirror\n  berth sync --images 16 docker://127.0.0.1:5000 docker://backup.example.com\n\nEvery tag of a repository (or every repository of a registry's catalog) is copied to\nDST/PREFIX/REPO:TAG; --all, --platform and --with-referrers as for copy."
)]
pub(crate) struct SyncArgs {
    /// `docker://HOST/REPO` (every tag) or `docker://HOST` (every repository).
    src: String,
    /// `docker://HOST[/PREFIX]`.
    dst: String,
    /// Images copied at once.
    #[arg(long, default_value_t = 8)]
    images: usize,
    #[command(flatten)]
    options: CopyFlags,
    #[command(flatten)]
    access: AccessFlags,
}

/// `docker://HOST[/PATH]` split.
fn host_and_path(text: &str) -> Result<(String, Option<String>), CliError> {
    let rest = text.strip_prefix("docker://").ok_or_else(|| {
        CliError::Usage(format!(
            "{text}: sync copies between registries: give docker://HOST[/REPO]"
        ))
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, Some(p.to_string())),
        None => (rest, None),
    };
    if host.is_empty() || path.as_deref().is_some_and(|p| p.contains([':', '@'])) {
        return Err(CliError::Usage(format!(
            "{text}: give docker://HOST[/REPO], without a tag"
        )));
    }
    Ok((host.to_string(), path))
}

fn registry(host: &str) -> RegistryRef {
    RegistryRef {
        host: host.to_string(),
        repo: String::new(),
        reference: None,
    }
}

/// Runs `berth sync`; returns the summary to print.
pub(crate) async fn sync(args: SyncArgs) -> Result<String, CliError> {
    let (src_access, dst_access) = args.access.sides();
    let (src_host, src_repo) = host_and_path(&args.src)?;
    let (dst_host, prefix) = host_and_path(&args.dst)?;
    let src_client =
        ends::client(&registry(&src_host), &src_access).map_err(|e| e.at(&args.src))?;
    let dst_client =
        ends::client(&registry(&dst_host), &dst_access).map_err(|e| e.at(&args.dst))?;
    let repos = match src_repo {
        Some(r) => vec![r],
        None => src_client
            .catalog_all()
            .await
            .map_err(|e| CliError::from(e).at(&args.src))?,
    };
    let mut images = Vec::new();
    for repo in repos {
        let upstream = src_client.upstream_repo(&repo);
        let tags = src_client
            .tags_all(&upstream)
            .await
            .map_err(|e| CliError::from(e).at(&format!("docker://{src_host}/{repo}")))?;
        images.extend(tags.into_iter().map(|t| (repo.clone(), t)));
    }
    // One bar per image would be hundreds: sync is quiet.
    let flags = CopyFlags {
        quiet: true,
        ..args.options.clone()
    };
    let total = images.len();
    let failures: Vec<String> = super::interruptible(async {
        Ok(futures_util::stream::iter(images)
            .map(|(repo, tag)| {
                let (src_client, dst_client, flags) = (&src_client, &dst_client, &flags);
                let (src_host, dst_host, prefix) = (&src_host, &dst_host, &prefix);
                async move {
                    let to_repo = match prefix {
                        Some(p) => format!("{p}/{repo}"),
                        None => repo.clone(),
                    };
                    let src = format!("docker://{src_host}/{repo}:{tag}");
                    let dst = format!("docker://{dst_host}/{to_repo}:{tag}");
                    let opened = ends::Opened {
                        source: Source::Registry(src_client.clone()),
                        repo: src_client.upstream_repo(&repo),
                        reference: tag.clone(),
                        tag: Some(tag.clone()),
                    };
                    let kind = TargetKind::Registry {
                        client: dst_client.clone(),
                        repo: dst_client.upstream_repo(&to_repo),
                    };
                    copy_opened(opened, kind, Some(tag), &src, &dst, flags)
                        .await
                        .err()
                        .map(|e| {
                            let line = e.at(&src).to_string();
                            eprintln!("berth sync: {line}");
                            line
                        })
                }
            })
            .buffer_unordered(args.images.max(1))
            .filter_map(|failed| async move { failed })
            .collect()
            .await)
    })
    .await?;
    match failures.len() {
        0 => Ok(format!("{total} images copied\n")),
        n => Err(CliError::Usage(format!(
            "{n} of {total} images failed (said above)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_parse() {
        assert_eq!(
            host_and_path("docker://h:5000/team/app").expect("ok"),
            ("h:5000".to_string(), Some("team/app".to_string()))
        );
        assert_eq!(
            host_and_path("docker://h/").expect("ok"),
            ("h".to_string(), None)
        );
        assert!(host_and_path("h/app").is_err(), "docker:// only");
        assert!(host_and_path("docker://h/app:v1").is_err(), "no tag");
    }
}

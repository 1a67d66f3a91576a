//! Each query command: its arguments, the query it sends, and the table
//! it prints (the JSON and YAML shapes are `berth_client::search`'s).

use berth_client::search::{Cve, ImageSummary, SortBy};
use serde::Serialize;

use super::output::{self, flag, short, size, table};
use super::remote::{self, Remotes};
use super::{QueryError, Target, repo_digest, repo_tag};

/// `berth remote`.
#[derive(clap::Subcommand, Debug, Clone)]
pub(crate) enum RemoteCommand {
    /// Name a registry (the first one named becomes the default).
    #[command(
        after_help = "Example:\n  berth remote add prod https://registry.example.com\n  berth remote add local 127.0.0.1:5000"
    )]
    Add {
        name: String,
        /// `http(s)://host[:port]` or `host[:port]`.
        url: String,
        /// Do not check its TLS certificate.
        #[arg(long)]
        no_verify_tls: bool,
    },
    /// Forget a registry's name.
    #[command(after_help = "Example:\n  berth remote remove local")]
    Remove { name: String },
    /// The named registries (the default marked `*`).
    #[command(after_help = "Example:\n  berth remote list -o json")]
    List {
        #[arg(short, long, value_enum, default_value = "text")]
        output: output::Format,
    },
    /// The registry the query commands ask without --remote or --url.
    #[command(after_help = "Example:\n  berth remote set-default prod")]
    SetDefault { name: String },
}

/// `berth image`.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ImageArgs {
    #[command(subcommand)]
    pub(crate) related: Option<Related>,
    /// The image, `REPOSITORY:TAG`.
    pub(crate) image: Option<String>,
    /// The images holding this digest (a manifest, config or layer).
    #[arg(long, conflicts_with = "image")]
    pub(crate) digest: Option<String>,
    #[command(flatten)]
    pub(crate) target: Target,
}

/// `berth image derived|base`.
#[derive(clap::Subcommand, Debug, Clone)]
pub(crate) enum Related {
    /// The images built on this one (its layers are theirs' first ones).
    #[command(after_help = "Example:\n  berth image derived debian:12")]
    Derived { image: String },
    /// The images this one is built on.
    #[command(after_help = "Example:\n  berth image base myapp:1.4")]
    Base { image: String },
}

/// `berth cve`.
#[derive(clap::Subcommand, Debug, Clone)]
pub(crate) enum CveCommand {
    /// The vulnerabilities of an image.
    #[command(
        after_help = "Example:\n  berth cve list myapp:1.4 --severity CRITICAL\n  berth cve list myapp:1.4 --cve-id CVE-2024-3094 -o json"
    )]
    List {
        /// `REPOSITORY:TAG`.
        image: String,
        /// Only those of this severity (`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `UNKNOWN`).
        #[arg(long)]
        severity: Option<String>,
        /// Only this one (or those whose id or title contains the text).
        #[arg(long)]
        cve_id: Option<String>,
    },
    /// The images a vulnerability affects.
    #[command(after_help = "Example:\n  berth cve affected CVE-2024-3094 --repo myapp")]
    Affected {
        id: String,
        /// Only images of this repository.
        #[arg(long)]
        repo: Option<String>,
    },
    /// The images of a repository where a vulnerability is fixed.
    #[command(after_help = "Example:\n  berth cve fixed CVE-2024-3094 myapp")]
    Fixed { id: String, repo: String },
    /// The vulnerabilities of the first image that the second lacks.
    #[command(after_help = "Example:\n  berth cve diff myapp:1.5 myapp:1.4")]
    Diff { image: String, other: String },
}

pub(crate) fn remote(cmd: RemoteCommand) -> Result<String, QueryError> {
    let path = remote::path()?;
    let mut remotes = Remotes::load(&path)?;
    let done = match cmd {
        RemoteCommand::Add {
            name,
            url,
            no_verify_tls,
        } => {
            remotes.add(&name, &url, !no_verify_tls)?;
            format!("added {name}\n")
        }
        RemoteCommand::Remove { name } => {
            remotes.remove(&name)?;
            format!("removed {name}\n")
        }
        RemoteCommand::SetDefault { name } => {
            remotes.set_default(&name)?;
            format!("{name} is the default\n")
        }
        RemoteCommand::List { output } => {
            return Ok(output::render(output, &remotes, || {
                let rows = remotes
                    .remotes
                    .iter()
                    .map(|(name, r)| {
                        let mark = if remotes.default.as_deref() == Some(name) {
                            "*"
                        } else {
                            ""
                        };
                        [
                            format!("{name}{mark}"),
                            r.url.clone(),
                            r.verify_tls.to_string(),
                        ]
                    })
                    .collect();
                table(["NAME", "URL", "VERIFY TLS"], rows)
            })?);
        }
    };
    remotes.save(&path)?;
    Ok(done)
}

/// Images, one row per platform, as `zli image list` shows them.
fn image_table(images: &[ImageSummary]) -> String {
    let mut rows = Vec::new();
    for i in images {
        let name = || {
            [
                i.repo_name.clone().unwrap_or_default(),
                i.tag.clone().unwrap_or_default(),
            ]
        };
        if i.manifests.is_empty() {
            let [repo, tag] = name();
            rows.push([
                repo,
                tag,
                "N/A".into(),
                short(i.digest.as_deref()),
                flag(i.is_signed),
                size(i.size),
            ]);
        }
        for m in &i.manifests {
            let [repo, tag] = name();
            let platform = m
                .platform
                .as_ref()
                .map_or("N/A".into(), ToString::to_string);
            rows.push([
                repo,
                tag,
                platform,
                short(m.digest.as_deref()),
                flag(m.is_signed),
                size(m.size),
            ]);
        }
    }
    table(
        ["REPOSITORY", "TAG", "OS/ARCH", "DIGEST", "SIGNED", "SIZE"],
        rows,
    )
}

fn images_out(target: &Target, images: Vec<ImageSummary>) -> Result<String, QueryError> {
    Ok(output::render(target.output, &images, || {
        image_table(&images)
    })?)
}

pub(crate) async fn images(target: Target, repo: Option<String>) -> Result<String, QueryError> {
    let client = target.client()?;
    let found = client
        .image_list(repo.as_deref().unwrap_or(""), target.sort(SortBy::AlphaAsc))
        .await?;
    images_out(&target, found)
}

pub(crate) async fn image(args: ImageArgs) -> Result<String, QueryError> {
    let target = &args.target;
    let client = target.client()?;
    let sort = target.sort(SortBy::AlphaAsc);
    let found = match (&args.related, &args.image, &args.digest) {
        (Some(Related::Derived { image }), _, _) => {
            repo_tag(image)?;
            client.related_images(image, true, sort).await?
        }
        (Some(Related::Base { image }), _, _) => {
            repo_tag(image)?;
            client.related_images(image, false, sort).await?
        }
        (None, _, Some(digest)) => client.images_by_digest(digest, sort).await?,
        (None, Some(image), None) => {
            let (repo, tag) = repo_tag(image)?;
            let mut all = client.image_list(repo, sort).await?;
            all.retain(|i| i.tag.as_deref() == Some(tag));
            if all.is_empty() {
                return Err(QueryError::Usage(format!("{image}: no such image")));
            }
            all
        }
        (None, None, None) => {
            return Err(QueryError::Usage(
                "give an image (REPOSITORY:TAG), --digest, or derived|base".into(),
            ));
        }
    };
    images_out(target, found)
}

fn cve_table(cves: &[Cve]) -> String {
    let rows = cves
        .iter()
        .map(|c| {
            let packages: Vec<String> = c
                .package_list
                .iter()
                .map(|p| p.name.clone().unwrap_or_default())
                .collect();
            [
                c.id.clone().unwrap_or_default(),
                c.severity.clone().unwrap_or_default(),
                packages.join(","),
                c.title.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(["ID", "SEVERITY", "PACKAGES", "TITLE"], rows)
}

pub(crate) async fn cve(target: Target, cmd: CveCommand) -> Result<String, QueryError> {
    let client = target.client()?;
    match cmd {
        CveCommand::List {
            image,
            severity,
            cve_id,
        } => {
            repo_tag(&image)?;
            let severity = severity.map(|s| s.to_ascii_uppercase());
            let mut found = client
                .image_cves(
                    &image,
                    cve_id.as_deref().unwrap_or(""),
                    severity.as_deref(),
                    target.sort(SortBy::Severity),
                )
                .await?;
            // Older servers ignore `severity`: filtered here too.
            if let Some(s) = &severity {
                found
                    .cve_list
                    .retain(|c| c.severity.as_deref() == Some(s.as_str()));
            }
            Ok(output::render(target.output, &found, || {
                cve_table(&found.cve_list)
            })?)
        }
        CveCommand::Affected { id, repo } => {
            let found = client
                .images_affected(&id, repo.as_deref(), target.sort(SortBy::AlphaAsc))
                .await?;
            images_out(&target, found)
        }
        CveCommand::Fixed { id, repo } => {
            images_out(&target, client.images_fixed(&id, &repo).await?)
        }
        CveCommand::Diff { image, other } => {
            let found = client
                .cve_diff(repo_tag(&image)?, repo_tag(&other)?)
                .await?;
            Ok(output::render(target.output, &found, || {
                cve_table(&found.cve_list)
            })?)
        }
    }
}

pub(crate) async fn repos(target: Target) -> Result<String, QueryError> {
    let client = target.client()?;
    let found = client
        .global_search("", target.sort(SortBy::AlphaAsc))
        .await?;
    Ok(output::render(target.output, &found.repos, || {
        let rows = found
            .repos
            .iter()
            .map(|r| {
                let platforms: Vec<String> = r.platforms.iter().map(ToString::to_string).collect();
                [
                    r.name.clone().unwrap_or_default(),
                    r.last_updated.clone().unwrap_or_else(|| "-".into()),
                    size(r.size),
                    platforms.join(","),
                    r.star_count.map_or("-".into(), |n| n.to_string()),
                    r.download_count.map_or("-".into(), |n| n.to_string()),
                ]
            })
            .collect();
        table(
            [
                "NAME",
                "LAST UPDATED",
                "SIZE",
                "PLATFORMS",
                "STARS",
                "DOWNLOADS",
            ],
            rows,
        )
    })?)
}

pub(crate) async fn search(target: Target, text: String) -> Result<String, QueryError> {
    let client = target.client()?;
    let found = client
        .global_search(&text, target.sort(SortBy::Relevance))
        .await?;
    Ok(output::render(target.output, &found, || {
        // `repo` finds repositories, `repo:tag` images (zot's rule).
        if text.contains(':') {
            image_table(&found.images)
        } else {
            let rows = found
                .repos
                .iter()
                .map(|r| {
                    [
                        r.name.clone().unwrap_or_default(),
                        r.last_updated.clone().unwrap_or_else(|| "-".into()),
                        size(r.size),
                    ]
                })
                .collect();
            table(["NAME", "LAST UPDATED", "SIZE"], rows)
        }
    })?)
}

pub(crate) async fn referrers(target: Target, artifact: String) -> Result<String, QueryError> {
    let (repo, digest) = repo_digest(&artifact)?;
    let client = target.client()?;
    let found = client.search_referrers(repo, digest).await?;
    Ok(output::render(target.output, &found, || {
        let rows = found
            .iter()
            .map(|r| {
                [
                    r.artifact_type.clone().unwrap_or_else(|| "-".into()),
                    short(r.digest.as_deref()),
                    size(r.size),
                ]
            })
            .collect();
        table(["ARTIFACT TYPE", "DIGEST", "SIZE"], rows)
    })?)
}

/// `berth status`'s shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    url: String,
    /// Whether `/v2/` answered 200 with these credentials.
    logged_in: bool,
    dist_spec_version: Option<String>,
    binary_type: Option<String>,
    /// The extensions' routes (`/v2/_oci/ext/discover`).
    extensions: Vec<String>,
    /// Whether the search API answers (the query commands need it).
    search: bool,
}

pub(crate) async fn status(target: Target) -> Result<String, QueryError> {
    let client = target.client()?;
    let logged_in = match client.ping().await {
        Ok(()) => true,
        Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => false,
        Err(e) => return Err(e.into()),
    };
    let extensions = client.extension_endpoints().await.unwrap_or_default();
    let mgmt = client.management().await.ok().flatten().unwrap_or_default();
    let text = |k: &str| mgmt[k].as_str().map(str::to_string);
    let status = Status {
        url: client.base().to_string(),
        logged_in,
        dist_spec_version: text("distSpecVersion"),
        binary_type: text("binaryType"),
        search: extensions
            .iter()
            .any(|e| e == berth_client::search::SEARCH_PATH),
        extensions,
    };
    Ok(output::render(target.output, &status, || {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        table(
            ["URL", "LOGGED IN", "DIST SPEC", "BUILD", "EXTENSIONS"],
            vec![[
                status.url.clone(),
                status.logged_in.to_string(),
                or_dash(&status.dist_spec_version),
                or_dash(&status.binary_type),
                status.extensions.join(","),
            ]],
        )
    })?)
}

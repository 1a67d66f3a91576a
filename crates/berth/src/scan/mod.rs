//! `berth scan`: the vulnerabilities of an image, without a server (for
//! CI pipelines). IMAGE is parsed into a target (`reference.rs`), its
//! manifests walked to the image manifests of each platform and its
//! layers fetched one at a time (`source.rs`, `manifest.rs`) into
//! `berth_vuln::inventory::scan_layers`; the OSV dumps of the ecosystems
//! the packages need are read into a map (`osv.rs`), matched with
//! `berth_vuln::matching::findings`, and reported (`report.rs`).
//!
//! Exit status: 0, or 1 when a finding at or above `--fail-on` was
//! found; 2 when the scan could not be made (a bad reference, an
//! unreadable layout, an unreachable registry or advisory source), with
//! one line on stderr.

mod manifest;
mod osv;
mod reference;
mod report;
mod source;

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};
use std::process::ExitCode;

use berth_vuln::inventory::{Inventory, InventoryError, Layer, Limits, scan_layers};
use berth_vuln::matching::findings;
use berth_vuln::{Package, Severity};

use manifest::{Descriptor, Platform};
use osv::{Advisories, OsvError, OsvSource};
use reference::ReferenceError;
use report::{Report, Summary};
use source::{Image, RegistryOptions, Source, SourceError};

const EXAMPLES: &str = "\
Examples:
  berth scan oci:./my-layout:v1 --fail-on HIGH
  berth scan docker://127.0.0.1:8080/team/app:v1 --insecure -o json
  berth scan registry.example.com/team/app@sha256:<hex> --creds ci:secret --platform linux/arm64
  berth scan oci:./my-layout --osv ./osv-mirror --ecosystem Debian --ecosystem PyPI

Exit status: 0 when nothing at or above --fail-on was found (without
--fail-on, whatever was found), 1 when something was, 2 when the scan
could not be made (bad reference, unreadable layout, unreachable registry
or advisory source).";

/// `berth scan`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ScanArgs {
    // The help texts of IMAGE and --osv are attributes, not doc comments:
    // their brackets would be read as rustdoc links and tags.
    #[arg(
        help = "The image: oci:PATH[:TAG] or a directory holding an OCI image layout \
(default tag latest, or its only manifest), or a registry image, \
docker://HOST/REPO[:TAG|@DIGEST] or HOST/REPO[:TAG|@DIGEST]"
    )]
    image: String,
    #[arg(
        long,
        value_name = "SOURCE",
        default_value = osv::DEFAULT_SOURCE,
        help = "OSV advisories: a directory laid out as OSV publishes them \
(<SOURCE>/<Ecosystem>/all.zip), or an http(s) base URL of the same"
    )]
    osv: String,
    /// Load this ecosystem's advisories (OSV's folder name: Debian,
    /// Alpine, PyPI, npm...) instead of those the image's packages need;
    /// repeatable. A named ecosystem without a dump is an error.
    #[arg(long = "ecosystem", value_name = "NAME")]
    ecosystems: Vec<String>,
    /// Exit 1 when a finding of this severity or worse is found.
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
    /// Output: a table and a summary, or JSON.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
    /// Registry credentials (Basic).
    #[arg(long, value_name = "USER:PASS")]
    creds: Option<String>,
    /// Allow a registry over plain HTTP, or over HTTPS with a certificate
    /// that does not verify.
    #[arg(long)]
    insecure: bool,
    /// Scan only this platform of an index (default: every platform,
    /// each reported on its own).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<Platform>,
}

/// The severities `--fail-on` takes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
enum FailOn {
    Critical,
    High,
    Medium,
    Low,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            Self::Critical => Severity::Critical,
            Self::High => Severity::High,
            Self::Medium => Severity::Medium,
            Self::Low => Severity::Low,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// A `--platform` that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("expected os/arch or os/arch/variant, e.g. linux/amd64")]
struct PlatformError;

fn parse_platform(s: &str) -> Result<Platform, PlatformError> {
    Platform::parse(s).ok_or(PlatformError)
}

/// Why a scan could not be made (exit status 2).
#[derive(Debug, thiserror::Error)]
enum ScanError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Osv(#[from] OsvError),
    #[error("image {digest}: {source}")]
    Inventory {
        digest: String,
        #[source]
        source: InventoryError,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write the report: {0}")]
    Output(String),
}

/// Runs `berth scan` and gives its exit status.
pub(crate) fn main(args: &ScanArgs) -> ExitCode {
    match run(args) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::FAILURE,
        Err(e) => {
            let line = e.to_string().replace('\n', " ");
            eprintln!("berth scan: {line}");
            ExitCode::from(2)
        }
    }
}

/// Scans and prints; `Ok(true)` when a finding reached `--fail-on`.
fn run(args: &ScanArgs) -> Result<bool, ScanError> {
    let target = reference::parse(&args.image, |p| p.join("oci-layout").is_file())?;
    let osv = OsvSource::parse(&args.osv);
    osv.check()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ScanError::Runtime)?;
    let options = RegistryOptions {
        creds: args.creds.clone(),
        insecure: args.insecure,
    };
    let source = runtime.block_on(Source::open(&target, &options))?;
    let images = runtime.block_on(source.images(args.platform.as_ref()))?;
    let mut scanned = Vec::with_capacity(images.len());
    for image in images {
        let inventory = inventory(&runtime, &source, &image)?;
        scanned.push((image, inventory));
    }
    let packages: Vec<&Package> = scanned.iter().flat_map(|(_, i)| &i.packages).collect();
    let advisories = advisories(&runtime, &osv, &args.ecosystems, &packages)?;

    let reports: Vec<Report> = scanned
        .into_iter()
        .map(|(image, inventory)| report(&args.image, image, inventory, &advisories))
        .collect();
    let failed = args.fail_on.is_some_and(|threshold| {
        let threshold = threshold.severity();
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| f.severity <= threshold)
    });
    let text = match args.output {
        Output::Json => report::json(&reports).map_err(|e| ScanError::Output(e.to_string()))?,
        Output::Text => report::text(&reports, terminal_width()),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .and_then(|()| std::io::stdout().flush())
        .map_err(|e| ScanError::Output(e.to_string()))?;
    Ok(failed)
}

/// The inventory of one image, its layers fetched one at a time as the
/// scan reaches them (a registry's each in a temporary file, gone once
/// read). Blobs that are not filesystem layers are not fetched:
/// `scan_layers` skips them with a note by their media type.
fn inventory(
    runtime: &tokio::runtime::Runtime,
    source: &Source,
    image: &Image,
) -> Result<Inventory, ScanError> {
    let mut failure = None;
    let layers = image.layers.iter().map_while(|layer: &Descriptor| {
        if !looks_like_layer(&layer.media_type) {
            let empty: Box<dyn Read> = Box::new(std::io::empty());
            return Some(Layer::new(layer.media_type.clone(), empty));
        }
        match runtime.block_on(source.layer(layer)) {
            Ok(file) => {
                let reader: Box<dyn Read> = Box::new(BufReader::new(file));
                Some(Layer::new(layer.media_type.clone(), reader))
            }
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    });
    let scanned = scan_layers(layers, Limits::default());
    if let Some(e) = failure {
        return Err(e.into());
    }
    scanned.map_err(|source| ScanError::Inventory {
        digest: image.digest.to_string(),
        source,
    })
}

/// Whether a blob's media type may be a filesystem layer (tar, Docker's
/// rootfs diff): what `scan_layers` reads.
fn looks_like_layer(media_type: &str) -> bool {
    media_type.contains(".tar") || media_type.contains("rootfs.diff")
}

/// The advisories of the ecosystems `named` (else those of the
/// `packages`), keeping what may affect the packages.
fn advisories(
    runtime: &tokio::runtime::Runtime,
    source: &OsvSource,
    named: &[String],
    packages: &[&Package],
) -> Result<Advisories, ScanError> {
    let folders: BTreeSet<String> = if named.is_empty() {
        osv::folders(packages.iter().copied())
    } else {
        named.iter().cloned().collect()
    };
    let wanted = osv::wanted(packages.iter().copied());
    let client = osv::http_client()?;
    let mut advisories = Advisories::default();
    for folder in &folders {
        match runtime.block_on(source.fetch(&client, folder, !named.is_empty()))? {
            Some(file) => osv::read_dump(source, folder, file, &wanted, &mut advisories)?,
            None => advisories
                .notes
                .push((folder.clone(), osv::missing_note(source, folder))),
        }
    }
    Ok(advisories)
}

/// One image's report.
fn report(image_arg: &str, image: Image, inventory: Inventory, advisories: &Advisories) -> Report {
    let found = findings(&inventory.packages, |ecosystem, name| {
        advisories.lookup(ecosystem, name)
    });
    let mut notes = inventory.notes;
    let mine = osv::folders(&inventory.packages);
    notes.extend(
        advisories
            .notes
            .iter()
            .filter(|(folder, _)| mine.contains(folder))
            .map(|(_, note)| note.clone()),
    );
    Report {
        image: image_arg.to_owned(),
        digest: image.digest.to_string(),
        platform: image.platform.map(|p| p.to_string()),
        os: inventory.os,
        packages: inventory.packages.len(),
        summary: Summary::of(&found),
        findings: found,
        notes,
    }
}

/// The terminal's width, when stdout is one.
fn terminal_width() -> Option<u16> {
    console::Term::stdout().size_checked().map(|(_, cols)| cols)
}

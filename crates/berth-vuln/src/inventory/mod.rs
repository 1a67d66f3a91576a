//! An image's inventory: the distribution and the packages its layers
//! install, read from the layers' bytes as stored in the registry.
//!
//! [`scan_layers`] reads each layer once, from the base up, entry by
//! entry, without unpacking anything to disk ([`layer`](self) module
//! docs); it keeps in memory only the files that matter, by path
//! ([`paths`](self)): package databases whole until the last layer is
//! read, so that whiteouts apply ([`tree`](self)); manifests and
//! executables reduced at once to the packages they name. Then the
//! distribution is read from os-release ([`OsRelease`]), which names the
//! ecosystem of its packages, and the databases are parsed.
//!
//! What could not be read is said in [`Inventory::notes`], never left
//! as an empty result: a database of a format not read, a file over the
//! bounds, a layer that is not a filesystem. Only a layer that cannot be
//! read to its end fails the whole scan ([`InventoryError`]).
//!
//! The parsers, one a file: `dpkg`, `apk`, `rpm` (with `rpm_header`),
//! `python`, `npm`, `java`, `ruby`, `composer`, and for executables
//! `binary` with `golang` and `rust_audit`.

mod apk;
mod binary;
mod composer;
mod dpkg;
mod error;
mod fields;
mod golang;
mod java;
mod layer;
mod npm;
mod os_release;
mod paths;
mod python;
mod rpm;
mod rpm_header;
mod ruby;
mod rust_audit;
mod tree;

use std::io::Read;

use serde::{Deserialize, Serialize};

pub use error::InventoryError;
pub use os_release::OsRelease;

use crate::Package;
use os_release::{Family, ecosystem_for};
use paths::Kind;
use tree::{Content, Tree};

/// One layer of an image, as the manifest lists it.
pub struct Layer<R> {
    /// The layer's media type, from its descriptor: a layer of another
    /// type than a filesystem's (an artifact's blob) is skipped with a
    /// note.
    pub media_type: String,
    /// The layer's bytes as stored (compressed or not).
    pub reader: R,
}

impl<R: Read> Layer<R> {
    /// A layer of `media_type` whose bytes `reader` gives.
    pub fn new(media_type: impl Into<String>, reader: R) -> Self {
        Self {
            media_type: media_type.into(),
            reader,
        }
    }
}

/// Bounds on what a scan holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest file read (a package database, a manifest, a jar, an
    /// executable); a larger one is skipped with a note.
    pub max_file: u64,
    /// The most held at once: the package databases kept until the last
    /// layer and the file being read.
    pub max_total: u64,
}

impl Default for Limits {
    /// 64 MiB per file, 512 MiB in all.
    fn default() -> Self {
        Self {
            max_file: 64 << 20,
            max_total: 512 << 20,
        }
    }
}

/// What an image contains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The distribution, if the image has an os-release.
    pub os: Option<OsRelease>,
    /// The packages, sorted (by ecosystem, name, version, source,
    /// location) and without duplicates.
    pub packages: Vec<Package>,
    /// What could not be read, in the order met: layers first, then files
    /// by path.
    pub notes: Vec<String>,
}

/// Takes the inventory of an image from its layers, given from the base
/// up.
pub fn scan_layers<R, I>(layers: I, limits: Limits) -> Result<Inventory, InventoryError>
where
    R: Read,
    I: IntoIterator<Item = Layer<R>>,
{
    let mut tree = Tree::default();
    let mut notes = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        let number = i + 1;
        if !layer::is_layer(&layer.media_type) {
            notes.push(format!(
                "layer {number} ({}) is not a filesystem layer: skipped",
                layer.media_type
            ));
            continue;
        }
        notes.extend(layer::read(number, layer.reader, limits, &mut tree)?);
    }
    Ok(assemble(tree, notes))
}

/// Reads os-release and the databases once every layer is read.
fn assemble(tree: Tree, mut notes: Vec<String>) -> Inventory {
    let os_file = paths::OS_RELEASE
        .iter()
        .find_map(|p| tree.database(p).map(|b| (*p, b)));
    let os = os_file.and_then(|(_, bytes)| OsRelease::parse(&String::from_utf8_lossy(bytes)));
    match (&os, os_file) {
        (None, Some((path, _))) => {
            notes.push(format!("{path} has no ID: the distribution is unknown"))
        }
        (Some(os), _) if os.ecosystem().is_none() => notes.push(format!(
            "os-release says {} {}: OSV has no ecosystem for it here",
            os.id,
            os.version_id.as_deref().unwrap_or("without VERSION_ID")
        )),
        _ => {}
    }

    let mut packages = Vec::new();
    for (path, content) in tree.into_contents() {
        let found = match content {
            Content::Reduced(found) => found,
            Content::Database(bytes) => {
                let family = match paths::classify(&path) {
                    Some(Kind::Dpkg) => Family::Dpkg,
                    Some(Kind::Apk) => Family::Apk,
                    Some(Kind::RpmSqlite) => Family::Rpm,
                    _ => continue,
                };
                let (ecosystem, note) = ecosystem_for(os.as_ref(), family, &path);
                notes.extend(note);
                match family {
                    Family::Dpkg => dpkg::parse(&bytes, &path, &ecosystem),
                    Family::Apk => apk::parse(&bytes, &path, &ecosystem),
                    Family::Rpm => rpm::parse_sqlite(&bytes, &path, &ecosystem),
                }
            }
        };
        packages.extend(found.packages);
        notes.extend(found.notes);
    }
    packages.sort();
    packages.dedup();
    let mut seen = std::collections::HashSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    Inventory {
        os,
        packages,
        notes,
    }
}

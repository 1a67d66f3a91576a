//! Rust binaries built with `cargo auditable`: a `.dep-v0` section (on
//! ELF, Mach-O's `__DATA,.dep-v0`, PE's `.dep-v0`) holding the
//! zlib-compressed JSON `{"packages": [{"name", "version", "source",
//! "kind", …}]}` of the dependency tree. Packages from crates.io are
//! reported (`source` `crates.io`); local and git ones are not on
//! crates.io and build dependencies (`kind` `build`) are not in the
//! binary, so neither is reported. Decompression stops at 8 MiB, the
//! format's own limit.

use std::io::Read;

use flate2::read::ZlibDecoder;
use serde::Deserialize;

use super::tree::Found;
use crate::Package;

/// The section's name on every platform (Mach-O's segment aside).
pub(super) const SECTION: &str = ".dep-v0";

const MAX_JSON: u64 = 8 * 1024 * 1024;

#[derive(Deserialize)]
struct Info {
    packages: Vec<Dep>,
}

#[derive(Deserialize)]
struct Dep {
    name: String,
    version: String,
    source: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The crates a `.dep-v0` section of the binary at `location` lists.
pub(super) fn parse(section: &[u8], location: &str) -> Found {
    let mut json = Vec::new();
    let read = ZlibDecoder::new(section)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json);
    if read.is_err() || json.len() as u64 > MAX_JSON {
        return Found::note(format!(
            "{location}: its cargo-auditable section does not decompress within 8 MiB"
        ));
    }
    let info: Info = match serde_json::from_slice(&json) {
        Ok(info) => info,
        Err(e) => {
            return Found::note(format!(
                "{location}: its cargo-auditable section is not the format's JSON: {e}"
            ));
        }
    };
    let packages = info
        .packages
        .into_iter()
        .filter(|d| d.source == "crates.io" && d.kind.as_deref() != Some("build"))
        .map(|d| Package {
            ecosystem: "crates.io".into(),
            name: d.name,
            version: d.version,
            source: None,
            location: location.to_owned(),
        })
        .collect();
    Found {
        packages,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_note() {
        assert_eq!(parse(b"not zlib", "bin/x").notes.len(), 1);
    }
}

//! Executables that embed the packages they were built from: Go binaries
//! (build info) and Rust binaries built with `cargo auditable`. A
//! candidate is an executable regular file whose first bytes are an ELF,
//! Mach-O or PE header; it is read whole (within the bound per file) and
//! reduced at once to its packages, so only one is in memory at a time.
//!
//! Sections are found with the `object` crate; Go's build info is also
//! searched for in the whole file when there is no section of its name
//! (PE files keep it in `.data`; Go's own reader does the same search).

use object::{Object, ObjectSection};

use super::tree::Found;
use super::{golang, rust_audit};

/// Bytes needed to tell an executable by its magic.
pub(super) const MAGIC_LEN: usize = 4;

/// Whether a file starting with `head` is an ELF, Mach-O (thin) or PE
/// file. Mach-O's fat magic is Java class files' too and is left out.
pub(super) fn is_executable(head: &[u8]) -> bool {
    matches!(
        head,
        [0x7f, b'E', b'L', b'F', ..]
            | [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
            | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
            | [b'M', b'Z', ..]
    )
}

/// The packages the executable at `location` embeds (none for most).
pub(super) fn parse(bytes: &[u8], location: &str) -> Found {
    let mut found = Found::default();
    let mut go_section = false;
    if let Ok(file) = object::File::parse(bytes) {
        for section in file.sections() {
            let Ok(name) = section.name() else {
                continue;
            };
            let data = section.data().unwrap_or_default();
            match name {
                ".go.buildinfo" | "__go_buildinfo" => {
                    go_section = true;
                    merge(&mut found, golang::parse(data, location));
                }
                rust_audit::SECTION => merge(&mut found, Some(rust_audit::parse(data, location))),
                _ => {}
            }
        }
    }
    if !go_section {
        merge(&mut found, golang::parse(bytes, location));
    }
    found
}

fn merge(into: &mut Found, from: Option<Found>) {
    if let Some(from) = from {
        into.packages.extend(from.packages);
        into.notes.extend(from.notes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert!(is_executable(b"\x7fELF\x02"));
        assert!(is_executable(&[0xcf, 0xfa, 0xed, 0xfe]));
        assert!(is_executable(b"MZ\x90\x00"));
        assert!(!is_executable(&[0xca, 0xfe, 0xba, 0xbe]));
        assert!(!is_executable(b"#!/bin/sh"));
        assert!(parse(b"\x7fELF garbage", "bin/x").packages.is_empty());
    }
}

//! Go's build information, which the linker embeds in every Go binary
//! (the `.go.buildinfo` section on ELF, `__go_buildinfo` on Mach-O, in
//! the data of PE files), read as Go's `debug/buildinfo` reads it.
//!
//! The inline format of Go 1.18 and later: a 32-byte header, the magic
//! `\xff Go buildinf:` (14 bytes), the pointer size, a flags byte (bit 1
//! set: strings inline), padding; then two strings, each a uvarint
//! length and its bytes: the Go version (`go1.22.1`) and the module
//! information, wrapped in 16 sentinel bytes each side (its 17th byte
//! from the end is a newline). Its lines are tab-separated: `path`, the
//! main `mod`ule, `dep`endencies, `=>` a replacement of the line before,
//! `build` settings.
//!
//! Packages: each module with its version (a replacement's, when it has
//! one; a replacement by a local directory keeps the original), the main
//! module unless it is `(devel)`, and the standard library as the module
//! `stdlib` at the Go version, as OSV's Go records name it. Versions lose
//! the `v` of Go's module versions, as OSV's semver ranges write them.
//! Binaries of Go before 1.18 (pointers instead of inline strings) are
//! noted, not read.

use memchr::memmem;

use super::tree::Found;
use crate::Package;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER: usize = 32;
const FLAG_INLINE: u8 = 0x2;

/// The build info in `data` (a section, or a whole file searched for the
/// header); `None` when there is none.
pub(super) fn parse(data: &[u8], location: &str) -> Option<Found> {
    let mut old_format = false;
    for at in memmem::find_iter(data, MAGIC) {
        let Some(header) = data.get(at..at + HEADER) else {
            continue;
        };
        if !matches!(header[14], 4 | 8) {
            continue;
        }
        if header[15] & FLAG_INLINE == 0 {
            old_format = true;
            continue;
        }
        let mut rest = &data[at + HEADER..];
        let (Some(version), Some(modinfo)) = (string(&mut rest), string(&mut rest)) else {
            continue;
        };
        // The sentinels are not UTF-8: they go before the text is read.
        let lines = match modinfo.len() {
            n if n >= 33 && modinfo[n - 17] == b'\n' => &modinfo[16..n - 16],
            _ => &[],
        };
        return Some(packages(
            &String::from_utf8_lossy(version),
            &String::from_utf8_lossy(lines),
            location,
        ));
    }
    old_format.then(|| {
        Found::note(format!(
            "{location} is a Go binary older than Go 1.18: its build info is not read"
        ))
    })
}

/// A uvarint-prefixed string, advancing `rest` past it.
fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        if shift > 63 {
            return None;
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
    }
    let len = usize::try_from(len).ok()?;
    let (s, tail) = (rest.get(..len)?, rest.get(len..)?);
    *rest = tail;
    Some(s)
}

/// The packages of the module info's `lines` (sentinels removed).
fn packages(go_version: &str, lines: &str, location: &str) -> Found {
    let mut found = Found::default();
    let package = |name: &str, version: &str| Package {
        ecosystem: "Go".into(),
        name: name.to_owned(),
        version: version.strip_prefix('v').unwrap_or(version).to_owned(),
        source: None,
        location: location.to_owned(),
    };
    let stdlib = go_version
        .split_whitespace()
        .next()
        .and_then(|v| v.strip_prefix("go"));
    match stdlib {
        Some(v) if v.starts_with(|c: char| c.is_ascii_digit()) => {
            found.packages.push(package("stdlib", v))
        }
        _ => found.notes.push(format!(
            "{location}: Go version {go_version:?} is not a release"
        )),
    }
    // Whether the last line was a module: a replacement applies to it.
    let mut last_was_module = false;
    for line in lines.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] => {
                last_was_module = *version != "(devel)" && !version.is_empty();
                if last_was_module {
                    found.packages.push(package(path, version));
                }
            }
            ["=>", path, version, ..] if last_was_module && !version.is_empty() => {
                if let Some(last) = found.packages.last_mut() {
                    *last = package(path, version);
                }
            }
            _ => last_was_module = false,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints_and_bounds() {
        let mut rest: &[u8] = &[0x03, b'a', b'b', b'c', 0x81, 0x01];
        assert_eq!(string(&mut rest), Some(&b"abc"[..]));
        assert_eq!(string(&mut rest), None, "129 bytes announced, none there");
        let mut endless: &[u8] = &[0xff; 20];
        assert_eq!(string(&mut endless), None);
    }

    #[test]
    fn old_format_is_noted_and_absence_is_none() {
        let mut old = MAGIC.to_vec();
        old.extend([8, 0]);
        old.resize(64, 0);
        assert!(parse(&old, "bin/x").is_some_and(|f| f.notes[0].contains("older than Go 1.18")));
        assert!(parse(b"no build info here", "bin/x").is_none());
    }
}

//! Reading one layer: its media type says whether it is a filesystem
//! layer at all; its first bytes say how it is compressed (gzip, zstd or
//! none, whatever the media type claims, as Docker and containerd do);
//! then its tar stream is read once, entry by entry, and each entry
//! either changes the [`Tree`] (a whiteout, a path written over) or, if
//! it matters, is read into memory within the [`Limits`] and kept or
//! reduced.
//!
//! A layer must end as a tar stream ends, with a zero block: one that
//! stops inside an entry or at an entry's end without the zero block is
//! truncated, an error naming the layer.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Entry};

use super::paths::{self, Kind};
use super::tree::{Content, Found, Tree};
use super::{InventoryError, Limits, binary, composer, java, npm, python, ruby};

const BLOCK: usize = 512;

/// Whether `media_type` is a filesystem layer's (OCI's and Docker's, with
/// or without compression; parameters after `;` aside).
pub(super) fn is_layer(media_type: &str) -> bool {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        base.as_str(),
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// Reads layer `number` (from 1, the base) into `tree`; returns a note
/// when the layer is not a tar stream at all.
pub(super) fn read<R: Read>(
    number: usize,
    reader: R,
    limits: Limits,
    tree: &mut Tree,
) -> Result<Option<String>, InventoryError> {
    let read_error = |source| InventoryError::Read {
        layer: number,
        source,
    };
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf().map_err(read_error)?;
    let decoded: Box<dyn Read + '_> = match head {
        [0x1f, 0x8b, ..] => Box::new(MultiGzDecoder::new(buffered)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::Decoder::with_buffer(buffered).map_err(read_error)?)
        }
        _ => Box::new(buffered),
    };
    let mut stream = Tracked {
        inner: decoded,
        trailing_zeros: 0,
    };

    let mut first = [0u8; BLOCK];
    let got = read_full(&mut stream, &mut first).map_err(read_error)?;
    if got < BLOCK || !(is_zero(&first) || checksum_ok(&first)) {
        return Ok(Some(format!("layer {number} is not a tar stream: skipped")));
    }
    let mut archive = Archive::new(Cursor::new(first).chain(stream));
    for entry in archive.entries().map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        read_entry(number, entry, limits, tree)?;
    }
    // The rest (the second zero block, padding) is read too, so that a
    // compressed stream's end and checksum are checked.
    let mut stream = archive.into_inner().into_inner().1;
    io::copy(&mut stream, &mut io::sink()).map_err(read_error)?;
    if stream.trailing_zeros < BLOCK as u64 {
        return Err(InventoryError::Truncated {
            layer: number,
            at: None,
        });
    }
    Ok(None)
}

fn read_entry<R: Read>(
    number: usize,
    mut entry: Entry<'_, R>,
    limits: Limits,
    tree: &mut Tree,
) -> Result<(), InventoryError> {
    let Some(path) = paths::normalize(&entry.path_bytes()) else {
        return Ok(());
    };
    let kind = entry.header().entry_type();
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
    if name == ".wh..wh..opq" {
        tree.make_opaque(dir, number);
        return Ok(());
    }
    if let Some(target) = name.strip_prefix(".wh.") {
        let target = if dir.is_empty() {
            target.to_owned()
        } else {
            format!("{dir}/{target}")
        };
        tree.delete(&target, number);
        return Ok(());
    }
    if kind.is_dir() {
        tree.replace_with_directory(&path, number);
        return Ok(());
    }
    tree.delete(&path, number);
    let sparse = kind.is_gnu_sparse();
    if !(kind.is_file() || kind.is_contiguous() || sparse) {
        return Ok(());
    }
    let size = entry.size();
    let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
    let wanted = paths::classify(&path);

    let mut head = Vec::new();
    let is_binary = match wanted {
        Some(_) => false,
        None if executable && !sparse && size >= 64 => {
            head = read_exact(&mut entry, binary::MAGIC_LEN as u64, Vec::new()).map_err(|_| {
                InventoryError::Truncated {
                    layer: number,
                    at: Some(path.clone()),
                }
            })?;
            if !binary::is_executable(&head) {
                return Ok(());
            }
            true
        }
        None => return Ok(()),
    };
    if let Some(Kind::Unsupported(what)) = wanted {
        tree.insert(
            path.clone(),
            number,
            Content::Reduced(Found::note(format!("{what} {path} is not supported"))),
        );
        return Ok(());
    }
    let refuse = if sparse {
        Some(format!("{path}: a sparse file of {size} bytes: not read"))
    } else if size > limits.max_file {
        Some(format!(
            "{path}: {size} bytes, over the bound of {} bytes per file: not read",
            limits.max_file
        ))
    } else if tree.held().saturating_add(size) > limits.max_total {
        Some(format!(
            "{path}: {size} bytes more would pass the bound of {} bytes in all: not read",
            limits.max_total
        ))
    } else {
        None
    };
    if let Some(note) = refuse {
        tree.insert(path, number, Content::Reduced(Found::note(note)));
        return Ok(());
    }
    let bytes = read_exact(&mut entry, size, head).map_err(|_| InventoryError::Truncated {
        layer: number,
        at: Some(path.clone()),
    })?;
    let content = match wanted {
        Some(kind) if kind.is_database() => Content::Database(bytes),
        Some(Kind::Python) => Content::Reduced(python::parse(&bytes, &path)),
        Some(Kind::Npm) => Content::Reduced(npm::parse(&bytes, &path)),
        Some(Kind::Gem) => Content::Reduced(ruby::parse(&bytes, &path)),
        Some(Kind::Composer) => Content::Reduced(composer::parse(&bytes, &path)),
        Some(Kind::Java) => Content::Reduced(java::parse(&bytes, &path, limits.max_file)),
        _ if is_binary => {
            let found = binary::parse(&bytes, &path);
            if found.packages.is_empty() && found.notes.is_empty() {
                return Ok(());
            }
            Content::Reduced(found)
        }
        _ => return Ok(()),
    };
    tree.insert(path, number, content);
    Ok(())
}

/// Reads the entry up to `size` bytes in all, after the `head` already
/// read; an entry that ends first is truncated.
fn read_exact(entry: &mut impl Read, size: u64, mut head: Vec<u8>) -> io::Result<Vec<u8>> {
    let want = usize::try_from(size).map_err(io::Error::other)?;
    head.reserve(want.saturating_sub(head.len()));
    let missing = size.saturating_sub(head.len() as u64);
    entry.take(missing).read_to_end(&mut head)?;
    if head.len() < want {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(head)
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn is_zero(block: &[u8]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// A tar header's checksum: the sum of its bytes with the checksum field
/// (148..156) counted as spaces, written in octal in that field.
fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|&b| u32::from(b))
        .sum::<u32>()
        + 8 * 32;
    let field = String::from_utf8_lossy(&block[148..156]);
    let digits = field.trim_matches(|c: char| c == '\0' || c == ' ');
    u32::from_str_radix(digits, 8).is_ok_and(|want| want == sum)
}

/// A reader that counts the zero bytes its data ends with, to tell a tar
/// stream that ends with its zero block from one cut short.
struct Tracked<R> {
    inner: R,
    trailing_zeros: u64,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        match data.iter().rposition(|&b| b != 0) {
            Some(last) => self.trailing_zeros = (n - last - 1) as u64,
            None => self.trailing_zeros += n as u64,
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        assert!(is_layer("application/vnd.oci.image.layer.v1.tar+zstd"));
        assert!(is_layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(is_layer("Application/vnd.oci.image.layer.v1.tar+gzip; x=y"));
        assert!(!is_layer("application/vnd.in-toto+json"));
        assert!(!is_layer("application/vnd.oci.image.config.v1+json"));
    }
}

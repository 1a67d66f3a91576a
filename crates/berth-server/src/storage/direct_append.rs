//! Appending a large upload body to its file, past the page cache where
//! the file system allows (`O_DIRECT`, Linux).
//!
//! Why: through the page cache, many large uploads at once fill the
//! kernel's allowance of dirty pages, and from then on every writer waits
//! for the kernel's writeback, which on the development machine drains at
//! about 300 MB/s where the same disk takes 1.6 GB/s of direct writes
//! (BENCHMARKS.md, "Large blobs on the host's own disk"). A direct write
//! also skips the copy into the page cache. No crate does this for an
//! append at an arbitrary offset, hence this file.
//!
//! How: a direct write wants its memory, file offset and length aligned
//! ([`ALIGN`] covers every logical block size in use). A body starts at
//! the file's size, which need not be aligned: the partial block before
//! it is read back and written again with the new bytes, and the bytes
//! after the last whole block go through the page cache. Where the file
//! system refuses `O_DIRECT` (at open, or at the first write), everything
//! goes through the page cache instead, in the same large writes. The file
//! ends the same either way: the bytes it held, then the body's.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

/// Alignment of a direct write's memory, offset and length.
const ALIGN: usize = 4096;

/// Appends to one file in writes of a fixed, aligned buffer.
pub(super) struct Appender {
    /// The file, through the page cache: reads back the partial block,
    /// writes what a direct write cannot, and is what the caller syncs.
    plain: File,
    /// The same file opened for direct writes, while they work.
    direct: Option<File>,
    /// `ALIGN` spare bytes in front of the aligned region.
    buf: Vec<u8>,
    /// Where the aligned region starts in `buf`.
    start: usize,
    /// The region's length: a multiple of `ALIGN`.
    cap: usize,
    /// Bytes of the region in use.
    fill: usize,
    /// Where the region's first byte goes in the file.
    offset: u64,
}

impl Appender {
    /// Opens `path` to append to it, writing `cap` bytes at a time
    /// (rounded up to a multiple of [`ALIGN`]).
    /// `plain` is `path` opened to read and write (not to append). The
    /// direct descriptor is opened here: where that fails (the file system
    /// refuses, or the process has no descriptor left), `plain` does all.
    pub(super) fn open(plain: File, path: &Path, cap: usize) -> io::Result<Self> {
        Self::open_with(plain, cap, open_direct(path))
    }

    fn open_with(mut plain: File, cap: usize, direct: Option<File>) -> io::Result<Self> {
        let size = plain.metadata()?.len();
        let cap = cap.div_ceil(ALIGN).max(1) * ALIGN;
        let mut buf = vec![0u8; cap + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        let (offset, fill) = if direct.is_some() {
            // The partial block before the end is written again, whole.
            let tail = (size % ALIGN as u64) as usize;
            let offset = size - tail as u64;
            plain.seek(SeekFrom::Start(offset))?;
            plain.read_exact(&mut buf[start..start + tail])?;
            (offset, tail)
        } else {
            (size, 0)
        };
        Ok(Self {
            plain,
            direct,
            buf,
            start,
            cap,
            fill,
            offset,
        })
    }

    /// Appends `data`.
    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (self.cap - self.fill).min(data.len());
            let at = self.start + self.fill;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill == self.cap {
                self.write_out(self.cap)?;
            }
        }
        Ok(())
    }

    /// Writes what is held and hands back the file (to sync it).
    pub(super) fn finish(mut self) -> io::Result<File> {
        if self.direct.is_some() {
            let whole = self.fill - self.fill % ALIGN;
            if whole > 0 {
                self.write_out(whole)?;
            }
        }
        // A direct write cannot take the last partial block.
        if self.fill > 0 {
            let held = self.start..self.start + self.fill;
            self.plain.seek(SeekFrom::Start(self.offset))?;
            self.plain.write_all(&self.buf[held])?;
        }
        Ok(self.plain)
    }

    /// Writes the region's first `len` bytes (a multiple of `ALIGN` while
    /// direct writes work) and keeps the rest at the region's front.
    fn write_out(&mut self, len: usize) -> io::Result<()> {
        let data = &self.buf[self.start..self.start + len];
        let direct = match &self.direct {
            Some(f) => write_at(f, data, self.offset),
            None => Err(io::Error::from(io::ErrorKind::Unsupported)),
        };
        if direct.is_err() {
            // Refused, or never possible: the page cache takes it, and
            // everything after it. A real failure (a full disk) fails
            // here again and is reported.
            self.direct = None;
            self.plain.seek(SeekFrom::Start(self.offset))?;
            self.plain.write_all(data)?;
        }
        self.offset += len as u64;
        self.buf
            .copy_within(self.start + len..self.start + self.fill, self.start);
        self.fill -= len;
        Ok(())
    }
}

/// `path` opened for direct writes, `None` where that is refused.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(unix)]
fn write_at(f: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, data, offset)
}

#[cfg(not(unix))]
fn write_at(_f: &File, _data: &[u8], _offset: u64) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `parts` one body after another to a file that starts with
    /// `initial`, checking the file after each.
    fn check(initial: usize, parts: &[&[usize]], cap: usize) {
        check_with(initial, parts, cap, true);
        check_with(initial, parts, cap, false);
    }

    /// With `direct`, direct writes where the file system takes them
    /// (and they must keep working once opened); else the page cache only.
    fn check_with(initial: usize, parts: &[&[usize]], cap: usize, direct: bool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("upload");
        let mut want: Vec<u8> = (0..initial).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &want).expect("write");
        let mut n = initial;
        for body in parts {
            let fd = if direct { open_direct(&path) } else { None };
            let plain = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .expect("open");
            let mut w = Appender::open_with(plain, cap, fd).expect("open");
            let opened_direct = w.direct.is_some();
            for &len in *body {
                let data: Vec<u8> = (n..n + len).map(|i| (i % 251) as u8).collect();
                w.write(&data).expect("append");
                want.extend_from_slice(&data);
                n += len;
            }
            assert_eq!(w.direct.is_some(), opened_direct, "direct writes failed");
            w.finish().expect("finish").sync_data().expect("sync");
            assert_eq!(std::fs::read(&path).expect("read"), want, "after {body:?}");
        }
    }

    #[test]
    fn appends_bodies_of_any_length_at_any_offset() {
        check(0, &[&[0], &[1], &[4095, 1], &[4097]], 8192);
        check(5, &[&[10_000, 3, 70_000], &[8192], &[1]], 8192);
        check(8192, &[&[8192 * 3], &[100]], 8192);
        check(4096 * 3 + 17, &[&[1 << 20], &[12_345, 678]], 64 << 10);
        // A capacity that is not a multiple of the alignment is rounded.
        check(1, &[&[9_999, 9_999]], 5000);
    }

    #[test]
    fn an_empty_body_leaves_the_file_as_it_was() {
        check(4096 + 7, &[&[], &[0, 0]], 4096);
    }
}

//! rpm's header format, as rpm stores one per package in its database:
//! the header blob without the 8-byte magic of `.rpm` files, that is a
//! big-endian count of index entries (`il`) and the length of the data
//! store (`dl`), `il` entries of 16 bytes (tag, type, offset into the
//! store, count), then the store.
//!
//! Written by hand: only five tags are needed (NAME 1000, VERSION 1001,
//! RELEASE 1002, EPOCH 1003, SOURCERPM 1044), and the `rpm` crate reads
//! whole `.rpm` files (lead, signature header, magic) rather than a
//! database's bare blobs, with dependencies of its own for signatures.
//! Every offset is checked against the store: a header of garbage is an
//! error, never a panic.

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own bound on a header's index (`hdrchkTags`).
const MAX_ENTRIES: usize = 0xffff;

/// The tags of one package's header that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RpmHeader {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) release: String,
    pub(super) epoch: Option<u32>,
    /// `openssl-3.0.7-24.el9.src.rpm`; absent on `gpg-pubkey` entries.
    pub(super) source_rpm: Option<String>,
}

impl RpmHeader {
    /// `[epoch:]version-release`, as OSV's rpm ecosystems write versions
    /// (an epoch of 0 is left out).
    pub(super) fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch > 0 => format!("{epoch}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }

    /// The source package's name: SOURCERPM without `-version-release`
    /// and `.src.rpm`.
    pub(super) fn source_name(&self) -> Option<&str> {
        let file = self.source_rpm.as_deref()?;
        let stem = file
            .strip_suffix(".src.rpm")
            .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
        let (rest, _release) = stem.rsplit_once('-')?;
        let (name, _version) = rest.rsplit_once('-')?;
        Some(name).filter(|n| !n.is_empty())
    }
}

/// Why a blob is not a header.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadHeader(pub(super) &'static str);

/// Reads the naming tags of a header blob.
pub(super) fn parse(blob: &[u8]) -> Result<RpmHeader, BadHeader> {
    let il = be_u32(blob, 0).ok_or(BadHeader("shorter than a header"))? as usize;
    let dl = be_u32(blob, 4).ok_or(BadHeader("shorter than a header"))? as usize;
    if il == 0 || il > MAX_ENTRIES {
        return Err(BadHeader("index count out of range"));
    }
    let store_start = 8 + il * 16;
    let store = store_start
        .checked_add(dl)
        .and_then(|end| blob.get(store_start..end))
        .ok_or(BadHeader("index or data store beyond the blob"))?;
    let (mut name, mut version, mut release, mut epoch, mut source_rpm) =
        (None, None, None, None, None);
    for i in 0..il {
        let at = 8 + i * 16;
        let field = |k: usize| be_u32(blob, at + 4 * k).ok_or(BadHeader("index beyond the blob"));
        let (tag, kind, offset, count) =
            (field(0)? as i32, field(1)?, field(2)? as usize, field(3)?);
        let text = || -> Result<String, BadHeader> {
            if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
                return Err(BadHeader("a name tag is not a string"));
            }
            let bytes = store
                .get(offset..)
                .ok_or(BadHeader("string beyond the store"))?;
            let end = bytes
                .iter()
                .position(|&b| b == 0)
                .ok_or(BadHeader("unterminated string"))?;
            Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
        };
        match tag {
            TAG_NAME => name = Some(text()?),
            TAG_VERSION => version = Some(text()?),
            TAG_RELEASE => release = Some(text()?),
            TAG_SOURCERPM => source_rpm = Some(text()?),
            TAG_EPOCH => {
                if kind != TYPE_INT32 || count == 0 {
                    return Err(BadHeader("EPOCH is not an int32"));
                }
                epoch = Some(be_u32(store, offset).ok_or(BadHeader("EPOCH beyond the store"))?);
            }
            _ => {}
        }
    }
    Ok(RpmHeader {
        name: name.ok_or(BadHeader("no NAME"))?,
        version: version.ok_or(BadHeader("no VERSION"))?,
        release: release.ok_or(BadHeader("no RELEASE"))?,
        epoch,
        source_rpm,
    })
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Encodes a header blob of string tags and an optional epoch, as
    /// rpm's `headerExport` lays it out.
    pub(in super::super) fn encode(strings: &[(i32, &str)], epoch: Option<u32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        if let Some(epoch) = epoch {
            index.push((TAG_EPOCH, TYPE_INT32, store.len(), 1u32));
            store.extend(epoch.to_be_bytes());
        }
        for (tag, value) in strings {
            index.push((*tag, TYPE_STRING, store.len(), 1));
            store.extend(value.as_bytes());
            store.push(0);
        }
        let mut blob = Vec::new();
        blob.extend((index.len() as u32).to_be_bytes());
        blob.extend((store.len() as u32).to_be_bytes());
        for (tag, kind, offset, count) in index {
            for v in [tag as u32, kind, offset as u32, count] {
                blob.extend(v.to_be_bytes());
            }
        }
        blob.extend(store);
        blob
    }

    #[test]
    fn reads_the_naming_tags() {
        let blob = encode(
            &[
                (1000, "libcurl"),
                (1001, "7.76.1"),
                (1002, "26.el9_3.2"),
                (1044, "curl-7.76.1-26.el9_3.2.src.rpm"),
            ],
            Some(1),
        );
        let h = parse(&blob).map_err(|e| e.0);
        let h = h.as_ref();
        assert_eq!(h.map(RpmHeader::evr), Ok("1:7.76.1-26.el9_3.2".into()));
        assert_eq!(h.ok().and_then(RpmHeader::source_name), Some("curl"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = encode(&[(1000, "a"), (1001, "1"), (1002, "1")], None);
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse(&good).is_ok());
        let mut bad = good.clone();
        bad[8 + 8..8 + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse(&bad), Err(BadHeader("string beyond the store")));
        assert!(parse(&[0xff; 64]).is_err());
        assert_eq!(
            parse(&encode(&[(1000, "a")], None)),
            Err(BadHeader("no VERSION"))
        );
    }
}

//! Layers and the files in them, built as tools build them: tar streams
//! (the `tar` crate), gzip and zstd, rpm headers and rpm's SQLite
//! database, jars, and executables carrying Go build info or a
//! cargo-auditable section.

use std::io::{Cursor, Write};

use berth_vuln::Package;
use berth_vuln::inventory::{Inventory, InventoryError, Layer, Limits, scan_layers};

pub(crate) const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub(crate) const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A tar layer being written.
pub(crate) struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self {
            tar: tar::Builder::new(Vec::new()),
        }
    }
}

impl LayerBuilder {
    pub(crate) fn file(self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.file_mode(path, data, 0o644)
    }

    pub(crate) fn file_mode(mut self, path: &str, data: impl AsRef<[u8]>, mode: u32) -> Self {
        let data = data.as_ref();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        self.tar
            .append_data(&mut header, path, data)
            .expect("append a file");
        self
    }

    pub(crate) fn dir(mut self, path: &str) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        self.tar
            .append_data(&mut header, path, &[][..])
            .expect("append a directory");
        self
    }

    pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        self.tar
            .append_link(&mut header, path, target)
            .expect("append a symlink");
        self
    }

    /// A whiteout of `path` (`dir/.wh.name`).
    pub(crate) fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, b"")
    }

    /// Makes `dir` opaque.
    pub(crate) fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// A GNU sparse entry declaring `real_size` bytes, of which only the
    /// last 512 are stored.
    pub(crate) fn sparse(mut self, path: &str, real_size: u64, mode: u32) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).expect("sparse path");
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(mode);
        header.set_size(512);
        let gnu = header.as_gnu_mut().expect("a GNU header");
        octal(&mut gnu.sparse[0].offset, real_size - 512);
        octal(&mut gnu.sparse[0].numbytes, 512);
        octal(&mut gnu.realsize, real_size);
        header.set_cksum();
        self.tar
            .append(&header, &[0x5a; 512][..])
            .expect("append a sparse entry");
        self
    }

    pub(crate) fn tar(self) -> Vec<u8> {
        self.tar.into_inner().expect("finish the tar")
    }

    pub(crate) fn gzip(self) -> Vec<u8> {
        gzip(&self.tar())
    }

    pub(crate) fn zstd(self) -> Vec<u8> {
        zstd::encode_all(&self.tar()[..], 3).expect("zstd")
    }
}

/// Writes `value` in octal filling the whole field (no terminator), as
/// tar does for numbers that need every digit.
fn octal(field: &mut [u8; 12], value: u64) {
    let text = format!("{value:012o}");
    field.copy_from_slice(text.as_bytes());
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

pub(crate) fn scan(layers: Vec<(&str, Vec<u8>)>) -> Result<Inventory, InventoryError> {
    scan_with(layers, Limits::default())
}

pub(crate) fn scan_with(
    layers: Vec<(&str, Vec<u8>)>,
    limits: Limits,
) -> Result<Inventory, InventoryError> {
    scan_layers(
        layers
            .into_iter()
            .map(|(media, bytes)| Layer::new(media, Cursor::new(bytes))),
        limits,
    )
}

pub(crate) fn pkg(
    ecosystem: &str,
    name: &str,
    version: &str,
    source: Option<&str>,
    location: &str,
) -> Package {
    Package {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        source: source.map(Into::into),
        location: location.into(),
    }
}

/// `want`, sorted as an inventory sorts its packages.
pub(crate) fn sorted(mut want: Vec<Package>) -> Vec<Package> {
    want.sort();
    want
}

pub(crate) const DEBIAN_OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// A dpkg status file as dpkg writes it: an installed package from a
/// source of the same version, one built from a source of another
/// version, one without `Source`, one removed with its configuration
/// left, one never configured.
pub(crate) const DPKG_STATUS: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6161
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 .
 Internet.
Homepage: https://www.openssl.org/

Package: cpp
Status: install ok installed
Priority: optional
Section: interpreters
Architecture: amd64
Source: gcc-defaults (1.203)
Version: 4:12.2.0-3
Description: GNU C preprocessor (cpp)

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell

Package: nano
Status: deinstall ok config-files
Architecture: amd64
Version: 7.2-1
Conffiles:
 /etc/nanorc 7a3c1bf8e1b0a4d1e0a7a1b2a4e7f0a1

Package: vim-tiny
Status: install ok unpacked
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
";

/// An rpm header blob of the naming tags, laid out as rpm's
/// `headerExport` writes it into the database: `il`, `dl`, the index,
/// the store (an epoch first, then the strings, NUL-terminated).
pub(crate) fn rpm_header(
    name: &str,
    version: &str,
    release: &str,
    epoch: Option<u32>,
    source_rpm: Option<&str>,
) -> Vec<u8> {
    const INT32: u32 = 4;
    const STRING: u32 = 6;
    let mut index: Vec<[u32; 4]> = Vec::new();
    let mut store = Vec::new();
    if let Some(epoch) = epoch {
        index.push([1003, INT32, store.len() as u32, 1]);
        store.extend(epoch.to_be_bytes());
    }
    let strings = [
        (1000, Some(name)),
        (1001, Some(version)),
        (1002, Some(release)),
        (1044, source_rpm),
    ];
    for (tag, value) in strings {
        if let Some(value) = value {
            index.push([tag, STRING, store.len() as u32, 1]);
            store.extend(value.as_bytes());
            store.push(0);
        }
    }
    let mut blob = Vec::new();
    blob.extend((index.len() as u32).to_be_bytes());
    blob.extend((store.len() as u32).to_be_bytes());
    for entry in index {
        for v in entry {
            blob.extend(v.to_be_bytes());
        }
    }
    blob.extend(store);
    blob
}

/// An `rpmdb.sqlite` as rpm creates it (its `Packages` table and one
/// header blob a row), with the WAL mode rpm sets written in the file
/// header (bytes 18 and 19).
pub(crate) fn rpmdb_sqlite(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut conn = rusqlite::Connection::open_in_memory().expect("sqlite");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS 'Name' (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));",
    )
    .expect("schema");
    for blob in blobs {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
            .expect("insert");
    }
    let mut bytes = conn
        .serialize(rusqlite::MAIN_DB)
        .expect("serialize")
        .to_vec();
    bytes[18] = 2;
    bytes[19] = 2;
    bytes
}

/// A jar (or war) of `files`, deflated.
pub(crate) fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        zip.start_file(*name, options).expect("zip entry");
        zip.write_all(data).expect("zip data");
    }
    zip.finish().expect("zip").into_inner()
}

pub(crate) fn pom_properties(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    format!("#Created by Apache Maven 3.9.5\nversion={version}\ngroupId={group}\nartifactId={artifact}\n").into_bytes()
}

/// Go's build info blob, as the Go 1.18+ linker writes it into
/// `.go.buildinfo`: the 14-byte magic, pointer size 8, flags 0x2
/// (inline strings, little endian), 16 bytes of padding; then the Go
/// version and the module info, each a uvarint length and its bytes, the
/// module info between Go's 16-byte sentinels (`infoStart`, `infoEnd` of
/// `cmd/go/internal/modload`).
pub(crate) fn go_buildinfo(go_version: &str, modinfo: &str) -> Vec<u8> {
    const INFO_START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const INFO_END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    let mut blob = b"\xff Go buildinf:".to_vec();
    blob.extend([8, 2]);
    blob.resize(32, 0);
    let mut wrapped = INFO_START.to_vec();
    wrapped.extend(modinfo.as_bytes());
    wrapped.extend(INFO_END);
    for s in [go_version.as_bytes(), &wrapped] {
        let mut len = s.len();
        while len >= 0x80 {
            blob.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        blob.push(len as u8);
        blob.extend(s);
    }
    blob
}

/// An x86-64 ELF object with one section of `data`, written by the
/// `object` crate: enough for a scanner that reads sections by name.
pub(crate) fn elf_with_section(name: &str, data: &[u8]) -> Vec<u8> {
    use object::write::Object;
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    obj.append_section_data(text, &[0xc3; 64], 16);
    let section = obj.add_section(
        Vec::new(),
        name.as_bytes().to_vec(),
        SectionKind::ReadOnlyData,
    );
    obj.append_section_data(section, data, 16);
    obj.write().expect("an ELF file")
}

/// cargo-auditable's `.dep-v0` section: the dependency tree's JSON,
/// zlib-compressed.
pub(crate) fn cargo_auditable_section(json: &str) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(json.as_bytes()).expect("zlib");
    enc.finish().expect("zlib")
}

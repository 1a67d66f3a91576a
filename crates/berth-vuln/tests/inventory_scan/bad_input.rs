//! Bad input: a note or an error naming the layer, never a panic, never
//! unbounded memory or time.

use std::time::{Duration, Instant};

use berth_vuln::inventory::{InventoryError, Limits};

use crate::fixtures::*;

fn good_layer() -> LayerBuilder {
    let mut filler = Vec::new();
    let mut x: u32 = 7;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        filler.push(x as u8);
    }
    LayerBuilder::default()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("usr/share/filler", filler)
        .file("var/lib/dpkg/status", DPKG_STATUS)
}

#[test]
fn a_truncated_gzip_layer_is_an_error_naming_it() {
    let gz = good_layer().gzip();
    for cut in [gz.len() / 2, gz.len() - 9, gz.len() - 1] {
        let layers = vec![(GZIP, good_layer().gzip()), (GZIP, gz[..cut].to_vec())];
        match scan(layers) {
            Err(
                InventoryError::Read { layer: 2, .. } | InventoryError::Truncated { layer: 2, .. },
            ) => {}
            other => panic!("cut at {cut} of {}: {other:?}", gz.len()),
        }
    }
}

#[test]
fn a_truncated_plain_tar_is_an_error() {
    let tar = good_layer().tar();
    for cut in [1000, tar.len() / 2, tar.len() - 1024] {
        let err = scan(vec![(TAR, tar[..cut].to_vec())]).expect_err("truncated");
        assert!(err.to_string().starts_with("layer 1 "), "{err}");
    }
}

#[test]
fn a_corrupt_zstd_stream_is_an_error() {
    // Past the frame header, in the first block's header: zstd frames
    // carry no checksum by default, so flipped bytes of a raw block
    // would go unseen, but a block that does not decode does not.
    let mut zst = good_layer().zstd();
    for b in &mut zst[6..70] {
        *b ^= 0x55;
    }
    let err = scan(vec![(ZSTD, zst)]).expect_err("corrupt");
    assert!(
        matches!(
            err,
            InventoryError::Read { layer: 1, .. } | InventoryError::Truncated { layer: 1, .. }
        ),
        "{err}"
    );

    let err = scan(vec![(
        ZSTD,
        b"\x28\xb5\x2f\xfdgarbage after the magic".to_vec(),
    )])
    .expect_err("corrupt");
    assert!(
        err.to_string().starts_with("layer 1 cannot be read"),
        "{err}"
    );
}

#[test]
fn a_corrupt_gzip_stream_is_an_error() {
    let mut gz = good_layer().gzip();
    let middle = gz.len() / 2;
    for b in &mut gz[middle..middle + 64] {
        *b ^= 0x55;
    }
    let err = scan(vec![(GZIP, gz)]).expect_err("corrupt");
    assert!(err.to_string().starts_with("layer 1 "), "{err}");
}

#[test]
fn layers_that_are_not_filesystems_are_noted() {
    let layers = vec![
        (GZIP, good_layer().gzip()),
        (
            "application/vnd.in-toto+json",
            br#"{"_type":"https://in-toto.io/Statement/v1"}"#.to_vec(),
        ),
        (GZIP, gzip(b"{\"this is\": \"json, not tar\"}")),
    ];
    let inv = scan(layers).expect("scan");
    assert_eq!(inv.packages.len(), 3);
    assert_eq!(
        inv.notes,
        [
            "layer 2 (application/vnd.in-toto+json) is not a filesystem layer: skipped",
            "layer 3 is not a tar stream: skipped",
        ]
    );
}

#[test]
fn garbage_in_every_database_gives_notes() {
    let garbage: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let site = "usr/lib/python3/site-packages";
    let layer = LayerBuilder::default()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", &garbage)
        .file("lib/apk/db/installed", "this is not\nan apk database\n")
        .file("var/lib/rpm/rpmdb.sqlite", &garbage)
        .file(&format!("{site}/x-1.dist-info/METADATA"), &garbage)
        .file("app/node_modules/x/package.json", &garbage)
        .file("app/x.jar", &garbage)
        .file("gems/specifications/x.gemspec", &garbage)
        .file("app/vendor/composer/installed.json", &garbage)
        .file_mode(
            "usr/bin/fake-go",
            [
                b"\x7fELF".as_slice(),
                b"\xff Go buildinf:\x08\x02",
                &garbage,
            ]
            .concat(),
            0o755,
        )
        .file_mode(
            "usr/bin/fake-rust",
            elf_with_section(".dep-v0", &garbage),
            0o755,
        )
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert!(inv.packages.is_empty(), "{:?}", inv.packages);
    let notes = inv.notes.join("\n");
    for want in [
        "app/node_modules/x/package.json is not JSON",
        "app/vendor/composer/installed.json is neither",
        "app/x.jar is not a readable zip",
        "gem specification gems/specifications/x.gemspec names no gem",
        "apk database lib/apk/db/installed names no package",
        "/x-1.dist-info/METADATA has no Name and Version",
        "usr/bin/fake-rust: its cargo-auditable section does not decompress",
        "dpkg database var/lib/dpkg/status",
        "rpm database var/lib/rpm/rpmdb.sqlite cannot be read",
        "lib/apk/db/installed is not debian's package database",
    ] {
        assert!(notes.contains(want), "no note {want:?} in:\n{notes}");
    }
}

#[test]
fn an_rpm_database_with_bad_headers_keeps_the_good_ones() {
    let blobs = vec![
        rpm_header("bash", "5.1.8", "6.el9", None, None),
        vec![0xff; 40],
        b"\0\0\0\x01\0\0\0\x10".to_vec(),
    ];
    let layer = LayerBuilder::default()
        .file("etc/os-release", "ID=rocky\nVERSION_ID=9.3\n")
        .file("var/lib/rpm/rpmdb.sqlite", rpmdb_sqlite(&blobs))
        .tar();
    let inv = scan(vec![(TAR, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        vec![pkg(
            "Rocky Linux:9",
            "bash",
            "5.1.8-6.el9",
            None,
            "var/lib/rpm/rpmdb.sqlite"
        )]
    );
    assert_eq!(
        inv.notes,
        ["rpm database var/lib/rpm/rpmdb.sqlite: 2 headers cannot be read"]
    );
}

#[test]
fn a_sparse_entry_of_10_gib_is_skipped_unread() {
    let layer = good_layer()
        .sparse("usr/local/bin/huge", 10 << 30, 0o755)
        .sparse("opt/huge.jar", 10 << 30, 0o644)
        .sparse("var/lib/sparse-but-ignored", 10 << 30, 0o644)
        .gzip();
    let started = Instant::now();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(inv.packages.len(), 3);
    assert_eq!(
        inv.notes,
        ["opt/huge.jar: a sparse file of 10737418240 bytes: not read"]
    );
}

#[test]
fn oversized_files_are_skipped_with_notes() {
    let big_status = format!(
        "{DPKG_STATUS}\n{}",
        "Package: pad\nStatus: install ok installed\nVersion: 1\n\n".repeat(100)
    );
    let layer = LayerBuilder::default()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", &big_status)
        .file(
            "app/node_modules/a/package.json",
            r#"{"name":"a","version":"1.0.0"}"#,
        )
        .gzip();
    let limits = Limits {
        max_file: 4096,
        max_total: 1 << 20,
    };
    let inv = scan_with(vec![(GZIP, layer.clone())], limits).expect("scan");
    assert_eq!(
        inv.packages,
        vec![pkg(
            "npm",
            "a",
            "1.0.0",
            None,
            "app/node_modules/a/package.json"
        )]
    );
    assert_eq!(
        inv.notes,
        [format!(
            "var/lib/dpkg/status: {} bytes, over the bound of 4096 bytes per file: not read",
            big_status.len()
        )]
    );

    // The bound in all: os-release fits, the status does not.
    let limits = Limits {
        max_file: 1 << 20,
        max_total: 1024,
    };
    let inv = scan_with(vec![(GZIP, layer)], limits).expect("scan");
    assert_eq!(inv.packages.len(), 1);
    assert!(
        inv.notes[0].starts_with("var/lib/dpkg/status: "),
        "{:?}",
        inv.notes
    );
    assert!(
        inv.notes[0].ends_with("would pass the bound of 1024 bytes in all: not read"),
        "{:?}",
        inv.notes
    );
}

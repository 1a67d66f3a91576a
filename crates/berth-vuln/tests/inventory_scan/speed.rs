//! How long a realistic layer takes (printed, not asserted): run with
//! `cargo test --release -p berth-vuln --test inventory_scan -- --ignored --nocapture`.

use std::time::Instant;

use crate::fixtures::*;

#[test]
#[ignore = "a timing, for release builds"]
fn a_100_mib_gzip_layer_with_500_dpkg_and_200_language_packages() {
    let mut status = String::new();
    for i in 0..500 {
        status.push_str(&format!(
            "Package: pkg{i}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n\
             Source: src{}\nVersion: 1.{i}-1\nDescription: package {i}\n a longer description\n .\n of it\n\n",
            i / 3
        ));
    }
    let mut layer = LayerBuilder::default()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", status);
    for i in 0..100 {
        layer = layer
            .file(
                &format!("srv/node_modules/m{i}/package.json"),
                format!(r#"{{"name":"m{i}","version":"1.0.{i}"}}"#),
            )
            .file(
                &format!("srv/node_modules/m{i}/index.js"),
                "module.exports = 1;\n".repeat(50),
            )
            .file(
                &format!("usr/lib/python3/site-packages/p{i}-1.{i}.dist-info/METADATA"),
                format!("Metadata-Version: 2.1\nName: p{i}\nVersion: 1.{i}\n\nlong description\n"),
            );
    }
    // Incompressible filler, as binaries and media mostly are: 100 files
    // of 1 MiB, some executable (read for their magic, then skipped).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..100 {
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend(x.to_le_bytes());
        }
        layer = layer.file_mode(
            &format!("usr/share/blob{i}"),
            data,
            if i % 4 == 0 { 0o755 } else { 0o644 },
        );
    }
    let gz = layer.gzip();
    let started = Instant::now();
    let inv = scan(vec![(GZIP, gz.clone())]).expect("scan");
    let elapsed = started.elapsed();
    assert_eq!(inv.packages.len(), 700);
    println!(
        "scanned a {:.1} MiB gzip layer ({} packages) in {:.2?}",
        gz.len() as f64 / f64::from(1 << 20),
        inv.packages.len(),
        elapsed
    );
}

//! How long a realistic layer takes (printed, not asserted): run with
//! `cargo test --release -p berth-vuln --test inventory_scan -- --ignored --nocapture`.

use std::time::Instant;

use crate::fixtures::*;

#[test]
#[ignore = "a timing, for release builds"]
fn a_100_mib_gzip_layer_with_500_dpkg_and_200_language_packages() {
    // Incompressible filler, as media and compressed files are: about
    // 100 MiB before and after gzip.
    time("incompressible", 100, |x, data| {
        data.extend(x.to_le_bytes())
    });
    // Filler that compresses about 3:1, as binaries and text do: about
    // 100 MiB of gzip from some 300 MiB of files.
    time("compressible", 300, |x, data| {
        let word = (x % 64) as u8;
        data.extend(std::iter::repeat_n(
            b'a' + word % 26,
            1 + (word % 7) as usize,
        ));
        data.push(b' ');
    });
}

/// Builds a layer of dpkg's 500 packages, 200 language packages and
/// `filler_mib` files of 1 MiB (a quarter of them executable: read for
/// their magic, then skipped), then times its scan.
fn time(what: &str, filler_mib: usize, fill: impl Fn(u64, &mut Vec<u8>)) {
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
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..filler_mib {
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            fill(x, &mut data);
        }
        data.truncate(1 << 20);
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
        "{what}: scanned a {:.1} MiB gzip layer ({filler_mib} MiB of filler, {} packages) in {:.2?}",
        gz.len() as f64 / f64::from(1 << 20),
        inv.packages.len(),
        elapsed
    );
}

//! Layers over layers: whiteouts, opaque directories, files replaced.

use crate::fixtures::*;

fn base() -> Vec<u8> {
    LayerBuilder::default()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .file(
            "app/node_modules/left-pad/package.json",
            r#"{"name":"left-pad","version":"1.3.0"}"#,
        )
        .file(
            "app/node_modules/lodash/package.json",
            r#"{"name":"lodash","version":"4.17.20"}"#,
        )
        .file(
            "opt/py/site-packages/urllib3-1.26.0.dist-info/METADATA",
            "Name: urllib3\nVersion: 1.26.0\n",
        )
        .gzip()
}

#[test]
fn a_deleted_package_database_takes_its_packages_with_it() {
    let upper = LayerBuilder::default()
        .whiteout("var/lib/dpkg/status")
        .gzip();
    let inv = scan(vec![(GZIP, base()), (GZIP, upper)]).expect("scan");
    assert!(
        inv.packages.iter().all(|p| p.ecosystem != "Debian:12"),
        "{:?}",
        inv.packages
    );
    assert_eq!(inv.packages.len(), 3);

    // A whiteout of a directory removes what lies under it.
    let upper = LayerBuilder::default()
        .whiteout("var/lib/dpkg")
        .whiteout("opt/py")
        .gzip();
    let inv = scan(vec![(GZIP, base()), (GZIP, upper)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "npm",
                "left-pad",
                "1.3.0",
                None,
                "app/node_modules/left-pad/package.json"
            ),
            pkg(
                "npm",
                "lodash",
                "4.17.20",
                None,
                "app/node_modules/lodash/package.json"
            ),
        ])
    );
}

#[test]
fn an_opaque_directory_hides_the_lower_layers_not_its_own() {
    let upper = LayerBuilder::default()
        .dir("app/node_modules")
        .file(
            "app/node_modules/lodash/package.json",
            r#"{"name":"lodash","version":"4.17.21"}"#,
        )
        // The opaque marker may come after the layer's own files.
        .opaque("app/node_modules")
        .gzip();
    let inv = scan(vec![(GZIP, base()), (GZIP, upper)]).expect("scan");
    let npm: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.ecosystem == "npm")
        .cloned()
        .collect();
    assert_eq!(
        npm,
        vec![pkg(
            "npm",
            "lodash",
            "4.17.21",
            None,
            "app/node_modules/lodash/package.json"
        )]
    );
    assert_eq!(inv.packages.len(), 5, "dpkg's three and urllib3 stay");
}

#[test]
fn a_file_written_again_replaces_the_lower_one() {
    let status = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n";
    let upper = LayerBuilder::default()
        .file("var/lib/dpkg/status", status)
        .file(
            "opt/py/site-packages/urllib3-1.26.0.dist-info/METADATA",
            "Name: urllib3\nVersion: 1.26.18\n",
        )
        .zstd();
    // The base as an uncompressed tar, the top as zstd.
    let base_tar = flate2_decode(&base());
    let inv = scan(vec![(TAR, base_tar), (ZSTD, upper)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "Debian:12",
                "bash",
                "5.2.15-2+b7",
                None,
                "var/lib/dpkg/status"
            ),
            pkg(
                "npm",
                "left-pad",
                "1.3.0",
                None,
                "app/node_modules/left-pad/package.json"
            ),
            pkg(
                "npm",
                "lodash",
                "4.17.20",
                None,
                "app/node_modules/lodash/package.json"
            ),
            pkg(
                "PyPI",
                "urllib3",
                "1.26.18",
                None,
                "opt/py/site-packages/urllib3-1.26.0.dist-info/METADATA"
            ),
        ])
    );
}

#[test]
fn os_release_from_a_later_layer_names_the_ecosystem_of_an_earlier_database() {
    let lower = LayerBuilder::default()
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .gzip();
    let upper = LayerBuilder::default()
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .gzip();
    let inv = scan(vec![(GZIP, lower), (GZIP, upper)]).expect("scan");
    assert!(inv.packages.iter().all(|p| p.ecosystem == "Debian:12"));
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

fn flate2_decode(gz: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

//! Distributions and their package databases.

use berth_vuln::inventory::OsRelease;

use crate::fixtures::*;

#[test]
fn debian_status_installed_packages_with_source_versions() {
    let layer = LayerBuilder::default()
        .dir("etc")
        .file("etc/os-release", DEBIAN_OS_RELEASE)
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .file(
            "var/lib/dpkg/status-old",
            "Package: old\nStatus: install ok installed\nVersion: 1\n",
        )
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert_eq!(
        inv.os,
        Some(OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
        })
    );
    let at = "var/lib/dpkg/status";
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "Debian:12",
                "libssl3",
                "3.0.11-1~deb12u2",
                Some("openssl"),
                at
            ),
            pkg("Debian:12", "cpp", "1.203", Some("gcc-defaults"), at),
            pkg("Debian:12", "bash", "5.2.15-2+b2", None, at),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn distroless_status_d_and_ubuntu_lts() {
    let os = "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\n\
              ID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n";
    // usr/lib/os-release when etc/os-release is the usual symlink to it.
    let layer = LayerBuilder::default()
        .file("usr/lib/os-release", os)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file(
            "var/lib/dpkg/status.d/base-files",
            "Package: base-files\nVersion: 12ubuntu4.6\nArchitecture: amd64\n",
        )
        .file(
            "var/lib/dpkg/status.d/base-files.md5sums",
            "d41d8cd98f00b204e9800998ecf8427e  etc/issue\n",
        )
        .file(
            "var/lib/dpkg/status.d/libc6",
            "Package: libc6\nSource: glibc\nVersion: 2.35-0ubuntu3.6\n",
        )
        .zstd();
    let inv = scan(vec![(ZSTD, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "Ubuntu:22.04:LTS",
                "base-files",
                "12ubuntu4.6",
                None,
                "var/lib/dpkg/status.d/base-files"
            ),
            pkg(
                "Ubuntu:22.04:LTS",
                "libc6",
                "2.35-0ubuntu3.6",
                Some("glibc"),
                "var/lib/dpkg/status.d/libc6"
            ),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn alpine_installed_db() {
    let db = "C:Q1Ux1qb5dW7hLbE0nZcGRe3qqJEkY=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407035\nI:663552\n\
              T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo Teräs\n\
              t:1705504736\nc:b7b3cb3b3bf0f2a1cb4c1b7d3d5ba0d32b58ff2f\nD:so:libc.musl-x86_64.so.1\n\
              F:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\n\n\
              C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\n\
              C:Q1def=\nP:libssl3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\n";
    let os =
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n";
    let layer = LayerBuilder::default()
        .file("etc/os-release", os)
        .file("lib/apk/db/installed", db)
        .gzip();
    let inv = scan(vec![(DOCKER_GZIP, layer)]).expect("scan");
    let at = "lib/apk/db/installed";
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg("Alpine:v3.19", "musl", "1.2.4_git20230717-r4", None, at),
            pkg(
                "Alpine:v3.19",
                "libcrypto3",
                "3.1.4-r5",
                Some("openssl"),
                at
            ),
            pkg("Alpine:v3.19", "libssl3", "3.1.4-r5", Some("openssl"), at),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn rpm_sqlite_database_of_headers() {
    let blobs = vec![
        rpm_header(
            "openssl-libs",
            "3.0.7",
            "25.el9_3",
            Some(1),
            Some("openssl-3.0.7-25.el9_3.src.rpm"),
        ),
        rpm_header(
            "bash",
            "5.1.8",
            "6.el9_1",
            None,
            Some("bash-5.1.8-6.el9_1.src.rpm"),
        ),
        rpm_header(
            "tzdata",
            "2023c",
            "1.el9",
            Some(0),
            Some("tzdata-2023c-1.el9.src.rpm"),
        ),
        rpm_header("gpg-pubkey", "350d275d", "6279464b", None, None),
    ];
    let os = "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n";
    let layer = LayerBuilder::default()
        .file("etc/os-release", os)
        .file("var/lib/rpm/rpmdb.sqlite", rpmdb_sqlite(&blobs))
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    let at = "var/lib/rpm/rpmdb.sqlite";
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "Rocky Linux:9",
                "openssl-libs",
                "1:3.0.7-25.el9_3",
                Some("openssl"),
                at
            ),
            pkg("Rocky Linux:9", "bash", "5.1.8-6.el9_1", None, at),
            pkg("Rocky Linux:9", "tzdata", "2023c-1.el9", None, at),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn rhel_and_alma_ecosystems_and_the_sysimage_path() {
    let blobs = vec![rpm_header(
        "curl",
        "7.76.1",
        "26.el9",
        None,
        Some("curl-7.76.1-26.el9.src.rpm"),
    )];
    for (os, eco) in [
        (
            "ID=\"rhel\"\nVERSION_ID=\"9.3\"\n",
            "Red Hat:enterprise_linux:9",
        ),
        ("ID=\"almalinux\"\nVERSION_ID=\"8.9\"\n", "AlmaLinux:8"),
    ] {
        let layer = LayerBuilder::default()
            .file("etc/os-release", os)
            .file("usr/lib/sysimage/rpm/rpmdb.sqlite", rpmdb_sqlite(&blobs))
            .tar();
        let inv = scan(vec![(TAR, layer)]).expect("scan");
        assert_eq!(
            inv.packages,
            vec![pkg(
                eco,
                "curl",
                "7.76.1-26.el9",
                None,
                "usr/lib/sysimage/rpm/rpmdb.sqlite"
            )]
        );
    }
}

#[test]
fn berkeleydb_and_ndb_are_noted_not_empty() {
    let layer = LayerBuilder::default()
        .file("etc/os-release", "ID=centos\nVERSION_ID=\"7\"\n")
        .file("var/lib/rpm/Packages", vec![0u8; 4096])
        .file("usr/lib/sysimage/rpm/rpmdb.ndb", vec![0u8; 1024])
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert!(inv.packages.is_empty());
    assert_eq!(
        inv.notes,
        [
            "os-release says centos 7: OSV has no ecosystem for it here",
            "rpm ndb database usr/lib/sysimage/rpm/rpmdb.ndb is not supported",
            "rpm BerkeleyDB database var/lib/rpm/Packages is not supported",
        ]
    );
}

#[test]
fn unmapped_distributions_and_missing_os_release_are_noted() {
    let layer = LayerBuilder::default()
        .file("etc/os-release", "ID=fedora\nVERSION_ID=39\n")
        .file(
            "var/lib/rpm/rpmdb.sqlite",
            rpmdb_sqlite(&[rpm_header("bash", "5.2.26", "1.fc39", None, None)]),
        )
        .tar();
    let inv = scan(vec![(TAR, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        vec![pkg(
            "fedora:39",
            "bash",
            "5.2.26-1.fc39",
            None,
            "var/lib/rpm/rpmdb.sqlite"
        )]
    );
    assert_eq!(inv.notes.len(), 2, "{:?}", inv.notes);

    let layer = LayerBuilder::default()
        .file("var/lib/dpkg/status", DPKG_STATUS)
        .tar();
    let inv = scan(vec![(TAR, layer)]).expect("scan");
    assert_eq!(inv.os, None);
    assert_eq!(inv.packages.len(), 3);
    assert!(inv.packages.iter().all(|p| p.ecosystem == "Debian"));
    assert_eq!(
        inv.notes,
        [
            "no os-release: the packages of var/lib/dpkg/status are listed under `Debian`, without a release"
        ]
    );
}

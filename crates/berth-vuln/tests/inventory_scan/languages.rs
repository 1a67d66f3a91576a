//! Language packages: manifests, archives and executables.

use crate::fixtures::*;

#[test]
fn python_dist_info_and_egg_info() {
    let site = "usr/local/lib/python3.12/site-packages";
    let layer = LayerBuilder::default()
        .file(
            &format!("{site}/requests-2.31.0.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\n\n# Requests\n",
        )
        .file(&format!("{site}/requests-2.31.0.dist-info/RECORD"), "requests/__init__.py,,\n")
        .file(
            &format!("{site}/Flask_Cors-4.0.0.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: Flask_Cors\nVersion: 4.0.0\n",
        )
        .file(&format!("{site}/setuptools_scm-7.1.0.egg-info/PKG-INFO"), "Metadata-Version: 1.2\nName: setuptools-scm\nVersion: 7.1.0\n")
        .file("usr/lib/python3/dist-packages/six-1.16.0.egg-info", "Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n")
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "PyPI",
                "requests",
                "2.31.0",
                None,
                &format!("{site}/requests-2.31.0.dist-info/METADATA")
            ),
            pkg(
                "PyPI",
                "flask-cors",
                "4.0.0",
                None,
                &format!("{site}/Flask_Cors-4.0.0.dist-info/METADATA")
            ),
            pkg(
                "PyPI",
                "setuptools-scm",
                "7.1.0",
                None,
                &format!("{site}/setuptools_scm-7.1.0.egg-info/PKG-INFO")
            ),
            pkg(
                "PyPI",
                "six",
                "1.16.0",
                None,
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info"
            ),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn npm_packages_nested_and_scoped() {
    let nm = "srv/app/node_modules";
    let layer = LayerBuilder::default()
        .file(
            "srv/app/package.json",
            r#"{"name":"my-app","version":"1.0.0","private":true}"#,
        )
        .file(
            &format!("{nm}/express/package.json"),
            r#"{"name":"express","version":"4.18.2","license":"MIT"}"#,
        )
        .file(
            &format!("{nm}/express/lib/package.json"),
            r#"{"type":"commonjs"}"#,
        )
        .file(
            &format!("{nm}/express/node_modules/debug/package.json"),
            r#"{"name":"debug","version":"2.6.9"}"#,
        )
        .file(
            &format!("{nm}/@babel/core/package.json"),
            r#"{"name":"@babel/core","version":"7.23.7"}"#,
        )
        .file(
            &format!("{nm}/no-version/package.json"),
            r#"{"name":"no-version"}"#,
        )
        .zstd();
    let inv = scan(vec![(ZSTD, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "npm",
                "express",
                "4.18.2",
                None,
                &format!("{nm}/express/package.json")
            ),
            pkg(
                "npm",
                "debug",
                "2.6.9",
                None,
                &format!("{nm}/express/node_modules/debug/package.json")
            ),
            pkg(
                "npm",
                "@babel/core",
                "7.23.7",
                None,
                &format!("{nm}/@babel/core/package.json")
            ),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn jars_with_pom_properties_and_nested_jars() {
    let lib = zip(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
        (
            "META-INF/maven/org.slf4j/slf4j-api/pom.properties",
            &pom_properties("org.slf4j", "slf4j-api", "2.0.9"),
        ),
    ]);
    let bare = zip(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")]);
    let war = zip(&[
        ("WEB-INF/web.xml", b"<web-app/>"),
        (
            "META-INF/maven/com.example/shop/pom.properties",
            &pom_properties("com.example", "shop", "1.4.0"),
        ),
        ("WEB-INF/lib/slf4j-api-2.0.9.jar", &lib),
        ("WEB-INF/lib/bare.jar", &bare),
    ]);
    let layer = LayerBuilder::default()
        .file("opt/shop.war", &war)
        .file(
            "opt/lib/log4j-core-2.14.1.jar",
            zip(&[(
                "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                &pom_properties("org.apache.logging.log4j", "log4j-core", "2.14.1"),
            )]),
        )
        .file("opt/lib/bare.jar", &bare)
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg("Maven", "com.example:shop", "1.4.0", None, "opt/shop.war"),
            pkg(
                "Maven",
                "org.slf4j:slf4j-api",
                "2.0.9",
                None,
                "opt/shop.war!/WEB-INF/lib/slf4j-api-2.0.9.jar"
            ),
            pkg(
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.14.1",
                None,
                "opt/lib/log4j-core-2.14.1.jar"
            ),
        ])
    );
    assert_eq!(
        inv.notes,
        [
            "opt/lib/bare.jar has no pom.properties: its Maven coordinates are unknown",
            "1 archives inside opt/shop.war have no pom.properties or cannot be read",
        ]
    );
}

#[test]
fn gemspecs_and_composer_both_shapes() {
    let specs = "usr/local/bundle/specifications";
    let v1 = r#"[{"name":"monolog/monolog","version":"2.9.1","version_normalized":"2.9.1.0","type":"library"}]"#;
    let v2 = r#"{"packages":[{"name":"symfony/console","version":"v6.4.3","version_normalized":"6.4.3.0"},
        {"name":"guzzlehttp/guzzle","version":"7.8.1"}],"dev":true,"dev-package-names":[]}"#;
    let layer = LayerBuilder::default()
        .file(&format!("{specs}/rake-13.0.6.gemspec"), "# -*- encoding: utf-8 -*-\n# stub: rake 13.0.6 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\nend\n")
        .file(&format!("{specs}/nokogiri-1.15.4-x86_64-linux.gemspec"), "Gem::Specification.new do |s|\nend\n")
        .file("var/www/old/vendor/composer/installed.json", v1)
        .file("var/www/new/vendor/composer/installed.json", v2)
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg(
                "RubyGems",
                "rake",
                "13.0.6",
                None,
                &format!("{specs}/rake-13.0.6.gemspec")
            ),
            pkg(
                "RubyGems",
                "nokogiri",
                "1.15.4",
                None,
                &format!("{specs}/nokogiri-1.15.4-x86_64-linux.gemspec")
            ),
            pkg(
                "Packagist",
                "monolog/monolog",
                "2.9.1",
                None,
                "var/www/old/vendor/composer/installed.json"
            ),
            pkg(
                "Packagist",
                "symfony/console",
                "v6.4.3",
                None,
                "var/www/new/vendor/composer/installed.json"
            ),
            pkg(
                "Packagist",
                "guzzlehttp/guzzle",
                "7.8.1",
                None,
                "var/www/new/vendor/composer/installed.json"
            ),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

const MODINFO: &str = "path\texample.com/server\n\
mod\texample.com/server\t(devel)\t\n\
dep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n\
dep\tgolang.org/x/net\tv0.17.0\th1:pVaXccu2ozPjCXewfr1S7xoNTj6ebSf9LU5DAKKCrHA=\n\
=>\tgolang.org/x/net\tv0.23.0\th1:7mSb+kZ2b8XOPxJbyz4JfZ5nTcDkDQqfVUmw8dWKFGo=\n\
dep\texample.com/local\tv1.0.0\t\n\
=>\t../local\t\t\n\
build\t-buildmode=exe\nbuild\tGOOS=linux\n";

#[test]
fn go_build_info_in_an_elf_section_and_in_a_raw_file() {
    // A relocatable ELF with a `.go.buildinfo` section (what the Go
    // linker writes into executables), and a file with only an MZ magic
    // and the blob at a 16-byte boundary (found by searching the file,
    // as for PE files).
    let elf = elf_with_section(".go.buildinfo", &go_buildinfo("go1.21.5", MODINFO));
    let mut raw = b"MZ".to_vec();
    raw.resize(4096, 0);
    raw.extend(go_buildinfo(
        "go1.22.1 X:boringcrypto",
        "path\tx\nmod\texample.com/tool\tv0.3.1\t\n",
    ));
    let layer = LayerBuilder::default()
        .file_mode("usr/local/bin/server", &elf, 0o755)
        .file_mode("opt/tool.exe", &raw, 0o755)
        .file_mode("usr/local/share/not-executable", &elf, 0o644)
        .gzip();
    let inv = scan(vec![(GZIP, layer)]).expect("scan");
    let bin = "usr/local/bin/server";
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg("Go", "stdlib", "1.21.5", None, bin),
            pkg("Go", "github.com/google/uuid", "1.6.0", None, bin),
            pkg("Go", "golang.org/x/net", "0.23.0", None, bin),
            pkg("Go", "example.com/local", "1.0.0", None, bin),
            pkg("Go", "stdlib", "1.22.1", None, "opt/tool.exe"),
            pkg("Go", "example.com/tool", "0.3.1", None, "opt/tool.exe"),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

#[test]
fn rust_binaries_built_with_cargo_auditable() {
    let json = r#"{"packages":[
        {"name":"server","version":"0.1.0","source":"local","root":true,"dependencies":[1,2,3]},
        {"name":"hyper","version":"0.14.27","source":"crates.io"},
        {"name":"smallvec","version":"1.11.0","source":"crates.io","kind":"runtime"},
        {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},
        {"name":"forked","version":"0.1.0","source":"git"}]}"#;
    let elf = elf_with_section(".dep-v0", &cargo_auditable_section(json));
    let layer = LayerBuilder::default()
        .file_mode("usr/bin/server", &elf, 0o755)
        .tar();
    let inv = scan(vec![(TAR, layer)]).expect("scan");
    assert_eq!(
        inv.packages,
        sorted(vec![
            pkg("crates.io", "hyper", "0.14.27", None, "usr/bin/server"),
            pkg("crates.io", "smallvec", "1.11.0", None, "usr/bin/server"),
        ])
    );
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
}

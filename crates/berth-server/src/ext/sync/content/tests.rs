//! Table tests of the content rules, zot's own cases among them.

use super::*;
use crate::config::TagFilter;

fn rule(prefix: &str, destination: &str, strip: bool) -> ContentRule {
    ContentRule {
        prefix: prefix.into(),
        destination: (!destination.is_empty()).then(|| destination.into()),
        strip_prefix: strip,
        ..ContentRule::default()
    }
}

fn rules(list: Vec<ContentRule>) -> ContentRules {
    ContentRules::new(&list).expect("compiles")
}

/// zot's destination table (its `TestContentManager`), in both
/// directions: local name, rule, upstream name.
#[test]
fn destination_and_strip_prefix_both_ways() {
    let cases = [
        (
            "alpine/zot-fold/alpine",
            rule("zot-fold/alpine", "/alpine", false),
            "zot-fold/alpine",
        ),
        (
            "zot-fold/alpine",
            rule("zot-fold/alpine", "/", false),
            "zot-fold/alpine",
        ),
        (
            "alpine",
            rule("zot-fold/alpine", "/alpine", true),
            "zot-fold/alpine",
        ),
        ("alpine", rule("zot-fold/*", "/", true), "zot-fold/alpine"),
        ("alpine", rule("zot-fold/**", "/", true), "zot-fold/alpine"),
        (
            "zot-fold/alpine",
            rule("zot-fold/**", "/", false),
            "zot-fold/alpine",
        ),
        // The brief's example, and leading slashes anywhere.
        (
            "local/x",
            rule("/repo1/repo2/**", "/local", true),
            "repo1/repo2/x",
        ),
        (
            "local/repo1/repo2/x",
            rule("/repo1/repo2/**", "/local", false),
            "repo1/repo2/x",
        ),
        (
            "local/y/z",
            rule("repo1/repo2/**/", "local/", true),
            "repo1/repo2/y/z",
        ),
        // Docker Hub under a namespace.
        (
            "docker/alpine",
            rule("library/**", "/docker", true),
            "library/alpine",
        ),
        (
            "mirror/library/alpine",
            rule("**", "mirror", false),
            "library/alpine",
        ),
        ("library/alpine", rule("**", "", false), "library/alpine"),
        // `a/**` also matches `a` itself (doublestar).
        ("local", rule("repo1/**", "local", true), "repo1"),
    ];
    for (local, r, remote) in cases {
        let c = rules(vec![r.clone()]);
        assert_eq!(
            c.local_for(remote),
            Some((0, local.to_string())),
            "local_for {remote} {r:?}"
        );
        assert_eq!(
            c.remote_for(local),
            Some((0, remote.to_string())),
            "remote_for {local} {r:?}"
        );
    }
}

/// zot's `TestGetContentByLocalRepo`: the first rule whose local
/// pattern matches decides (names lower-cased: Berth's names are).
#[test]
fn on_demand_picks_the_first_rule_by_local_name() {
    // Local name, rules, the rule and upstream name expected.
    type Case<'a> = (&'a str, Vec<ContentRule>, Option<(usize, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "alpine/zot-fold/alpine",
            vec![
                rule("zot-fold/alpine/", "/alpine", true),
                rule("zot-fold/alpine", "/alpine", false),
            ],
            Some((1, "zot-fold/alpine")),
        ),
        (
            "alpine/zot-fold/alpine",
            vec![
                rule("zot-fold/*", "/alpine", false),
                rule("zot-fold/alpine", "/alpine", true),
            ],
            Some((0, "zot-fold/alpine")),
        ),
        (
            "myfold/zot-fold/internal/alpine",
            vec![
                rule("zot-fold/alpine", "/alpine", true),
                rule("zot-fold/**", "/myfold", false),
            ],
            Some((1, "zot-fold/internal/alpine")),
        ),
        ("alpine", vec![rule("zot-fold/*", "/alpine", true)], None),
        (
            "alpine",
            vec![
                rule("zot-fold/*", "/alpine", true),
                rule("zot-fold/*", "/", true),
            ],
            Some((1, "zot-fold/alpine")),
        ),
        (
            "alpine/alpine",
            vec![
                rule("zot-fold/*", "/alpine", true),
                rule("zot-fold/*", "/", true),
            ],
            Some((0, "zot-fold/alpine")),
        ),
        // Outside every rule.
        ("other/x", vec![rule("library/**", "docker", true)], None),
        // A destination alone names nothing under a non-`**` glob.
        ("docker", vec![rule("library/*", "docker", true)], None),
    ];
    for (local, list, want) in cases {
        let got = rules(list.clone()).remote_for(local);
        assert_eq!(
            got,
            want.map(|(i, s)| (i, s.to_string())),
            "{local} {list:?}"
        );
    }
}

#[test]
fn periodic_picks_the_first_rule_by_upstream_name() {
    let c = rules(vec![
        rule("library/alpine", "", false),
        rule("library/*", "hub", true),
        rule("**", "rest", false),
    ]);
    let table = [
        ("library/alpine", Some((0, "library/alpine"))),
        ("library/busybox", Some((1, "hub/busybox"))),
        ("library/a/b", Some((2, "rest/library/a/b"))),
        ("org/app", Some((2, "rest/org/app"))),
    ];
    for (remote, want) in table {
        assert_eq!(
            c.local_for(remote),
            want.map(|(i, s)| (i, s.to_string())),
            "{remote}"
        );
    }
    // `*` stays within a component; a literal prefix is one name.
    let c = rules(vec![rule("a/*", "", false), rule("b", "", false)]);
    assert_eq!(c.local_for("a/x/y"), None);
    assert_eq!(c.local_for("b/c"), None);
    assert_eq!(c.local_for("b"), Some((1, "b".into())));
    // Alternatives and classes, as doublestar reads them.
    let c = rules(vec![rule("{library,org}/app[0-9]", "", false)]);
    assert_eq!(c.local_for("org/app7"), Some((0, "org/app7".into())));
    assert_eq!(c.local_for("org/appx"), None);
    // Stripping whole components only (zot would cut `repo` off
    // `repository`).
    let c = rules(vec![rule("repo*", "d", true)]);
    assert_eq!(c.local_for("repository"), Some((0, "d/repository".into())));
    assert_eq!(c.remote_for("d/repository"), Some((0, "repository".into())));
}

#[test]
fn no_rules_take_everything_under_its_own_name() {
    let c = rules(vec![]);
    assert_eq!(
        c.local_for("library/alpine"),
        Some((0, "library/alpine".into()))
    );
    assert_eq!(
        c.remote_for("library/alpine"),
        Some((0, "library/alpine".into()))
    );
    assert_eq!(c.local_for("Bad Name"), None);
    assert!(c.tag_allowed(0, "anything"));
    assert!(c.platform_allowed(0, "linux", "s390x", None));
    assert!(!c.has_platform_filter(0));
    assert_eq!(c.literal_repos(), None);
}

#[test]
fn literal_repos_only_when_every_prefix_is_a_name() {
    let c = rules(vec![
        rule("/library/alpine", "", false),
        rule("org/app/", "x", false),
        rule("library/alpine", "y", false),
    ]);
    assert_eq!(
        c.literal_repos(),
        Some(vec!["library/alpine".into(), "org/app".into()])
    );
    let c = rules(vec![
        rule("library/alpine", "", false),
        rule("org/*", "", false),
    ]);
    assert_eq!(c.literal_repos(), None);
}

fn tags(regex: Option<&str>, exclude: Option<&str>, semver: Option<SemverFilter>) -> ContentRules {
    rules(vec![ContentRule {
        prefix: "**".into(),
        tags: Some(TagFilter {
            regex: regex.map(Into::into),
            exclude_regex: exclude.map(Into::into),
            semver,
        }),
        ..ContentRule::default()
    }])
}

fn kept(c: &ContentRules, list: &[&str]) -> Vec<String> {
    list.iter()
        .filter(|t| c.tag_allowed(0, t))
        .map(|t| t.to_string())
        .collect()
}

/// zot's `TestFilterTags`, and the semver grammar of its library.
#[test]
fn tag_filters() {
    assert_eq!(
        kept(&tags(Some(".*"), None, None), &["v1", "v2", "v3"]),
        ["v1", "v2", "v3"]
    );
    assert_eq!(
        kept(&tags(None, None, None), &["v1", "v2", "v3"]),
        ["v1", "v2", "v3"]
    );
    let semver = Some(SemverFilter::Any);
    assert_eq!(
        kept(
            &tags(Some(".*"), None, semver.clone()),
            &["1s0", "2v9", "v3.0.3"]
        ),
        ["v3.0.3"]
    );
    assert_eq!(
        kept(&tags(None, None, semver.clone()), &["latest", "v1.0.1"]),
        ["v1.0.1"]
    );
    assert!(kept(&tags(None, Some(".*"), None), &["v1", "v2", "v3"]).is_empty());
    assert_eq!(
        kept(
            &tags(None, Some(".*(x86_64|aarch64|amd64|arm64)$"), None),
            &["v1", "v2-x86_64", "v3-aarch64"]
        ),
        ["v1"]
    );
    // Unanchored, as Go's MatchString; an empty excludeRegex is no-op.
    assert_eq!(
        kept(
            &tags(Some("4"), Some(""), None),
            &["1.4.2", "5.0", "latest"]
        ),
        ["1.4.2"]
    );
    // The three filters together.
    assert_eq!(
        kept(
            &tags(Some("^v?1\\."), Some("-rc"), semver.clone()),
            &["1.2.3", "v1.3", "1.4-rc.1", "1.x", "2.0"]
        ),
        ["1.2.3", "v1.3"]
    );
    let any = tags(None, None, semver);
    for good in [
        "1",
        "v2",
        "1.2",
        "1.2.3",
        "01.2.3",
        "1.2.3-rc.1",
        "1.2.3+build.5",
        "1.0.0-x-y.1+z",
        "v9223372036854775807",
    ] {
        assert!(any.tag_allowed(0, good), "{good}");
    }
    for bad in [
        "latest",
        "v",
        "1.2.3.4",
        "1..2",
        "1.2.",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "1.2.3_x",
        "V1.2",
        "9223372036854775808",
        "sha256-abc.sig",
    ] {
        assert!(!any.tag_allowed(0, bad), "{bad}");
    }
}

#[test]
fn semver_ranges() {
    let c = tags(None, None, Some(SemverFilter::Range(">=1.2, <2".into())));
    assert_eq!(
        kept(
            &c,
            &[
                "1.1.9",
                "1.2",
                "v1.2.0",
                "1.9.9",
                "2.0.0",
                "1.5.0-rc.1",
                "latest",
                "1"
            ]
        ),
        ["1.2", "v1.2.0", "1.9.9"]
    );
    let c = tags(None, None, Some(SemverFilter::Range("^3".into())));
    assert_eq!(kept(&c, &["3", "v3.19.1", "4.0", "2.9"]), ["3", "v3.19.1"]);
}

#[test]
fn platforms() {
    let c = rules(vec![ContentRule {
        prefix: "**".into(),
        platforms: vec![
            "linux/amd64".into(),
            "linux/arm/v7".into(),
            "arm64".into(),
            "".into(),
        ],
        ..ContentRule::default()
    }]);
    assert!(c.has_platform_filter(0));
    let table: [(&str, &str, Option<&str>, bool); 12] = [
        ("linux", "amd64", None, true),
        ("linux", "amd64", Some("v3"), true),
        ("linux", "x86_64", None, true),
        ("windows", "amd64", None, false),
        ("linux", "arm", Some("v7"), true),
        ("linux", "arm", None, true),
        ("linux", "arm", Some("v6"), false),
        ("linux", "arm64", Some("v8"), true),
        ("linux", "aarch64", None, true),
        ("darwin", "arm64", None, false),
        ("linux", "s390x", None, false),
        ("", "", None, true),
    ];
    for (os, arch, variant, want) in table {
        assert_eq!(
            c.platform_allowed(0, os, arch, variant),
            want,
            "{os}/{arch}/{variant:?}"
        );
    }
    let c = rules(vec![ContentRule {
        prefix: "**".into(),
        platforms: vec!["linux/arm".into(), "Linux/ARM64".into()],
        ..ContentRule::default()
    }]);
    assert!(c.platform_allowed(0, "linux", "arm", Some("v6")));
    assert!(c.platform_allowed(0, "linux", "arm64", None));
    assert!(!c.platform_allowed(0, "", "", None), "no \"\" entry");
    let bad = [
        "linux",
        "linux/amd64/v2/x",
        "linux//amd64",
        "linux/amd64,osver=1",
        "linux/am d64",
    ];
    for entry in bad {
        assert!(check_platform(entry).is_err(), "{entry}");
    }
}

#[test]
fn errors_name_the_rule_and_key() {
    let with_tags = |t: TagFilter| ContentRule {
        prefix: "**".into(),
        tags: Some(t),
        ..ContentRule::default()
    };
    let cases: Vec<(ContentRule, &str, &str)> = vec![
        (rule("", "", false), "prefix", "name a repository"),
        (rule("/", "x", false), "prefix", "name a repository"),
        (rule("a/[z", "", false), "prefix", "bad glob"),
        (
            rule("a", "Bad", false),
            "destination",
            "\"Bad\" is not a repository name",
        ),
        (
            rule("zot-fold/alpine", "/", true),
            "stripPrefix",
            "with a prefix that is one repository",
        ),
        (
            with_tags(TagFilter {
                regex: Some("[*".into()),
                ..TagFilter::default()
            }),
            "tags.regex",
            "regex parse error",
        ),
        (
            with_tags(TagFilter {
                regex: Some(String::new()),
                ..TagFilter::default()
            }),
            "tags.regex",
            "an empty regex",
        ),
        (
            with_tags(TagFilter {
                exclude_regex: Some("(".into()),
                ..TagFilter::default()
            }),
            "tags.excludeRegex",
            "regex parse error",
        ),
        (
            with_tags(TagFilter {
                semver: Some(SemverFilter::Range("> one".into())),
                ..TagFilter::default()
            }),
            "tags.semver",
            "\"> one\" is no version range",
        ),
        (
            ContentRule {
                prefix: "**".into(),
                platforms: vec!["plan9".into()],
                ..ContentRule::default()
            },
            "platforms",
            "\"plan9\": name os/arch",
        ),
    ];
    for (r, field, msg) in cases {
        let e = ContentRules::new(&[rule("ok", "", false), r.clone()]).expect_err("refused");
        assert_eq!((e.rule, e.field), (1, field), "{r:?}");
        assert!(e.message.starts_with(msg), "{r:?}: {}", e.message);
        assert!(!e.message.contains('\n'));
    }
}

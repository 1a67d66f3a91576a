//! `http.auth.ldap` against a real slapd: logins by bind, groups from
//! `memberOf` feeding access control, `userFilter`, refused empty
//! passwords and filter injection, skopeo logging in, and the LDAP section
//! reloaded from the config file.

use std::time::Duration;

use serde_json::json;

use crate::slapd::{ADMIN_DN, ADMIN_PW, SUFFIX, Slapd, SlapdTls};
use crate::support::*;

fn directory() -> String {
    let person = |uid: &str, pw: &str, extra: &str| {
        format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
             cn: {uid}\nsn: {uid}\nuserPassword: {pw}\n{extra}\n\n"
        )
    };
    let group = |cn: &str, members: &[&str]| {
        let mut g =
            format!("dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n");
        for m in members {
            g.push_str(&format!("member: uid={m},ou=people,{SUFFIX}\n"));
        }
        g.push('\n');
        g
    };
    [
        format!("dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: berth\ndc: berth\n\n"),
        format!("dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"),
        format!("dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"),
        person("alice", "alice-pw", "employeeType: staff"),
        person("bob", "bob-pw", "employeeType: staff"),
        person("dave", "dave-pw", "employeeType: disabled"),
        group("devs", &["alice"]),
        group("ops", &["bob"]),
    ]
    .concat()
}

fn group_dn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{SUFFIX}")
}

#[test]
fn ldap_logins_and_groups_against_slapd() {
    let tmp = tempfile::tempdir().expect("tmp");
    let slapd = Slapd::start(tmp.path(), &directory());
    let creds = tmp.path().join("ldap-bind.json");
    std::fs::write(
        &creds,
        json!({"bindDN": ADMIN_DN, "bindPassword": ADMIN_PW}).to_string(),
    )
    .expect("creds");
    let ldap = |filter: &str| {
        json!({
            "address": "127.0.0.1", "port": slapd.port, "insecure": true,
            "baseDN": format!("ou=people,{SUFFIX}"), "userAttribute": "uid",
            "userGroupAttribute": "memberOf", "userFilter": filter,
            "credentialsFile": creds,
        })
    };
    let access = json!({
        "repositories": {
            "dev/**": {"policies": [{"groups": [group_dn("devs")], "actions": ["read", "create"]}]},
            "ops/**": {"policies": [{"groups": [group_dn("ops")], "actions": ["read", "create", "update", "delete"]}]},
            "alice/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]}
        }
    });
    let b = Berth::start_full(
        &tmp.path().join("root"),
        json!({}),
        json!({"auth": {"ldap": ldap("(!(employeeType=disabled))")}, "accessControl": access}),
        &[],
    );
    let c = reqwest::blocking::Client::new();
    let start_upload = |user: &str, pw: &str, repo: &str| {
        c.post(b.url(&format!("/v2/{repo}/blobs/uploads/")))
            .basic_auth(user, Some(pw))
            .send()
            .expect("post")
            .status()
            .as_u16()
    };
    let base = |user: &str, pw: &str| {
        c.get(b.url("/v2/"))
            .basic_auth(user, Some(pw))
            .send()
            .expect("get")
            .status()
            .as_u16()
    };

    // Groups from memberOf decide, per repository.
    assert_eq!(start_upload("alice", "alice-pw", "dev/app"), 202);
    assert_eq!(start_upload("alice", "alice-pw", "ops/app"), 403);
    assert_eq!(start_upload("bob", "bob-pw", "ops/app"), 202);
    assert_eq!(start_upload("bob", "bob-pw", "dev/app"), 403);

    // The directory matches names loosely; the caller is named as the
    // directory spells it, so a policy for "alice" applies to "ALICE".
    assert_eq!(start_upload("ALICE", "alice-pw", "alice/app"), 202);
    assert_eq!(start_upload("bob", "bob-pw", "alice/app"), 403);

    // Refused logins: wrong or empty password, unknown user, a user the
    // filter excludes, and names trying to widen the search.
    for (user, pw) in [
        ("alice", "wrong"),
        ("alice", ""),
        ("nobody", "x"),
        ("dave", "dave-pw"),
        ("*", "alice-pw"),
        ("alice)(uid=*", "alice-pw"),
        ("", ""),
    ] {
        assert_eq!(base(user, pw), 401, "{user:?}/{pw:?}");
    }
    assert_eq!(base("alice", "alice-pw"), 200);

    // skopeo logs in through LDAP.
    let src = tmp.path().join("src");
    write_layout(&src, "v1", &["amd64"]);
    let out = skopeo_push(
        tmp.path(),
        &src,
        &format!("{}/dev/app:v1", b.addr),
        Some("alice:alice-pw"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The LDAP section is reloaded from the config file: a filter that
    // only admits bob shuts alice out within seconds.
    let config = tmp.path().join("root").with_extension("json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("read")).expect("json");
    cfg["http"]["auth"]["ldap"] = ldap("(uid=bob)");
    std::fs::write(&config, cfg.to_string()).expect("write");
    let mut reloaded = false;
    for _ in 0..100 {
        if base("alice", "alice-pw") == 401 {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reloaded, "alice refused after the edit");
    assert_eq!(base("bob", "bob-pw"), 200);

    // A directory that goes away refuses logins rather than letting
    // anyone in.
    drop(slapd);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(base("carol", "x"), 401);
}

#[test]
fn ldap_over_tls_with_a_test_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = tmp.path().join("pki");
    crate::tls::make_pki(&pki, "ldap");
    let slapd = Slapd::start_with(
        tmp.path(),
        &directory(),
        Some(SlapdTls {
            ca: &pki.join("ca.crt"),
            cert: &pki.join("server.crt"),
            key: &pki.join("server.key"),
        }),
    );
    let tls_port = slapd.tls_port.expect("ldaps port");
    let base = json!({
        "address": "127.0.0.1", "baseDN": format!("ou=people,{SUFFIX}"),
        "userAttribute": "uid", "userGroupAttribute": "memberOf",
    });
    let with = |extra: serde_json::Value| {
        let mut l = base.clone();
        if let (Some(o), serde_json::Value::Object(e)) = (l.as_object_mut(), extra) {
            o.extend(e);
        }
        l
    };
    let ca = pki.join("ca.crt");
    let cases = [
        (
            "ldaps with caCert",
            with(json!({"port": tls_port, "caCert": ca})),
            200,
        ),
        (
            "StartTLS with caCert",
            with(json!({"port": slapd.port, "startTLS": true, "caCert": ca})),
            200,
        ),
        (
            "ldaps, certificate not trusted",
            with(json!({"port": tls_port})),
            401,
        ),
        (
            "ldaps, skipVerify",
            with(json!({"port": tls_port, "skipVerify": true})),
            200,
        ),
        (
            "StartTLS, certificate not trusted",
            with(json!({"port": slapd.port, "startTLS": true})),
            401,
        ),
    ];
    for (i, (what, ldap, want)) in cases.into_iter().enumerate() {
        let b = Berth::start_full(
            &tmp.path().join(format!("root{i}")),
            json!({}),
            json!({"auth": {"ldap": ldap}}),
            &[],
        );
        let got = reqwest::blocking::Client::new()
            .get(b.url("/v2/"))
            .basic_auth("alice", Some("alice-pw"))
            .send()
            .expect("get")
            .status()
            .as_u16();
        assert_eq!(got, want, "{what}");
    }
}

/// zot 1.x wrote the bind user in the config itself (`bindDN`,
/// `bindPassword`): used as `credentialsFile`'s would be, and a wrong one
/// fails the search every login needs.
#[test]
fn an_inline_bind_user_as_zot_1_wrote_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let slapd = Slapd::start(tmp.path(), &directory());
    let start = |name: &str, password: &str| {
        Berth::start_full(
            &tmp.path().join(name),
            json!({}),
            json!({"auth": {"ldap": {
                "address": "127.0.0.1", "port": slapd.port, "insecure": true,
                "baseDN": format!("ou=people,{SUFFIX}"), "userAttribute": "uid",
                "bindDN": ADMIN_DN, "bindPassword": password,
            }}}),
            &[],
        )
    };
    let status = |b: &Berth| {
        reqwest::blocking::Client::new()
            .get(b.url("/v2/"))
            .basic_auth("alice", Some("alice-pw"))
            .send()
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(status(&start("right", ADMIN_PW)), 200);
    assert_ne!(status(&start("wrong", "not-the-password")), 200);
}

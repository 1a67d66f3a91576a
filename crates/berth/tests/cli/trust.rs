//! Signature trust (`extensions.trust`) through the real binary: images
//! pushed with skopeo, signed by the test in the exact formats cosign and
//! notation write (`berth-trust`'s `sign` feature: keys and certificates
//! made here), keys and certificates uploaded through zot's routes, the
//! verdicts read through zot's search API, and `requireSigned` refusing
//! pulls until a trusted signature exists (skopeo pulls refused, then
//! served).

use std::path::Path;
use std::time::{Duration, Instant};

use berth_trust::sign::{
    CertificateAuthority, EnvelopeFormat, KeyAlgorithm, NotationOptions, SignatureArtifact,
    SignerSpec, SigningKey, SigningTarget, Validity, cosign_bundle, cosign_simple_signing,
    notation_sign,
};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::{Berth, skopeo_policy, skopeo_push, write_layout};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A config with trust (both tools), search, and `extra` merged into
/// `extensions.trust`; `http` keys merged too.
fn start(root: &Path, trust: Value, http: Value) -> Berth {
    start_logged(root, trust, http, json!({}))
}

/// [`start`], with `log` keys merged (debug logs by default).
fn start_logged(root: &Path, trust: Value, http: Value, log: Value) -> Berth {
    let mut log_obj = json!({"level": "debug"});
    if let (Some(o), Value::Object(extra)) = (log_obj.as_object_mut(), log) {
        o.extend(extra);
    }
    let mut trust_obj = json!({"enable": true, "cosign": true, "notation": true});
    if let (Some(o), Value::Object(extra)) = (trust_obj.as_object_mut(), trust) {
        o.extend(extra);
    }
    let mut http_obj = json!({"address": "127.0.0.1", "port": "0"});
    if let (Some(o), Value::Object(extra)) = (http_obj.as_object_mut(), http) {
        o.extend(extra);
    }
    let config = root.with_extension("json");
    std::fs::write(
        &config,
        json!({
            "storage": {"rootDirectory": root},
            "http": http_obj,
            "log": log_obj,
            "extensions": {"search": {"enable": true}, "trust": trust_obj}
        })
        .to_string(),
    )
    .expect("config");
    Berth::start_config(&config)
}

/// Pushes a one-platform image with skopeo as `repo:v1`; its target (the
/// manifest's digest, media type and size, from the layout pushed).
fn push_image(b: &Berth, dir: &Path, repo: &str, seed: &str) -> SigningTarget {
    let layout = dir.join(format!("layout-{}", repo.replace('/', "-")));
    let digest = write_layout(&layout, "v1", &[seed]);
    let out = skopeo_push(dir, &layout, &format!("{}/{repo}:v1", b.addr), None);
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(layout.join("blobs/sha256").join(digest.hex())).expect("manifest");
    SigningTarget::of_manifest(OCI_MANIFEST, &bytes)
}

/// Pushes a signature artifact: its blobs, then its manifest as
/// `reference` (a tag, or its digest).
fn push_artifact(b: &Berth, repo: &str, reference: &str, artifact: &SignatureArtifact) {
    let http = Client::new();
    for blob in &artifact.blobs {
        let r = http
            .post(b.url(&format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest)))
            .body(blob.bytes.clone())
            .send()
            .expect("push blob");
        assert_eq!(r.status(), StatusCode::CREATED, "blob {}", blob.digest);
    }
    let r = http
        .put(b.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", &artifact.manifest.media_type)
        .body(artifact.manifest.bytes.clone())
        .send()
        .expect("put manifest");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
}

/// `SignatureInfo` of `repo:v1`, sorted, as zot's UI asks for it.
fn signature_info(b: &Berth, repo: &str) -> (bool, Vec<(String, bool, String)>) {
    let query = format!(
        "{{ Image(image: \"{repo}:v1\") {{ IsSigned SignatureInfo {{ Tool IsTrusted Author }} }} }}"
    );
    let r = Client::new()
        .post(b.url("/v2/_zot/ext/search"))
        .json(&json!({ "query": query }))
        .send()
        .expect("search");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().expect("json");
    assert!(v["errors"].is_null(), "{v}");
    let image = &v["data"]["Image"];
    let mut info: Vec<(String, bool, String)> = image["SignatureInfo"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    (
                        s["Tool"].as_str().unwrap_or_default().to_string(),
                        s["IsTrusted"].as_bool().unwrap_or_default(),
                        s["Author"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    info.sort();
    (image["IsSigned"].as_bool().unwrap_or_default(), info)
}

/// Waits (at most 15 s) until `repo:v1`'s signatures are `want`.
fn wait_for_signatures(b: &Berth, repo: &str, want: &[(&str, bool, &str)]) {
    let mut want: Vec<(String, bool, String)> = want
        .iter()
        .map(|(t, ok, a)| (t.to_string(), *ok, a.to_string()))
        .collect();
    want.sort();
    let start = Instant::now();
    loop {
        let (signed, got) = signature_info(b, repo);
        if got == want {
            assert_eq!(signed, !want.is_empty());
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{repo}: signatures {got:#?}, want {want:#?}\n{}",
            b.log
                .lock()
                .expect("log")
                .iter()
                .filter(|l| l.contains("not trusted") || l.contains("verdict"))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Uploads trust material; the response.
fn upload(
    b: &Berth,
    path: &str,
    body: &[u8],
    user: Option<(&str, &str)>,
) -> reqwest::blocking::Response {
    let mut r = Client::new().post(b.url(path)).body(body.to_vec());
    if let Some((u, p)) = user {
        r = r.basic_auth(u, Some(p));
    }
    r.send().expect("upload")
}

/// `artifact` with its simple-signing payload changed after signing (the
/// docker reference renamed), its manifest naming the new layer.
fn tampered(artifact: &SignatureArtifact) -> SignatureArtifact {
    use berth_trust::media::COSIGN_SIMPLE_SIGNING;
    use berth_trust::sign::Blob;
    let mut out = artifact.clone();
    let payload = out
        .blobs
        .iter_mut()
        .find(|b| b.media_type == COSIGN_SIMPLE_SIGNING)
        .expect("payload");
    let old = payload.digest.clone();
    let text = String::from_utf8(payload.bytes.clone()).expect("utf-8");
    assert!(text.contains("\"checks\""), "{text}");
    *payload = Blob::new(
        COSIGN_SIMPLE_SIGNING,
        text.replace("\"checks\"", "\"checkz\"").into_bytes(),
    );
    let mut manifest: Value = serde_json::from_slice(&out.manifest.bytes).expect("manifest");
    for layer in manifest["layers"].as_array_mut().expect("layers") {
        if layer["digest"] == old.as_str() {
            layer["digest"] = json!(payload.digest);
            layer["size"] = json!(payload.bytes.len());
        }
    }
    out.manifest = Blob::new(&out.manifest.media_type, manifest.to_string().into_bytes());
    out
}

/// The cosign keys listed by `GET /v2/_zot/ext/cosign`.
fn list_cosign(b: &Berth, user: Option<(&str, &str)>) -> Value {
    let mut r = Client::new().get(b.url("/v2/_zot/ext/cosign"));
    if let Some((u, p)) = user {
        r = r.basic_auth(u, Some(p));
    }
    r.send().expect("list").json().expect("json")
}

fn key(algorithm: KeyAlgorithm) -> SigningKey {
    SigningKey::generate(algorithm).expect("key")
}

/// Signatures pushed before their key is known are untrusted, become
/// trusted when the key or certificate is uploaded, and untrusted again
/// when it is removed; a signature over another image, one by an unknown
/// key and one whose certificate expired stay untrusted, each shown with
/// the author zot shows.
#[test]
fn signatures_are_verified_against_uploaded_keys_and_certificates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(&tmp.path().join("root"), json!({}), json!({}));
    let app = push_image(&b, tmp.path(), "app", "amd64");
    let other = push_image(&b, tmp.path(), "other", "arm64");
    wait_for_signatures(&b, "app", &[]);

    // cosign, tag scheme, before its key is uploaded.
    let cosign_key = key(KeyAlgorithm::EcdsaP256);
    let sig = cosign_simple_signing(&cosign_key, &app, &format!("{}/app", b.addr)).expect("sign");
    push_artifact(&b, "app", &sig.tag, &sig.tagged);
    wait_for_signatures(&b, "app", &[("cosign", false, "")]);
    let r = upload(
        &b,
        "/v2/_zot/ext/cosign",
        cosign_key.public_key_pem().as_bytes(),
        None,
    );
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
    let pem = cosign_key.public_key_pem();
    wait_for_signatures(&b, "app", &[("cosign", true, &pem)]);

    // A signature over another image, pushed as this one's: the key
    // verifies it (so it names the author), the digest does not match.
    let wrong = push_image(&b, tmp.path(), "wrong", "s390x");
    let elsewhere = cosign_simple_signing(&cosign_key, &other, "elsewhere").expect("sign");
    let wrong_tag = format!("sha256-{}.sig", wrong.digest.trim_start_matches("sha256:"));
    push_artifact(&b, "wrong", &wrong_tag, &elsewhere.tagged);
    wait_for_signatures(&b, "wrong", &[("cosign", false, &pem)]);

    // notation (JWS), its root uploaded to the `ca` store; the author is
    // the signing certificate's subject, as Go writes it.
    let root = CertificateAuthority::root(
        "Berth Test Root",
        KeyAlgorithm::EcdsaP384,
        Validity::days_from_now(30),
    )
    .expect("root");
    let signer = root
        .issue_signer(&SignerSpec::code_signing(
            "builder",
            KeyAlgorithm::EcdsaP256,
        ))
        .expect("signer");
    let jws =
        notation_sign(&signer, &app, &NotationOptions::now(EnvelopeFormat::Jws)).expect("jws");
    push_artifact(&b, "app", &jws.referrer.manifest.digest, &jws.referrer);
    // A COSE signature by a certificate that expired yesterday.
    let expired_spec = SignerSpec {
        validity: Validity::ended_days_ago(10, 1),
        ..SignerSpec::code_signing("expired builder", KeyAlgorithm::EcdsaP256)
    };
    let expired = root.issue_signer(&expired_spec).expect("expired signer");
    let cose =
        notation_sign(&expired, &app, &NotationOptions::now(EnvelopeFormat::Cose)).expect("cose");
    push_artifact(&b, "app", &cose.referrer.manifest.digest, &cose.referrer);
    // A cosign bundle by a key nobody uploaded.
    let stranger = key(KeyAlgorithm::Ed25519);
    let bundle = cosign_bundle(&stranger, &app, std::time::SystemTime::now()).expect("bundle");
    push_artifact(
        &b,
        "app",
        &bundle.referrer.manifest.digest,
        &bundle.referrer,
    );
    wait_for_signatures(
        &b,
        "app",
        &[
            ("cosign", true, &pem),
            ("cosign", false, ""),
            ("notation", false, "CN=builder"),
            ("notation", false, "CN=expired builder"),
        ],
    );
    let r = upload(
        &b,
        "/v2/_zot/ext/notation?truststoreType=ca",
        root.pem().as_bytes(),
        None,
    );
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
    wait_for_signatures(
        &b,
        "app",
        &[
            ("cosign", true, &pem),
            ("cosign", false, ""),
            ("notation", true, "CN=builder"),
            ("notation", false, "CN=expired builder"),
        ],
    );
    // The signed image itself knows nothing of it.
    wait_for_signatures(&b, "other", &[]);

    // A payload changed after it was signed (by the trusted key), and a
    // chain to a root nobody uploaded: both untrusted.
    let checks = push_image(&b, tmp.path(), "checks", "ppc64le");
    let honest = cosign_simple_signing(&cosign_key, &checks, "checks").expect("sign");
    let changed = tampered(&honest.referrer);
    push_artifact(&b, "checks", &changed.manifest.digest, &changed);
    let other_root = CertificateAuthority::root(
        "Other Root",
        KeyAlgorithm::EcdsaP256,
        Validity::days_from_now(30),
    )
    .expect("root");
    let outsider = other_root
        .issue_signer(&SignerSpec::code_signing(
            "outsider",
            KeyAlgorithm::EcdsaP256,
        ))
        .expect("signer");
    let foreign = notation_sign(
        &outsider,
        &checks,
        &NotationOptions::now(EnvelopeFormat::Jws),
    )
    .expect("jws");
    push_artifact(
        &b,
        "checks",
        &foreign.referrer.manifest.digest,
        &foreign.referrer,
    );
    wait_for_signatures(
        &b,
        "checks",
        &[("cosign", false, ""), ("notation", false, "CN=outsider")],
    );

    // Listed, then removed: the cosign signature is untrusted again.
    let listed = list_cosign(&b, None);
    let files = listed["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{listed}");
    let id = files[0]["id"].as_str().expect("id").to_string();
    assert!(
        tmp.path().join("root/_cosign").join(&id).exists(),
        "kept where zot keeps it"
    );
    let r = Client::new()
        .delete(b.url(&format!("/v2/_zot/ext/cosign?id={id}")))
        .send()
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wait_for_signatures(
        &b,
        "app",
        &[
            ("cosign", false, ""),
            ("cosign", false, ""),
            ("notation", true, "CN=builder"),
            ("notation", false, "CN=expired builder"),
        ],
    );
}

/// Uploads that are no key or certificate — garbage, a private key sent
/// by mistake, a certificate for another store — are refused with a
/// message saying why and never stored; with access control only an
/// admin may upload.
#[test]
fn bad_uploads_are_refused_and_never_stored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("bcrypt"));
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, line("admin", "secret") + &line("bob", "builder")).expect("htpasswd");
    let audit = tmp.path().join("audit.log");
    let b = start_logged(
        &root,
        json!({}),
        json!({
            "auth": {"htpasswd": {"path": htpasswd}},
            "accessControl": {
                "repositories": {"**": {"policies": [{"users": ["bob"], "actions": ["read", "create"]}]}},
                "adminPolicy": {"users": ["admin"], "actions": ["read", "create", "update", "delete"]}
            }
        }),
        json!({"audit": audit}),
    );
    const ADMIN: Option<(&str, &str)> = Some(("admin", "secret"));
    let k = key(KeyAlgorithm::EcdsaP256);
    let private = k.private_key_pem();
    let cases: [(&str, &[u8], &str); 5] = [
        ("/v2/_zot/ext/cosign", b"not a key at all", "PEM"),
        ("/v2/_zot/ext/cosign", private.as_bytes(), "private key"),
        ("/v2/_zot/ext/cosign", b"", "empty"),
        (
            "/v2/_zot/ext/notation",
            b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
            "malformed PEM",
        ),
        (
            "/v2/_zot/ext/notation?truststoreType=tsa",
            b"x",
            "truststoreType",
        ),
    ];
    for (path, body, says) in cases {
        let r = upload(&b, path, body, ADMIN);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let text = r.text().expect("body");
        assert!(
            text.to_lowercase().contains(&says.to_lowercase()),
            "{path}: {text}"
        );
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "the key is never echoed: {text}"
        );
    }
    // Who may upload: an admin only.
    let public = k.public_key_pem();
    assert_eq!(
        upload(&b, "/v2/_zot/ext/cosign", public.as_bytes(), None).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        upload(
            &b,
            "/v2/_zot/ext/cosign",
            public.as_bytes(),
            Some(("bob", "builder"))
        )
        .status(),
        StatusCode::FORBIDDEN
    );
    let stored: Vec<_> = std::fs::read_dir(root.join("_cosign"))
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(stored.is_empty(), "nothing refused was stored: {stored:?}");
    assert_eq!(
        upload(&b, "/v2/_zot/ext/cosign", public.as_bytes(), ADMIN).status(),
        StatusCode::CREATED
    );
    let listed = list_cosign(&b, ADMIN);
    assert_eq!(
        listed["files"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let logged = b.log.lock().expect("log").join("\n");
    assert!(logged.contains("cosign public key uploaded"), "{logged}");
    // In the audit log, with who did it.
    let audited = std::fs::read_to_string(&audit).expect("audit log");
    let upload_line = audited
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| {
            e["object"] == "/v2/_zot/ext/cosign" && e["subject"] == "admin" && e["status"] == 201
        });
    assert!(upload_line.is_some(), "{audited}");
}

/// `requireSigned`: an unsigned image in a covered repository is refused
/// (403 `DENIED`, and skopeo fails), its signature stays pullable, and
/// once it carries a trusted signature it is served (skopeo copies it);
/// an index signed once serves its platforms; a repository no rule covers
/// is served as always. A key found under the root at start (as zot
/// keeps them) is used.
#[test]
fn require_signed_serves_only_images_with_a_trusted_signature() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let cosign_key = key(KeyAlgorithm::EcdsaP384);
    let pem = cosign_key.public_key_pem();
    // zot's layout: the key under `_cosign/` named by its digest.
    std::fs::create_dir_all(root.join("_cosign")).expect("mkdir");
    let name = format!("sha256:{}", berth_oci::Digest::sha256(pem.as_bytes()).hex());
    std::fs::write(root.join("_cosign").join(name), &pem).expect("key file");
    let b = start(
        &root,
        json!({"requireSigned": [{"repositories": ["prod/**"], "tools": ["cosign"]}]}),
        json!({}),
    );
    let image = push_image(&b, tmp.path(), "prod/app", "amd64");
    let dev = push_image(&b, tmp.path(), "dev/app", "amd64");
    let http = Client::new();
    let get = |path: &str| {
        http.get(b.url(path))
            .header("accept", OCI_MANIFEST)
            .send()
            .expect("get")
    };

    let r = get("/v2/prod/app/manifests/v1");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("not signed by a trusted key")
    );
    let pull = |dir: &str| {
        std::process::Command::new("skopeo")
            .arg("--policy")
            .arg(skopeo_policy(tmp.path()))
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}/prod/app:v1", b.addr))
            .arg(format!("oci:{}:v1", tmp.path().join(dir).display()))
            .output()
            .expect("skopeo")
    };
    assert!(!pull("refused").status.success(), "skopeo is refused");
    assert_eq!(
        get(&format!("/v2/dev/app/manifests/{}", dev.digest)).status(),
        StatusCode::OK
    );

    // Signed by a key nobody trusts: still refused; the signature itself
    // is served.
    let stranger = key(KeyAlgorithm::EcdsaP256);
    let untrusted = cosign_simple_signing(&stranger, &image, "prod/app").expect("sign");
    push_artifact(
        &b,
        "prod/app",
        &untrusted.referrer.manifest.digest,
        &untrusted.referrer,
    );
    assert_eq!(
        get("/v2/prod/app/manifests/v1").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&format!(
            "/v2/prod/app/manifests/{}",
            untrusted.referrer.manifest.digest
        ))
        .status(),
        StatusCode::OK
    );
    // The same image posing as a referrer (a `subject` added) needs a
    // signature of its own.
    let layout = tmp.path().join("layout-prod-app");
    let bytes = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(image.digest.trim_start_matches("sha256:")),
    )
    .expect("manifest");
    let mut posing: Value = serde_json::from_slice(&bytes).expect("json");
    posing["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": dev.digest, "size": dev.size});
    let posing = posing.to_string();
    let posing_digest = berth_oci::Digest::sha256(posing.as_bytes()).to_string();
    let r = http
        .put(b.url(&format!("/v2/prod/app/manifests/{posing_digest}")))
        .header("content-type", OCI_MANIFEST)
        .body(posing)
        .send()
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        get(&format!("/v2/prod/app/manifests/{posing_digest}")).status(),
        StatusCode::FORBIDDEN,
        "a runnable image is no signature"
    );
    // Signed by the key under the root: served, to skopeo too.
    let trusted = cosign_simple_signing(&cosign_key, &image, "prod/app").expect("sign");
    push_artifact(&b, "prod/app", &trusted.tag, &trusted.tagged);
    assert_eq!(
        get(&format!("/v2/prod/app/manifests/{}", trusted.tag)).status(),
        StatusCode::OK
    );
    assert_eq!(get("/v2/prod/app/manifests/v1").status(), StatusCode::OK);
    let out = pull("served");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An index signed once serves its platforms; an unsigned one not.
    let layout = tmp.path().join("multi");
    write_layout(&layout, "v1", &["amd64", "arm64"]);
    let out = std::process::Command::new("skopeo")
        .arg("--policy")
        .arg(skopeo_policy(tmp.path()))
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{}/prod/multi:v1", b.addr))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("json");
    let index_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let index_bytes = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(index_digest.trim_start_matches("sha256:")),
    )
    .expect("index blob");
    let children: Vec<String> =
        serde_json::from_slice::<Value>(&index_bytes).expect("json")["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| m["digest"].as_str().expect("digest").to_string())
            .collect();
    let child = |d: &str| {
        http.get(b.url(&format!("/v2/prod/multi/manifests/{d}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .expect("get")
            .status()
    };
    assert_eq!(child(&children[0]), StatusCode::FORBIDDEN);
    let target =
        SigningTarget::of_manifest("application/vnd.oci.image.index.v1+json", &index_bytes);
    let signed = cosign_simple_signing(&cosign_key, &target, "prod/multi").expect("sign");
    push_artifact(&b, "prod/multi", &signed.tag, &signed.tagged);
    for c in &children {
        assert_eq!(child(c), StatusCode::OK, "{c}");
    }
}

/// Material uploaded to one instance is used by another sharing the
/// root's storage (here the same directory, one after the other: the
/// second finds the first's upload where zot keeps it).
#[test]
fn uploaded_material_is_kept_under_the_root() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let b = start(&root, json!({}), json!({}));
    let app = push_image(&b, tmp.path(), "app", "amd64");
    let cosign_key = key(KeyAlgorithm::Rsa2048);
    let pem = cosign_key.public_key_pem();
    assert_eq!(
        upload(&b, "/v2/_zot/ext/cosign", pem.as_bytes(), None).status(),
        StatusCode::CREATED
    );
    let sig = cosign_simple_signing(&cosign_key, &app, "app").expect("sign");
    push_artifact(&b, "app", &sig.referrer.manifest.digest, &sig.referrer);
    wait_for_signatures(&b, "app", &[("cosign", true, &pem)]);
    assert!(b.terminate().success());
    let again = start(&root, json!({}), json!({}));
    wait_for_signatures(&again, "app", &[("cosign", true, &pem)]);
}

/// A signature uploaded when notation is off is refused by name.
#[test]
fn a_tool_that_is_off_takes_no_upload() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = start(
        &tmp.path().join("root"),
        json!({"notation": false}),
        json!({}),
    );
    let r = upload(&b, "/v2/_zot/ext/notation", b"x", None);
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .expect("body")
            .contains("extensions.trust.notation")
    );
}

/// Two instances sharing an S3 bucket (a real `s3s-fs`) and a Redis (a
/// real `redis-server`): a key uploaded to one is kept in the bucket and
/// used by the other within seconds, verdicts one makes the other's
/// search shows, and `requireSigned` holds on both.
#[cfg(all(feature = "s3", feature = "redis"))]
#[test]
fn instances_sharing_a_bucket_and_redis_share_the_trust_material() {
    use crate::redis_server::RedisServer;
    use crate::s3_server::S3Server;
    let tmp = tempfile::tempdir().expect("tmp");
    let (s3, redis) = (S3Server::start(), RedisServer::start());
    let start_one = |name: &str| {
        let root = tmp.path().join(name);
        std::fs::create_dir_all(&root).expect("root");
        let config = tmp.path().join(format!("{name}.json"));
        std::fs::write(
            &config,
            json!({
                "storage": {
                    "rootDirectory": root,
                    "storageDriver": s3.driver("/trust"),
                    "cacheDriver": {"name": "redis", "url": redis.url(), "keyprefix": "trust"},
                },
                "http": {"address": "127.0.0.1", "port": "0"},
                "extensions": {"search": {}, "trust": {"cosign": true,
                    "requireSigned": [{"repositories": ["prod/**"]}]}},
            })
            .to_string(),
        )
        .expect("config");
        Berth::start_config(&config)
    };
    let (a, b) = (start_one("a"), start_one("b"));
    let image = push_image(&a, tmp.path(), "prod/app", "amd64");
    let status = |on: &Berth| {
        Client::new()
            .get(on.url("/v2/prod/app/manifests/v1"))
            .header("accept", OCI_MANIFEST)
            .send()
            .expect("get")
            .status()
    };
    assert_eq!(status(&b), StatusCode::FORBIDDEN);

    let cosign_key = key(KeyAlgorithm::EcdsaP256);
    let pem = cosign_key.public_key_pem();
    assert_eq!(
        upload(&a, "/v2/_zot/ext/cosign", pem.as_bytes(), None).status(),
        StatusCode::CREATED
    );
    assert!(
        !tmp.path().join("a/_cosign").exists(),
        "kept in the bucket, not on the instance's disk"
    );
    let start = Instant::now();
    loop {
        let listed = list_cosign(&b, None);
        if listed["files"].as_array().map(Vec::len) == Some(1) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "b never saw the key: {listed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let sig = cosign_simple_signing(&cosign_key, &image, "prod/app").expect("sign");
    push_artifact(&b, "prod/app", &sig.tag, &sig.tagged);
    assert_eq!(status(&a), StatusCode::OK);
    assert_eq!(status(&b), StatusCode::OK);
    wait_for_signatures(&a, "prod/app", &[("cosign", true, &pem)]);
    wait_for_signatures(&b, "prod/app", &[("cosign", true, &pem)]);
}

/// The web UI shows an image's signatures with their trust, as search
/// has them: untrusted until the key is uploaded, then trusted, on the
/// repository's page and the image's.
#[cfg(feature = "ui")]
#[test]
fn the_web_ui_shows_signatures_and_their_trust() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let config = root.with_extension("json");
    std::fs::write(
        &config,
        json!({"storage": {"rootDirectory": root},
               "http": {"address": "127.0.0.1", "port": "0"},
               "extensions": {"search": {"enable": true}, "ui": {"enable": true},
                              "trust": {"enable": true, "cosign": true}}})
        .to_string(),
    )
    .expect("config");
    let b = Berth::start_config(&config);
    let app = push_image(&b, tmp.path(), "app", "amd64");
    let cosign_key = key(KeyAlgorithm::EcdsaP256);
    let sig = cosign_simple_signing(&cosign_key, &app, &format!("{}/app", b.addr)).expect("sign");
    push_artifact(&b, "app", &sig.tag, &sig.tagged);
    wait_for_signatures(&b, "app", &[("cosign", false, "")]);
    let page = |path: &str| {
        let r = Client::new().get(b.url(path)).send().expect("page");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.text().expect("html")
    };
    let image = page("/ui/image/app:v1");
    assert!(
        image.contains("not trusted") && image.contains("cosign"),
        "{image}"
    );
    assert!(!image.contains("signed, trusted"), "{image}");

    let r = upload(
        &b,
        "/v2/_zot/ext/cosign",
        cosign_key.public_key_pem().as_bytes(),
        None,
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    let pem = cosign_key.public_key_pem();
    wait_for_signatures(&b, "app", &[("cosign", true, &pem)]);
    let image = page("/ui/image/app:v1");
    assert!(image.contains("signed, trusted"), "{image}");
    assert!(
        image.contains("BEGIN PUBLIC KEY"),
        "the author (the key) is shown: {image}"
    );
    let repo = page("/ui/repo/app");
    assert!(repo.contains("signed, trusted"), "{repo}");
}

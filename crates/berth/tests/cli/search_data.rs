//! The images the search tests push, built as OCI layouts on disk and pushed
//! with skopeo, and what the search API must answer about each of them:
//!
//! - `base:1.0`: linux/amd64, two layers, a config with `created`, a history
//!   with one `empty_layer` entry, and labels (vendor, description, licenses);
//! - `app:1.0` and the newer `app:2.0`: base's two layers plus one of their
//!   own, OCI annotations on the manifest (title, description, vendor,
//!   source, licenses, documentation), and base's labels in the config;
//! - `multi:latest`: an index of linux/amd64 and linux/arm64 whose configs
//!   have no `created`, so their last history entry dates them;
//! - `myapp:1.0`: one layer of its own;
//! - signatures: cosign tag-scheme signatures (`sha256-<hex>.sig`) of
//!   `app:1.0` and `myapp:1.0`, and a notation signature of `app:1.0` pushed
//!   as an OCI 1.1 referrer, by digest, with no tag.
//!
//! Every time is a whole second in UTC; [`Manifest::last_updated`] holds it
//! without its zone, as `search_client::same_instant` compares.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const NOTATION: &str = "application/vnd.cncf.notary.signature";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// A blob as pushed.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
}

/// One image manifest as pushed.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: String,
    /// The length of the manifest's own bytes.
    pub len: u64,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub os: &'static str,
    pub arch: &'static str,
    /// The config's `created`, or else its last history entry's.
    pub last_updated: &'static str,
    /// Each history entry's `created_by` and `empty_layer`.
    pub history: Vec<(&'static str, bool)>,
}

impl Manifest {
    /// zot's size of one image: its manifest, config and layers.
    pub fn size(&self) -> u64 {
        self.len + self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    fn blobs(&self) -> Vec<(String, u64)> {
        let mut all = vec![
            (self.digest.clone(), self.len),
            (self.config.digest.clone(), self.config.size),
        ];
        all.extend(self.layers.iter().map(|l| (l.digest.clone(), l.size)));
        all
    }
}

/// A referrer (an artifact whose `subject` is an image) as pushed.
#[derive(Clone, Debug)]
pub struct Referrer {
    pub digest: String,
    pub media_type: &'static str,
    pub artifact_type: &'static str,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

/// A tagged image as pushed, and what the API says of it.
#[derive(Clone, Debug)]
pub struct Image {
    pub repo: &'static str,
    pub tag: &'static str,
    pub digest: String,
    pub media_type: &'static str,
    pub manifests: Vec<Manifest>,
    /// The index's own length, for a multi-platform image.
    pub index_len: Option<u64>,
    /// The ImageSummary fields read from annotations or labels
    /// (`Description`, `Title`, `Vendor`, …); a field not here is empty.
    pub annotations: BTreeMap<&'static str, &'static str>,
    /// True when those values come from the config's labels, not from the
    /// manifest's annotations (zot counts only the latter in a repository's
    /// `Vendors`).
    pub from_labels: bool,
    /// The tools of the signatures pushed for it, sorted.
    pub signed_by: Vec<&'static str>,
    pub referrers: Vec<Referrer>,
}

impl Image {
    /// zot's size of an image: for an index, the sum of its images' sizes
    /// (the index's own bytes are not counted).
    pub fn size(&self) -> u64 {
        self.manifests.iter().map(Manifest::size).sum()
    }

    /// The newest of its manifests' times.
    pub fn last_updated(&self) -> &'static str {
        self.manifests
            .iter()
            .map(|m| m.last_updated)
            .max()
            .expect("an image has a manifest")
    }

    pub fn is_signed(&self) -> bool {
        !self.signed_by.is_empty()
    }

    pub fn name(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }
}

/// What the API says of a repository.
pub struct Repo<'a> {
    pub name: &'static str,
    /// Every distinct blob its tags reach, each counted once (an index's
    /// own bytes too; signatures, which are not tags in zot, not).
    pub size: u64,
    pub platforms: BTreeSet<(String, String)>,
    pub newest: &'a Image,
    /// The vendors of its images, when every one comes from an annotation.
    pub vendors: Option<BTreeSet<&'static str>>,
}

/// Everything pushed.
pub struct DataSet {
    /// In the order pushed: base, app:1.0, app:2.0, multi, myapp.
    pub images: Vec<Image>,
    pub notation: Referrer,
    /// The cosign signature tags (not images: they never appear in a list).
    pub cosign_tags: Vec<String>,
}

impl DataSet {
    pub fn image(&self, repo: &str, tag: &str) -> &Image {
        self.images
            .iter()
            .find(|i| i.repo == repo && i.tag == tag)
            .unwrap_or_else(|| panic!("no image {repo}:{tag} in the data set"))
    }

    pub fn app1(&self) -> &Image {
        self.image("app", "1.0")
    }

    /// The repository names, sorted.
    pub fn repo_names(&self) -> Vec<&'static str> {
        let names: BTreeSet<_> = self.images.iter().map(|i| i.repo).collect();
        names.into_iter().collect()
    }

    pub fn repo(&self, name: &str) -> Repo<'_> {
        let images: Vec<&Image> = self.images.iter().filter(|i| i.repo == name).collect();
        assert!(!images.is_empty(), "no repository {name} in the data set");
        let mut blobs = BTreeMap::new();
        let mut platforms = BTreeSet::new();
        for img in &images {
            if let Some(len) = img.index_len {
                blobs.insert(img.digest.clone(), len);
            }
            for m in &img.manifests {
                blobs.extend(m.blobs());
                platforms.insert((m.os.to_string(), m.arch.to_string()));
            }
        }
        let newest = *images
            .iter()
            .max_by_key(|i| i.last_updated())
            .expect("non-empty");
        let vendors = images.iter().all(|i| !i.from_labels).then(|| {
            images
                .iter()
                .filter_map(|i| i.annotations.get("Vendor").copied())
                .collect()
        });
        Repo {
            name: newest.repo,
            size: blobs.values().sum(),
            platforms,
            newest,
            vendors,
        }
    }

    /// Builds every layout under `dir` and pushes it to `addr` with skopeo,
    /// as `creds` (user:password) when given.
    pub fn push(dir: &Path, addr: &str, creds: Option<&str>) -> Self {
        let push = Pusher {
            policy: skopeo_policy(dir),
            addr: addr.to_string(),
            creds: creds.map(str::to_string),
        };
        let mut images = Vec::new();

        let base_history = vec![
            (
                "2023-12-31T10:00:00Z",
                "ADD os-release /etc/os-release",
                false,
            ),
            ("2023-12-31T11:00:00Z", "ENV PATH=/bin", true),
            ("2023-12-31T12:00:00Z", "ADD sh /bin/sh", false),
        ];
        let base_labels = json!({
            "org.opencontainers.image.vendor": "Base Labs",
            "org.opencontainers.image.description": "the base image",
            "org.opencontainers.image.licenses": "MIT",
        });
        let base_layers = vec![
            ("etc/os-release", "ID=berth-test\n".repeat(200)),
            ("bin/sh", "#!not really a shell\n".repeat(300)),
        ];

        let mut base = Layout::new(&dir.join("base"));
        let spec = Spec {
            os: "linux",
            arch: "amd64",
            created: Some("2024-01-01T00:00:00Z"),
            history: base_history.clone(),
            labels: base_labels.clone(),
            annotations: Value::Null,
            layers: base_layers.clone(),
        };
        let (desc, m) = base.image(&spec);
        base.tag("1.0", &desc);
        push.copy(&base, "1.0", "base:1.0", false);
        images.push(Image {
            repo: "base",
            tag: "1.0",
            digest: m.digest.clone(),
            media_type: MANIFEST,
            manifests: vec![m],
            index_len: None,
            annotations: BTreeMap::from([
                ("Vendor", "Base Labs"),
                ("Description", "the base image"),
                ("Licenses", "MIT"),
            ]),
            from_labels: true,
            signed_by: vec![],
            referrers: vec![],
        });

        let mut app = Layout::new(&dir.join("app"));
        for (tag, created, description, content) in [
            ("1.0", "2024-02-01T00:00:00Z", "the app", "app one\n"),
            (
                "2.0",
                "2024-03-01T00:00:00Z",
                "the app, second release",
                "app two\n",
            ),
        ] {
            let mut history = base_history.clone();
            history.push((created, "COPY app /app", false));
            let mut layers = base_layers.clone();
            layers.push(("app/app.bin", content.repeat(400)));
            let annotations = BTreeMap::from([
                ("Title", "app"),
                ("Description", description),
                ("Vendor", "Acme"),
                ("Source", "https://example.com/app.git"),
                ("Licenses", "Apache-2.0"),
                ("Documentation", "https://example.com/app/docs"),
            ]);
            let spec = Spec {
                os: "linux",
                arch: "amd64",
                created: Some(created),
                history,
                labels: base_labels.clone(),
                annotations: oci_annotations(&annotations),
                layers,
            };
            let (desc, m) = app.image(&spec);
            app.tag(tag, &desc);
            push.copy(&app, tag, &format!("app:{tag}"), false);
            images.push(Image {
                repo: "app",
                tag,
                digest: m.digest.clone(),
                media_type: MANIFEST,
                manifests: vec![m],
                index_len: None,
                annotations,
                from_labels: false,
                signed_by: vec![],
                referrers: vec![],
            });
        }

        // app:1.0 is signed twice: cosign's tag scheme, and notation's
        // referrer (skopeo pushes it by digest, so no tag is made).
        let app1_desc = json!({"mediaType": MANIFEST, "digest": images[1].digest,
            "size": images[1].manifests[0].len});
        let mut cosign_tags = Vec::new();
        let tag = app.cosign_signature(&images[1].digest, &format!("{addr}/app"));
        push.copy(&app, &tag, &format!("app:{tag}"), false);
        cosign_tags.push(tag);
        let (notation_desc, notation) = app.notation_signature(&app1_desc);
        app.tag("notation", &notation_desc);
        push.copy(&app, "notation", &format!("app@{}", notation.digest), false);
        images[1].signed_by = vec!["cosign", "notation"];
        images[1].referrers = vec![notation.clone()];

        let mut multi = Layout::new(&dir.join("multi"));
        let mut children = Vec::new();
        let mut manifests = Vec::new();
        for (arch, dated) in [
            ("amd64", "2024-01-20T00:00:00Z"),
            ("arm64", "2024-01-25T00:00:00Z"),
        ] {
            let spec = Spec {
                os: "linux",
                arch,
                created: None,
                history: vec![
                    ("2024-01-10T00:00:00Z", "ADD rootfs /", false),
                    (dated, "LABEL built=yes", true),
                ],
                labels: json!({}),
                annotations: Value::Null,
                layers: vec![("rootfs.txt", format!("{arch} root\n").repeat(500))],
            };
            let (mut desc, m) = multi.image(&spec);
            desc["platform"] = json!({"os": "linux", "architecture": arch});
            children.push(desc);
            manifests.push(m);
        }
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": children});
        let index_bytes = index.to_string().into_bytes();
        let index_desc = multi.blob(&index_bytes, INDEX);
        multi.tag("latest", &index_desc);
        push.copy(&multi, "latest", "multi:latest", true);
        images.push(Image {
            repo: "multi",
            tag: "latest",
            digest: digest_of(&index_desc),
            media_type: INDEX,
            manifests,
            index_len: Some(index_bytes.len() as u64),
            annotations: BTreeMap::new(),
            from_labels: false,
            signed_by: vec![],
            referrers: vec![],
        });

        let mut myapp = Layout::new(&dir.join("myapp"));
        let annotations = BTreeMap::from([("Description", "my app"), ("Vendor", "Acme")]);
        let spec = Spec {
            os: "linux",
            arch: "amd64",
            created: Some("2024-02-15T00:00:00Z"),
            history: vec![("2024-02-15T00:00:00Z", "ADD myapp /", false)],
            labels: json!({}),
            annotations: oci_annotations(&annotations),
            layers: vec![("myapp.bin", "my app\n".repeat(600))],
        };
        let (desc, m) = myapp.image(&spec);
        myapp.tag("1.0", &desc);
        push.copy(&myapp, "1.0", "myapp:1.0", false);
        let tag = myapp.cosign_signature(&m.digest, &format!("{addr}/myapp"));
        push.copy(&myapp, &tag, &format!("myapp:{tag}"), false);
        cosign_tags.push(tag);
        images.push(Image {
            repo: "myapp",
            tag: "1.0",
            digest: m.digest.clone(),
            media_type: MANIFEST,
            manifests: vec![m],
            index_len: None,
            annotations,
            from_labels: false,
            signed_by: vec!["cosign"],
            referrers: vec![],
        });

        Self {
            images,
            notation,
            cosign_tags,
        }
    }
}

/// The OCI annotation keys of the ImageSummary fields in `fields`.
fn oci_annotations(fields: &BTreeMap<&str, &str>) -> Value {
    let key = |field: &str| format!("org.opencontainers.image.{}", field.to_lowercase());
    Value::Object(fields.iter().map(|(f, v)| (key(f), json!(v))).collect())
}

fn digest_of(desc: &Value) -> String {
    desc["digest"].as_str().expect("digest").to_string()
}

fn size_of(desc: &Value) -> u64 {
    desc["size"].as_u64().expect("size")
}

/// What one image manifest is made of.
struct Spec {
    os: &'static str,
    arch: &'static str,
    created: Option<&'static str>,
    /// `created`, `created_by`, `empty_layer`.
    history: Vec<(&'static str, &'static str, bool)>,
    labels: Value,
    /// The manifest's annotations, or null for none.
    annotations: Value,
    /// A file name and its content for each layer.
    layers: Vec<(&'static str, String)>,
}

/// An OCI layout being written: its blobs, and `index.json` rewritten at
/// each tag.
struct Layout {
    dir: PathBuf,
    tags: Vec<Value>,
}

impl Layout {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        Self {
            dir: dir.to_path_buf(),
            tags: Vec::new(),
        }
    }

    fn blob(&self, data: &[u8], media_type: &str) -> Value {
        with_media(put_blob(&self.dir, data), media_type)
    }

    fn tag(&mut self, tag: &str, desc: &Value) {
        let mut d = desc.clone();
        if let Some(o) = d.as_object_mut() {
            o.remove("platform");
        }
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.tags.push(d);
        std::fs::write(
            self.dir.join("index.json"),
            json!({"schemaVersion": 2, "manifests": self.tags}).to_string(),
        )
        .expect("index.json");
    }

    /// Writes an image's layers, config and manifest; answers the
    /// manifest's descriptor and what it is made of.
    fn image(&self, spec: &Spec) -> (Value, Manifest) {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (name, content) in &spec.layers {
            let (gz, diff_id) = layer(name, content.as_bytes());
            layers.push(self.blob(&gz, LAYER));
            diff_ids.push(diff_id.to_string());
        }
        let history: Vec<Value> = spec
            .history
            .iter()
            .map(|(created, by, empty)| {
                let mut h = json!({"created": created, "created_by": by});
                if *empty {
                    h["empty_layer"] = json!(true);
                }
                h
            })
            .collect();
        let mut config = json!({
            "architecture": spec.arch,
            "os": spec.os,
            "config": {"Labels": spec.labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(created) = spec.created {
            config["created"] = json!(created);
        }
        let config = self.blob(config.to_string().as_bytes(), CONFIG);
        let mut manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "config": config, "layers": layers});
        if !spec.annotations.is_null() {
            manifest["annotations"] = spec.annotations.clone();
        }
        let desc = self.blob(manifest.to_string().as_bytes(), MANIFEST);
        let dated = spec
            .created
            .or_else(|| spec.history.last().map(|h| h.0))
            .expect("a date");
        let m = Manifest {
            digest: digest_of(&desc),
            len: size_of(&desc),
            config: Blob {
                digest: digest_of(&config),
                size: size_of(&config),
            },
            layers: layers
                .iter()
                .map(|l| Blob {
                    digest: digest_of(l),
                    size: size_of(l),
                })
                .collect(),
            os: spec.os,
            arch: spec.arch,
            last_updated: dated.trim_end_matches('Z'),
            history: spec.history.iter().map(|h| (h.1, h.2)).collect(),
        };
        (desc, m)
    }

    /// A cosign signature of `signed` in the tag scheme: a simple-signing
    /// payload as the one layer, its signature in an annotation. Answers
    /// the tag (`sha256-<hex>.sig`), already written to `index.json`.
    fn cosign_signature(&mut self, signed: &str, docker_reference: &str) -> String {
        let payload = json!({
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": signed},
                "type": "cosign container image signature"
            },
            "optional": null
        })
        .to_string();
        let mut layer = self.blob(payload.as_bytes(), SIMPLE_SIGNING);
        layer["annotations"] = json!({
            "dev.cosignproject.cosign/signature": "MEUCIQDtest+signature+not+verified+by+these+tests=="
        });
        let config = json!({
            "architecture": "",
            "os": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "rootfs": {"type": "layers", "diff_ids": [digest_of(&layer)]},
            "config": {}
        });
        let config = self.blob(config.to_string().as_bytes(), CONFIG);
        let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "config": config, "layers": [layer]});
        let desc = self.blob(manifest.to_string().as_bytes(), MANIFEST);
        let tag = format!("{}.sig", signed.replacen(':', "-", 1));
        self.tag(&tag, &desc);
        tag
    }

    /// A notation signature of the manifest `subject`: an OCI 1.1 artifact
    /// with the empty config and a JWS envelope as its one layer.
    fn notation_signature(&self, subject: &Value) -> (Value, Referrer) {
        let config = self.blob(b"{}", EMPTY);
        let envelope = json!({"payload": "eyJ0YXJnZXRBcnRpZmFjdCI6e319",
            "protected": "eyJhbGciOiJQUzI1NiJ9", "header": {"x5c": []},
            "signature": "bm90IGEgcmVhbCBzaWduYXR1cmU"});
        let layer = self.blob(envelope.to_string().as_bytes(), "application/jose+json");
        let annotations = BTreeMap::from([
            (
                "io.cncf.notary.x509chain.thumbprint#S256".to_string(),
                r#"["0b7e3c1d"]"#.to_string(),
            ),
            (
                "org.opencontainers.image.created".to_string(),
                "2024-02-02T00:00:00Z".to_string(),
            ),
        ]);
        let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "artifactType": NOTATION, "config": config, "layers": [layer],
            "subject": subject, "annotations": annotations});
        let desc = self.blob(manifest.to_string().as_bytes(), MANIFEST);
        let referrer = Referrer {
            digest: digest_of(&desc),
            media_type: MANIFEST,
            artifact_type: NOTATION,
            size: size_of(&desc),
            annotations,
        };
        (desc, referrer)
    }
}

/// `skopeo copy` from the layouts to the registry under test.
struct Pusher {
    policy: PathBuf,
    addr: String,
    creds: Option<String>,
}

impl Pusher {
    /// Copies `layout:tag` to `addr/dest` (`repo:tag` or `repo@digest`),
    /// every platform of an index when `all`.
    fn copy(&self, layout: &Layout, tag: &str, dest: &str, all: bool) {
        let mut c = Command::new("skopeo");
        c.arg("--policy")
            .arg(&self.policy)
            .args(["copy", "--dest-tls-verify=false"]);
        if all {
            c.arg("--all");
        }
        if let Some(creds) = &self.creds {
            c.args(["--dest-creds", creds]);
        }
        let out = c
            .arg(format!("oci:{}:{tag}", layout.dir.display()))
            .arg(format!("docker://{}/{dest}", self.addr))
            .output()
            .expect("skopeo is required (the README's test command installs it)");
        assert!(
            out.status.success(),
            "skopeo copy to {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

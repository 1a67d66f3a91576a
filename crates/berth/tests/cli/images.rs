//! Content pushed into any registry over HTTP with `berth_client`, for
//! the sync tests: OCI and Docker schema 2 images, a large layer, a
//! multi-platform index, a cosign signature tag, an OCI 1.1 referrer.
//!
//! Every helper panics with the registry's answer when a push fails. The
//! same arguments give the same bytes, so the same digests.

use std::future::Future;

use berth_client::Client;
use berth_oci::Digest;
use bytes::Bytes;
use serde_json::{Value, json};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// An image manifest as pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: &'static str,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The config blob.
    pub config: Digest,
    /// The layer blobs: digest and size.
    pub layers: Vec<(Digest, u64)>,
}

/// Runs `future` to its end on the tests' shared runtime: the helpers
/// from a plain `#[test]` (not from inside an async one). One runtime for
/// every call, so a client's pooled connections outlive each call.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    });
    RUNTIME.block_on(future)
}

/// Pushes `data` as a blob of `repo`; answers its digest.
pub async fn push_blob(client: &Client, repo: &str, data: impl Into<Bytes>) -> Digest {
    let data = data.into();
    let digest = Digest::sha256(&data);
    client
        .push_blob_monolithic(repo, data, &digest)
        .await
        .unwrap_or_else(|e| panic!("push blob {digest} to {repo}: {e}"));
    digest
}

/// Pushes a manifest under `reference` (a tag; `""` pushes it by its
/// digest); answers its digest.
pub async fn push_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    media_type: &str,
    manifest: &Value,
) -> Digest {
    let body = Bytes::from(manifest.to_string());
    let digest = Digest::sha256(&body);
    let reference = if reference.is_empty() {
        digest.to_string()
    } else {
        reference.to_string()
    };
    client
        .put_manifest(repo, &reference, media_type, body)
        .await
        .unwrap_or_else(|e| panic!("push manifest {repo}:{reference}: {e}"))
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
}

/// The two families of image manifest media types.
#[derive(Clone, Copy)]
enum Schema {
    Oci,
    Docker,
}

impl Schema {
    fn manifest(self) -> &'static str {
        match self {
            Self::Oci => OCI_MANIFEST,
            Self::Docker => DOCKER_MANIFEST,
        }
    }
    fn config(self) -> &'static str {
        match self {
            Self::Oci => OCI_CONFIG,
            Self::Docker => DOCKER_CONFIG,
        }
    }
    fn layer(self) -> &'static str {
        match self {
            Self::Oci => OCI_LAYER,
            Self::Docker => DOCKER_LAYER,
        }
    }
}

/// Pushes the layers (already in the registry when `pushed` has them), a
/// config for `platform` (os, architecture, variant) naming them, and the
/// manifest under `tag`.
async fn push_image_of(
    client: &Client,
    repo: &str,
    tag: &str,
    schema: Schema,
    platform: (&str, &str, Option<&str>),
    layers: Vec<(Digest, u64)>,
) -> Pushed {
    let (os, arch, variant) = platform;
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "config": {},
        // Uncompressed layers: their digests are their diff_ids.
        "rootfs": {"type": "layers",
                   "diff_ids": layers.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>()},
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config_bytes = Bytes::from(config.to_string());
    let config_size = config_bytes.len() as u64;
    let config_digest = push_blob(client, repo, config_bytes).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": schema.manifest(),
        "config": descriptor(schema.config(), &config_digest, config_size),
        "layers": layers.iter().map(|(d, s)| descriptor(schema.layer(), d, *s)).collect::<Vec<_>>(),
    });
    let size = manifest.to_string().len() as u64;
    let digest = push_manifest(client, repo, tag, schema.manifest(), &manifest).await;
    Pushed {
        digest,
        media_type: schema.manifest(),
        size,
        config: config_digest,
        layers,
    }
}

async fn push_layers(client: &Client, repo: &str, layers: &[&[u8]]) -> Vec<(Digest, u64)> {
    let mut out = Vec::new();
    for layer in layers {
        let digest = push_blob(client, repo, Bytes::copy_from_slice(layer)).await;
        out.push((digest, layer.len() as u64));
    }
    out
}

/// Pushes an OCI image (linux/amd64) whose layers are `layers`, as given
/// (`support::layer` makes a real tar.gz), under `tag` (`""`: by digest).
pub async fn push_image(client: &Client, repo: &str, tag: &str, layers: &[&[u8]]) -> Pushed {
    let layers = push_layers(client, repo, layers).await;
    push_image_of(
        client,
        repo,
        tag,
        Schema::Oci,
        ("linux", "amd64", None),
        layers,
    )
    .await
}

/// [`push_image`] with Docker schema 2 media types
/// (`application/vnd.docker.distribution.manifest.v2+json`).
pub async fn push_docker_image(client: &Client, repo: &str, tag: &str, layers: &[&[u8]]) -> Pushed {
    let layers = push_layers(client, repo, layers).await;
    push_image_of(
        client,
        repo,
        tag,
        Schema::Docker,
        ("linux", "amd64", None),
        layers,
    )
    .await
}

/// An uncompressed tar of `size` bytes (rounded up to a multiple of 512,
/// and at least 2048): one file of pseudo-random bytes (incompressible),
/// seeded by `seed`. Built in place: the only copy there is.
pub fn random_tar(seed: &str, size: u64) -> Vec<u8> {
    let size = size.max(2048).div_ceil(512) * 512;
    let data_len = size - 512 - 1024;
    let mut header = tar::Header::new_ustar();
    header.set_path("random.bin").expect("tar path");
    header.set_size(data_len);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(header.as_bytes());
    // xorshift64*, seeded by the seed's digest.
    let seed_digest = Digest::sha256(seed.as_bytes());
    let mut x = u64::from_str_radix(&seed_digest.hex()[..16], 16).expect("hex") | 1;
    let mut left = data_len as usize;
    while left > 0 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let n = left.min(8);
        out.extend_from_slice(&word[..n]);
        left -= n;
    }
    out.resize(size as usize, 0);
    out
}

/// Pushes an OCI image with one large layer: a [`random_tar`] of `size`
/// bytes seeded by the repository, tag and size (so another tag gets
/// another layer). The layer is in memory once while it is pushed.
pub async fn push_random_layer_image(client: &Client, repo: &str, tag: &str, size: u64) -> Pushed {
    let layer = Bytes::from(random_tar(&format!("{repo}:{tag}:{size}"), size));
    let len = layer.len() as u64;
    let digest = push_blob(client, repo, layer).await;
    push_image_of(
        client,
        repo,
        tag,
        Schema::Oci,
        ("linux", "amd64", None),
        vec![(digest, len)],
    )
    .await
}

/// Pushes one small image per platform, `(os, architecture, variant)`
/// (by digest), and an OCI index of them under `tag`; answers the index's
/// digest and the images', in the order of `platforms`.
pub async fn push_multiarch_index(
    client: &Client,
    repo: &str,
    tag: &str,
    platforms: &[(&str, &str, Option<&str>)],
) -> (Digest, Vec<Digest>) {
    let mut descriptors = Vec::new();
    let mut children = Vec::new();
    for &(os, arch, variant) in platforms {
        let name = format!("{os}/{arch}/{}", variant.unwrap_or(""));
        let content = format!("{repo}:{tag} {name}");
        let layers = push_layers(client, repo, &[content.as_bytes()]).await;
        let image = push_image_of(client, repo, "", Schema::Oci, (os, arch, variant), layers).await;
        let mut d = descriptor(OCI_MANIFEST, &image.digest, image.size);
        d["platform"] = json!({"architecture": arch, "os": os});
        if let Some(v) = variant {
            d["platform"]["variant"] = json!(v);
        }
        descriptors.push(d);
        children.push(image.digest);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors});
    let digest = push_manifest(client, repo, tag, OCI_INDEX, &index).await;
    (digest, children)
}

/// The media type and size of the manifest `digest` in `repo`.
async fn manifest_target(client: &Client, repo: &str, digest: &Digest) -> (String, u64) {
    let (body, _) = client
        .get_manifest(repo, &digest.to_string())
        .await
        .unwrap_or_else(|e| panic!("get manifest {repo}@{digest}: {e}"));
    let value: Value = serde_json::from_slice(&body).expect("manifest json");
    let media_type = value["mediaType"]
        .as_str()
        .unwrap_or(OCI_MANIFEST)
        .to_string();
    (media_type, body.len() as u64)
}

/// Pushes a cosign simple-signing signature of the image `image` under
/// cosign's tag `sha256-<hex>.sig`, signed with a fresh ECDSA P-256 key;
/// answers the signature manifest's digest.
pub async fn push_cosign_signature_tag(client: &Client, repo: &str, image: &Digest) -> Digest {
    let key = berth_trust::sign::SigningKey::generate(berth_trust::sign::KeyAlgorithm::EcdsaP256)
        .expect("key");
    push_cosign_signature_tag_with_key(client, repo, image, &key).await
}

/// [`push_cosign_signature_tag`] signed with `key` (a real signature:
/// the trust extension verifies it with the key's public half).
pub async fn push_cosign_signature_tag_with_key(
    client: &Client,
    repo: &str,
    image: &Digest,
    key: &berth_trust::sign::SigningKey,
) -> Digest {
    use berth_trust::sign::{SigningTarget, cosign_simple_signing};
    let (media_type, size) = manifest_target(client, repo, image).await;
    let target = SigningTarget {
        digest: image.to_string(),
        media_type,
        size,
    };
    let host = client.base().split("://").nth(1).unwrap_or(client.base());
    let signature =
        cosign_simple_signing(key, &target, &format!("{host}/{repo}")).expect("cosign sign");
    for blob in &signature.tagged.blobs {
        push_blob(client, repo, blob.bytes.clone()).await;
    }
    client
        .put_manifest(
            repo,
            &signature.tag,
            &signature.tagged.manifest.media_type,
            Bytes::from(signature.tagged.manifest.bytes.clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("push {repo}:{}: {e}", signature.tag))
}

/// Pushes an OCI 1.1 artifact whose `subject` is the manifest `subject`:
/// an image manifest with `artifactType`, the empty config, and one small
/// layer (its content names the subject and type, so each pair gives its
/// own artifact); pushed by digest, which it answers.
pub async fn push_referrer(
    client: &Client,
    repo: &str,
    subject: &Digest,
    artifact_type: &str,
) -> Digest {
    let (media_type, size) = manifest_target(client, repo, subject).await;
    let empty = push_blob(client, repo, Bytes::from_static(b"{}")).await;
    let content = format!("{artifact_type} for {subject}");
    let layer = push_blob(client, repo, Bytes::from(content.clone())).await;
    let subject_descriptor = descriptor(&media_type, subject, size);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": empty.to_string(), "size": 2, "data": "e30="},
        "layers": [descriptor("application/octet-stream", &layer, content.len() as u64)],
        "subject": subject_descriptor,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    });
    push_manifest(client, repo, "", OCI_MANIFEST, &manifest).await
}

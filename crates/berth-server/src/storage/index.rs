//! The `index.json` of an OCI layout, with tags as
//! `org.opencontainers.image.ref.name` annotations.

use berth_oci::Digest;
use berth_oci::manifest::Descriptor;
use berth_oci::media::{OCI_INDEX, REF_NAME_ANNOTATION};
use serde::{Deserialize, Serialize};

/// An image layout's index. Unknown fields are kept so a layout written by
/// another tool round-trips.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for OciIndex {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// The tag of an index entry, if it has one.
pub fn tag_of(d: &Descriptor) -> Option<&str> {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

impl OciIndex {
    /// The entry tagged `tag`.
    pub fn find_tag(&self, tag: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| tag_of(d) == Some(tag))
    }

    /// Some entry for `digest`, tagged or not.
    pub fn find_digest(&self, digest: &Digest) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| &d.digest == digest)
    }

    /// All tags, sorted and without duplicates.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .manifests
            .iter()
            .filter_map(tag_of)
            .map(str::to_string)
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// Points `tag` at `desc`. The entry the tag leaves keeps its manifest
    /// reachable by digest as an untagged entry if nothing else names it;
    /// an untagged entry for `desc` is folded into the tagged one.
    pub fn set_tag(&mut self, desc: Descriptor, tag: &str) {
        self.remove_tag(tag);
        self.manifests
            .retain(|d| !(d.digest == desc.digest && tag_of(d).is_none()));
        let mut desc = desc;
        desc.annotations
            .get_or_insert_with(Default::default)
            .insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
        self.manifests.push(desc);
    }

    /// Records a manifest pushed by digest, unless some entry has it already.
    pub fn add_untagged(&mut self, desc: Descriptor) {
        if self.find_digest(&desc.digest).is_none() {
            self.manifests.push(desc);
        }
    }

    /// Removes a tag; its manifest stays reachable by digest. Returns
    /// whether the tag existed.
    pub fn remove_tag(&mut self, tag: &str) -> bool {
        let Some(pos) = self.manifests.iter().position(|d| tag_of(d) == Some(tag)) else {
            return false;
        };
        let mut old = self.manifests.remove(pos);
        if self.find_digest(&old.digest).is_none() {
            if let Some(a) = old.annotations.as_mut() {
                a.remove(REF_NAME_ANNOTATION);
                if a.is_empty() {
                    old.annotations = None;
                }
            }
            self.manifests.push(old);
        }
        true
    }

    /// Removes every entry for `digest` (its tags too). Returns whether any
    /// existed.
    pub fn remove_digest(&mut self, digest: &Digest) -> bool {
        let before = self.manifests.len();
        self.manifests.retain(|d| &d.digest != digest);
        self.manifests.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: berth_oci::media::OCI_MANIFEST.into(),
            digest: Digest::sha256(data),
            size: data.len() as u64,
            artifact_type: None,
            annotations: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn tags_move_and_digests_stay_reachable() {
        let mut idx = OciIndex::default();
        idx.add_untagged(desc(b"a"));
        idx.set_tag(desc(b"a"), "v1");
        assert_eq!(idx.manifests.len(), 1, "untagged entry folded into the tag");
        idx.set_tag(desc(b"b"), "v1");
        assert_eq!(
            idx.find_tag("v1").map(|d| d.digest.clone()),
            Some(Digest::sha256(b"b"))
        );
        assert!(
            idx.find_digest(&Digest::sha256(b"a")).is_some(),
            "old manifest kept untagged"
        );
        idx.set_tag(desc(b"b"), "v2");
        assert_eq!(idx.tags(), vec!["v1", "v2"]);
        assert!(idx.remove_tag("v1"));
        assert!(!idx.remove_tag("v1"));
        assert!(idx.remove_digest(&Digest::sha256(b"b")));
        assert!(idx.tags().is_empty());
        assert_eq!(idx.manifests.len(), 1);
    }

    #[test]
    fn keeps_unknown_fields() {
        let text = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"platform":{"os":"linux"}}],"x-extra":1}"#;
        let idx: OciIndex = serde_json::from_str(text).expect("parse");
        let out = serde_json::to_value(&idx).expect("serialize");
        assert_eq!(out["x-extra"], 1);
        assert_eq!(out["manifests"][0]["platform"]["os"], "linux");
    }
}

//! The `index.json` of an OCI layout, with tags as
//! `org.opencontainers.image.ref.name` annotations.

use std::collections::HashMap;
use std::sync::OnceLock;

use berth_oci::Digest;
use berth_oci::manifest::Descriptor;
use berth_oci::media::{OCI_INDEX, REF_NAME_ANNOTATION};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// An image layout's index. Unknown fields are kept so a layout written by
/// another tool round-trips.
///
/// Each entry keeps its own JSON once it has been written
/// ([`OciIndex::to_json`]), so writing the index again after a push
/// serializes only the entries that push added, not the thousands already
/// there: the file is still rewritten whole (O(entries) bytes copied), but
/// no longer re-escaped string by string. The entries are private so that
/// every change goes through a method that drops the JSON of what it
/// changed.
///
/// A push also does not scan the entries for its tag and digest: the
/// index keeps where each tag is and how many entries each digest has
/// (`Lookup`), built on the first change after a parse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Entry>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    lookup: Lookup,
}

/// Where the tags and digests of an index's entries are.
#[derive(Debug, Clone, Default)]
enum Lookup {
    /// Not built since the index was parsed, or since a change it could
    /// not follow (entries removed by [`OciIndex::retain`], an entry with
    /// the tag that made it `Scan` removed).
    #[default]
    Unbuilt,
    /// This tag is on two entries (a file written by another tool): the
    /// entries are searched one by one, as they are without a lookup,
    /// until an entry with the tag is removed.
    Scan(String),
    Built(Maps),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Maps {
    /// tag → position of its entry.
    tags: HashMap<String, usize>,
    /// digest → how many entries have it (never 0).
    digests: HashMap<Digest, usize>,
}

/// A tag found on two entries: the lookup then searches entry by entry.
#[derive(Debug, Clone, PartialEq)]
struct DoubledTag(String);

impl Maps {
    /// The maps of `entries`, or the tag that is on two of them.
    fn of(entries: &[Entry]) -> Result<Self, DoubledTag> {
        let mut maps = Maps::default();
        for (pos, e) in entries.iter().enumerate() {
            if !maps.add(&e.desc, pos) {
                return Err(DoubledTag(tag_of(&e.desc).unwrap_or_default().to_string()));
            }
        }
        Ok(maps)
    }

    /// Counts `desc` in at `pos`; false if its tag is on another entry.
    fn add(&mut self, desc: &Descriptor, pos: usize) -> bool {
        *self.digests.entry(desc.digest.clone()).or_insert(0) += 1;
        match tag_of(desc) {
            Some(tag) => self.tags.insert(tag.to_string(), pos).is_none(),
            None => true,
        }
    }

    /// Counts `desc` out from `pos`; the entries after it move up one.
    fn remove(&mut self, desc: &Descriptor, pos: usize) {
        if let Some(n) = self.digests.get_mut(&desc.digest) {
            *n -= 1;
            if *n == 0 {
                self.digests.remove(&desc.digest);
            }
        }
        if let Some(tag) = tag_of(desc) {
            self.tags.remove(tag);
        }
        for p in self.tags.values_mut() {
            if *p > pos {
                *p -= 1;
            }
        }
    }
}

/// A descriptor and, once made, its JSON.
#[derive(Debug, Clone)]
struct Entry {
    desc: Descriptor,
    json: OnceLock<Box<RawValue>>,
}

impl Entry {
    fn new(desc: Descriptor) -> Self {
        Self {
            desc,
            json: OnceLock::new(),
        }
    }

    fn json(&self) -> serde_json::Result<&RawValue> {
        if let Some(json) = self.json.get() {
            return Ok(json);
        }
        let made = serde_json::value::to_raw_value(&self.desc)?;
        Ok(self.json.get_or_init(|| made))
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.desc.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Descriptor::deserialize(d).map(Entry::new)
    }
}

/// The index as its derived `Serialize` writes it, with each entry given
/// as the JSON it already has.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson<'a> {
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<&'a str>,
    manifests: Vec<&'a RawValue>,
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

impl Default for OciIndex {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            extra: serde_json::Map::new(),
            lookup: Lookup::Unbuilt,
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
    /// The entries, in file order.
    pub fn manifests(&self) -> impl DoubleEndedIterator<Item = &Descriptor> + ExactSizeIterator {
        self.manifests.iter().map(|e| &e.desc)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.manifests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
    }

    /// The file's bytes: the same as `serde_json::to_vec(self)`, with the
    /// JSON of entries written before reused.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let manifests = self
            .manifests
            .iter()
            .map(Entry::json)
            .collect::<serde_json::Result<Vec<_>>>()?;
        serde_json::to_vec(&IndexJson {
            schema_version: self.schema_version,
            media_type: self.media_type.as_deref(),
            manifests,
            extra: &self.extra,
        })
    }

    /// The entry tagged `tag`.
    pub fn find_tag(&self, tag: &str) -> Option<&Descriptor> {
        if let Lookup::Built(maps) = &self.lookup {
            let at = maps.tags.get(tag)?;
            if let Some(e) = self.manifests.get(*at)
                && tag_of(&e.desc) == Some(tag)
            {
                return Some(&e.desc);
            }
        }
        self.manifests().find(|d| tag_of(d) == Some(tag))
    }

    /// Some entry for `digest`, tagged or not.
    pub fn find_digest(&self, digest: &Digest) -> Option<&Descriptor> {
        if let Lookup::Built(maps) = &self.lookup
            && !maps.digests.contains_key(digest)
        {
            return None;
        }
        self.manifests().find(|d| &d.digest == digest)
    }

    /// All tags, sorted and without duplicates.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .manifests()
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
        if self.has_digest(&desc.digest) {
            self.retain(|d| !(d.digest == desc.digest && tag_of(d).is_none()));
        }
        let mut desc = desc;
        desc.annotations
            .get_or_insert_with(Default::default)
            .insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
        self.push(desc);
    }

    /// Records a manifest pushed by digest, unless some entry has it already.
    pub fn add_untagged(&mut self, desc: Descriptor) {
        if !self.has_digest(&desc.digest) {
            self.push(desc);
        }
    }

    /// Removes a tag; its manifest stays reachable by digest. Returns
    /// whether the tag existed.
    pub fn remove_tag(&mut self, tag: &str) -> bool {
        let Some(pos) = self.tag_position(tag) else {
            return false;
        };
        let mut old = self.remove_at(pos);
        if !self.has_digest(&old.digest) {
            if let Some(a) = old.annotations.as_mut() {
                a.remove(REF_NAME_ANNOTATION);
                if a.is_empty() {
                    old.annotations = None;
                }
            }
            self.push(old);
        }
        true
    }

    /// Removes every entry for `digest` (its tags too). Returns whether any
    /// existed.
    pub fn remove_digest(&mut self, digest: &Digest) -> bool {
        if !self.has_digest(digest) {
            return false;
        }
        self.retain(|d| &d.digest != digest);
        true
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&Descriptor) -> bool) {
        let before = self.manifests.len();
        let twice = match &self.lookup {
            Lookup::Scan(tag) => Some(tag.clone()),
            _ => None,
        };
        let mut twice_removed = false;
        self.manifests.retain(|e| {
            let kept = keep(&e.desc);
            if !kept && twice.is_some() && tag_of(&e.desc) == twice.as_deref() {
                twice_removed = true;
            }
            kept
        });
        let removed = self.manifests.len() != before;
        if (removed && matches!(self.lookup, Lookup::Built(_))) || twice_removed {
            self.lookup = Lookup::Unbuilt;
        }
    }

    /// The lookup, built if it is not; `None` when entries are to be
    /// searched one by one.
    fn maps(&mut self) -> Option<&mut Maps> {
        if matches!(self.lookup, Lookup::Unbuilt) {
            self.lookup =
                Maps::of(&self.manifests).map_or_else(|d| Lookup::Scan(d.0), Lookup::Built);
        }
        match &mut self.lookup {
            Lookup::Built(maps) => Some(maps),
            _ => None,
        }
    }

    fn has_digest(&mut self, digest: &Digest) -> bool {
        match self.maps() {
            Some(maps) => maps.digests.contains_key(digest),
            None => self.manifests().any(|d| &d.digest == digest),
        }
    }

    fn tag_position(&mut self, tag: &str) -> Option<usize> {
        if let Some(maps) = self.maps() {
            let at = *maps.tags.get(tag)?;
            if self
                .manifests
                .get(at)
                .is_some_and(|e| tag_of(&e.desc) == Some(tag))
            {
                return Some(at);
            }
        }
        self.manifests().position(|d| tag_of(d) == Some(tag))
    }

    fn push(&mut self, desc: Descriptor) {
        let pos = self.manifests.len();
        if let Lookup::Built(maps) = &mut self.lookup
            && !maps.add(&desc, pos)
        {
            // A second entry for a tag: built again (as `Scan`) when next
            // needed.
            self.lookup = Lookup::Unbuilt;
        }
        self.manifests.push(Entry::new(desc));
    }

    /// A built lookup is exactly the one built afresh.
    #[cfg(test)]
    fn assert_lookup_exact(&self) {
        if let Lookup::Built(maps) = &self.lookup {
            assert_eq!(Ok(maps), Maps::of(&self.manifests).as_ref());
        }
    }

    fn remove_at(&mut self, pos: usize) -> Descriptor {
        let desc = self.manifests.remove(pos).desc;
        match &mut self.lookup {
            Lookup::Built(maps) => maps.remove(&desc, pos),
            // The tag that was on two entries may be on one now.
            Lookup::Scan(twice) if tag_of(&desc) == Some(twice.as_str()) => {
                self.lookup = Lookup::Unbuilt
            }
            _ => {}
        }
        desc
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
        assert_eq!(idx.len(), 1, "untagged entry folded into the tag");
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
        assert_eq!(idx.len(), 1);
    }

    /// `to_json` must give exactly what serializing afresh gives.
    fn same_as_serde(index: &OciIndex) {
        let ours = index.to_json().expect("to_json");
        let serde = serde_json::to_vec(index).expect("serialize");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&serde)
        );
    }

    #[test]
    fn kept_entry_json_matches_a_fresh_write_through_every_change() {
        let mut idx = OciIndex::default();
        same_as_serde(&idx);
        for i in 0..20 {
            idx.set_tag(desc(format!("m{i}").as_bytes()), &format!("t{i}"));
        }
        idx.add_untagged(desc(b"loose"));
        same_as_serde(&idx);
        // The tag moves: the old manifest stays, untagged.
        idx.set_tag(desc(b"m20"), "t3");
        same_as_serde(&idx);
        // A second tag on one manifest: two entries with one digest.
        idx.set_tag(desc(b"m5"), "again");
        same_as_serde(&idx);
        // The untagged entry is folded into a tag for it.
        idx.set_tag(desc(b"loose"), "found");
        same_as_serde(&idx);
        assert!(idx.remove_tag("t1"));
        assert!(idx.remove_digest(&Digest::sha256(b"m2")));
        idx.retain(|d| d.digest != Digest::sha256(b"m9"));
        same_as_serde(&idx);
        // A copy changes apart from its original.
        let mut copy = idx.clone();
        copy.set_tag(desc(b"copy"), "t4");
        idx.remove_tag("t4");
        same_as_serde(&copy);
        same_as_serde(&idx);
        idx.extra
            .insert("annotations".into(), serde_json::json!({"a": "b\"c"}));
        idx.media_type = None;
        same_as_serde(&idx);
        idx.retain(|_| false);
        same_as_serde(&idx);
    }

    #[test]
    fn kept_entry_json_of_a_parsed_index_keeps_what_berth_does_not_know() {
        let text = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"platform":{"os":"linux"},"annotations":{"note":"tab\there \"quoted\" \u2713","org.opencontainers.image.ref.name":"v1"}}],"x-extra":[1,2]}"#;
        let mut idx: OciIndex = serde_json::from_str(text).expect("parse");
        same_as_serde(&idx);
        idx.set_tag(desc(b"other"), "v2");
        same_as_serde(&idx);
        let back: OciIndex = serde_json::from_slice(&idx.to_json().expect("json")).expect("parse");
        assert_eq!(
            back.manifests().cloned().collect::<Vec<_>>(),
            idx.manifests().cloned().collect::<Vec<_>>()
        );
        assert_eq!(back.extra["x-extra"], serde_json::json!([1, 2]));
        assert_eq!(back.find_tag("v1").map(|d| d.size), Some(0));
    }

    /// The index as a plain list, changed the way `OciIndex` promises:
    /// what the lookup must agree with.
    #[derive(Default)]
    struct Model(Vec<Descriptor>);

    impl Model {
        fn position_of_tag(&self, tag: &str) -> Option<usize> {
            self.0.iter().position(|d| tag_of(d) == Some(tag))
        }

        fn has(&self, digest: &Digest) -> bool {
            self.0.iter().any(|d| &d.digest == digest)
        }

        fn remove_tag(&mut self, tag: &str) -> bool {
            let Some(pos) = self.position_of_tag(tag) else {
                return false;
            };
            let mut old = self.0.remove(pos);
            if !self.has(&old.digest) {
                if let Some(a) = old.annotations.as_mut() {
                    a.remove(REF_NAME_ANNOTATION);
                    if a.is_empty() {
                        old.annotations = None;
                    }
                }
                self.0.push(old);
            }
            true
        }

        fn set_tag(&mut self, mut desc: Descriptor, tag: &str) {
            self.remove_tag(tag);
            self.0
                .retain(|d| !(d.digest == desc.digest && tag_of(d).is_none()));
            desc.annotations
                .get_or_insert_with(Default::default)
                .insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
            self.0.push(desc);
        }
    }

    fn agrees(idx: &OciIndex, model: &Model, tags: &[String], digests: &[Digest]) {
        idx.assert_lookup_exact();
        assert_eq!(idx.manifests().cloned().collect::<Vec<_>>(), model.0);
        for t in tags {
            assert_eq!(
                idx.find_tag(t),
                model.0.iter().find(|d| tag_of(d) == Some(t))
            );
        }
        for d in digests {
            assert_eq!(idx.find_digest(d), model.0.iter().find(|e| &e.digest == d));
        }
        same_as_serde(idx);
    }

    /// Thousands of random changes over a few tags and digests (so they
    /// collide), from an empty index, a parsed one and a parsed one with a
    /// tag on two entries: after each, the index and the model agree.
    #[test]
    fn lookup_agrees_with_a_plain_search_through_random_changes() {
        let tags: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let bodies: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
        let digests: Vec<Digest> = bodies
            .iter()
            .map(|b| Digest::sha256(b.as_bytes()))
            .collect();
        let mut tagged_twice = desc(b"m0");
        tagged_twice.annotations =
            Some([(REF_NAME_ANNOTATION.to_string(), "t1".to_string())].into());
        // With whether a tag starts on two entries.
        let starts = [
            (Vec::new(), false),
            (vec![desc(b"m1"), desc(b"m2")], false),
            (vec![tagged_twice.clone(), desc(b"m3"), tagged_twice], true),
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for (start, twice) in starts {
            let text = serde_json::to_string(&serde_json::json!({
                "schemaVersion": 2,
                "manifests": start,
            }))
            .expect("json");
            let mut idx: OciIndex = serde_json::from_str(&text).expect("parse");
            let mut model = Model(start);
            let (mut built, mut scanned) = (0, 0);
            for _ in 0..3000 {
                let (t, b) = (&tags[next(tags.len())], &bodies[next(bodies.len())]);
                match next(10) {
                    0..=4 => {
                        idx.set_tag(desc(b.as_bytes()), t);
                        model.set_tag(desc(b.as_bytes()), t);
                    }
                    5 | 6 => assert_eq!(idx.remove_tag(t), model.remove_tag(t)),
                    7 => {
                        idx.add_untagged(desc(b.as_bytes()));
                        if !model.has(&desc(b.as_bytes()).digest) {
                            model.0.push(desc(b.as_bytes()));
                        }
                    }
                    8 => {
                        let d = Digest::sha256(b.as_bytes());
                        let had = model.has(&d);
                        model.0.retain(|e| e.digest != d);
                        assert_eq!(idx.remove_digest(&d), had);
                    }
                    _ => {
                        let d = Digest::sha256(b.as_bytes());
                        idx.retain(|e| e.digest != d || tag_of(e).is_some());
                        model.0.retain(|e| e.digest != d || tag_of(e).is_some());
                    }
                }
                agrees(&idx, &model, &tags, &digests);
                built += usize::from(matches!(idx.lookup, Lookup::Built(_)));
                scanned += usize::from(matches!(idx.lookup, Lookup::Scan(_)));
            }
            // Searched one by one only while a tag is on two entries; the
            // lookup comes back once it is not.
            assert_eq!(scanned > 0, twice, "searched after {scanned} changes");
            assert!(built > 1000, "lookup used after {built} changes");
        }
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

//! Checks of the values in a search answer against what was pushed. Each
//! check looks only at the fields the document selected, so one check
//! serves every document; each failure names where it is.
//!
//! The values are zot's: sizes are decimal strings; an image's `Size` is its
//! manifest, config and layers (an index: the sum of its images, not its own
//! bytes); `LastUpdated` is the config's `created`, else its last history
//! entry's; `Description`, `Vendor`, … come from the manifest's OCI
//! annotations, else the config's labels, and are empty ("" or null) when
//! neither has them; signatures are never images, and a signed image lists
//! one `SignatureInfo` per signature, untrusted (no trust store here).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::search_client::same_instant;
use crate::search_data::*;

/// Collected failures, each prefixed with where it was found.
#[derive(Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    pub fn add(&mut self, at: &str, what: String) {
        self.0.push(format!("{at}: {what}"));
    }

    /// Requires `v[key]`, when selected, to equal `want`.
    fn eq(&mut self, at: &str, v: &Value, key: &str, want: Value) {
        if let Some(got) = v.get(key)
            && *got != want
        {
            self.add(at, format!("{key} is {got}, want {want}"));
        }
    }

    /// Requires `v[key]`, when selected, to be the string `want`, or empty
    /// ("" or null) when `want` is `None`.
    fn text(&mut self, at: &str, v: &Value, key: &str, want: Option<&str>) {
        let Some(got) = v.get(key) else { return };
        let ok = match want {
            Some(w) => got.as_str() == Some(w),
            None => got.is_null() || got.as_str() == Some(""),
        };
        if !ok {
            self.add(at, format!("{key} is {got}, want {want:?}"));
        }
    }

    fn time(&mut self, at: &str, v: &Value, key: &str, want: &str) {
        if let Some(got) = v.get(key)
            && !same_instant(got, want)
        {
            self.add(at, format!("{key} is {got}, want {want}Z"));
        }
    }

    pub fn check(&self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn platform_pair(p: &Value) -> (String, String) {
    (
        p["Os"].as_str().unwrap_or("").to_string(),
        p["Arch"].as_str().unwrap_or("").to_string(),
    )
}

/// An ImageSummary against the image it should describe.
pub fn image(f: &mut Failures, at: &str, v: &Value, img: &Image) {
    let at = &format!("{at} ({})", img.name());
    if !v.is_object() {
        f.add(at, format!("not an ImageSummary: {v}"));
        return;
    }
    f.eq(at, v, "RepoName", img.repo.into());
    f.eq(at, v, "Tag", img.tag.into());
    f.eq(at, v, "Digest", img.digest.clone().into());
    f.eq(at, v, "MediaType", img.media_type.into());
    f.eq(at, v, "Size", img.size().to_string().into());
    f.time(at, v, "LastUpdated", img.last_updated());
    f.eq(at, v, "IsSigned", img.is_signed().into());
    for key in [
        "Description",
        "Title",
        "Vendor",
        "Source",
        "Licenses",
        "Documentation",
    ] {
        f.text(at, v, key, img.annotations.get(key).copied());
    }
    f.text(at, v, "Labels", None);
    if let Some(sigs) = v.get("SignatureInfo") {
        signatures(f, at, sigs, img);
    }
    if let Some(vulns) = v.get("Vulnerabilities").filter(|x| !x.is_null()) {
        // No scanner: nothing found.
        if let Some(count) = vulns.get("Count").filter(|c| !c.is_null())
            && count.as_u64() != Some(0)
        {
            f.add(
                at,
                format!("Vulnerabilities.Count is {count} with no scanner"),
            );
        }
    }
    if let Some(refs) = v.get("Referrers") {
        referrers(f, &format!("{at}.Referrers"), refs, &img.referrers);
    }
    if let Some(ms) = v.get("Manifests") {
        let Some(ms) = ms.as_array() else {
            f.add(at, format!("Manifests is not a list: {ms}"));
            return;
        };
        if ms.len() != img.manifests.len() {
            f.add(
                at,
                format!("{} manifests, want {}", ms.len(), img.manifests.len()),
            );
        }
        for (i, m) in ms.iter().enumerate() {
            let digest = m["Digest"].as_str();
            match img
                .manifests
                .iter()
                .find(|e| Some(e.digest.as_str()) == digest)
            {
                Some(e) => manifest(f, &format!("{at}.Manifests[{i}]"), m, e, img),
                None if m.get("Digest").is_some() => f.add(
                    at,
                    format!("Manifests[{i}] has unknown digest {:?}", digest),
                ),
                None => {}
            }
        }
    }
}

/// A ManifestSummary against the manifest it should describe.
pub fn manifest(f: &mut Failures, at: &str, v: &Value, m: &Manifest, img: &Image) {
    f.eq(at, v, "Digest", m.digest.clone().into());
    f.eq(at, v, "ConfigDigest", m.config.digest.clone().into());
    f.eq(at, v, "Size", m.size().to_string().into());
    f.time(at, v, "LastUpdated", m.last_updated);
    // A multi-platform image's manifests are not what was signed.
    let signed = img.is_signed() && img.media_type == MANIFEST;
    f.eq(at, v, "IsSigned", signed.into());
    if let Some(p) = v.get("Platform").filter(|p| !p.is_null()) {
        let want = (m.os.to_string(), m.arch.to_string());
        if platform_pair(p) != want {
            f.add(at, format!("Platform is {p}, want {want:?}"));
        }
    }
    if let Some(t) = v.get("ArtifactType").filter(|t| !t.is_null()) {
        // zot: the manifest's artifactType, else its config's media type.
        if t.as_str() != Some(CONFIG) {
            f.add(at, format!("ArtifactType is {t}, want {CONFIG}"));
        }
    }
    if let Some(layers) = v.get("Layers") {
        let want: Vec<Value> = m.layers.iter().map(|l| layer_summary(l, layers)).collect();
        if layers.as_array() != Some(&want) {
            f.add(at, format!("Layers are {layers}, want {want:?}"));
        }
    }
    if let Some(h) = v.get("History") {
        history(f, &format!("{at}.History"), h, m);
    }
    if let Some(refs) = v.get("Referrers") {
        let want = if signed {
            img.referrers.clone()
        } else {
            vec![]
        };
        referrers(f, &format!("{at}.Referrers"), refs, &want);
    }
}

/// A LayerSummary for `l`, with only the fields the answer selected.
fn layer_summary(l: &Blob, selected: &Value) -> Value {
    let first = selected.get(0).cloned().unwrap_or(Value::Null);
    let mut out = serde_json::Map::new();
    if first.get("Size").is_some() {
        out.insert("Size".into(), l.size.to_string().into());
    }
    if first.get("Digest").is_some() {
        out.insert("Digest".into(), l.digest.clone().into());
    }
    Value::Object(out)
}

/// One entry per history entry, in order; an empty layer has no `Layer`,
/// the others take the manifest's layers in turn.
fn history(f: &mut Failures, at: &str, v: &Value, m: &Manifest) {
    let Some(entries) = v.as_array() else {
        f.add(at, format!("not a list: {v}"));
        return;
    };
    if entries.len() != m.history.len() {
        f.add(
            at,
            format!("{} entries, want {}", entries.len(), m.history.len()),
        );
        return;
    }
    let mut layers = m.layers.iter();
    for (i, (e, (created_by, empty))) in entries.iter().zip(&m.history).enumerate() {
        let at = format!("{at}[{i}]");
        let d = &e["HistoryDescription"];
        if let Some(by) = d.get("CreatedBy")
            && by.as_str() != Some(*created_by)
        {
            f.add(&at, format!("CreatedBy is {by}, want {created_by}"));
        }
        if let Some(el) = d.get("EmptyLayer")
            && el.as_bool().unwrap_or(false) != *empty
        {
            f.add(&at, format!("EmptyLayer is {el}, want {empty}"));
        }
        let want_layer = if *empty { None } else { layers.next() };
        if let Some(layer) = e.get("Layer") {
            match want_layer {
                None if !layer.is_null() => f.add(&at, format!("an empty layer has Layer {layer}")),
                Some(l)
                    if layer["Digest"].as_str() != Some(&l.digest)
                        || layer["Size"].as_str() != Some(&l.size.to_string()) =>
                {
                    f.add(
                        &at,
                        format!("Layer is {layer}, want {} ({})", l.digest, l.size),
                    )
                }
                _ => {}
            }
        }
    }
}

/// SignatureInfo: one untrusted entry per signature pushed, by tool.
fn signatures(f: &mut Failures, at: &str, v: &Value, img: &Image) {
    let Some(sigs) = v.as_array() else {
        f.add(at, format!("SignatureInfo is not a list: {v}"));
        return;
    };
    let mut tools: Vec<&str> = sigs.iter().filter_map(|s| s["Tool"].as_str()).collect();
    tools.sort_unstable();
    if tools != img.signed_by {
        f.add(
            at,
            format!("SignatureInfo tools {tools:?}, want {:?}", img.signed_by),
        );
    }
    for s in sigs {
        if let Some(t) = s.get("IsTrusted")
            && *t != Value::Bool(false)
        {
            f.add(
                at,
                format!("a signature with no trust store has IsTrusted {t}"),
            );
        }
        if let Some(a) = s.get("Author")
            && !(a.is_null() || a.as_str() == Some(""))
        {
            f.add(at, format!("an unverified signature has Author {a}"));
        }
    }
}

/// A list of Referrer against the referrers pushed, in any order.
pub fn referrers(f: &mut Failures, at: &str, v: &Value, want: &[Referrer]) {
    let Some(got) = v.as_array() else {
        f.add(at, format!("not a list: {v}"));
        return;
    };
    if got.len() != want.len() {
        f.add(
            at,
            format!("{} referrers, want {}: {v}", got.len(), want.len()),
        );
        return;
    }
    for r in want {
        let Some(g) = got.iter().find(|g| g["Digest"].as_str() == Some(&r.digest)) else {
            f.add(at, format!("{} is missing: {v}", r.digest));
            continue;
        };
        let at = &format!("{at}[{}]", r.digest);
        f.eq(at, g, "MediaType", r.media_type.into());
        f.eq(at, g, "ArtifactType", r.artifact_type.into());
        f.eq(at, g, "Size", r.size.into());
        if let Some(ann) = g.get("Annotations") {
            let pairs: BTreeSet<(String, String)> = ann
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|kv| {
                            (
                                kv["Key"].as_str().unwrap_or("").to_string(),
                                kv["Value"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let want: BTreeSet<(String, String)> = r.annotations.clone().into_iter().collect();
            if pairs != want {
                f.add(at, format!("Annotations {pairs:?}, want {want:?}"));
            }
        }
    }
}

/// What one user's view adds to a RepoSummary.
#[derive(Clone, Copy, Default)]
pub struct Prefs {
    pub starred: bool,
    pub bookmarked: bool,
    pub stars: u64,
}

/// A RepoSummary against the repository it should describe.
pub fn repo(f: &mut Failures, at: &str, v: &Value, r: &Repo, prefs: Prefs) {
    let at = &format!("{at} ({})", r.name);
    f.eq(at, v, "Name", r.name.into());
    f.eq(at, v, "Size", r.size.to_string().into());
    f.time(at, v, "LastUpdated", r.newest.last_updated());
    f.eq(at, v, "IsStarred", prefs.starred.into());
    f.eq(at, v, "IsBookmarked", prefs.bookmarked.into());
    f.eq(at, v, "StarCount", prefs.stars.into());
    if let Some(ps) = v.get("Platforms") {
        let got: BTreeSet<(String, String)> = ps
            .as_array()
            .map(|a| a.iter().map(platform_pair).collect())
            .unwrap_or_default();
        if got != r.platforms {
            f.add(at, format!("Platforms {got:?}, want {:?}", r.platforms));
        }
    }
    if let (Some(vs), Some(want)) = (v.get("Vendors"), &r.vendors) {
        let got: BTreeSet<&str> = vs
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if got != *want {
            f.add(at, format!("Vendors {got:?}, want {want:?}"));
        }
    }
    if let Some(n) = v.get("NewestImage") {
        // The newest image's fields, with its repository taken as given
        // when the document did not select `RepoName`.
        image(f, &format!("{at}.NewestImage"), n, r.newest);
    }
}

/// The `(RepoName, Tag)` of each ImageSummary in a list.
pub fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    format!(
                        "{}:{}",
                        i["RepoName"].as_str().unwrap_or("?"),
                        i["Tag"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `Name` of each RepoSummary in a list.
pub fn repo_names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["Name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A list of ImageSummary that must be exactly `want`, in order, each one
/// checked against what was pushed.
pub fn image_list(f: &mut Failures, at: &str, list: &Value, ds: &DataSet, want: &[&str]) {
    let got = names(list);
    if got != want {
        f.add(at, format!("images {got:?}, want {want:?}"));
        return;
    }
    for (i, name) in want.iter().enumerate() {
        let (r, t) = name.split_once(':').expect("repo:tag");
        image(f, &format!("{at}[{i}]"), &list[i], ds.image(r, t));
    }
}

/// A list of RepoSummary that must be exactly `want`, in order (or in any
/// order when `ordered` is false), each one checked.
pub fn repo_list(
    f: &mut Failures,
    at: &str,
    list: &Value,
    ds: &DataSet,
    want: &[&str],
    ordered: bool,
    prefs: &dyn Fn(&str) -> Prefs,
) {
    let mut got = repo_names(list);
    let mut expected: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    if !ordered {
        got.sort();
        expected.sort();
    }
    if got != expected {
        f.add(at, format!("repositories {got:?}, want {expected:?}"));
        return;
    }
    for (i, r) in list.as_array().into_iter().flatten().enumerate() {
        let name = r["Name"].as_str().unwrap_or("?");
        repo(f, &format!("{at}[{i}]"), r, &ds.repo(name), prefs(name));
    }
}

/// A `Page` that must count `total` matches of which `items` are shown.
pub fn page(f: &mut Failures, at: &str, p: &Value, total: u64, items: u64) {
    if p["TotalCount"].as_u64() != Some(total) || p["ItemCount"].as_u64() != Some(items) {
        f.add(
            at,
            format!("Page is {p}, want TotalCount {total} ItemCount {items}"),
        );
    }
}

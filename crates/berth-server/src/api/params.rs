//! Query-string parameters.

/// The decoded query string, in order, repeated keys kept.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = query.and_then(serde_urlencoded_pairs).unwrap_or_default();
        Self(pairs)
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn serde_urlencoded_pairs(q: &str) -> Option<Vec<(String, String)>> {
    let uri: http::Uri = format!("/?{q}").parse().ok()?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .ok()
        .map(|axum::extract::Query(v)| v)
}

//! Answers already given: the encoded response to a document, kept while
//! nothing it could depend on changed.
//!
//! An answer depends on the index (the store's write generation), on who
//! asks (their identity and groups, which decide what they may read and
//! what they starred) and on the access rules in force (a hash of their
//! content: a reload may reuse the old rules' memory). All three are in
//! the key, so a hit is
//! always the answer a fresh execution would give. zot's clients send the
//! same few documents over and over (a UI page load, `zli image list`), and
//! a large answer (every image of a 10,000-tag repository) costs far more
//! to resolve than to copy.

use std::time::Duration;

use bytes::Bytes;

use crate::api::authz::Caller;

/// The most memory answers take.
const MAX_BYTES: u64 = 32 << 20;
/// An answer not asked for this long is let go.
const IDLE: Duration = Duration::from_secs(600);

/// The cache of encoded answers.
pub(crate) struct Answers(moka::sync::Cache<String, Bytes>);

impl Default for Answers {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|k: &String, v: &Bytes| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .time_to_idle(IDLE)
                .build(),
        )
    }
}

impl Answers {
    /// The key of a document asked by `caller` at `generation`, or `None`
    /// when the answer must not be kept: an API key limited to some
    /// repositories (its globs are not part of any key).
    pub(crate) fn key(
        generation: u64,
        caller: &Caller,
        query: &str,
        variables: Option<&serde_json::Value>,
        operation: Option<&str>,
    ) -> Option<String> {
        if caller.scopes.is_some() {
            return None;
        }
        // The rules' content, not their address: a reload may put new
        // rules where the old ones were freed.
        let rules = caller.access.as_ref().map(|a| a.fingerprint());
        let variables = variables.map(|v| v.to_string()).unwrap_or_default();
        Some(format!(
            "{generation}\n{rules:?}\n{:?}\n{}\n{variables}\n{query}",
            caller.identity,
            operation.unwrap_or("")
        ))
    }

    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        self.0.get(key)
    }

    pub(crate) fn put(&self, key: String, answer: Bytes) {
        self.0.insert(key, answer);
    }
}

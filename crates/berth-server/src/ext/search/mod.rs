//! zot's search extension: GraphQL over the metadata store, with zot's
//! schema, so zot's CLI (zli) and web UI (zui) work against Berth
//! unchanged; plus the routes those clients read beside it: management
//! (`/v2/_zot/ext/mgmt`, how to log in), user preferences
//! (`/v2/_zot/ext/userprefs`, stars and bookmarks) and the extension list
//! of `/v2/_oci/ext/discover`.
//!
//! - `model`: what search shows of a repository, built from the store;
//! - `index`: every repository's model in memory, refreshed by the
//!   store's write generation and per-repository stamps;
//! - `types`: the schema's types; `query`: its queries; `page`: sorting,
//!   ranking and paging;
//! - `http`: the handlers; `answers`: answers already given, kept while
//!   the store's generation, the caller and the access rules are the same.
//!
//! The GraphQL engine is async-graphql: parsing, validation,
//! introspection (zli checks the schema by introspection) and execution
//! are its; the schema and resolvers are ours.

mod answers;
pub mod cve;
pub(crate) mod http;
mod index;
mod model;
mod page;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

use crate::config::Config;
use crate::meta::MetaStore;

pub(crate) use index::SearchIndex;
pub(crate) use query::QueryData;

/// How often the index is brought in step with the store between
/// queries.
const KEEP_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The deepest query accepted (zli's introspection query is 6 deep).
const MAX_DEPTH: usize = 16;

/// The search extension of one server.
pub struct Search {
    index: SearchIndex,
    schema: Schema<query::Query, EmptyMutation, EmptySubscription>,
    meta: Arc<dyn MetaStore>,
    /// Stars and bookmarks (`extensions.ui` with search, as in zot).
    userprefs: bool,
    /// `/v2/_zot/ext/mgmt`.
    mgmt: bool,
    /// The web UI (`extensions.ui`, feature `ui`), which reads search.
    ui: bool,
    /// What `/v2/_zot/ext/mgmt?resource=config` answers, but for the
    /// access-control part, read per request (it is reloaded).
    mgmt_config: serde_json::Value,
    /// Answers already given (see `answers`).
    answers: answers::Answers,
    /// Where vulnerabilities come from, once scanning is on.
    cve: cve::SharedSource,
    /// The registry, for the quotas in force (they are reloaded).
    registry: Arc<crate::registry::Registry>,
}

impl Search {
    /// The extension for `config`, when `extensions.search` is on.
    pub fn from_config(config: &Config, registry: Arc<crate::registry::Registry>) -> Option<Self> {
        if !config.extensions.search_enabled() {
            return None;
        }
        let meta = registry.meta_shared();
        Some(Self {
            index: SearchIndex::new(meta.clone()),
            schema: schema(),
            meta,
            userprefs: config.extensions.userprefs_enabled(),
            mgmt: config.extensions.mgmt_enabled(),
            ui: config.extensions.ui_enabled() && cfg!(feature = "ui"),
            mgmt_config: http::mgmt_config(config),
            answers: answers::Answers::default(),
            cve: cve::SharedSource::default(),
            registry,
        })
    }

    /// Answers the CVE queries from `source` from now on (set once: the
    /// scanning extension, when `extensions.search.cve` is on).
    pub fn set_cve_source(&self, source: Arc<dyn cve::CveSource>) {
        let _ = self.cve.set(source);
    }

    /// The registry search reads (the web UI reads an image's config
    /// from it, once search has shown the caller the image).
    pub(crate) fn registry(&self) -> &Arc<crate::registry::Registry> {
        &self.registry
    }

    /// Whether `/v2/_zot/ext/userprefs` is served.
    pub fn userprefs(&self) -> bool {
        self.userprefs
    }

    /// Whether users log in with a password here (htpasswd or LDAP), as
    /// management tells zot's web UI: the login page offers the form.
    #[cfg(feature = "ui")]
    pub(crate) fn password_logins(&self) -> bool {
        self.mgmt_config["http"]["auth"].get("htpasswd").is_some()
    }

    /// Whether the web UI is served (`/` and `/ui/...`).
    pub fn ui(&self) -> bool {
        self.ui
    }

    /// Whether `/v2/_zot/ext/mgmt` is served.
    pub fn mgmt(&self) -> bool {
        self.mgmt
    }

    /// Runs the GraphQL `query` (with `variables`, where what a user typed
    /// goes) in-process as `caller`, through the path the HTTP route
    /// takes: the same per-caller filtering and kept answers. Answers the
    /// response (`data` and `errors`); a document that does not validate
    /// is an error (a bug of the page that sent it).
    #[cfg(feature = "ui")]
    pub(crate) async fn query(
        &self,
        caller: &crate::api::authz::Caller,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<serde_json::Value, crate::api::error::ApiError> {
        let doc = http::GraphqlBody {
            query: query.to_string(),
            variables: Some(variables).filter(|v| !v.is_null()),
            operation_name: None,
        };
        let (status, answer) = http::execute(self, caller, doc).await?;
        let value: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| {
            crate::api::error::ApiError::internal(format!("reading an answer: {e}"))
        })?;
        if status != ::http::StatusCode::OK {
            return Err(crate::api::error::ApiError::internal(format!(
                "the query was refused: {}",
                value["errors"]
            )));
        }
        Ok(value)
    }

    /// Builds the index now, so the first query does not wait for it,
    /// then keeps it in step with the store: every second the
    /// store's write generation is read (one cheap read) and, when it
    /// moved, the repositories that changed are rebuilt, so that a page or
    /// query after a burst of pushes (this instance's or another's on a
    /// shared store) seldom waits for them.
    pub async fn keep_index_fresh(&self) {
        if let Err(e) = self.index.snapshot().await {
            tracing::warn!("search: building the index failed (the next query retries): {e}");
        }
        let mut tick = tokio::time::interval(KEEP_FRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.index.snapshot().await {
                tracing::debug!(
                    "search: refreshing the index failed (the next query retries): {e}"
                );
            }
        }
    }
}

/// zot's schema, with our resolvers.
fn schema() -> Schema<query::Query, EmptyMutation, EmptySubscription> {
    Schema::build(query::Query, EmptyMutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .finish()
}

/// The schema in GraphQL's SDL (for the interface test).
#[cfg(test)]
fn sdl() -> String {
    schema().sdl()
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    /// zot's schema as its clients see it, one line per field (with its
    /// arguments, in order, and types with their nullability), taken from
    /// zot's `schema.graphql`.
    const ZOT_INTERFACE: &str = include_str!("../../../tests/fixtures/zot-search-interface.txt");

    fn lines_of(sdl: &str) -> Vec<String> {
        let doc = parse_schema(sdl).expect("the SDL parses");
        let mut out = Vec::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let name = t.node.name.node.to_string();
            match &t.node.kind {
                TypeKind::Scalar
                    if !["String", "Int", "Boolean", "Float", "ID"].contains(&name.as_str()) =>
                {
                    out.push(format!("scalar {name}"));
                }
                TypeKind::Enum(e) => {
                    let values: Vec<String> = e
                        .values
                        .iter()
                        .map(|v| v.node.value.node.to_string())
                        .collect();
                    out.push(format!("enum {name} {}", values.join(" ")));
                }
                TypeKind::Object(o) => {
                    for f in &o.fields {
                        let f = &f.node;
                        let args: Vec<String> = f
                            .arguments
                            .iter()
                            .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                            .collect();
                        let args = if args.is_empty() {
                            String::new()
                        } else {
                            format!("({})", args.join(", "))
                        };
                        out.push(format!("type {name}.{}{args}: {}", f.name.node, f.ty.node));
                    }
                }
                TypeKind::InputObject(i) => {
                    for f in &i.fields {
                        out.push(format!(
                            "input {name}.{}: {}",
                            f.node.name.node, f.node.ty.node
                        ));
                    }
                }
                _ => {}
            }
        }
        out.sort();
        out
    }

    /// What Berth's schema has beyond zot's: a field zot's web UI asks
    /// for (on an image's page) that zot's schema lacks, and quotas.
    const BEYOND_ZOT: &[&str] = &[
        "type ImageSummary.ArtifactType: String",
        // A repository's quota and usage.
        "type RepoSummary.Quota: RepoQuota",
        "type RepoQuota.Rule: String",
        "type RepoQuota.MaxBytes: String",
        "type RepoQuota.UsedBytes: String",
    ];

    #[test]
    fn the_schema_is_zots_type_for_type_and_argument_for_argument() {
        let ours = lines_of(&super::sdl());
        let mut zot: Vec<String> = ZOT_INTERFACE.lines().map(str::to_string).collect();
        zot.extend(BEYOND_ZOT.iter().map(|l| l.to_string()));
        zot.sort();
        let missing: Vec<&String> = zot.iter().filter(|l| !ours.contains(l)).collect();
        let extra: Vec<&String> = ours.iter().filter(|l| !zot.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing from ours: {missing:#?}\nnot in zot's: {extra:#?}"
        );
    }
}

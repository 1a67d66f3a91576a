//! Several storage roots (`storage.subPaths`): a repository whose first
//! name component matches a sub-path lives under that sub-path's own root,
//! with its own settings; every other repository lives under the main root.

use berth_oci::RepoName;

use super::{StorageResult, Store};

/// One root and what it serves.
pub struct Root {
    /// `None` for the main root; `Some("team")` for sub-path `/team`.
    pub prefix: Option<String>,
    pub store: Store,
}

/// The main root and the sub-path roots.
pub struct Roots {
    roots: Vec<Root>,
}

impl Roots {
    /// A single root serving every repository.
    pub fn single(store: Store) -> Self {
        Self {
            roots: vec![Root {
                prefix: None,
                store,
            }],
        }
    }

    /// The main root plus sub-path roots, keyed by their first name
    /// component (without the leading `/`).
    pub fn new(main: Store, sub: Vec<(String, Store)>) -> Self {
        let mut roots = vec![Root {
            prefix: None,
            store: main,
        }];
        roots.extend(sub.into_iter().map(|(p, store)| Root {
            prefix: Some(p),
            store,
        }));
        Self { roots }
    }

    /// Every root, the main one first.
    pub fn all(&self) -> &[Root] {
        &self.roots
    }

    /// The root serving `repo`.
    pub fn root_of(&self, repo: &RepoName) -> &Root {
        let first = repo.components().next().unwrap_or_default();
        self.roots
            .iter()
            .skip(1)
            .find(|r| r.prefix.as_deref() == Some(first))
            .unwrap_or(&self.roots[0])
    }

    /// The store serving `repo`.
    pub fn store(&self, repo: &RepoName) -> &Store {
        &self.root_of(repo).store
    }

    /// The repositories of one root that it serves (a directory under the
    /// main root named like a sub-path is not served from there), sorted.
    pub async fn repos_of(&self, root: &Root) -> StorageResult<Vec<RepoName>> {
        let mut repos = root.store.layout.list_repos().await?;
        repos.retain(|r| std::ptr::eq(self.root_of(r), root));
        Ok(repos)
    }
}

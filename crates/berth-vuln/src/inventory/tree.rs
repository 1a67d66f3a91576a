//! The image's merged file tree, reduced to the files that matter: what
//! each path holds after every layer read so far, with OCI whiteouts
//! applied (`.wh.<name>` deletes a path and what lies under it from the
//! layers below, `.wh..wh..opq` empties a directory of what the layers
//! below put there, and a path written again replaces what was there).
//!
//! A path holds either a package database, kept whole because it is
//! parsed only once the last layer is read, or what a file was already
//! reduced to (the packages a manifest or an executable names, and notes
//! on what could not be read of it). Only databases count towards the
//! bound on what is held in memory; reductions are a few packages each.

use std::collections::BTreeMap;

use crate::Package;

/// What one file was reduced to when it was read.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) packages: Vec<Package>,
    pub(super) notes: Vec<String>,
}

impl Found {
    /// Nothing but a note on the file.
    pub(super) fn note(note: String) -> Self {
        Self {
            packages: Vec::new(),
            notes: vec![note],
        }
    }
}

/// What a path holds.
#[derive(Debug)]
pub(super) enum Content {
    /// A package database or os-release, parsed at the end.
    Database(Vec<u8>),
    /// A file reduced at once.
    Reduced(Found),
}

#[derive(Debug)]
struct Node {
    /// The layer that wrote it: whiteouts reach only lower layers.
    layer: usize,
    content: Content,
}

/// The files that matter, by path (relative, without a leading `/`).
#[derive(Debug, Default)]
pub(super) struct Tree {
    files: BTreeMap<String, Node>,
    /// Bytes of the databases held, for the bound on memory.
    held: u64,
}

impl Tree {
    /// Bytes held in memory by databases.
    pub(super) fn held(&self) -> u64 {
        self.held
    }

    /// Puts `content` at `path`, replacing what was there.
    pub(super) fn insert(&mut self, path: String, layer: usize, content: Content) {
        if let Content::Database(bytes) = &content {
            self.held += bytes.len() as u64;
        }
        let old = self.files.insert(path, Node { layer, content });
        if let Some(old) = old {
            self.release(&old);
        }
    }

    /// A whiteout, or a file written over a directory: removes `path`
    /// and everything under it that lower layers wrote.
    pub(super) fn delete(&mut self, path: &str, layer: usize) {
        self.remove_where(layer, |key| {
            key == path
                || key
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
    }

    /// An opaque whiteout: removes what lower layers wrote under `dir`
    /// (`""` is the root).
    pub(super) fn make_opaque(&mut self, dir: &str, layer: usize) {
        self.remove_where(layer, |key| {
            dir.is_empty()
                || key
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
    }

    /// A directory written at `path`: a file lower layers put there is
    /// gone (what lies under a directory stays).
    pub(super) fn replace_with_directory(&mut self, path: &str, layer: usize) {
        self.remove_where(layer, |key| key == path);
    }

    fn remove_where(&mut self, layer: usize, matches: impl Fn(&str) -> bool) {
        let mut held = self.held;
        self.files.retain(|key, node| {
            let keep = node.layer >= layer || !matches(key);
            if !keep && let Content::Database(bytes) = &node.content {
                held -= bytes.len() as u64;
            }
            keep
        });
        self.held = held;
    }

    fn release(&mut self, node: &Node) {
        if let Content::Database(bytes) = &node.content {
            self.held -= bytes.len() as u64;
        }
    }

    /// The database at `path`, if that is what it holds.
    pub(super) fn database(&self, path: &str) -> Option<&[u8]> {
        match self.files.get(path).map(|node| &node.content) {
            Some(Content::Database(bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// Every path and what it holds, in path order.
    pub(super) fn into_contents(self) -> impl Iterator<Item = (String, Content)> {
        self.files
            .into_iter()
            .map(|(path, node)| (path, node.content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(n: usize) -> Content {
        Content::Database(vec![0; n])
    }

    fn paths(tree: &Tree) -> Vec<&str> {
        tree.files.keys().map(String::as_str).collect()
    }

    #[test]
    fn whiteouts_reach_only_lower_layers_and_whole_subtrees() {
        let mut tree = Tree::default();
        tree.insert("a/b".into(), 0, db(1));
        tree.insert("a/b/c".into(), 0, db(2));
        tree.insert("a/bc".into(), 0, db(4));
        tree.insert("a/b/d".into(), 1, db(8));
        tree.delete("a/b", 1);
        assert_eq!(paths(&tree), ["a/b/d", "a/bc"]);
        assert_eq!(tree.held(), 12);

        tree.make_opaque("a", 2);
        assert!(paths(&tree).is_empty());
        assert_eq!(tree.held(), 0);
    }

    #[test]
    fn rewriting_a_path_replaces_it_and_the_root_can_be_opaque() {
        let mut tree = Tree::default();
        tree.insert("x".into(), 0, db(10));
        tree.insert("x".into(), 1, db(3));
        assert_eq!(tree.held(), 3);
        tree.replace_with_directory("x", 2);
        assert!(tree.database("x").is_none());
        tree.insert("y/z".into(), 2, db(1));
        tree.make_opaque("", 3);
        assert!(paths(&tree).is_empty());
    }
}

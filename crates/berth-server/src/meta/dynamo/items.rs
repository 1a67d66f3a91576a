//! Where each row lives (the table and keys of the layout in the
//! module's documentation), reading an item's attributes, and the writes
//! a transaction is made of.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};

use super::DynamoTables;
use super::client::{DynamoError, DynamoResult, Item, SK, key, n};

/// The partition of the repositories' own items (`#repos`).
pub(super) const REPOS: &str = "#repos";
/// The partition of every repository's pull total.
pub(super) const PULLS: &str = "#pulls";
/// The partition of every repository's star count.
pub(super) const STARS: &str = "#stars";
/// The partitions of the settings, the generation, the epoch, the scan
/// reports and the locks.
pub(super) const SETTING: &str = "#setting";
pub(super) const GENERATION: &str = "#generation";
pub(super) const EPOCH: &str = "#epoch";
pub(super) const SCAN: &str = "#scan";
pub(super) const LOCK: &str = "#lock";
/// The sort key of a partition of one item.
pub(super) const ONLY: &str = "#";
/// Sort key prefixes in a repository's partitions.
pub(super) const TAG: &str = "t#";
pub(super) const LINK: &str = "r#";
pub(super) const MANIFEST: &str = "m#";
pub(super) const PULL: &str = "p#";

/// One item's place: its table and keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Row {
    pub(super) table: String,
    pub(super) pk: String,
    pub(super) sk: String,
}

impl Row {
    fn new(table: &str, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    pub(super) fn head(t: &DynamoTables, repo: &str) -> Self {
        Self::new(&t.repo_meta, REPOS, repo)
    }
    pub(super) fn tag(t: &DynamoTables, repo: &str, tag: &str) -> Self {
        Self::new(&t.repo_meta, repo, format!("{TAG}{tag}"))
    }
    pub(super) fn link(t: &DynamoTables, repo: &str, subject: &str, digest: &str) -> Self {
        Self::new(&t.repo_meta, repo, format!("{LINK}{subject}#{digest}"))
    }
    pub(super) fn pulls_total(t: &DynamoTables, repo: &str) -> Self {
        Self::new(&t.repo_meta, PULLS, repo)
    }
    pub(super) fn stars(t: &DynamoTables, repo: &str) -> Self {
        Self::new(&t.repo_meta, STARS, repo)
    }
    pub(super) fn manifest(t: &DynamoTables, repo: &str, digest: &str) -> Self {
        Self::new(&t.image_meta, repo, format!("{MANIFEST}{digest}"))
    }
    pub(super) fn pull(t: &DynamoTables, repo: &str, digest: &str) -> Self {
        Self::new(&t.image_meta, repo, format!("{PULL}{digest}"))
    }
    pub(super) fn blob(t: &DynamoTables, repo: &str, blob: &str) -> Self {
        Self::new(&t.repo_blobs, repo, blob)
    }
    pub(super) fn listed(t: &DynamoTables, list_pk: &str, repo: &str) -> Self {
        Self::new(&t.user_data, list_pk, repo)
    }
    pub(super) fn setting(t: &DynamoTables, name: &str) -> Self {
        Self::new(&t.version, SETTING, name)
    }
    pub(super) fn generation(t: &DynamoTables) -> Self {
        Self::new(&t.version, GENERATION, ONLY)
    }
    pub(super) fn epoch(t: &DynamoTables) -> Self {
        Self::new(&t.version, EPOCH, ONLY)
    }
    pub(super) fn scan(t: &DynamoTables, digest: &str) -> Self {
        Self::new(&t.cache, SCAN, digest)
    }
    pub(super) fn lock(t: &DynamoTables, name: &str) -> Self {
        Self::new(&t.cache, LOCK, name)
    }

    /// The item's key.
    pub(super) fn key(&self) -> Item {
        key(&self.pk, &self.sk)
    }

    /// The item with these attributes (besides its keys).
    pub(super) fn item(
        &self,
        attrs: impl IntoIterator<Item = (&'static str, AttributeValue)>,
    ) -> Item {
        let mut item = self.key();
        item.extend(attrs.into_iter().map(|(k, v)| (k.to_string(), v)));
        item
    }
}

/// The partition of a user's list (`#starred:{user}`).
pub(super) fn list_pk(list: &str, user: &str) -> String {
    format!("#{list}:{user}")
}

/// A string attribute of `item`.
pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// A number attribute of `item` (`None` if absent or not a `u64`).
pub(super) fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The sort key of an item read.
pub(super) fn sort_key(item: &Item) -> Option<&str> {
    get_s(item, SK)
}

/// A condition with its values.
pub(super) struct Cond<'a> {
    pub(super) expr: &'a str,
    pub(super) values: Vec<(&'a str, AttributeValue)>,
}

/// The attribute names an expression spells `#name` (every attribute is
/// named so, since DynamoDB reserves many short words).
pub(super) fn names(expr: &str) -> Option<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    let mut rest = expr;
    while let Some(at) = rest.find('#') {
        let word: String = rest[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + 1 + word.len()..];
        if !word.is_empty() {
            out.insert(format!("#{word}"), word);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A request part the SDK's builder refused (a required field left out:
/// a bug here, said as such).
pub(super) fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> DynamoResult<T> {
    r.map_err(|e| DynamoError::Invalid(format!("dynamodb request: {e}")))
}

/// Puts `item` into `row`'s table, if `cond` holds.
pub(super) fn put(
    row: &Row,
    item: Item,
    cond: Option<Cond<'_>>,
) -> DynamoResult<TransactWriteItem> {
    let mut p = Put::builder().table_name(&row.table).set_item(Some(item));
    if let Some(c) = cond {
        p = p
            .condition_expression(c.expr)
            .set_expression_attribute_names(names(c.expr));
        for (k, v) in c.values {
            p = p.expression_attribute_values(k, v);
        }
    }
    Ok(TransactWriteItem::builder().put(built(p.build())?).build())
}

/// Deletes `row`, if `cond` holds.
pub(super) fn delete(row: &Row, cond: Option<Cond<'_>>) -> DynamoResult<TransactWriteItem> {
    let mut d = Delete::builder()
        .table_name(&row.table)
        .set_key(Some(row.key()));
    if let Some(c) = cond {
        d = d
            .condition_expression(c.expr)
            .set_expression_attribute_names(names(c.expr));
        for (k, v) in c.values {
            d = d.expression_attribute_values(k, v);
        }
    }
    Ok(TransactWriteItem::builder()
        .delete(built(d.build())?)
        .build())
}

/// Updates `row` by `expr` with `values`, if `cond` holds.
pub(super) fn update(
    row: &Row,
    expr: &str,
    values: Vec<(&str, AttributeValue)>,
    cond: Option<&str>,
) -> DynamoResult<TransactWriteItem> {
    let mut u = Update::builder()
        .table_name(&row.table)
        .set_key(Some(row.key()))
        .update_expression(expr)
        .set_expression_attribute_names(names(&format!("{expr} {}", cond.unwrap_or(""))))
        .set_condition_expression(cond.map(str::to_string));
    for (k, v) in values {
        u = u.expression_attribute_values(k, v);
    }
    Ok(TransactWriteItem::builder()
        .update(built(u.build())?)
        .build())
}

/// A check that `cond` holds on `row`, written nothing.
pub(super) fn check(row: &Row, cond: Cond<'_>) -> DynamoResult<TransactWriteItem> {
    let mut c = ConditionCheck::builder()
        .table_name(&row.table)
        .set_key(Some(row.key()))
        .condition_expression(cond.expr)
        .set_expression_attribute_names(names(cond.expr));
    for (k, v) in cond.values {
        c = c.expression_attribute_values(k, v);
    }
    Ok(TransactWriteItem::builder()
        .condition_check(built(c.build())?)
        .build())
}

/// Adds one to the store's generation.
pub(super) fn bump_generation(t: &DynamoTables) -> DynamoResult<TransactWriteItem> {
    update(
        &Row::generation(t),
        "ADD #n :one",
        vec![(":one", n(1))],
        None,
    )
}

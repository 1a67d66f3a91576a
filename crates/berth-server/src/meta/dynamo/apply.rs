//! [`MetaStore::apply`](crate::meta::MetaStore::apply) on DynamoDB: read
//! what a change touches, work out every item to put or delete (`plan`),
//! then write them all in one transaction conditional on the repository's
//! `rev`, or, past a transaction's limits, in chunks under a commit marker
//! (see the module's documentation for why).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Deserialize;

use super::PENDING_LEASE;
use super::client::{Dynamo, DynamoError, DynamoResult, Item, n, s};
use super::items::{self, Cond, LINK, MANIFEST, Row, TAG, bump_generation, get_n, get_s, sort_key};
use crate::meta::{MetaError, MetaResult, RepoChange, unix_now};

/// How often a write that raced another is tried again before it fails as
/// contended (a 503 to retry).
pub(super) const ATTEMPTS: u32 = 40;
/// DynamoDB's limit of items in one transaction.
const MAX_ITEMS: usize = 100;
/// What one transaction may carry, well under DynamoDB's 4 MB.
const MAX_BYTES: usize = 3 << 20;

/// Waits before try `attempt + 1` of a write that raced another: a
/// doubling pause up to 100 ms, with jitter so racers do not retry in step.
pub(super) async fn pause(attempt: u32) {
    let base = Duration::from_millis(2u64 << attempt.min(6)).min(Duration::from_millis(100));
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    let jitter = Duration::from_micros(random % (base.as_micros() as u64 / 2 + 1));
    tokio::time::sleep(base + jitter).await;
}

/// What a manifest's row counts and links.
#[derive(Debug, Clone, Default, Deserialize)]
struct Refs {
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    layers: Vec<String>,
    #[serde(default)]
    children: Vec<String>,
    #[serde(default)]
    subject: Option<String>,
}

impl Refs {
    /// The distinct blobs referenced.
    fn blobs(&self) -> BTreeSet<&String> {
        self.config
            .iter()
            .chain(&self.layers)
            .chain(&self.children)
            .collect()
    }
}

/// The repository's own item as read: its revision and any large change
/// under way.
struct Head {
    rev: Option<u64>,
    pending: Option<(String, u64)>,
}

/// Every item the change puts (`Some`) or deletes (`None`).
type Plan = BTreeMap<Row, Option<Item>>;

pub(super) async fn apply(db: &Dynamo, repo: &str, change: &RepoChange) -> MetaResult<()> {
    let head_row = Row::head(&db.tables, repo);
    for attempt in 0..ATTEMPTS {
        let item = db.get(&head_row.table, &head_row.pk, &head_row.sk).await?;
        let head = Head {
            rev: item.as_ref().map(|i| get_n(i, "rev").unwrap_or(0)),
            pending: item.as_ref().and_then(|i| {
                Some((
                    get_s(i, "pend")?.to_string(),
                    get_n(i, "pend_at").unwrap_or(0),
                ))
            }),
        };
        if let Some((_, at)) = &head.pending
            && unix_now() < at + PENDING_LEASE.as_secs()
        {
            pause(attempt).await;
            continue;
        }
        let plan = plan(db, repo, change).await?;
        let written = if fits(plan.len() + 2, plan_bytes(&plan)) {
            write_at_once(db, &head_row, &head, plan, change).await
        } else {
            write_in_chunks(db, &head_row, &head, plan, change).await
        };
        match written {
            Ok(()) => return Ok(()),
            Err(DynamoError::Conflict(_)) => pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(MetaError::Contended(format!(
        "{}: a change to {repo} raced other writers too long",
        db.service()
    )))
}

/// The condition on the repository's item that it is as read.
fn unchanged(head: &Head) -> Cond<'static> {
    match (&head.rev, &head.pending) {
        (None, _) => Cond {
            expr: "attribute_not_exists(#sk)",
            values: vec![],
        },
        (Some(rev), None) => Cond {
            expr: "#rev = :rev AND attribute_not_exists(#pend)",
            values: vec![(":rev", n(*rev))],
        },
        // Taking over a claim that lapsed.
        (Some(rev), Some((token, _))) => Cond {
            expr: "#rev = :rev AND #pend = :pend",
            values: vec![(":rev", n(*rev)), (":pend", s(token.clone()))],
        },
    }
}

/// The repository's item once the change is in.
fn committed(row: &Row, head: &Head, change: &RepoChange) -> Item {
    let rev = head.rev.unwrap_or(0) + 1;
    row.item([("v", s(change.version.as_str())), ("rev", n(rev))])
}

async fn write_at_once(
    db: &Dynamo,
    head_row: &Row,
    head: &Head,
    plan: Plan,
    change: &RepoChange,
) -> DynamoResult<()> {
    let mut writes = writes(plan)?;
    writes.push(items::put(
        head_row,
        committed(head_row, head, change),
        Some(unchanged(head)),
    )?);
    writes.push(bump_generation(&db.tables)?);
    db.transact(writes).await
}

/// Claims the repository's item with a token and an empty version, writes
/// the plan in transactions that each check the token, and commits.
async fn write_in_chunks(
    db: &Dynamo,
    head_row: &Row,
    head: &Head,
    plan: Plan,
    change: &RepoChange,
) -> DynamoResult<()> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let claim = head_row.item([
        ("v", s("")),
        ("rev", n(head.rev.unwrap_or(0))),
        ("pend", s(token.clone())),
        ("pend_at", n(unix_now())),
    ]);
    db.transact(vec![items::put(head_row, claim, Some(unchanged(head)))?])
        .await?;
    let mine = || Cond {
        expr: "#pend = :tok",
        values: vec![(":tok", s(token.clone()))],
    };
    let lost = |e: DynamoError| match e {
        DynamoError::Conflict(m) => DynamoError::Failed {
            service: db.service().to_string(),
            message: format!("another writer took over a large change: {m}"),
        },
        e => e,
    };
    for mut chunk in chunk_writes(writes(plan)?, MAX_ITEMS - 1) {
        chunk.push(items::check(head_row, mine())?);
        db.transact(chunk).await.map_err(lost)?;
    }
    let done = items::put(head_row, committed(head_row, head, change), Some(mine()))?;
    db.transact(vec![done, bump_generation(&db.tables)?])
        .await
        .map_err(lost)
}

/// Whether `count` items of `bytes` fit in one transaction.
fn fits(count: usize, bytes: usize) -> bool {
    count <= MAX_ITEMS && bytes <= MAX_BYTES
}

/// About how many bytes an item holds.
fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(k, v)| k.len() + v.as_s().map_or(16, String::len))
        .sum()
}

fn plan_bytes(plan: &Plan) -> usize {
    plan.iter()
        .map(|(r, i)| r.pk.len() + r.sk.len() + i.as_ref().map_or(0, item_bytes))
        .sum()
}

fn writes(plan: Plan) -> DynamoResult<Vec<TransactWriteItem>> {
    plan.into_iter()
        .map(|(row, item)| match item {
            Some(item) => items::put(&row, item, None),
            None => items::delete(&row, None),
        })
        .collect()
}

/// `writes` in transactions of at most `per` items and about
/// [`MAX_BYTES`].
fn chunk_writes(writes: Vec<TransactWriteItem>, per: usize) -> Vec<Vec<TransactWriteItem>> {
    let mut out: Vec<Vec<TransactWriteItem>> = Vec::new();
    let mut bytes = 0;
    for w in writes {
        let size = w.put().map_or(64, |p| item_bytes(p.item()));
        match out.last_mut() {
            Some(last) if last.len() < per && bytes + size <= MAX_BYTES => {
                bytes += size;
                last.push(w);
            }
            _ => {
                bytes = size;
                out.push(vec![w]);
            }
        }
    }
    out
}

/// `writes` in transactions DynamoDB accepts.
pub(super) fn chunks(writes: Vec<TransactWriteItem>) -> Vec<Vec<TransactWriteItem>> {
    chunk_writes(writes, MAX_ITEMS)
}

/// What a recorded manifest item counts and links.
fn refs_of(db: &Dynamo, repo: &str, digest: &str, item: &Item) -> DynamoResult<Refs> {
    get_s(item, "j")
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| db.corrupt(format!("the manifest {digest} of {repo} does not decode")))
}

/// Blob counts as the change leaves them, and which it touched.
struct Tally {
    counts: HashMap<String, u64>,
    touched: BTreeSet<String>,
}

impl Tally {
    fn adjust(&mut self, refs: &Refs, up: bool) {
        for b in refs.blobs() {
            let c = self.counts.entry(b.clone()).or_insert(0);
            *c = if up { *c + 1 } else { c.saturating_sub(1) };
            self.touched.insert(b.clone());
        }
    }
}

/// Reads what `change` touches and works out every item to write, as the
/// Redis store's script does in one go.
async fn plan(db: &Dynamo, repo: &str, change: &RepoChange) -> DynamoResult<Plan> {
    let t = &db.tables;
    let mut plan = Plan::new();
    // The manifests this change removes or overwrites, as they are now
    // (`None`: absent, or gone in a replace).
    let mut rows: HashMap<String, Option<Refs>> = HashMap::new();
    // Tags as they are: tag -> (digest, time).
    let mut tags: BTreeMap<String, (String, Option<u64>)> = BTreeMap::new();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let touched: BTreeSet<&String> = change
        .remove_manifests
        .iter()
        .chain(change.put_manifests.iter().map(|m| &m.digest))
        .collect();
    if change.replace || !change.remove_manifests.is_empty() {
        for item in db.query(&t.repo_meta, repo, TAG).await? {
            let Some(tag) = sort_key(&item).and_then(|k| k.strip_prefix(TAG)) else {
                continue;
            };
            let digest = get_s(&item, "d").unwrap_or_default().to_string();
            tags.insert(tag.to_string(), (digest, get_n(&item, "at")));
        }
    }
    if change.replace {
        // Everything of the repository goes, but its pull statistics.
        for (table, prefix) in [
            (&t.repo_meta, TAG),
            (&t.repo_meta, LINK),
            (&t.image_meta, MANIFEST),
            (&t.repo_blobs, ""),
        ] {
            for item in db.query(table, repo, prefix).await? {
                if let Some(sk) = sort_key(&item) {
                    let row = Row {
                        table: table.clone(),
                        pk: repo.to_string(),
                        sk: sk.to_string(),
                    };
                    plan.insert(row, None);
                }
            }
        }
    } else {
        let keys: Vec<(String, String)> = touched
            .iter()
            .map(|d| (repo.to_string(), format!("{MANIFEST}{d}")))
            .collect();
        for (d, item) in touched.iter().zip(db.get_many(&t.image_meta, &keys).await?) {
            let refs = item.map(|i| refs_of(db, repo, d, &i)).transpose()?;
            rows.insert(d.to_string(), refs);
        }
        let mut blobs: BTreeSet<String> = rows
            .values()
            .flatten()
            .flat_map(|r| r.blobs())
            .cloned()
            .collect();
        for m in &change.put_manifests {
            blobs.extend(m.references().into_iter().cloned());
        }
        let blobs: Vec<String> = blobs.into_iter().collect();
        let keys: Vec<(String, String)> = blobs
            .iter()
            .map(|b| (repo.to_string(), b.clone()))
            .collect();
        for (b, item) in blobs.iter().zip(db.get_many(&t.repo_blobs, &keys).await?) {
            counts.insert(b.clone(), item.and_then(|i| get_n(&i, "n")).unwrap_or(0));
        }
    }
    let before = if change.replace {
        tags.clone()
    } else {
        BTreeMap::new()
    };
    let mut tally = Tally {
        counts,
        touched: BTreeSet::new(),
    };
    // Forgets what `d` counted and linked, and records `now` as what it
    // counts from here on.
    let mut unlink = |plan: &mut Plan, tally: &mut Tally, d: &str, now: Option<Refs>| {
        if let Some(old) = rows.insert(d.to_string(), now).flatten() {
            tally.adjust(&old, false);
            if let Some(subject) = &old.subject {
                plan.insert(Row::link(t, repo, subject, d), None);
            }
        }
    };
    for d in &change.remove_manifests {
        unlink(&mut plan, &mut tally, d, None);
        plan.insert(Row::manifest(t, repo, d), None);
        // A manifest deleted takes its pull history and its tags along.
        plan.insert(Row::pull(t, repo, d), None);
        for (tag, (digest, _)) in &tags {
            if digest == d {
                plan.insert(Row::tag(t, repo, tag), None);
            }
        }
    }
    for m in &change.put_manifests {
        let refs = Refs {
            config: m.config.clone(),
            layers: m.layers.clone(),
            children: m.children.clone(),
            subject: m.subject.clone(),
        };
        unlink(&mut plan, &mut tally, &m.digest, Some(refs.clone()));
        let json = serde_json::to_string(m).map_err(|e| db.corrupt(e))?;
        let row = Row::manifest(t, repo, &m.digest);
        plan.insert(row.clone(), Some(row.item([("j", s(json))])));
        tally.adjust(&refs, true);
        if let Some(subject) = &m.subject {
            let link = Row::link(t, repo, subject, &m.digest);
            plan.insert(link.clone(), Some(link.item([])));
        }
    }
    for tag in &change.remove_tags {
        plan.insert(Row::tag(t, repo, tag), None);
    }
    let now = unix_now();
    for (tag, digest) in &change.set_tags {
        let time = match before.get(tag) {
            Some((was, time)) if was == digest => *time,
            _ => Some(now),
        };
        let row = Row::tag(t, repo, tag);
        let mut attrs = vec![("d", s(digest.clone()))];
        attrs.extend(time.map(|at| ("at", n(at))));
        plan.insert(row.clone(), Some(row.item(attrs)));
    }
    for b in tally.touched {
        let row = Row::blob(t, repo, &b);
        let c = tally.counts.get(&b).copied().unwrap_or(0);
        plan.insert(row.clone(), (c > 0).then(|| row.item([("n", n(c))])));
    }
    Ok(plan)
}

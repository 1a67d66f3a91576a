//! [`Dynamo`]: the one DynamoDB client of a process, which the store and
//! its locks share, with the table names, every call bounded by the
//! command timeout and its failure said as [`DynamoError`] (an unreachable
//! or throttling server is unavailable, a condition not met a conflict);
//! and the tables made at start when missing.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TransactWriteItem,
};
use futures_util::{StreamExt, TryStreamExt};

use super::items::built;
use super::{DynamoOptions, DynamoTables};
use crate::meta::MetaError;

/// One item, as the SDK holds it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The partition key attribute of every table Berth makes.
pub(super) const PK: &str = "pk";
/// The sort key attribute of every table Berth makes.
pub(super) const SK: &str = "sk";
/// How long a table made at start may take to become active.
const TABLE_READY: Duration = Duration::from_secs(60);
/// How many single-item reads run at once for one request.
const PARALLEL_READS: usize = 16;

/// A DynamoDB failure, said as what it means for the caller.
#[derive(Debug, thiserror::Error)]
pub(super) enum DynamoError {
    /// The server could not be reached, did not answer in time, or is
    /// throttling: retry later.
    #[error("{service} is unavailable: {message}")]
    Unavailable { service: String, message: String },
    /// A condition of the write was not met (another writer came first).
    #[error("{0}")]
    Conflict(String),
    /// The server refused the call.
    #[error("{service}: {message}")]
    Failed { service: String, message: String },
    /// An item does not read back as Berth writes it.
    #[error("{service} is corrupt: {message}")]
    Corrupt { service: String, message: String },
    /// A table is missing (deleted under a running store).
    #[error("{service}: {message}")]
    NoTable { service: String, message: String },
    /// A table exists with keys Berth cannot use, or a setting is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl From<DynamoError> for MetaError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::Unavailable { service, message } => {
                MetaError::Unavailable { service, message }
            }
            DynamoError::Conflict(m) => MetaError::Contended(m),
            DynamoError::Failed { service, message }
            | DynamoError::NoTable { service, message } => MetaError::Failed {
                location: service,
                message,
            },
            DynamoError::Corrupt { service, message } => MetaError::Corrupt {
                location: service,
                message,
            },
            DynamoError::Invalid(m) => MetaError::InvalidConfig(m),
        }
    }
}

pub(super) type DynamoResult<T> = Result<T, DynamoError>;

/// The client, the tables and the name of the service in messages.
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub(super) struct Dynamo {
    client: Client,
    pub(super) tables: DynamoTables,
    /// `the metadata store (dynamodb at ENDPOINT)`.
    service: String,
}

impl fmt::Debug for Dynamo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.service)
    }
}

/// An error and its sources on one line (`a: b: c`), each said once.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// A string attribute.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(super) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key of an item.
pub(super) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

impl Dynamo {
    /// A client for `o`'s server (no call is made yet): `o`'s credentials
    /// when it has them, else AWS's chain (the environment, profile files,
    /// web identity, ECS and instance roles), found on the first call.
    pub(super) async fn new(o: &DynamoOptions) -> DynamoResult<Self> {
        let service = match &o.endpoint {
            Some(e) => format!("the metadata store (dynamodb at {e})"),
            None => format!("the metadata store (dynamodb in {})", o.region),
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(o.region.clone()))
            .load()
            .await;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(o.command_timeout)
            .operation_timeout(o.command_timeout)
            .build();
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let (Some(access), Some(secret)) = (&o.access_key, &o.secret_key) {
            config = config.credentials_provider(Credentials::new(
                access,
                secret,
                o.session_token.clone(),
                None,
                "berth",
            ));
        }
        if let Some(e) = &o.endpoint {
            config = config.endpoint_url(e);
        }
        Ok(Self {
            client: Client::from_conf(config.build()),
            tables: o.tables.clone(),
            service,
        })
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The store's name in messages.
    pub(super) fn service(&self) -> &str {
        &self.service
    }

    /// An error of the SDK as what it means.
    pub(super) fn err<E, R>(&self, e: SdkError<E, R>) -> DynamoError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug + 'static,
    {
        let message = describe(&e);
        let unavailable = DynamoError::Unavailable {
            service: self.service.clone(),
            message: message.clone(),
        };
        match &e {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => unavailable,
            SdkError::ServiceError(se) => match se.err().code() {
                Some("ConditionalCheckFailedException" | "TransactionConflictException") => {
                    DynamoError::Conflict(message)
                }
                Some("ResourceNotFoundException") => DynamoError::NoTable {
                    service: self.service.clone(),
                    message,
                },
                Some(
                    "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "ThrottlingException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "LimitExceededException",
                ) => unavailable,
                _ => DynamoError::Failed {
                    service: self.service.clone(),
                    message,
                },
            },
            _ => DynamoError::Failed {
                service: self.service.clone(),
                message,
            },
        }
    }

    /// An item that does not read back as written.
    pub(super) fn corrupt(&self, message: impl fmt::Display) -> DynamoError {
        DynamoError::Corrupt {
            service: self.service.clone(),
            message: message.to_string(),
        }
    }

    /// Reads one item, consistently.
    pub(super) async fn get(&self, table: &str, pk: &str, sk: &str) -> DynamoResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        Ok(out.item)
    }

    /// Reads several items of one table, consistently, a few at a time; in
    /// the order of `keys` (`None` where absent).
    pub(super) async fn get_many(
        &self,
        table: &str,
        keys: &[(String, String)],
    ) -> DynamoResult<Vec<Option<Item>>> {
        futures_util::stream::iter(keys.iter().cloned())
            .map(|(pk, sk)| async move { self.get(table, &pk, &sk).await })
            .buffered(PARALLEL_READS)
            .try_collect()
            .await
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`,
    /// by sort key, consistently (every page).
    pub(super) async fn query(
        &self,
        table: &str,
        pk: &str,
        prefix: &str,
    ) -> DynamoResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start);
            q = if prefix.is_empty() {
                q.key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", PK)
            } else {
                q.key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let page = q.send().await.map_err(|e| self.err(e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Writes `items` in one transaction: all or none. A condition not met,
    /// or another transaction on the same items, is a [`DynamoError::Conflict`].
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> DynamoResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(t)) =
                    e.as_service_error()
                {
                    let codes: Vec<&str> = t
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .filter(|c| *c != "None")
                        .collect();
                    let message = format!("transaction cancelled: {}", codes.join(", "));
                    let raced = codes
                        .iter()
                        .all(|c| matches!(*c, "ConditionalCheckFailed" | "TransactionConflict"));
                    return Err(if raced && !codes.is_empty() {
                        DynamoError::Conflict(message)
                    } else if codes
                        .iter()
                        .any(|c| c.contains("Throughput") || *c == "ThrottlingError")
                    {
                        DynamoError::Unavailable {
                            service: self.service.clone(),
                            message,
                        }
                    } else {
                        DynamoError::Failed {
                            service: self.service.clone(),
                            message,
                        }
                    });
                }
                Err(self.err(e))
            }
        }
    }

    /// Makes every table that is missing (keys `pk` and `sk`, billed per
    /// request) and waits until each is active; a table that exists with
    /// other keys (one zot made) is refused, naming it.
    pub(super) async fn ensure_tables(&self) -> DynamoResult<()> {
        for table in self.tables.distinct() {
            self.ensure_table(table).await?;
        }
        Ok(())
    }

    async fn ensure_table(&self, table: &str) -> DynamoResult<()> {
        let deadline = tokio::time::Instant::now() + TABLE_READY;
        let mut created = false;
        loop {
            match self.client.describe_table().table_name(table).send().await {
                Ok(out) => {
                    let Some(t) = out.table else {
                        return Err(self.corrupt(format!("table {table} has no description")));
                    };
                    self.check_keys(table, t.key_schema())?;
                    if t.table_status() == Some(&TableStatus::Active) {
                        return Ok(());
                    }
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    if !created {
                        self.create_table(table).await?;
                        tracing::info!(table, "created DynamoDB table");
                        created = true;
                        continue;
                    }
                }
                Err(e) => return Err(self.err(e)),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DynamoError::Unavailable {
                    service: self.service.clone(),
                    message: format!("table {table} is not active after {TABLE_READY:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn check_keys(&self, table: &str, schema: &[KeySchemaElement]) -> DynamoResult<()> {
        let has = |name: &str, kind: KeyType| {
            schema
                .iter()
                .any(|k| k.attribute_name() == name && *k.key_type() == kind)
        };
        if schema.len() == 2 && has(PK, KeyType::Hash) && has(SK, KeyType::Range) {
            return Ok(());
        }
        let found: Vec<String> = schema
            .iter()
            .map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str()))
            .collect();
        Err(DynamoError::Invalid(format!(
            "dynamodb table {table} has the keys {}, berth needs pk (HASH) and sk (RANGE): \
             name another table (berth makes it) or delete this one (berth rebuilds its \
             metadata from storage)",
            found.join(", ")
        )))
    }

    async fn create_table(&self, table: &str) -> DynamoResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let made = self
            .client
            .create_table()
            .table_name(table)
            .attribute_definitions(built(attr(PK))?)
            .attribute_definitions(built(attr(SK))?)
            .key_schema(built(key(PK, KeyType::Hash))?)
            .key_schema(built(key(SK, KeyType::Range))?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match made {
            Ok(_) => Ok(()),
            // Another instance made it meanwhile.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.err(e)),
        }
    }
}

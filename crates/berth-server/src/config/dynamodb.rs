//! `storage.cacheDriver` with `name: dynamodb`: zot's keys (`endpoint`,
//! `region`, the `*Tablename` keys and newer zot's `tablenamePrefix`),
//! checked here, apart from the Redis keys beside them in
//! [`CacheDriverConfig`]; and `storage.remoteCache`, zot's "the cache
//! driver is shared".

use super::ConfigError;
use super::drivers::CacheDriverConfig;

impl CacheDriverConfig {
    /// The DynamoDB keys with a value, by zot's name.
    fn dynamodb_keys(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("endpoint", self.endpoint.as_ref()),
            ("region", self.region.as_ref()),
            ("tablenamePrefix", self.tablename_prefix.as_ref()),
            ("cacheTablename", self.cache_tablename.as_ref()),
            ("repoMetaTablename", self.repo_meta_tablename.as_ref()),
            ("imageMetaTablename", self.image_meta_tablename.as_ref()),
            (
                "repoBlobsInfoTablename",
                self.repo_blobs_info_tablename.as_ref(),
            ),
            ("userDataTablename", self.user_data_tablename.as_ref()),
            ("apiKeyTablename", self.api_key_tablename.as_ref()),
            ("versionTablename", self.version_tablename.as_ref()),
            ("tableName", self.table_name.as_ref()),
            ("indexDataTablename", self.index_data_tablename.as_ref()),
            (
                "manifestDataTablename",
                self.manifest_data_tablename.as_ref(),
            ),
        ]
    }

    /// A DynamoDB key set beside `name: redis` is refused by name.
    pub(super) fn refuse_dynamodb_keys(&self, at: &str) -> Result<(), ConfigError> {
        match self.dynamodb_keys().into_iter().find(|(_, v)| v.is_some()) {
            Some((key, _)) => Err(ConfigError::key(
                format!("{at}.{key}"),
                "a dynamodb key, not used by the redis driver",
            )),
            None => Ok(()),
        }
    }

    /// `name: dynamodb`: the feature is built in, no Redis key is set, the
    /// endpoint is a URL and no table name is empty.
    pub(super) fn check_dynamodb(&self, at: &str) -> Result<(), ConfigError> {
        if !cfg!(feature = "dynamodb") {
            return Err(ConfigError::key(
                at,
                "this berth was built without the \"dynamodb\" feature",
            ));
        }
        let redis_keys = [
            ("url", self.url.is_some()),
            ("addr", !self.addr.is_empty()),
            ("keyprefix", self.keyprefix != "berth"),
            ("db", self.db != 0),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("rootDir", self.root_dir.is_some()),
        ];
        if let Some((key, _)) = redis_keys.iter().find(|(_, set)| *set) {
            return Err(ConfigError::key(
                format!("{at}.{key}"),
                "a redis key, not used by the dynamodb driver",
            ));
        }
        // Any of zot's go-redis options: everything but the DynamoDB keys
        // and the shared `commandTimeout` must be as a bare
        // `{"name": "dynamodb"}` leaves it.
        let bare: CacheDriverConfig = serde_json::from_value(serde_json::json!({
            "name": "dynamodb",
            "commandTimeout": format!("{}ms", self.command_timeout.0.as_millis()),
        }))
        .map_err(|e| ConfigError::key(at, e.to_string()))?;
        let mut redis_part = self.clone();
        redis_part.endpoint = None;
        redis_part.region = None;
        redis_part.tablename_prefix = None;
        redis_part.cache_tablename = None;
        redis_part.repo_meta_tablename = None;
        redis_part.image_meta_tablename = None;
        redis_part.repo_blobs_info_tablename = None;
        redis_part.user_data_tablename = None;
        redis_part.api_key_tablename = None;
        redis_part.version_tablename = None;
        redis_part.table_name = None;
        redis_part.index_data_tablename = None;
        redis_part.manifest_data_tablename = None;
        if redis_part != bare {
            return Err(ConfigError::key(
                at,
                "a go-redis option is set, which the dynamodb driver does not use",
            ));
        }
        if self.table_name.is_some() {
            return Err(ConfigError::key(
                format!("{at}.tableName"),
                "zot key not supported by this version of berth (zot's older single table: \
                 name the tables with cacheTablename, repoMetaTablename, … instead)",
            ));
        }
        for (key, set) in [
            ("indexDataTablename", &self.index_data_tablename),
            ("manifestDataTablename", &self.manifest_data_tablename),
        ] {
            if set.is_some() {
                super::note(format!(
                    "{at}.{key}: a table of zot 1.x's metadata, which zot 2 no longer reads; ignored by berth too"
                ));
            }
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ConfigError::key(
                format!("{at}.endpoint"),
                "must be a URL, e.g. \"http://localhost:4566\"",
            ));
        }
        for (key, value) in self.dynamodb_keys() {
            if !matches!(
                key,
                "tablenamePrefix" | "tableName" | "indexDataTablename" | "manifestDataTablename"
            ) && value.is_some_and(|v| v.is_empty())
            {
                return Err(ConfigError::key(format!("{at}.{key}"), "must not be empty"));
            }
        }
        let timeout = self.command_timeout.0;
        if timeout.is_zero() || timeout > std::time::Duration::from_secs(3) {
            return Err(ConfigError::key(
                format!("{at}.commandTimeout"),
                "must be above zero and at most 3s (a third of the lease of the shared locks)",
            ));
        }
        Ok(())
    }

    /// `apiKeyTablename` with API keys on is refused: Berth keeps API keys
    /// in each instance's own file, not in DynamoDB (with API keys off zot
    /// does not use that table either).
    pub(super) fn check_api_keys(&self, api_keys_on: bool) -> Result<(), ConfigError> {
        if api_keys_on && self.api_key_tablename.is_some() {
            return Err(ConfigError::key(
                "storage.cacheDriver.apiKeyTablename",
                "berth keeps API keys in each instance's <rootDirectory>/.berth/apikeys.redb, \
                 not in dynamodb: remove the key (or http.auth.apikey)",
            ));
        }
        Ok(())
    }

    /// The tables zot's keys name: each set one, else zot's default after
    /// `tablenamePrefix`.
    #[cfg(feature = "dynamodb")]
    pub fn dynamo_tables(&self) -> crate::meta::DynamoTables {
        let defaults =
            crate::meta::DynamoTables::with_prefix(self.tablename_prefix.as_deref().unwrap_or(""));
        let pick = |set: &Option<String>, default: String| set.clone().unwrap_or(default);
        crate::meta::DynamoTables {
            cache: pick(&self.cache_tablename, defaults.cache),
            repo_meta: pick(&self.repo_meta_tablename, defaults.repo_meta),
            image_meta: pick(&self.image_meta_tablename, defaults.image_meta),
            repo_blobs: pick(&self.repo_blobs_info_tablename, defaults.repo_blobs),
            user_data: pick(&self.user_data_tablename, defaults.user_data),
            version: pick(&self.version_tablename, defaults.version),
        }
    }
}

/// `storage.remoteCache` (zot: the metadata and dedupe cache live in the
/// shared cache driver): `true` needs a cache driver, which Berth then
/// shares between instances; `false` beside a cache driver would leave the
/// driver unused, so both are refused by name.
pub(super) fn check_remote_cache(
    remote_cache: Option<bool>,
    driver: Option<&CacheDriverConfig>,
) -> Result<(), ConfigError> {
    match (remote_cache, driver) {
        (Some(true), None) => Err(ConfigError::key(
            "storage.remoteCache",
            "true needs a storage.cacheDriver (redis or dynamodb) to share",
        )),
        (Some(false), Some(d)) => Err(ConfigError::key(
            "storage.remoteCache",
            format!(
                "false keeps metadata in each instance's own file, which leaves \
                 storage.cacheDriver ({}) unused: remove one of them",
                d.name
            ),
        )),
        _ => Ok(()),
    }
}

/// A sub-path's `remoteCache`: in zot, where that root's dedupe cache
/// lives (its metadata is always the main root's). Berth keeps a root's
/// dedupe records in its storage itself (hard links on disk, links in a
/// bucket) and every root's metadata in the main store, so there is no
/// per-root cache to place: a value other than the main root's is accepted
/// and said in the log (`shared`: the main root has a cache driver).
pub(super) fn check_sub_path_remote_cache(key: &str, remote_cache: Option<bool>, shared: bool) {
    if let Some(v) = remote_cache
        && v != shared
    {
        super::note(format!(
            "{key}: {v}, but berth keeps this root's dedupe records in its storage and its metadata in the main root's store ({}); nothing else to place",
            if shared { "remote" } else { "local" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Config;

    fn refused(storage: serde_json::Value) -> String {
        let mut config = json!({"storage": storage});
        config["storage"]["rootDirectory"] = json!("/x");
        Config::from_value(config)
            .expect_err("should be refused")
            .to_string()
    }

    #[cfg(all(feature = "dynamodb", feature = "s3"))]
    #[test]
    fn zots_dynamodb_example_is_accepted_with_its_table_names() {
        // zot's `examples/config-dynamodb.json`, its storage as zot has it.
        let zots = json!({
            "rootDirectory": "/tmp/zot",
            "dedupe": true,
            "remoteCache": true,
            "storageDriver": {"name": "s3", "rootdirectory": "/zot", "region": "us-east-2",
                "regionendpoint": "localhost:4566", "bucket": "zot-storage", "secure": false,
                "skipverify": false},
            "cacheDriver": {"name": "dynamodb", "endpoint": "http://localhost:4566",
                "region": "us-east-2", "cacheTablename": "ZotBlobTable",
                "repoMetaTablename": "ZotRepoMetadataTable",
                "imageMetaTablename": "ZotImageMetaTable",
                "repoBlobsInfoTablename": "ZotRepoBlobsInfoTable",
                "userDataTablename": "ZotUserDataTable", "versionTablename": "ZotVersion"}
        });
        let c = Config::from_value(json!({"storage": zots})).expect("valid");
        assert_eq!(c.storage.remote_cache, Some(true));
        let d = c.storage.cache_driver.as_ref().expect("driver");
        let t = d.dynamo_tables();
        assert_eq!(
            [
                t.cache,
                t.repo_meta,
                t.image_meta,
                t.repo_blobs,
                t.user_data,
                t.version
            ],
            [
                "ZotBlobTable",
                "ZotRepoMetadataTable",
                "ZotImageMetaTable",
                "ZotRepoBlobsInfoTable",
                "ZotUserDataTable",
                "ZotVersion"
            ]
        );
        // zot's keys in lower case (viper), and newer zot's prefix for the
        // names left out.
        let c = Config::from_value(json!({"storage": {"rootDirectory": "/x",
            "remotecache": true,
            "cacheDriver": {"name": "dynamodb", "region": "eu-west-1",
                "tablenameprefix": "Prod", "versiontablename": "V"}}}))
        .expect("valid");
        let t = c
            .storage
            .cache_driver
            .as_ref()
            .expect("driver")
            .dynamo_tables();
        assert_eq!(
            (t.cache.as_str(), t.image_meta.as_str(), t.version.as_str()),
            ("ProdBlobTable", "ProdImageMetaTable", "V")
        );
        // zot's gc-stress configs still name zot 1.x's tables, which zot 2
        // ignores: accepted (with a warning), no effect.
        let c = Config::from_value(json!({"storage": {"rootDirectory": "/x",
            "cacheDriver": {"name": "dynamodb", "region": "us-east-2",
                "cacheTablename": "BlobTable", "indexDataTablename": "IndexDataTable",
                "manifestDataTablename": "ManifestDataTable"}}}))
        .expect("valid");
        let t = c
            .storage
            .cache_driver
            .as_ref()
            .expect("driver")
            .dynamo_tables();
        assert_eq!(t.cache, "BlobTable");
        assert!(
            refused(json!({"cacheDriver": {"name": "redis", "url": "redis://h",
            "indexDataTablename": "I"}}))
            .contains("storage.cacheDriver.indexDataTablename: a dynamodb key")
        );
    }

    #[cfg(feature = "dynamodb")]
    #[test]
    fn dynamodb_keys_are_refused_where_they_do_not_belong() {
        let cases = [
            (
                json!({"cacheDriver": {"name": "dynamodb", "url": "redis://h"}}),
                "storage.cacheDriver.url: a redis key, not used by the dynamodb driver",
            ),
            (
                json!({"cacheDriver": {"name": "dynamodb", "pool_size": 10}}),
                "storage.cacheDriver: a go-redis option is set",
            ),
            (
                json!({"cacheDriver": {"name": "redis", "url": "redis://h", "cacheTablename": "T"}}),
                "storage.cacheDriver.cacheTablename: a dynamodb key, not used by the redis driver",
            ),
            (
                json!({"cacheDriver": {"name": "dynamodb", "endpoint": "localhost:4566"}}),
                "storage.cacheDriver.endpoint: must be a URL",
            ),
            (
                json!({"cacheDriver": {"name": "dynamodb", "versionTablename": ""}}),
                "storage.cacheDriver.versionTablename: must not be empty",
            ),
            (
                json!({"cacheDriver": {"name": "dynamodb", "commandTimeout": "10s"}}),
                "storage.cacheDriver.commandTimeout: must be above zero and at most 3s",
            ),
            (
                json!({"cacheDriver": {"name": "dynamodb", "tableName": "T"}}),
                "storage.cacheDriver.tableName: zot key not supported",
            ),
        ];
        for (storage, want) in cases {
            let got = refused(storage);
            assert!(got.starts_with(want), "{got}");
        }
    }

    #[test]
    fn remote_cache_is_refused_where_it_contradicts_the_cache_driver() {
        let got = refused(json!({"remoteCache": true}));
        assert!(
            got.starts_with("storage.remoteCache: true needs a storage.cacheDriver"),
            "{got}"
        );
        // Without a cache driver, false says what Berth does anyway.
        Config::from_value(json!({"storage": {"rootDirectory": "/x", "remoteCache": false}}))
            .expect("valid");
        // A sub-path's own (zot's dedupe cache of that root): accepted,
        // whatever the main root's (zot's config-s3 and config-azure
        // examples).
        Config::from_value(json!({"storage": {"rootDirectory": "/x",
            "subPaths": {"/a": {"rootDirectory": "/y", "remoteCache": true}}}}))
        .expect("valid");
        Config::from_value(json!({"storage": {"rootDirectory": "/x",
            "subPaths": {"/a": {"rootDirectory": "/y", "remoteCache": false}}}}))
        .expect("valid");
        if cfg!(feature = "redis") {
            let got = refused(
                json!({"remoteCache": false, "cacheDriver": {"name": "redis", "url": "redis://h"}}),
            );
            assert!(
                got.starts_with("storage.remoteCache: false keeps metadata in each instance's"),
                "{got}"
            );
        }
    }

    #[cfg(feature = "dynamodb")]
    #[test]
    fn an_api_key_table_is_refused_while_api_keys_are_on() {
        let mut config = json!({"storage": {"rootDirectory": "/x",
            "cacheDriver": {"name": "dynamodb", "apiKeyTablename": "Keys"}}});
        Config::from_value(config.clone()).expect("API keys off: zot uses no such table");
        config["http"] = json!({"auth": {"htpasswd": {"path": "/etc/htpasswd"}, "apikey": true}});
        let got = Config::from_value(config).expect_err("refused").to_string();
        assert!(
            got.starts_with("storage.cacheDriver.apiKeyTablename: berth keeps API keys"),
            "{got}"
        );
    }

    #[cfg(not(feature = "dynamodb"))]
    #[test]
    fn the_dynamodb_driver_needs_its_feature() {
        let got = refused(json!({"cacheDriver": {"name": "dynamodb"}}));
        assert!(
            got.starts_with(
                "storage.cacheDriver: this berth was built without the \"dynamodb\" feature"
            ),
            "{got}"
        );
    }
}

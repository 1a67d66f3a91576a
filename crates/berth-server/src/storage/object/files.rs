//! [`RootFiles`] in a bucket: each file one object under the root's prefix.

use bytes::Bytes;
use object_store::ObjectStore;

use super::BucketStore;
use crate::storage::StorageResult;
use crate::storage::root_files::{RootFiles, check_path};

#[async_trait::async_trait]
impl RootFiles for BucketStore {
    async fn list_files(&self, dir: &str) -> StorageResult<Vec<String>> {
        check_path(dir)?;
        let listed = self
            .bucket
            .list_with_delimiter(Some(&self.key(dir)))
            .await
            .map_err(|e| self.err(e))?;
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .filter(|n| check_path(&format!("_/{n}")).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn read_file(&self, path: &str) -> StorageResult<Option<Vec<u8>>> {
        check_path(path)?;
        Ok(self.get_bytes(&self.key(path)).await?.map(|b| b.to_vec()))
    }

    async fn write_file(&self, path: &str, bytes: &[u8]) -> StorageResult<()> {
        check_path(path)?;
        self.put(&self.key(path), Bytes::copy_from_slice(bytes))
            .await
    }

    async fn delete_file(&self, path: &str) -> StorageResult<bool> {
        check_path(path)?;
        self.delete(&self.key(path)).await
    }
}

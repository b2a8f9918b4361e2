//! The emulator's S3 data: buckets and objects in a directory (served by s3s-fs), plus the
//! bucket settings s3s-fs does not keep (public access block, default encryption), in memory.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use s3s::dto::{PublicAccessBlockConfiguration, ServerSideEncryptionConfiguration};

/// Settings of one bucket that live beside its objects.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketSettings {
    /// PutPublicAccessBlock's configuration.
    pub public_access_block: Option<PublicAccessBlockConfiguration>,
    /// PutBucketEncryption's configuration.
    pub encryption: Option<ServerSideEncryptionConfiguration>,
}

/// Why an object could not be read (the build's S3_NO_SUCH_* reasons, reference §D.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ObjectReadError {
    /// No such bucket.
    #[error("S3_NO_SUCH_BUCKET")]
    NoSuchBucket,
    /// The bucket exists, the key does not.
    #[error("S3_NO_SUCH_KEY")]
    NoSuchKey,
    /// The object exists but could not be read.
    #[error("S3_INVALID_OBJECT: {0}")]
    Unreadable(String),
}

/// Buckets and objects under `<state>/s3`.
#[derive(Debug)]
pub(crate) struct ObjectStore {
    root: PathBuf,
    fs: Arc<s3s_fs::FileSystem>,
    settings: Mutex<HashMap<String, BucketSettings>>,
}

impl ObjectStore {
    /// A store rooted at `root` (created if missing).
    pub(crate) fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let root = root.canonicalize()?;
        Ok(Self { root, fs: Arc::new(fs), settings: Mutex::new(HashMap::new()) })
    }

    /// The s3s-fs implementation the S3 front delegates to.
    pub(crate) fn fs(&self) -> &s3s_fs::FileSystem {
        &self.fs
    }

    /// True when `bucket` exists.
    pub(crate) fn has_bucket(&self, bucket: &str) -> bool {
        safe_name(bucket) && self.root.join(bucket).is_dir()
    }

    /// The bytes of `s3://bucket/key`, as the build reads its artifact.
    pub(crate) async fn read_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectReadError> {
        if !self.has_bucket(bucket) {
            return Err(ObjectReadError::NoSuchBucket);
        }
        let relative = Path::new(key);
        let plain = !key.is_empty() && relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(ObjectReadError::NoSuchKey);
        }
        match tokio::fs::read(self.root.join(bucket).join(relative)).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory) => {
                Err(ObjectReadError::NoSuchKey)
            }
            Err(e) => Err(ObjectReadError::Unreadable(e.to_string())),
        }
    }

    /// A copy of `bucket`'s settings.
    pub(crate) fn settings(&self, bucket: &str) -> BucketSettings {
        self.lock().get(bucket).cloned().unwrap_or_default()
    }

    /// Changes `bucket`'s settings.
    pub(crate) fn update_settings(&self, bucket: &str, change: impl FnOnce(&mut BucketSettings)) {
        change(self.lock().entry(bucket.to_owned()).or_default());
    }

    /// Forgets a deleted bucket's settings.
    pub(crate) fn forget(&self, bucket: &str) {
        self.lock().remove(bucket);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BucketSettings>> {
        self.settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `s3://bucket/key` → `(bucket, key)`.
pub(crate) fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

fn safe_name(bucket: &str) -> bool {
    !bucket.is_empty() && !bucket.starts_with('.') && !bucket.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_objects_and_names_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("whim-objects-test-{}", std::process::id()));
        let store = ObjectStore::open(&dir).expect("store");
        std::fs::create_dir_all(dir.join("b/dir")).expect("bucket");
        std::fs::write(dir.join("b/dir/k.zip"), b"zip").expect("object");
        assert_eq!(store.read_object("b", "dir/k.zip").await, Ok(b"zip".to_vec()));
        assert_eq!(store.read_object("b", "nope").await, Err(ObjectReadError::NoSuchKey));
        assert_eq!(store.read_object("b", "../b/dir/k.zip").await, Err(ObjectReadError::NoSuchKey));
        assert_eq!(store.read_object("c", "k").await, Err(ObjectReadError::NoSuchBucket));
        assert_eq!(parse_s3_uri("s3://b/dir/k.zip"), Some(("b", "dir/k.zip")));
        assert_eq!(parse_s3_uri("s3://b"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

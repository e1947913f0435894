//! The byte layer: a [`Storage`] moves bytes at an [`ObjectPath`] and knows nothing about assets
//! or formats.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, Result};
use crate::path::ObjectPath;

/// A stream of byte chunks, for objects too large to hold in memory at once.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// How a put treats an existing object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there (the default).
    #[default]
    Overwrite,
    /// Fail with [`Error::PreconditionFailed`] if the object exists.
    CreateOnly,
    /// Replace only if the stored version token equals this one (compare-and-swap); fail with
    /// [`Error::PreconditionFailed`] otherwise, also when the object is missing.
    IfVersion(String),
}

/// Options of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// How an existing object is treated.
    pub mode: PutMode,
}

impl PutOptions {
    /// Options with `mode`.
    pub fn with_mode(mode: PutMode) -> Self {
        Self { mode }
    }
}

/// What a storage can do beyond the required operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Honours [`PutMode::CreateOnly`].
    pub create_only: bool,
    /// Honours [`PutMode::IfVersion`].
    pub if_version: bool,
}

/// The outcome of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutResult {
    /// The version token of the new object (ETag, generation, counter, mtime+size…).
    pub version: Option<String>,
    /// Bytes written.
    pub bytes: u64,
    /// Transient failures that were retried (filled in by [`crate::RetryStorage`]).
    pub retries: u32,
}

/// What a storage knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's path.
    pub path: ObjectPath,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, when the storage knows.
    pub modified: Option<DateTime<Utc>>,
    /// Its version token, when the storage has one.
    pub version: Option<String>,
}

/// Bytes at a path: memory, local disk, S3, GCS, Azure Blob.
///
/// Every write is all-or-nothing: readers see the old object or the new one. Every backend maps
/// its errors into [`Error`] in one place, so a missing object is [`Error::NotFound`]
/// everywhere. Implementations are used as `Arc<dyn Storage>`; their futures are `Send`.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// A short name for messages (`memory`, `fs`, `s3`).
    fn name(&self) -> &str;

    /// The conditional put modes this storage honours.
    fn capabilities(&self) -> Capabilities;

    /// The uri of `path` (`file:///base/a/b`, `s3://bucket/prefix/a/b`).
    fn uri(&self, path: &ObjectPath) -> String;

    /// Stores `bytes` at `path` atomically.
    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult>;

    /// Stores a stream at `path` atomically, in bounded memory where the backend allows
    /// (multipart upload, temporary file). The default collects the stream and calls
    /// [`Storage::put`].
    async fn put_stream(
        &self,
        path: &ObjectPath,
        mut stream: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        self.put(path, buf.freeze(), opts).await
    }

    /// The whole object.
    async fn get(&self, path: &ObjectPath) -> Result<Bytes>;

    /// Bytes `range` of the object (clamped to its end). The default reads the whole object.
    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        let all = self.get(path).await?;
        Ok(slice_range(&all, range))
    }

    /// The object as a stream of chunks. The default reads the whole object.
    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        let all = self.get(path).await?;
        Ok(futures::stream::once(async move { Ok(all) }).boxed())
    }

    /// The object's metadata, or [`Error::NotFound`].
    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta>;

    /// Whether an object exists at exactly `path` (never a prefix match).
    async fn exists(&self, path: &ObjectPath) -> Result<bool> {
        match self.head(path).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the object; deleting a missing object is not an error.
    async fn delete(&self, path: &ObjectPath) -> Result<()>;

    /// The objects under `prefix` (a directory: `a` lists `a/x`, never `ab`), sorted by path, at
    /// most `limit` of them. The root lists everything.
    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>>;
}

/// Checks that `storage` honours `mode`; a storage calls this first in `put`, so a mode it cannot
/// honour gives [`Error::Unsupported`] instead of a silent overwrite.
pub fn check_put_mode(name: &str, caps: Capabilities, mode: &PutMode) -> Result<()> {
    let ok = match mode {
        PutMode::Overwrite => true,
        PutMode::CreateOnly => caps.create_only,
        PutMode::IfVersion(_) => caps.if_version,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Unsupported {
            backend: name.to_owned(),
            what: format!("put mode {mode:?}"),
        })
    }
}

/// The checks every storage makes before a put: the mode is one it honours
/// ([`check_put_mode`]), and the path names an object, not the storage root.
pub fn check_put(name: &str, caps: Capabilities, path: &ObjectPath, mode: &PutMode) -> Result<()> {
    check_put_mode(name, caps, mode)?;
    if path.is_root() {
        return Err(Error::invalid_key(
            "",
            format!("{name}: cannot store an object at the storage root"),
        ));
    }
    Ok(())
}

/// `bytes[range]`, clamped to the length (an empty result past the end).
pub fn slice_range(bytes: &Bytes, range: Range<u64>) -> Bytes {
    let len = bytes.len() as u64;
    let start = range.start.min(len) as usize;
    let end = range.end.clamp(range.start.min(len), len) as usize;
    bytes.slice(start..end)
}

/// True when `path` lies under the directory `prefix` (root contains everything).
pub fn under_prefix(path: &ObjectPath, prefix: &ObjectPath) -> bool {
    prefix.is_root() || path.starts_with(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_range_clamps() {
        let b = Bytes::from_static(b"hello");
        assert_eq!(slice_range(&b, 1..3), Bytes::from_static(b"el"));
        assert_eq!(slice_range(&b, 3..100), Bytes::from_static(b"lo"));
        assert_eq!(slice_range(&b, 10..20), Bytes::new());
        assert_eq!(slice_range(&b, Range { start: 4, end: 2 }), Bytes::new());
    }

    #[test]
    fn puts_at_the_root_are_refused() {
        let caps = Capabilities {
            create_only: true,
            if_version: true,
        };
        let err = check_put("fs", caps, &ObjectPath::root(), &PutMode::Overwrite).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidKey);
        assert!(err.to_string().contains("storage root"), "{err}");
        let path = ObjectPath::parse("a/b").unwrap();
        assert!(check_put("fs", caps, &path, &PutMode::CreateOnly).is_ok());
    }

    #[test]
    fn unsupported_mode_is_reported() {
        let err = check_put_mode("x", Capabilities::default(), &PutMode::CreateOnly).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Unsupported);
        assert!(check_put_mode("x", Capabilities::default(), &PutMode::Overwrite).is_ok());
    }
}

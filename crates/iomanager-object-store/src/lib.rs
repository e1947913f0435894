//! # iomanager-object-store
//!
//! [`ObjectStoreStorage`] is an iomanager [`Storage`] over any
//! [`object_store::ObjectStore`]: every store that crate supports (in memory, local files,
//! S3, GCS, Azure Blob, HTTP/WebDAV) and every store a program already configured for
//! DataFusion or Polars becomes a place `StorageIoManager` can keep assets, with no second
//! client and no second set of credentials.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use iomanager_core::{Capabilities, ObjectPath, PutOptions, Storage};
//! use iomanager_object_store::ObjectStoreStorage;
//! use object_store::memory::InMemory;
//!
//! # async fn demo() -> iomanager_core::Result<()> {
//! // Any `Arc<dyn ObjectStore>`: here the in-memory store, which honours both conditional puts.
//! let storage = ObjectStoreStorage::new(Arc::new(InMemory::new()), "memory:///")
//!     .with_capabilities(Capabilities { create_only: true, if_version: true });
//!
//! let path = ObjectPath::parse("sales/daily/2024-01-01")?;
//! storage.put(&path, Bytes::from_static(b"hello"), &PutOptions::default()).await?;
//! assert_eq!(storage.get(&path).await?, Bytes::from_static(b"hello"));
//! assert_eq!(storage.uri(&path), "memory:///sales/daily/2024-01-01");
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! With a `StorageIoManager` it is Dagster's `UPathIOManager` over that store:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use iomanager_object_store::ObjectStoreStorage;
//! use iomanager_core::{MessagePackCodec, StorageIoManager};
//! # fn demo(store: Arc<dyn object_store::ObjectStore>) {
//! // `store`: e.g. the `Arc<dyn ObjectStore>` registered with a DataFusion `SessionContext`.
//! let storage = ObjectStoreStorage::new(store, "s3://my-bucket");
//! let manager = StorageIoManager::new(Arc::new(storage), MessagePackCodec::new());
//! # let _ = manager; }
//! ```
//!
//! ## Paths and uris
//!
//! An [`ObjectPath`] is used as the store's key verbatim (`a/b%2Fc` is the key `a/b%2Fc`), so a
//! store shared with another iomanager backend or with Python Dagster sees the same keys. The
//! uri of a path is the base uri given to [`ObjectStoreStorage::new`] joined with the path:
//! `memory:///` + `a/b` is `memory:///a/b`, `file:///base` + `a/b` is `file:///base/a/b`,
//! `s3://bucket` + `a/b` is `s3://bucket/a/b`.
//!
//! ## Conditional writes
//!
//! Stores differ in which put modes they honour, and a store cannot be asked, so the
//! capabilities are declared with [`ObjectStoreStorage::with_capabilities`] (none by default:
//! create-only and if-version puts answer [`Error::Unsupported`] before anything is sent).
//!
//! | store | create-only (`PutMode::Create`) | if-version (`PutMode::Update`) |
//! |---|---|---|
//! | `InMemory` | yes | yes |
//! | `LocalFileSystem` | yes (hard link) | no: `NotImplemented` |
//! | `AmazonS3` | yes with `S3ConditionalPut::ETagMatch` (the default) | likewise |
//!
//! A mode declared but refused by the store with `NotImplemented`/`NotSupported` comes back as
//! [`Error::Unsupported`]; it never falls back to an overwrite. Version tokens are the store's
//! ETags ([`object_store::PutResult::e_tag`], [`object_store::ObjectMeta::e_tag`]).
//!
//! ## Large objects
//!
//! [`Storage::put_stream`] buffers up to one part; a stream that ends there is one put, a longer
//! one is a multipart upload (`put_multipart_opts`) of equal parts with a bounded number in
//! flight ([`ObjectStoreStorage::with_multipart`]), aborted on any error, so memory stays
//! bounded and no partial object becomes visible. `object_store`'s multipart uploads take no
//! put mode, so a *conditional* streamed put is collected and sent as one conditional put.
//! Reads stream the store's response ([`object_store::GetResult::into_stream`]).
//!
//! ## Errors
//!
//! All `object_store` errors are mapped in one function: `NotFound` → [`Error::NotFound`]
//! naming the uri, `AlreadyExists`/`Precondition` → [`Error::PreconditionFailed`],
//! `NotSupported`/`NotImplemented` → [`Error::Unsupported`], `PermissionDenied`/
//! `Unauthenticated` → [`Error::PermissionDenied`], and a `Generic` error is
//! [`Error::Transient`] only when its cause is a 5xx/429/408 status or a transport failure
//! (connect, timeout, reset) that `object_store`'s own retries gave up on, else
//! [`Error::Backend`]. Wrap the storage in [`iomanager_core::RetryStorage`] to retry transient
//! errors with iomanager's backoff (and count the retries in receipts).
//!
//! ## Features
//!
//! - `fs`: `object_store`'s `LocalFileSystem`.
//! - `aws`: `object_store`'s Amazon S3 client; with it the error mapping also recognises
//!   `object_store`'s HTTP transport errors by kind.
//!
//! Other stores work by enabling them on your own `object_store` dependency (the same
//! version); Cargo unifies the features.
#![forbid(unsafe_code)]

mod error;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{Either, select};
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use iomanager_core::storage::check_put_mode;
use iomanager_core::{
    ByteStream, Capabilities, Error, ObjectMeta, ObjectPath, PutMode, PutOptions, PutResult,
    Result, Storage,
};
use object_store::path::Path as StorePath;
use object_store::{
    GetOptions, GetRange, MultipartUpload, ObjectStore, PutMultipartOptions, PutPayload,
    UpdateVersion,
};

use crate::error::{Op, chain, map_error};

/// The default multipart part size: 8 MiB (S3 needs at least 5 MiB for every part but the last).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// The default number of multipart parts uploading at once.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 4;

/// An iomanager [`Storage`] over any `Arc<dyn ObjectStore>`. Cheap to clone.
///
/// See the [crate documentation](crate) for paths, capabilities, large objects and errors.
#[derive(Clone)]
pub struct ObjectStoreStorage {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    base_uri: String,
    name: String,
    capabilities: Capabilities,
    part_size: usize,
    upload_concurrency: usize,
}

impl fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store's `Display` (e.g. `AmazonS3(bucket)`), never its `Debug`, which may show
        // credentials.
        f.debug_struct("ObjectStoreStorage")
            .field("store", &self.inner.store.to_string())
            .field("base_uri", &self.inner.base_uri)
            .field("capabilities", &self.inner.capabilities)
            .field("part_size", &self.inner.part_size)
            .field("upload_concurrency", &self.inner.upload_concurrency)
            .finish()
    }
}

impl ObjectStoreStorage {
    /// A storage over `store`, whose objects' uris are `base_uri` joined with their path
    /// (`memory:///`, `file:///data/base`, `s3://bucket`, `gs://bucket/prefix`).
    ///
    /// The storage's [`Storage::name`] is the uri's scheme (`memory`, `file`, `s3`), or
    /// `object_store` when the base has none. It declares no conditional-write capability; see
    /// [`ObjectStoreStorage::with_capabilities`].
    pub fn new(store: Arc<dyn ObjectStore>, base_uri: impl Into<String>) -> Self {
        let base_uri = base_uri.into();
        let name = match base_uri.split_once("://") {
            Some((scheme, _)) if !scheme.is_empty() => scheme.to_owned(),
            _ => "object_store".to_owned(),
        };
        Self {
            inner: Arc::new(Inner {
                store,
                base_uri,
                name,
                capabilities: Capabilities::default(),
                part_size: DEFAULT_PART_SIZE,
                upload_concurrency: DEFAULT_UPLOAD_CONCURRENCY,
            }),
        }
    }

    /// Declares which conditional put modes the store honours (see the table in the
    /// [crate documentation](crate)). A mode not declared answers [`Error::Unsupported`]
    /// without touching the store; a mode declared but refused by the store answers
    /// [`Error::Unsupported`] too, and never overwrites.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.inner_mut().capabilities = capabilities;
        self
    }

    /// Sets the multipart part size in bytes (at least 1; S3 and GCS need at least 5 MiB) and
    /// how many parts upload at once (at least 1). A streamed put holds at most
    /// `part_size * (upload_concurrency + 1)` bytes plus one chunk of the stream.
    #[must_use]
    pub fn with_multipart(mut self, part_size: usize, upload_concurrency: usize) -> Self {
        let inner = self.inner_mut();
        inner.part_size = part_size.max(1);
        inner.upload_concurrency = upload_concurrency.max(1);
        self
    }

    /// The wrapped store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The base uri given to [`ObjectStoreStorage::new`].
    pub fn base_uri(&self) -> &str {
        &self.inner.base_uri
    }

    fn inner_mut(&mut self) -> &mut Inner {
        if Arc::get_mut(&mut self.inner).is_none() {
            let i = &self.inner;
            self.inner = Arc::new(Inner {
                store: i.store.clone(),
                base_uri: i.base_uri.clone(),
                name: i.name.clone(),
                capabilities: i.capabilities,
                part_size: i.part_size,
                upload_concurrency: i.upload_concurrency,
            });
        }
        Arc::get_mut(&mut self.inner).expect("a freshly made Arc is unique")
    }

    /// The store's key for `path`: the path's string verbatim.
    fn location(&self, path: &ObjectPath) -> Result<StorePath> {
        StorePath::parse(path.as_str()).map_err(|e| {
            Error::invalid_key(
                path.as_str(),
                format!("object_store rejects this path: {}", chain(&e)),
            )
        })
    }

    /// The store's key for an object (never the root).
    fn object_location(&self, path: &ObjectPath) -> Result<StorePath> {
        if path.is_root() {
            return Err(Error::invalid_key(
                "",
                format!(
                    "the root of {} names the base, not an object",
                    self.inner.base_uri
                ),
            ));
        }
        self.location(path)
    }

    fn err(&self, e: object_store::Error, path: &ObjectPath, op: Op) -> Error {
        map_error(e, &self.uri(path), &self.inner.name, op)
    }

    fn store_opts(mode: &PutMode) -> (object_store::PutOptions, Op) {
        let (mode, op) = match mode {
            PutMode::Overwrite => (object_store::PutMode::Overwrite, Op::Write),
            PutMode::CreateOnly => (object_store::PutMode::Create, Op::ConditionalWrite),
            PutMode::IfVersion(v) => (
                object_store::PutMode::Update(UpdateVersion {
                    e_tag: Some(v.clone()),
                    version: None,
                }),
                Op::ConditionalWrite,
            ),
        };
        (mode.into(), op)
    }

    /// One put of `payload` with `mode`.
    async fn put_payload(
        &self,
        path: &ObjectPath,
        location: &StorePath,
        payload: PutPayload,
        mode: &PutMode,
    ) -> Result<PutResult> {
        let bytes = payload.content_length() as u64;
        let (opts, op) = Self::store_opts(mode);
        let res = self
            .inner
            .store
            .put_opts(location, payload, opts)
            .await
            .map_err(|e| self.err(e, path, op))?;
        Ok(PutResult {
            version: res.e_tag,
            bytes,
            retries: 0,
        })
    }

    /// Uploads `pending` (more than one part) and the rest of `stream` as a multipart upload;
    /// aborts the upload on any error.
    async fn put_multipart(
        &self,
        path: &ObjectPath,
        location: &StorePath,
        pending: Pending,
        stream: ByteStream,
    ) -> Result<PutResult> {
        let mut upload = self
            .inner
            .store
            .put_multipart_opts(location, PutMultipartOptions::default())
            .await
            .map_err(|e| self.err(e, path, Op::Write))?;
        match self.upload_parts(path, &mut upload, pending, stream).await {
            Ok(res) => Ok(res),
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(
                        uri = %self.uri(path),
                        error = %chain(&abort),
                        "could not abort a failed multipart upload; the store may keep its parts \
                         until a lifecycle rule removes them"
                    );
                }
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        path: &ObjectPath,
        upload: &mut Box<dyn MultipartUpload>,
        mut pending: Pending,
        mut stream: ByteStream,
    ) -> Result<PutResult> {
        let part_size = self.inner.part_size;
        let max_in_flight = self.inner.upload_concurrency;
        let mut in_flight: FuturesUnordered<object_store::UploadPart> = FuturesUnordered::new();
        let mut total = 0u64;
        let mut done = false;
        loop {
            // Send every full part; keep the remainder (the last part is sent at the end).
            while pending.len > part_size || (done && pending.len > 0) {
                if in_flight.len() >= max_in_flight {
                    // Wait for a slot.
                    if let Some(res) = in_flight.next().await {
                        res.map_err(|e| self.err(e, path, Op::Write))?;
                    }
                    continue;
                }
                let part = pending.take(part_size);
                total += part.content_length() as u64;
                in_flight.push(upload.put_part(part));
            }
            if done {
                break;
            }
            // The next chunk, while the parts in flight make progress.
            let next = if in_flight.is_empty() {
                stream.next().await
            } else {
                match select(stream.next(), in_flight.next()).await {
                    Either::Left((chunk, _)) => chunk,
                    Either::Right((finished, _)) => {
                        if let Some(res) = finished {
                            res.map_err(|e| self.err(e, path, Op::Write))?;
                        }
                        continue;
                    }
                }
            };
            match next {
                Some(chunk) => pending.push(chunk?),
                None => done = true,
            }
        }
        while let Some(res) = in_flight.next().await {
            res.map_err(|e| self.err(e, path, Op::Write))?;
        }
        let res = upload
            .complete()
            .await
            .map_err(|e| self.err(e, path, Op::Write))?;
        Ok(PutResult {
            version: res.e_tag,
            bytes: total,
            retries: 0,
        })
    }

    fn meta(&self, path: ObjectPath, meta: object_store::ObjectMeta) -> ObjectMeta {
        ObjectMeta {
            path,
            size: meta.size,
            modified: Some(meta.last_modified),
            version: meta.e_tag,
        }
    }
}

/// Chunks of a stream waiting to be sent, kept as the stream's own `Bytes` (no copy).
#[derive(Default)]
struct Pending {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Pending {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    /// The first `n` bytes (or all, if fewer) as a payload, splitting a chunk where needed.
    fn take(&mut self, n: usize) -> PutPayload {
        let mut out = Vec::new();
        let mut taken = 0;
        let mut rest = std::mem::take(&mut self.chunks).into_iter();
        for mut chunk in rest.by_ref() {
            let want = n - taken;
            if chunk.len() <= want {
                taken += chunk.len();
                out.push(chunk);
            } else {
                out.push(chunk.split_to(want));
                taken += want;
                self.chunks.push(chunk);
            }
            if taken == n {
                break;
            }
        }
        self.chunks.extend(rest);
        self.len -= taken;
        out.into_iter().collect()
    }

    fn into_payload(self) -> PutPayload {
        self.chunks.into_iter().collect()
    }
}

#[async_trait]
impl Storage for ObjectStoreStorage {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities
    }

    fn uri(&self, path: &ObjectPath) -> String {
        let base = &self.inner.base_uri;
        if path.is_root() {
            base.clone()
        } else if base.ends_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        check_put_mode(self.name(), self.capabilities(), &opts.mode)?;
        let location = self.object_location(path)?;
        self.put_payload(path, &location, PutPayload::from_bytes(bytes), &opts.mode)
            .await
    }

    async fn put_stream(
        &self,
        path: &ObjectPath,
        mut stream: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        check_put_mode(self.name(), self.capabilities(), &opts.mode)?;
        let location = self.object_location(path)?;
        // A conditional put cannot go multipart (object_store's multipart uploads take no put
        // mode): collect it. Otherwise buffer up to one part: a small object is one put.
        let limit = match opts.mode {
            PutMode::Overwrite => self.inner.part_size,
            _ => usize::MAX,
        };
        let mut pending = Pending::default();
        while pending.len <= limit {
            match stream.next().await {
                Some(chunk) => pending.push(chunk?),
                None => {
                    return self
                        .put_payload(path, &location, pending.into_payload(), &opts.mode)
                        .await;
                }
            }
        }
        self.put_multipart(path, &location, pending, stream).await
    }

    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        let location = self.object_location(path)?;
        let res = self
            .inner
            .store
            .get_opts(&location, GetOptions::default())
            .await
            .map_err(|e| self.err(e, path, Op::Read))?;
        res.bytes().await.map_err(|e| self.err(e, path, Op::Read))
    }

    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        let location = self.object_location(path)?;
        if range.end <= range.start {
            self.head(path).await?;
            return Ok(Bytes::new());
        }
        let opts = GetOptions::default().with_range(Some(GetRange::Bounded(range.clone())));
        let got = match self.inner.store.get_opts(&location, opts).await {
            Ok(res) => res.bytes().await,
            Err(e) => Err(e),
        };
        match got {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                let err = self.err(e, path, Op::Read);
                if err.is_not_found() {
                    return Err(err);
                }
                // Stores refuse a range that starts at or past the end (416, `InvalidRange`);
                // every iomanager storage answers it with no bytes.
                match self.head(path).await {
                    Ok(meta) if range.start >= meta.size => Ok(Bytes::new()),
                    _ => Err(err),
                }
            }
        }
    }

    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        let location = self.object_location(path)?;
        let res = self
            .inner
            .store
            .get_opts(&location, GetOptions::default())
            .await
            .map_err(|e| self.err(e, path, Op::Read))?;
        let (uri, name) = (self.uri(path), self.inner.name.clone());
        Ok(res
            .into_stream()
            .map_err(move |e| map_error(e, &uri, &name, Op::Read))
            .boxed())
    }

    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        let location = self.object_location(path)?;
        let res = self
            .inner
            .store
            .get_opts(&location, GetOptions::default().with_head(true))
            .await
            .map_err(|e| self.err(e, path, Op::Read))?;
        Ok(self.meta(path.clone(), res.meta))
    }

    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        let location = self.object_location(path)?;
        let mut results = self
            .inner
            .store
            .delete_stream(futures::stream::once(async move { Ok(location) }).boxed());
        while let Some(res) = results.next().await {
            if let Err(e) = res {
                // Deleting a missing object is not an error.
                let err = self.err(e, path, Op::Delete);
                if !err.is_not_found() {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        let location = if prefix.is_root() {
            None
        } else {
            Some(self.location(prefix)?)
        };
        // object_store matches prefixes by whole segments (`a` lists `a/x`, never `ab/x`) but
        // does not promise an order: collect, sort, then apply the limit.
        let mut listing = self.inner.store.list(location.as_ref());
        let mut out = Vec::new();
        while let Some(item) = listing.next().await {
            let meta = item.map_err(|e| self.err(e, prefix, Op::List))?;
            match ObjectPath::parse(meta.location.as_ref()) {
                Ok(path) if !path.is_root() => out.push(self.meta(path, meta)),
                _ => tracing::debug!(
                    key = %meta.location,
                    "skipping a key that is not an iomanager path"
                ),
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(limit) = limit {
            out.truncate(limit);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_splits_without_copying() {
        let mut p = Pending::default();
        let a = Bytes::from_static(b"abcdef");
        p.push(a.clone());
        p.push(Bytes::new());
        p.push(Bytes::from_static(b"ghij"));
        assert_eq!(p.len, 10);
        let first = p.take(4);
        assert_eq!(Bytes::from(first), Bytes::from_static(b"abcd"));
        assert_eq!(p.len, 6);
        let second: Vec<Bytes> = p.take(5).into_iter().collect();
        assert_eq!(second.concat(), b"efghi");
        // The first piece still points into the original allocation.
        assert_eq!(second[0].as_ptr(), a[4..].as_ptr());
        assert_eq!(Bytes::from(p.into_payload()), Bytes::from_static(b"j"));
    }

    #[test]
    fn uris_join_the_base_and_the_path() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let p = ObjectPath::parse("a/b").unwrap();
        let cases = [
            ("memory:///", "memory:///a/b", "memory"),
            ("file:///base", "file:///base/a/b", "file"),
            ("s3://bucket", "s3://bucket/a/b", "s3"),
            ("s3://bucket/", "s3://bucket/a/b", "s3"),
            ("somewhere", "somewhere/a/b", "object_store"),
        ];
        for (base, uri, name) in cases {
            let s = ObjectStoreStorage::new(store.clone(), base);
            assert_eq!(s.uri(&p), uri);
            assert_eq!(s.uri(&ObjectPath::root()), base);
            assert_eq!(s.name(), name);
        }
    }

    #[test]
    fn builders_do_not_change_clones() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let a = ObjectStoreStorage::new(store, "memory:///");
        let b = a.clone().with_capabilities(Capabilities {
            create_only: true,
            if_version: false,
        });
        assert_eq!(a.capabilities(), Capabilities::default());
        assert!(b.capabilities().create_only);
        let c = b.with_multipart(0, 0);
        assert_eq!((c.inner.part_size, c.inner.upload_concurrency), (1, 1));
        assert!(format!("{c:?}").contains("InMemory"));
    }
}

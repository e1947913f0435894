//! Storage wrappers for tests: [`FlakyStorage`] injects transient failures, [`CountingStorage`]
//! counts calls and the most concurrent reads in flight.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use iomanager_core::{
    ByteStream, Capabilities, Error, ObjectMeta, ObjectPath, PutOptions, PutResult, Result, Storage,
};

/// Fails the first `failures` calls of each operation with a transient error (as a throttling
/// 503 would), then passes calls through.
#[derive(Debug)]
pub struct FlakyStorage {
    inner: Arc<dyn Storage>,
    failures: usize,
    puts: AtomicUsize,
    gets: AtomicUsize,
}

impl FlakyStorage {
    /// Wraps `inner`; each of put and get fails `failures` times first.
    pub fn new(inner: Arc<dyn Storage>, failures: usize) -> Self {
        Self {
            inner,
            failures,
            puts: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
        }
    }

    fn fail(&self, counter: &AtomicUsize, path: &ObjectPath) -> Result<()> {
        if counter.fetch_add(1, Ordering::SeqCst) < self.failures {
            Err(Error::transient(
                self.inner.uri(path),
                "injected 503 Slow Down",
                None,
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Storage for FlakyStorage {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn uri(&self, path: &ObjectPath) -> String {
        self.inner.uri(path)
    }
    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        self.fail(&self.puts, path)?;
        self.inner.put(path, bytes, opts).await
    }
    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        self.fail(&self.gets, path)?;
        self.inner.get(path).await
    }
    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        self.inner.list(prefix, limit).await
    }
}

/// Counts calls, and records the most `get`s in flight at once (each get is held for a short
/// delay so overlapping loads are visible).
#[derive(Debug)]
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    delay: Duration,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl CountingStorage {
    /// Wraps `inner`; each get waits `delay` before reading.
    pub fn new(inner: Arc<dyn Storage>, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// Calls of any operation so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The most gets that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Storage for CountingStorage {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn uri(&self, path: &ObjectPath) -> String {
        self.inner.uri(path)
    }
    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        self.count();
        self.inner.put(path, bytes, opts).await
    }
    async fn put_stream(
        &self,
        path: &ObjectPath,
        stream: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.count();
        self.inner.put_stream(path, stream, opts).await
    }
    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        self.count();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let res = self.inner.get(path).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        res
    }
    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        self.count();
        self.inner.get_range(path, range).await
    }
    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        self.count();
        self.inner.get_stream(path).await
    }
    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        self.count();
        self.inner.head(path).await
    }
    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.count();
        self.inner.delete(path).await
    }
    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        self.count();
        self.inner.list(prefix, limit).await
    }
}

/// A storage that keeps a guard value alive as long as the storage itself: a temporary
/// directory, a bucket to clean up, a server handle. Every call goes to the wrapped storage, so
/// a backend's tests can hand a fixture-owning storage to the suite macros without writing
/// the delegation again.
#[derive(Debug)]
pub struct Guarded<G> {
    inner: Arc<dyn Storage>,
    guard: G,
}

impl<G: std::fmt::Debug + Send + Sync> Guarded<G> {
    /// Wraps `inner`, keeping `guard` until the storage is dropped.
    pub fn new(inner: Arc<dyn Storage>, guard: G) -> Self {
        Self { inner, guard }
    }

    /// The guard.
    pub fn guard(&self) -> &G {
        &self.guard
    }
}

#[async_trait]
impl<G: std::fmt::Debug + Send + Sync> Storage for Guarded<G> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn uri(&self, path: &ObjectPath) -> String {
        self.inner.uri(path)
    }
    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        self.inner.put(path, bytes, opts).await
    }
    async fn put_stream(
        &self,
        path: &ObjectPath,
        stream: ByteStream,
        opts: &PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_stream(path, stream, opts).await
    }
    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        self.inner.get(path).await
    }
    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(path, range).await
    }
    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        self.inner.get_stream(path).await
    }
    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        self.inner.list(prefix, limit).await
    }
}

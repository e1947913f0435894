//! Retries for any [`Storage`]: capped exponential backoff with full jitter, retrying only
//! errors that [`Error::is_retryable`] calls transient.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::path::ObjectPath;
use crate::storage::{ByteStream, Capabilities, ObjectMeta, PutOptions, PutResult, Storage};

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// The first backoff.
    #[serde(with = "millis")]
    pub initial_backoff: Duration,
    /// The cap on one backoff.
    #[serde(with = "millis")]
    pub max_backoff: Duration,
    /// The growth factor between attempts.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The upper bound of the backoff before retry number `retry` (0-based), capped.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(retry.min(64) as i32);
        let secs = self.initial_backoff.as_secs_f64() * factor;
        Duration::from_secs_f64(secs.min(self.max_backoff.as_secs_f64()))
    }

    /// A backoff with full jitter: uniform in `[0, backoff_cap(retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self.backoff_cap(retry);
        if cap.is_zero() {
            return cap;
        }
        let nanos = rand::rng().random_range(0..=cap.as_nanos().min(u64::MAX as u128) as u64);
        Duration::from_nanos(nanos)
    }

    /// Runs `op` until it succeeds, fails permanently, or the retries are used up. Returns the
    /// value and how many retries it took.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<(T, u32)>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T>> + Send,
        T: Send,
    {
        let mut retries = 0;
        loop {
            match op().await {
                Ok(v) => return Ok((v, retries)),
                Err(e) if e.is_retryable() && retries < self.max_retries => {
                    let wait = self.backoff(retries);
                    tracing::debug!(error = %e, retry = retries + 1, ?wait, "retrying transient error");
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Wraps any storage with a [`RetryPolicy`]. Puts report their retries in
/// [`PutResult::retries`], which lands in the receipt. A streamed put cannot be replayed, so it
/// is passed through once.
#[derive(Clone)]
pub struct RetryStorage {
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
}

impl RetryStorage {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Storage>, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl fmt::Debug for RetryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryStorage")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish()
    }
}

#[async_trait]
impl Storage for RetryStorage {
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
        let (mut res, retries) = self
            .policy
            .run(|| self.inner.put(path, bytes.clone(), opts))
            .await?;
        res.retries += retries;
        Ok(res)
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
        Ok(self.policy.run(|| self.inner.get(path)).await?.0)
    }

    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        Ok(self
            .policy
            .run(|| self.inner.get_range(path, range.clone()))
            .await?
            .0)
    }

    async fn get_stream(&self, path: &ObjectPath) -> Result<ByteStream> {
        Ok(self.policy.run(|| self.inner.get_stream(path)).await?.0)
    }

    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        Ok(self.policy.run(|| self.inner.head(path)).await?.0)
    }

    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.policy
            .run(|| self.inner.delete(path))
            .await
            .map(|_| ())
    }

    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        Ok(self.policy.run(|| self.inner.list(prefix, limit)).await?.0)
    }
}

/// Keeps [`Error`] in scope for the docs above.
#[allow(dead_code)]
type _DocError = Error;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_is_capped_and_grows() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            multiplier: 2.0,
        };
        assert_eq!(p.backoff_cap(0), Duration::from_millis(10));
        assert_eq!(p.backoff_cap(1), Duration::from_millis(20));
        assert_eq!(p.backoff_cap(5), Duration::from_millis(50));
        for i in 0..20 {
            assert!(p.backoff(i) <= Duration::from_millis(50));
        }
    }

    fn fast(max: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries: max,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            multiplier: 2.0,
        }
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let calls = AtomicU32::new(0);
        let (v, retries) = fast(5)
            .run(|| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(Error::transient("u", "503", None))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!((v, retries), (3, 3));
    }

    #[tokio::test]
    async fn permanent_errors_fail_at_once() {
        let calls = AtomicU32::new(0);
        let err = fast(5)
            .run(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(Error::backend("u", "403", None)) }
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Backend);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_retries() {
        let calls = AtomicU32::new(0);
        let err = fast(2)
            .run(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(Error::transient("u", "timeout", None)) }
            })
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}

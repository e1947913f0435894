//! # iomanager-s3
//!
//! Amazon S3 and S3-compatible stores (MinIO, R2, moto) for iomanager, on `aws-sdk-s3`:
//! [`S3Storage`] moves bytes, [`S3IoManager`] is [`StorageIoManager`] over it with the
//! MessagePack codec and the prefix `dagster` — the counterpart of Dagster's
//! `S3PickleIOManager`, with a uri that includes the partition and errors that say which of
//! credentials, bucket or endpoint is wrong.
//!
//! ## Configuration
//!
//! ```no_run
//! use iomanager_s3::{S3Config, S3IoManager};
//! # async fn demo() -> iomanager_core::Result<()> {
//! // AWS, with keys from the environment (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
//! let aws = S3Config::from_env("my-bucket");
//!
//! // An S3-compatible store (MinIO, R2, Ceph): an endpoint and path-style addressing.
//! let minio = S3Config::new("my-bucket")
//!     .endpoint_url("http://127.0.0.1:9000")
//!     .region("us-east-1")
//!     .path_style(true)
//!     .static_credentials("minioadmin", "minioadmin");
//!
//! // Connecting checks bucket, credentials and endpoint once, with a distinct error for each.
//! let manager = S3IoManager::connect(minio).await?;
//! # let _ = aws; Ok(()) }
//! ```
//!
//! Writes are single PUTs up to [`S3Config::multipart_threshold`] and multipart uploads above
//! it (bounded concurrent parts, aborted on any failure, so no orphaned upload is left);
//! reads of large objects stream. Transient failures (timeouts, 429, `SlowDown`, 5xx,
//! connection resets) are retried with capped exponential backoff and jitter, and the retries
//! are counted in the receipt. Secrets never appear in `Debug` output, logs or errors.
#![forbid(unsafe_code)]

mod config;
mod error;
mod storage;

pub use config::{S3Config, S3Credentials, Secret};
pub use storage::S3Storage;

use std::sync::Arc;

use iomanager_core::{MessagePackCodec, PathLayout, Result, RetryStorage, StorageIoManager};

/// Dagster's `S3PickleIOManager`, with MessagePack by default (any `Codec` through
/// [`S3IoManager::with_codec`]): objects under `s3://<bucket>/<prefix>/…`, prefix `dagster`
/// unless configured otherwise, transient errors retried.
#[derive(Debug, Clone)]
pub struct S3IoManager<C = MessagePackCodec> {
    storage: S3Storage,
    inner: StorageIoManager<C>,
}

impl S3IoManager<MessagePackCodec> {
    /// Connects (checking bucket, credentials and endpoint once) and builds the manager.
    pub async fn connect(config: S3Config) -> Result<Self> {
        let storage = S3Storage::connect(config).await?;
        Self::from_storage(storage, MessagePackCodec::new())
    }
}

impl<C> S3IoManager<C> {
    /// A manager over a connected storage, with the storage's configured prefix and retries.
    pub fn from_storage(storage: S3Storage, codec: C) -> Result<Self> {
        let config = storage.config();
        let layout = PathLayout::new(config.layout).with_prefix(&config.prefix)?;
        let retried = RetryStorage::new(Arc::new(storage.clone()), config.retry.clone());
        let inner = StorageIoManager::new(Arc::new(retried), codec)
            .with_layout(layout)
            .with_concurrency(config.load_concurrency);
        Ok(Self { storage, inner })
    }

    /// The same bucket and settings with another codec (Parquet, JSON Lines, raw bytes).
    pub fn with_codec<D>(self, codec: D) -> S3IoManager<D> {
        S3IoManager {
            storage: self.storage,
            inner: self.inner.with_codec(codec),
        }
    }

    /// The storage.
    pub fn storage(&self) -> &S3Storage {
        &self.storage
    }

    /// The underlying [`StorageIoManager`].
    pub fn inner(&self) -> &StorageIoManager<C> {
        &self.inner
    }
}

iomanager_core::forward_io_manager!(S3IoManager, inner);

/// The crate README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

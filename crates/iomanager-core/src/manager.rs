//! What a pipeline sees: the [`IoManager`] trait, and [`StorageIoManager`], Dagster's
//! `UPathIOManager` over any [`Storage`] and [`Codec`].

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;

use crate::codec::Codec;
use crate::context::{Address, InputContext, OutputContext};
use crate::error::{Error, ExistingObjects, Result};
use crate::key::PartitionKey;
use crate::path::{ObjectPath, PathLayout};
use crate::receipt::{OutputReceipt, checksum, format_checksum};
use crate::storage::{ByteStream, PutMode, PutOptions, Storage};

/// Values per partition, in the order of the selection.
pub type PartitionMap<T> = IndexMap<PartitionKey, T>;

/// How many partitions a manager loads or stores at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Stores what a step produced and loads it for the steps that consume it.
///
/// `handle_output` stores one value (an asset, one partition of it, or an op output) and returns
/// a receipt; `load_input` loads one value; `load_partitions` loads a selection of several
/// partitions concurrently into a map ordered as the selection, skipping missing ones only when
/// the input allows it. Usable as `Arc<dyn IoManager<T>>`; the futures are `Send`.
#[async_trait]
pub trait IoManager<T: Send + 'static>: Send + Sync {
    /// Stores `value` for the output `ctx` describes. An output that spans several partitions
    /// must go through [`IoManager::handle_output_partitions`].
    async fn handle_output(&self, ctx: &OutputContext, value: T) -> Result<OutputReceipt>;

    /// Loads the value the input `ctx` describes (an asset, exactly one partition, or the
    /// upstream op output).
    async fn load_input(&self, ctx: &InputContext) -> Result<T>;

    /// How many partitions are stored or loaded at once.
    fn concurrency(&self) -> usize {
        DEFAULT_CONCURRENCY
    }

    /// Stores one value per partition of a multi-partition output (a single-run backfill). The
    /// keys of `values` must be exactly the output's partitions. Partitions are written
    /// concurrently (bounded); receipts come back in the order of `values`.
    async fn handle_output_partitions(
        &self,
        ctx: &OutputContext,
        values: PartitionMap<T>,
    ) -> Result<PartitionMap<OutputReceipt>> {
        check_partition_map(ctx, &values)?;
        let limit = self.concurrency().max(1);
        futures::stream::iter(values)
            .map(|(key, value)| async move {
                let part = ctx.for_partition(key.clone());
                self.handle_output(&part, value).await.map(|r| (key, r))
            })
            .buffered(limit)
            .try_collect()
            .await
    }

    /// Loads every selected partition concurrently (bounded by [`IoManager::concurrency`]) into a
    /// map ordered as the selection. With `allow_missing_partitions` in the input's definition
    /// metadata, partitions that are not found are skipped (a warning names each); any other
    /// error fails the load. Zero partitions give an empty map and touch no storage.
    async fn load_partitions(&self, ctx: &InputContext) -> Result<PartitionMap<T>> {
        let keys = ctx.asset_partition_keys()?;
        if keys.is_empty() {
            return Ok(PartitionMap::new());
        }
        let allow_missing = ctx.allow_missing_partitions();
        let limit = self.concurrency().max(1);
        let loaded: Vec<Option<(PartitionKey, T)>> = futures::stream::iter(keys.iter().cloned())
            .map(|key| async move {
                let part = ctx.for_partition(key.clone());
                match self.load_input(&part).await {
                    Ok(v) => Ok(Some((key, v))),
                    Err(e) if allow_missing && e.is_not_found() => {
                        tracing::warn!(
                            partition = %key,
                            error = %e,
                            "Couldn't load partition {key} and skipped it because the input \
                             metadata includes allow_missing_partitions=True"
                        );
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .buffered(limit)
            .try_collect()
            .await?;
        Ok(loaded.into_iter().flatten().collect())
    }
}

/// Checks that a multi-partition output's map has exactly the context's partitions.
fn check_partition_map<T>(ctx: &OutputContext, values: &PartitionMap<T>) -> Result<()> {
    let expected: HashSet<&PartitionKey> = ctx.asset_partition_keys()?.iter().collect();
    let given: HashSet<&PartitionKey> = values.keys().collect();
    if expected == given {
        return Ok(());
    }
    let sorted = |s: Vec<&&PartitionKey>| {
        s.into_iter()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    };
    let missing = sorted(expected.difference(&given).collect());
    let extra = sorted(given.difference(&expected).collect());
    Err(Error::invalid_context(format!(
        "the map of values does not match the output's partitions: missing [{}], not selected \
         [{}]",
        missing.join(", "),
        extra.join(", ")
    )))
}

/// Dagster's `UPathIOManager`: path computation, partition handling, the missing-partition
/// policy and output metadata, written once for every [`Storage`] and [`Codec`].
///
/// ```
/// use std::sync::Arc;
/// use iomanager_core::{IoManager, InputContext, MessagePackCodec, OutputContext, Storage,
///     StorageIoManager};
///
/// async fn demo(storage: Arc<dyn Storage>) -> iomanager_core::Result<()> {
/// let manager = StorageIoManager::new(storage, MessagePackCodec::new());
/// let out = OutputContext::builder().asset_key("numbers").build()?;
/// let receipt = manager.handle_output(&out, vec![1u32, 2, 3]).await?;
/// println!("stored at {}", receipt.uri);
/// let input = InputContext::builder().upstream_output(out).build()?;
/// let back: Vec<u32> = manager.load_input(&input).await?;
/// assert_eq!(back, [1, 2, 3]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StorageIoManager<C> {
    storage: Arc<dyn Storage>,
    codec: C,
    layout: PathLayout,
    concurrency: usize,
    put_mode: PutMode,
}

impl<C> StorageIoManager<C> {
    /// A manager over `storage` with `codec`, the default layout, no prefix, and concurrency
    /// [`DEFAULT_CONCURRENCY`].
    pub fn new(storage: Arc<dyn Storage>, codec: C) -> Self {
        Self {
            storage,
            codec,
            layout: PathLayout::default(),
            concurrency: DEFAULT_CONCURRENCY,
            put_mode: PutMode::Overwrite,
        }
    }

    /// Uses `layout` (prefix and preset) for paths.
    #[must_use]
    pub fn with_layout(mut self, layout: PathLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Loads and stores at most `n` partitions at once (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The put mode every write uses (default [`PutMode::Overwrite`]); for example
    /// [`PutMode::CreateOnly`] to never replace a stored output.
    #[must_use]
    pub fn with_put_mode(mut self, mode: PutMode) -> Self {
        self.put_mode = mode;
        self
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// The path layout.
    pub fn layout(&self) -> &PathLayout {
        &self.layout
    }

    /// How many partitions are loaded or stored at once.
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency
    }

    /// The put mode of every write.
    pub fn put_mode(&self) -> &PutMode {
        &self.put_mode
    }

    /// The same manager over another storage (same codec, layout, limits and put mode).
    #[must_use]
    pub fn with_storage(self, storage: Arc<dyn Storage>) -> Self {
        Self { storage, ..self }
    }

    /// The same manager with another codec (same storage, layout, limits and put mode).
    pub fn with_codec<D>(self, codec: D) -> StorageIoManager<D> {
        StorageIoManager {
            storage: self.storage,
            codec,
            layout: self.layout,
            concurrency: self.concurrency,
            put_mode: self.put_mode,
        }
    }
}

impl<C: Send + Sync> StorageIoManager<C> {
    /// Lists the asset names stored under the layout's prefix, for a not-found message.
    async fn existing_assets(&self, ext: &str) -> Option<Box<ExistingObjects>> {
        const LIST_CAP: usize = 1000;
        let base = self.layout.prefix().clone();
        let listed = self.storage.list(&base, Some(LIST_CAP)).await.ok()?;
        let truncated = listed.len() >= LIST_CAP;
        let names: BTreeSet<String> = listed
            .iter()
            .filter_map(|m| self.layout.asset_name_from_path(&m.path, ext))
            .collect();
        Some(Box::new(ExistingObjects {
            base: self.storage.uri(&base),
            total: names.len(),
            names: names.into_iter().take(ExistingObjects::MAX_NAMES).collect(),
            truncated,
        }))
    }
}

/// The storage path of one value, and what error messages should name.
struct Target {
    path: ObjectPath,
    asset: Option<String>,
    partition: Option<String>,
}

impl<C: Send + Sync> StorageIoManager<C> {
    fn target(&self, address: Address<'_>, ext: &str) -> Result<Target> {
        Ok(match address {
            Address::Op(id) => Target {
                path: self.layout.op_path(&id, ext)?,
                asset: None,
                partition: None,
            },
            Address::Asset { key, partition } => Target {
                path: self.layout.asset_path(key, partition, ext)?,
                asset: Some(key.to_string()),
                partition: partition.map(ToString::to_string),
            },
        })
    }

    /// An asset that becomes partitioned has its old unpartitioned object removed, so that the
    /// asset's directory can hold the partitions (Dagster does this on the local disk only).
    async fn remove_unpartitioned(&self, ctx: &OutputContext, ext: &str) -> Result<()> {
        let key = ctx.asset_key()?;
        let old = self.layout.asset_path(key, None, ext)?;
        if self.storage.exists(&old).await? {
            tracing::warn!(
                uri = %self.storage.uri(&old),
                "Found file at {} believed to correspond with previously non-partitioned \
                 version of {key}. Removing it and replacing it with partitioned data files.",
                self.storage.uri(&old)
            );
            self.storage.delete(&old).await?;
        }
        Ok(())
    }
}

/// Hashes and counts the bytes of a stream as it passes through.
fn hashing_stream(
    stream: ByteStream,
    state: Arc<std::sync::Mutex<(xxhash_rust::xxh3::Xxh3, u64)>>,
) -> ByteStream {
    stream
        .inspect_ok(move |chunk| {
            if let Ok(mut s) = state.lock() {
                s.0.update(chunk);
                s.1 += chunk.len() as u64;
            }
        })
        .boxed()
}

#[async_trait]
impl<T, C> IoManager<T> for StorageIoManager<C>
where
    T: Send + 'static,
    C: Codec<T>,
{
    async fn handle_output(&self, ctx: &OutputContext, value: T) -> Result<OutputReceipt> {
        let started = Instant::now();
        let ext = self.codec.extension().to_owned();
        let target = self.target(ctx.address()?, &ext)?;
        let uri = self.storage.uri(&target.path);
        let locate = |e: Error| {
            e.at(
                Some(&uri),
                target.asset.as_deref(),
                target.partition.as_deref(),
            )
        };
        let described = self.codec.describe(&value);
        let opts = PutOptions::with_mode(self.put_mode.clone());

        let (put, sum, bytes) = if self.codec.streams() {
            let stream = self.codec.encode_stream(value).map_err(locate)?;
            if target.partition.is_some() {
                self.remove_unpartitioned(ctx, &ext).await.map_err(locate)?;
            }
            let state = Arc::new(std::sync::Mutex::new((
                xxhash_rust::xxh3::Xxh3::new(),
                0u64,
            )));
            let put = self
                .storage
                .put_stream(&target.path, hashing_stream(stream, state.clone()), &opts)
                .await
                .map_err(locate)?;
            let (hash, n) = state
                .lock()
                .map(|s| (s.0.digest(), s.1))
                .unwrap_or((0, put.bytes));
            (put, format_checksum(hash), n)
        } else {
            // Encode first: a failed encode never touches the stored object.
            let encoded = self.codec.encode(&value).map_err(locate)?;
            if target.partition.is_some() {
                self.remove_unpartitioned(ctx, &ext).await.map_err(locate)?;
            }
            let sum = checksum(&encoded);
            let n = encoded.len() as u64;
            let put = self
                .storage
                .put(&target.path, encoded, &opts)
                .await
                .map_err(locate)?;
            (put, sum, n)
        };

        let mut receipt = OutputReceipt::new(uri.clone());
        receipt.path = Some(target.path.to_string());
        receipt.bytes = bytes;
        receipt.checksum = Some(sum);
        receipt.version = put.version;
        receipt.partition = target.partition.clone();
        receipt.retries = put.retries;
        for (k, v) in described {
            receipt.add(k, v)?;
        }
        receipt.duration = started.elapsed();
        tracing::debug!(%uri, bytes, "Writing file at: {uri} using {}...", self.codec.format());
        Ok(receipt)
    }

    async fn load_input(&self, ctx: &InputContext) -> Result<T> {
        let ext = self.codec.extension().to_owned();
        let target = self.target(ctx.address()?, &ext)?;
        let uri = self.storage.uri(&target.path);
        let locate = |e: Error| {
            e.at(
                Some(&uri),
                target.asset.as_deref(),
                target.partition.as_deref(),
            )
        };
        tracing::debug!(%uri, "Loading file from: {uri} using {}...", self.codec.format());
        let loaded = if self.codec.streams_on_read() {
            match self.storage.get_stream(&target.path).await {
                Ok(stream) => self.codec.decode_stream(stream).await,
                Err(e) => Err(e),
            }
        } else {
            match self.storage.get(&target.path).await {
                Ok(bytes) => self.codec.decode(bytes),
                Err(e) => Err(e),
            }
        };
        match loaded {
            Ok(v) => Ok(v),
            Err(Error::NotFound { at, existing: None })
                if target.asset.is_some() && target.partition.is_none() =>
            {
                let existing = self.existing_assets(&ext).await;
                Err(locate(Error::NotFound { at, existing }))
            }
            Err(e) => Err(locate(e)),
        }
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }
}

/// Implements [`IoManager`] for a backend's named manager (`FsIoManager<C>`, `S3IoManager<C>`)
/// by forwarding every method to its [`StorageIoManager`] field, so each backend writes the
/// forwarding once, here.
///
/// ```
/// use iomanager_core::{MessagePackCodec, StorageIoManager};
///
/// /// A manager for some storage.
/// pub struct MyIoManager<C = MessagePackCodec> {
///     inner: StorageIoManager<C>,
/// }
/// iomanager_core::forward_io_manager!(MyIoManager, inner);
/// ```
#[macro_export]
macro_rules! forward_io_manager {
    ($ty:ident, $field:ident) => {
        #[$crate::async_trait]
        impl<T, C> $crate::IoManager<T> for $ty<C>
        where
            T: Send + 'static,
            C: $crate::Codec<T>,
        {
            async fn handle_output(
                &self,
                ctx: &$crate::OutputContext,
                value: T,
            ) -> $crate::Result<$crate::OutputReceipt> {
                self.$field.handle_output(ctx, value).await
            }

            async fn load_input(&self, ctx: &$crate::InputContext) -> $crate::Result<T> {
                self.$field.load_input(ctx).await
            }

            fn concurrency(&self) -> usize {
                self.$field.concurrency_limit()
            }

            async fn handle_output_partitions(
                &self,
                ctx: &$crate::OutputContext,
                values: $crate::PartitionMap<T>,
            ) -> $crate::Result<$crate::PartitionMap<$crate::OutputReceipt>> {
                self.$field.handle_output_partitions(ctx, values).await
            }

            async fn load_partitions(
                &self,
                ctx: &$crate::InputContext,
            ) -> $crate::Result<$crate::PartitionMap<T>> {
                self.$field.load_partitions(ctx).await
            }
        }
    };
}

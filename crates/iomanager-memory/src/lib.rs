//! # iomanager-memory
//!
//! Two in-memory backends:
//!
//! - [`MemoryIoManager`] keeps values as they are, without serializing them (Dagster's
//!   `InMemoryIOManager`, but keyed by asset key and partition for assets, so partitions work,
//!   and with a not-found error that lists what is stored instead of a bare `KeyError`).
//! - [`MemoryStorage`] keeps bytes: the reference [`Storage`] every other backend is compared
//!   with, supporting every put mode.
//!
//! ```
//! use iomanager_core::{IoManager, InputContext, OutputContext};
//! use iomanager_memory::MemoryIoManager;
//!
//! # async fn demo() -> iomanager_core::Result<()> {
//! let manager = MemoryIoManager::new();
//! let out = OutputContext::builder().asset_key("numbers").build()?;
//! manager.handle_output(&out, vec![1, 2, 3]).await?;
//! let input = InputContext::builder().upstream_output(out).build()?;
//! let back: Vec<i32> = manager.load_input(&input).await?;
//! assert_eq!(back, [1, 2, 3]);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::any::{Any, type_name};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use iomanager_core::storage::{check_put, slice_range, under_prefix};
use iomanager_core::{
    Address, AssetKey, Capabilities, Error, ExistingObjects, InputContext, IoManager, Location,
    ObjectMeta, ObjectPath, OutputContext, OutputReceipt, PartitionKey, PutMode, PutOptions,
    PutResult, Result, Storage,
};

/// The uri scheme of in-memory objects.
const SCHEME: &str = "memory://";

fn poisoned() -> Error {
    Error::Runtime {
        message: "an in-memory store's lock was poisoned by a panic".into(),
    }
}

#[derive(Debug, Clone)]
struct Object {
    bytes: Bytes,
    version: u64,
    modified: DateTime<Utc>,
}

/// Bytes in memory: the reference [`Storage`]. Puts are atomic (a value is swapped in under a
/// lock), every put mode is supported, and versions are a per-store counter.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: RwLock<BTreeMap<ObjectPath, Object>>,
    next_version: AtomicU64,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store behind an `Arc<dyn Storage>`.
    pub fn shared() -> Arc<dyn Storage> {
        Arc::new(Self::new())
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.objects.read().map(|m| m.len()).unwrap_or(0)
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the stored bytes of `path` without any check: for tests that simulate
    /// corruption. Returns false when nothing is stored there.
    pub fn corrupt(&self, path: &ObjectPath, bytes: Bytes) -> bool {
        match self.objects.write() {
            Ok(mut m) => match m.get_mut(path) {
                Some(o) => {
                    o.bytes = bytes;
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    fn meta(path: &ObjectPath, o: &Object) -> ObjectMeta {
        ObjectMeta {
            path: path.clone(),
            size: o.bytes.len() as u64,
            modified: Some(o.modified),
            version: Some(o.version.to_string()),
        }
    }

    fn read(&self, path: &ObjectPath) -> Result<Object> {
        let map = self.objects.read().map_err(|_| poisoned())?;
        map.get(path)
            .cloned()
            .ok_or_else(|| Error::not_found(self.uri(path)))
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create_only: true,
            if_version: true,
        }
    }

    fn uri(&self, path: &ObjectPath) -> String {
        format!("{SCHEME}/{path}")
    }

    async fn put(&self, path: &ObjectPath, bytes: Bytes, opts: &PutOptions) -> Result<PutResult> {
        check_put(self.name(), self.capabilities(), path, &opts.mode)?;
        let mut map = self.objects.write().map_err(|_| poisoned())?;
        match (&opts.mode, map.get(path)) {
            (PutMode::Overwrite, _) => {}
            (PutMode::CreateOnly, None) => {}
            (PutMode::CreateOnly, Some(_)) => {
                return Err(Error::PreconditionFailed {
                    at: Location::uri(self.uri(path)).into(),
                    reason: "create-only put, but an object already exists".into(),
                });
            }
            (PutMode::IfVersion(want), Some(o)) if o.version.to_string() == *want => {}
            (PutMode::IfVersion(want), found) => {
                return Err(Error::PreconditionFailed {
                    at: Location::uri(self.uri(path)).into(),
                    reason: format!(
                        "expected version {want}, found {}",
                        found
                            .map(|o| o.version.to_string())
                            .unwrap_or_else(|| "nothing".into())
                    ),
                });
            }
        }
        let version = self.next_version.fetch_add(1, Ordering::SeqCst) + 1;
        let size = bytes.len() as u64;
        map.insert(
            path.clone(),
            Object {
                bytes,
                version,
                modified: Utc::now(),
            },
        );
        Ok(PutResult {
            version: Some(version.to_string()),
            bytes: size,
            retries: 0,
        })
    }

    async fn get(&self, path: &ObjectPath) -> Result<Bytes> {
        Ok(self.read(path)?.bytes)
    }

    async fn get_range(&self, path: &ObjectPath, range: Range<u64>) -> Result<Bytes> {
        Ok(slice_range(&self.read(path)?.bytes, range))
    }

    async fn head(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        let o = self.read(path)?;
        Ok(Self::meta(path, &o))
    }

    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.objects.write().map_err(|_| poisoned())?.remove(path);
        Ok(())
    }

    async fn list(&self, prefix: &ObjectPath, limit: Option<usize>) -> Result<Vec<ObjectMeta>> {
        let map = self.objects.read().map_err(|_| poisoned())?;
        Ok(map
            .range(prefix.clone()..)
            .skip_while(|(p, _)| !under_prefix(p, prefix))
            .take_while(|(p, _)| under_prefix(p, prefix))
            .filter(|(p, _)| *p != prefix)
            .take(limit.unwrap_or(usize::MAX))
            .map(|(p, o)| Self::meta(p, o))
            .collect())
    }
}

/// Where [`MemoryIoManager`] keeps a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    Asset(AssetKey, Option<PartitionKey>),
    Op(Vec<String>),
}

impl Slot {
    fn describe(&self) -> String {
        match self {
            Slot::Asset(k, None) => k.to_string(),
            Slot::Asset(k, Some(p)) => format!("{k} [{p}]"),
            Slot::Op(id) => format!("op output {}", id.join("/")),
        }
    }

    fn uri(&self) -> String {
        match self {
            Slot::Asset(k, None) => format!("{SCHEME}/asset/{k}"),
            Slot::Asset(k, Some(p)) => format!("{SCHEME}/asset/{k}/{p}"),
            Slot::Op(id) => format!("{SCHEME}/op/{}", id.join("/")),
        }
    }
}

struct Stored {
    value: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

/// Keeps values in memory without serializing them, keyed by asset key and partition for
/// assets and by the output identifier (`run_id/step/name[/mapping_key]`) for op outputs.
///
/// One manager stores values of any `T: Clone + Send + Sync + 'static`; loading with another
/// type gives [`Error::TypeMismatch`] naming both types. Values live as long as the manager, in
/// this process only.
#[derive(Default)]
pub struct MemoryIoManager {
    values: RwLock<HashMap<Slot, Stored>>,
}

impl std::fmt::Debug for MemoryIoManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryIoManager")
            .field("values", &self.len())
            .finish()
    }
}

impl MemoryIoManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.values.read().map(|m| m.len()).unwrap_or(0)
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every value.
    pub fn clear(&self) {
        if let Ok(mut m) = self.values.write() {
            m.clear();
        }
    }

    fn slot_for(address: Address<'_>) -> Result<Slot> {
        Ok(match address {
            Address::Asset { key, partition } => Slot::Asset(key.clone(), partition.cloned()),
            Address::Op(id) => Slot::Op(id.identifier()?),
        })
    }

    fn not_found(&self, slot: &Slot) -> Error {
        let mut names: Vec<String> = self
            .values
            .read()
            .map(|m| m.keys().map(Slot::describe).collect())
            .unwrap_or_default();
        names.sort();
        let total = names.len();
        names.truncate(ExistingObjects::MAX_NAMES);
        let (asset, partition) = match slot {
            Slot::Asset(k, p) => (Some(k.to_string()), p.as_ref().map(ToString::to_string)),
            Slot::Op(_) => (None, None),
        };
        Error::NotFound {
            at: Box::new(Location {
                uri: Some(slot.uri()),
                asset,
                partition,
            }),
            existing: Some(Box::new(ExistingObjects {
                base: format!("{SCHEME}/ (MemoryIoManager)"),
                names,
                total,
                truncated: false,
            })),
        }
    }
}

#[async_trait]
impl<T> IoManager<T> for MemoryIoManager
where
    T: Clone + Send + Sync + 'static,
{
    async fn handle_output(&self, ctx: &OutputContext, value: T) -> Result<OutputReceipt> {
        let started = std::time::Instant::now();
        let slot = Self::slot_for(ctx.address()?)?;
        let mut receipt = OutputReceipt::new(slot.uri());
        if let Slot::Asset(_, Some(p)) = &slot {
            receipt.partition = Some(p.to_string());
        }
        let stored = Stored {
            value: Arc::new(value),
            type_name: type_name::<T>(),
        };
        self.values
            .write()
            .map_err(|_| poisoned())?
            .insert(slot, stored);
        receipt.duration = started.elapsed();
        Ok(receipt)
    }

    async fn load_input(&self, ctx: &InputContext) -> Result<T> {
        let slot = Self::slot_for(ctx.address()?)?;
        let found = {
            let map = self.values.read().map_err(|_| poisoned())?;
            map.get(&slot).map(|s| (s.value.clone(), s.type_name))
        };
        let Some((value, stored_type)) = found else {
            return Err(self.not_found(&slot));
        };
        match value.downcast_ref::<T>() {
            Some(v) => Ok(v.clone()),
            None => Err(Error::TypeMismatch {
                at: Box::new(Location {
                    uri: Some(slot.uri()),
                    asset: match &slot {
                        Slot::Asset(k, _) => Some(k.to_string()),
                        Slot::Op(_) => None,
                    },
                    partition: match &slot {
                        Slot::Asset(_, p) => p.as_ref().map(ToString::to_string),
                        Slot::Op(_) => None,
                    },
                }),
                expected: type_name::<T>().to_owned(),
                found: stored_type.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iomanager_testkit::{Sample, manager_suite, storage_manager_suite, storage_suite};

    storage_suite!(memory_storage, || async { MemoryStorage::shared() });
    manager_suite!(memory_io_manager, || async {
        std::sync::Arc::new(MemoryIoManager::new()) as std::sync::Arc<dyn IoManager<Sample>>
    });
    storage_manager_suite!(storage_io_manager_over_memory, || async {
        MemoryStorage::shared()
    });

    #[tokio::test]
    async fn type_mismatch_names_both_types() {
        let m = MemoryIoManager::new();
        let out = OutputContext::builder().asset_key("a").build().unwrap();
        m.handle_output(&out, 5u32).await.unwrap();
        let input = InputContext::builder()
            .upstream_output(out)
            .build()
            .unwrap();
        let err = IoManager::<String>::load_input(&m, &input)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("u32") && text.contains("String"), "{text}");
    }

    #[tokio::test]
    async fn missing_value_lists_what_is_stored() {
        let m = MemoryIoManager::new();
        let out = OutputContext::builder()
            .asset_key("present")
            .build()
            .unwrap();
        m.handle_output(&out, 1u8).await.unwrap();
        let input = InputContext::builder().asset_key("absent").build().unwrap();
        let err = IoManager::<u8>::load_input(&m, &input).await.unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("present"), "{err}");
    }
}

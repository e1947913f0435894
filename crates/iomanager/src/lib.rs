//! # iomanager
//!
//! Dagster's I/O manager system for Rust. A pipeline hands iomanager what a step produced and
//! gets it back, typed, in the steps that consume it; iomanager decides where and how the value
//! lives.
//!
//! ## Three layers, each written once
//!
//! ```text
//!               IoManager<T>            typed values in and out, per context
//!              /            \
//!  StorageIoManager<C>     SqlIoManager     MemoryIoManager
//!   = Storage + Codec<T>   (tables)         (values, no bytes)
//!   + PathLayout
//!       |        \
//!    Storage     Codec<T>
//!    (bytes)     (format)
//! ```
//!
//! - A [`Storage`] moves bytes at a path ([`MemoryStorage`], `FsStorage` for local files; S3,
//!   GCS and Azure Blob in their own crates).
//! - A [`Codec`] turns a value into bytes and back ([`MessagePackCodec`] by default, with a
//!   checksum so corruption is detected, never returned as a wrong value).
//! - An [`IoManager`] is what a pipeline sees. [`StorageIoManager`] is Dagster's
//!   `UPathIOManager` over any storage and codec: asset and op-output paths, partitions, the
//!   missing-partition policy and the receipt, once for every backend.
//!
//! ## Example
//!
//! ```
//! use iomanager::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> iomanager::Result<()> {
//! let manager = StorageIoManager::new(MemoryStorage::shared(), MessagePackCodec::new());
//!
//! // Store two daily partitions of an asset.
//! let daily = PartitionsDefinition::daily("2024-01-01")?;
//! for (day, total) in [("2024-01-01", 10u64), ("2024-01-02", 12)] {
//!     let out = OutputContext::builder()
//!         .asset_key(["sales", "daily_total"])
//!         .partitions_def(daily.clone())
//!         .partition(day)
//!         .build()?;
//!     let receipt = manager.handle_output(&out, total).await?;
//!     assert!(receipt.uri.ends_with(day));
//! }
//!
//! // A downstream step loads both, concurrently, in selection order.
//! let input = InputContext::builder()
//!     .asset_key(["sales", "daily_total"])
//!     .partitions_def(daily)
//!     .partition_range("2024-01-01", "2024-01-02")
//!     .build()?;
//! let totals: PartitionMap<u64> = manager.load_partitions(&input).await?;
//! assert_eq!(totals.values().sum::<u64>(), 22);
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! | feature | adds |
//! |---|---|
//! | *(always)* | core types, [`MemoryIoManager`], [`MemoryStorage`], MessagePack |
//! | `fs` *(default)* | `FsStorage`, `FsIoManager`: crash-safe local files |
//! | `s3` | `s3::S3Storage`, `s3::S3IoManager` on aws-sdk-s3 |
//! | `object-store` | `object_store::ObjectStoreStorage` over any `object_store` store |
//! | `full` | every backend available in this build |
//!
//! Backends for local files, S3, GCS, Azure Blob, Parquet, JSON Lines and SQL join this table
//! as their crates land.
#![forbid(unsafe_code)]

pub use iomanager_core::*;
pub use iomanager_memory::{MemoryIoManager, MemoryStorage};

/// The local filesystem backend (feature `fs`, on by default).
#[cfg(feature = "fs")]
pub mod fs {
    pub use iomanager_fs::*;
}

#[cfg(feature = "fs")]
pub use iomanager_fs::{FsIoManager, FsStorage};

/// Amazon S3 and S3-compatible stores (feature `s3`).
#[cfg(feature = "s3")]
pub mod s3 {
    pub use iomanager_s3::*;
}

/// Any `object_store` store as a [`Storage`] (feature `object-store`).
#[cfg(feature = "object-store")]
pub mod object_store {
    pub use iomanager_object_store::*;
}

/// The in-memory backends.
pub mod memory {
    pub use iomanager_memory::*;
}

/// Everything a pipeline usually needs, for `use iomanager::prelude::*`.
pub mod prelude {
    pub use iomanager_core::{
        AssetKey, Codec, InputContext, IoManager, MessagePackCodec, OutputContext, OutputReceipt,
        PartitionKey, PartitionMap, PartitionsDefinition, Storage, StorageIoManager,
        TimeWindowPartitions,
    };
    pub use iomanager_memory::{MemoryIoManager, MemoryStorage};

    #[cfg(feature = "fs")]
    pub use iomanager_fs::{FsIoManager, FsStorage};
}

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

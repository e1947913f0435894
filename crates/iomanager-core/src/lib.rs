//! # iomanager-core
//!
//! The core of iomanager: asset keys, partitions, the contexts a pipeline hands to an I/O
//! manager, the exact path layout, the one [`Error`] type, the [`Storage`], [`Codec`] and
//! [`IoManager`] traits, [`StorageIoManager`] (Dagster's `UPathIOManager` over any storage and
//! codec), the retry wrapper, the MessagePack codec and the blocking facade.
//!
//! ```text
//!               IoManager<T>            typed values in and out, per context
//!              /            \
//!  StorageIoManager<C>     SqlIoManager     MemoryIoManager
//!   = Storage + Codec<T>   (tables)         (values, no bytes)
//!   + PathLayout
//! ```
//!
//! This crate depends on no cloud SDK, no Arrow and no SQL driver.
#![forbid(unsafe_code)]

pub mod blocking;
pub mod codec;
pub mod context;
pub mod error;
pub mod key;
pub mod manager;
pub mod partitions;
pub mod path;
pub mod receipt;
pub mod retry;
pub mod storage;

pub use blocking::BlockingIoManager;
pub use codec::{BytesCodec, Codec, MessagePackCodec};
pub use context::{
    Address, EPHEMERAL_RUN_ID, InputContext, InputContextBuilder, Metadata, OutputContext,
    OutputContextBuilder, PartitionSelection,
};
pub use error::{BoxError, Error, ErrorKind, ExistingObjects, Location, Result};
pub use key::{AssetKey, PartitionKey};
pub use manager::{DEFAULT_CONCURRENCY, IoManager, PartitionMap, StorageIoManager};
pub use partitions::{
    Cadence, MultiPartitions, PartitionsDefinition, StaticPartitions, TimeWindow,
    TimeWindowPartitions,
};
pub use path::{LayoutPreset, ObjectPath, OutputId, PathLayout};
pub use receipt::{MetadataValue, OutputReceipt};
pub use retry::{RetryPolicy, RetryStorage};
pub use storage::{ByteStream, Capabilities, ObjectMeta, PutMode, PutOptions, PutResult, Storage};

/// Re-exported so implementors of the traits use the same versions.
pub use async_trait::async_trait;
pub use bytes::Bytes;

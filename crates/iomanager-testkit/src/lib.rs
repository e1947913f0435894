//! # iomanager-testkit
//!
//! The behaviour of iomanager, written once: conformance suites that every storage, codec and
//! manager runs against the real thing.
//!
//! - [`storage`]: put/get/list/delete, ranges, large streamed objects, special characters,
//!   atomic overwrite, put modes, not-found.
//! - [`codec`]: round trips, and corrupt or truncated bytes giving `Error::Corrupted`.
//! - [`manager`]: asset paths, partitions, multi-dimensional partitions, missing partitions,
//!   op outputs, receipts; [`storage_manager`] adds what `StorageIoManager` promises over a
//!   storage (exact paths, transition to partitioned, corruption, retries, bounded concurrency).
//! - [`faults`]: wrappers that inject transient failures or count calls; [`proxy`]: an HTTP/1.1
//!   proxy that injects faults (dropped connections, 500/503/429, cut-off responses, delays)
//!   between a cloud SDK and its loopback service.
//!
//! Each suite is a set of plain `async fn`s plus a macro that gives one named `#[test]` per
//! behaviour:
//!
//! ```text
//! iomanager_testkit::storage_suite!(memory, || async { MemoryStorage::shared() });
//! ```
#![forbid(unsafe_code)]

pub mod codec;
pub mod faults;
pub mod manager;
pub mod proxy;
pub mod storage;
pub mod storage_manager;

use serde::{Deserialize, Serialize};

/// A value with a handful of fields, used by the manager suites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// An id.
    pub id: u64,
    /// A name.
    pub name: String,
    /// Some numbers.
    pub values: Vec<f64>,
    /// An optional tag.
    pub tag: Option<String>,
}

impl Sample {
    /// A sample whose fields derive from `id`.
    pub fn new(id: u64) -> Self {
        Self {
            id,
            name: format!("sample-{id}"),
            values: (0..4).map(|i| (id * 10 + i) as f64 / 3.0).collect(),
            tag: id.is_multiple_of(2).then(|| format!("even-{id}")),
        }
    }
}

/// Runs a future to completion on a fresh multi-threaded runtime (what the suite macros use, so
/// crates that run the suites need no runtime dependency of their own).
pub fn run<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the test runtime starts")
        .block_on(fut)
}

/// Generates one `#[test]` per listed suite function in a module named `$name`.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($name:ident, $factory:expr, $module:ident, [$($test:ident),* $(,)?]) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $test() {
                    $crate::run(async {
                        let made = ($factory)().await;
                        $crate::$module::$test(made).await;
                    });
                }
            )*
        }
    };
}

/// Runs every storage behaviour against storages made by `$factory` (an async closure returning
/// `Arc<dyn Storage>`; each test gets a fresh, empty one).
#[macro_export]
macro_rules! storage_suite {
    ($name:ident, $factory:expr) => {
        $crate::__suite!(
            $name,
            $factory,
            storage,
            [
                put_get_round_trip,
                empty_object,
                get_missing_is_not_found,
                head_reports_size_and_version,
                exists_is_exact_not_prefix,
                delete_removes_and_missing_is_ok,
                list_is_directory_scoped_sorted_and_limited,
                ranged_reads,
                large_object_streams,
                special_characters_round_trip,
                overwrite_is_atomic_for_readers,
                create_only_mode,
                if_version_mode,
            ]
        );
    };
}

/// Runs every manager behaviour against managers made by `$factory` (an async closure returning
/// `Arc<dyn IoManager<Sample>>`; each test gets a fresh one).
#[macro_export]
macro_rules! manager_suite {
    ($name:ident, $factory:expr) => {
        $crate::__suite!(
            $name,
            $factory,
            manager,
            [
                asset_round_trip,
                nested_asset_keys_are_distinct,
                overwrite_replaces,
                missing_asset_is_not_found,
                op_outputs_by_identifier,
                mapping_keys_are_distinct,
                versioned_outputs,
                partitions_are_separate,
                multi_dimensional_partitions,
                load_partitions_keeps_selection_order,
                zero_partitions_load_nothing,
                missing_partition_fails_naming_it,
                allow_missing_partitions_skips_exactly_missing,
                load_input_of_several_partitions_is_an_error,
                output_spanning_partitions_needs_a_map,
                handle_output_partitions_stores_each,
                handle_output_partitions_rejects_wrong_keys,
            ]
        );
    };
}

/// Runs what `StorageIoManager` promises over a storage made by `$factory` (an async closure
/// returning `Arc<dyn Storage>`): the manager suite with the MessagePack codec, plus exact
/// paths, transitions, corruption, failed encodes, retries and bounded concurrency.
#[macro_export]
macro_rules! storage_manager_suite {
    ($name:ident, $factory:expr) => {
        $crate::__suite!(
            $name,
            $factory,
            storage_manager,
            [
                manager_suite_over_storage,
                asset_paths_are_exact,
                op_output_paths_are_exact,
                prefix_is_applied,
                becoming_partitioned_removes_the_old_object,
                missing_asset_lists_existing_assets,
                corrupted_object_is_reported,
                failed_encode_keeps_old_object,
                receipt_matches_stored_object,
                transient_errors_are_retried_and_counted,
                partitions_load_concurrently_within_the_limit,
                zero_partitions_touch_no_storage,
                corrupted_partition_fails_even_when_missing_allowed,
                create_only_manager_never_overwrites,
            ]
        );
    };
}

/// Runs the codec behaviours: `$codec` is an expression giving the codec, `$ty` the value type,
/// `$samples` an expression giving a `Vec<$ty>` of values to round-trip (compared with `==`).
#[macro_export]
macro_rules! codec_suite {
    ($name:ident, $codec:expr, $ty:ty, $samples:expr) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn round_trips() {
                $crate::codec::round_trips::<$ty, _>(&$codec, $samples);
            }

            #[test]
            fn truncation_is_corrupted() {
                $crate::codec::truncation_is_corrupted::<$ty, _>(&$codec, $samples);
            }

            #[test]
            fn bit_flips_are_corrupted() {
                $crate::codec::bit_flips_are_corrupted::<$ty, _>(&$codec, $samples);
            }

            #[test]
            fn garbage_is_corrupted() {
                $crate::codec::garbage_is_corrupted::<$ty, _>(&$codec);
            }

            #[test]
            fn stream_round_trips() {
                $crate::run($crate::codec::stream_round_trips::<$ty, _>(
                    &$codec, $samples,
                ));
            }
        }
    };
}

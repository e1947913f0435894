//! What [`StorageIoManager`] promises over any storage: the manager suite with the MessagePack
//! codec, plus exact paths, transitions, corruption, failed encodes, retries and bounded
//! concurrency.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iomanager_core::{
    Codec, ErrorKind, InputContext, IoManager, LayoutPreset, MessagePackCodec, ObjectPath,
    OutputContext, PartitionKey, PartitionsDefinition, PathLayout, PutMode, PutOptions,
    RetryPolicy, RetryStorage, Storage, StorageIoManager,
};

use crate::Sample;
use crate::faults::{CountingStorage, FlakyStorage};
use crate::manager::{self, asset_out, daily_in, daily_out, input_of, op_out};
use crate::storage::p;

fn msgpack(s: Arc<dyn Storage>) -> StorageIoManager<MessagePackCodec> {
    StorageIoManager::new(s, MessagePackCodec::new())
}

/// Every manager behaviour, through `StorageIoManager<MessagePackCodec>` over the storage.
pub async fn manager_suite_over_storage(s: Arc<dyn Storage>) {
    // One storage, each behaviour under its own prefix so they cannot see each other.
    type Behaviour = fn(manager::Manager) -> futures::future::BoxFuture<'static, ()>;
    macro_rules! b {
        ($f:path) => {
            (stringify!($f), (|m| Box::pin($f(m))) as Behaviour)
        };
    }
    let behaviours: Vec<(&str, Behaviour)> = vec![
        b!(manager::asset_round_trip),
        b!(manager::nested_asset_keys_are_distinct),
        b!(manager::overwrite_replaces),
        b!(manager::missing_asset_is_not_found),
        b!(manager::op_outputs_by_identifier),
        b!(manager::mapping_keys_are_distinct),
        b!(manager::versioned_outputs),
        b!(manager::partitions_are_separate),
        b!(manager::multi_dimensional_partitions),
        b!(manager::load_partitions_keeps_selection_order),
        b!(manager::zero_partitions_load_nothing),
        b!(manager::missing_partition_fails_naming_it),
        b!(manager::allow_missing_partitions_skips_exactly_missing),
        b!(manager::load_input_of_several_partitions_is_an_error),
        b!(manager::output_spanning_partitions_needs_a_map),
        b!(manager::handle_output_partitions_stores_each),
        b!(manager::handle_output_partitions_rejects_wrong_keys),
    ];
    for (i, (_name, behaviour)) in behaviours.into_iter().enumerate() {
        let layout = PathLayout::default()
            .with_prefix(&format!("suite{i}"))
            .unwrap();
        let m = msgpack(s.clone()).with_layout(layout);
        behaviour(Arc::new(m)).await;
    }
}

async fn stored_paths(s: &Arc<dyn Storage>) -> Vec<String> {
    s.list(&ObjectPath::root(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect()
}

/// Asset paths follow DESIGN.md: `<key...>`, `<key...>/<partition>`, one segment per dimension
/// ordered by dimension name, unsafe characters encoded.
pub async fn asset_paths_are_exact(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    m.handle_output(&asset_out("a/b"), Sample::new(1))
        .await
        .unwrap();
    m.handle_output(&daily_out("daily", "2024-01-02"), Sample::new(2))
        .await
        .unwrap();
    let def = PartitionsDefinition::multi([
        ("zeta", PartitionsDefinition::static_keys(["z1"]).unwrap()),
        ("alpha", PartitionsDefinition::static_keys(["a1"]).unwrap()),
    ])
    .unwrap();
    let out = OutputContext::builder()
        .asset_key("multi")
        .partitions_def(def)
        .partition(PartitionKey::multi([("zeta", "z1"), ("alpha", "a1")]).unwrap())
        .build()
        .unwrap();
    m.handle_output(&out, Sample::new(3)).await.unwrap();
    m.handle_output(&asset_out("my.asset"), Sample::new(4))
        .await
        .unwrap();
    let escape = OutputContext::builder()
        .asset_key(["..", "x/y"])
        .build()
        .unwrap();
    m.handle_output(&escape, Sample::new(5)).await.unwrap();
    let mut want = vec![
        "%2E./x%2Fy",
        "a/b",
        "daily/2024-01-02",
        "multi/a1/z1",
        "my.asset",
    ];
    want.sort();
    assert_eq!(stored_paths(&s).await, want);
}

/// Op outputs follow `storage/<run>/files/<step>/<name>[/<mapping>]` and the versioned layout;
/// the Dagster presets give Dagster's own paths.
pub async fn op_output_paths_are_exact(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    m.handle_output(
        &op_out("R", "step", "result").build().unwrap(),
        Sample::new(1),
    )
    .await
    .unwrap();
    let dynamic = op_out("R", "dyn", "result")
        .mapping_key("mk")
        .build()
        .unwrap();
    m.handle_output(&dynamic, Sample::new(2)).await.unwrap();
    let versioned = op_out("R", "s", "o").version("v7").build().unwrap();
    m.handle_output(&versioned, Sample::new(3)).await.unwrap();
    let fs = msgpack(s.clone()).with_layout(
        PathLayout::new(LayoutPreset::DagsterFs)
            .with_prefix("fs")
            .unwrap(),
    );
    fs.handle_output(
        &op_out("R", "echo[foo]", "result").build().unwrap(),
        Sample::new(4),
    )
    .await
    .unwrap();
    let s3 = msgpack(s.clone()).with_layout(
        PathLayout::new(LayoutPreset::DagsterS3)
            .with_prefix("s3")
            .unwrap(),
    );
    s3.handle_output(
        &op_out("R", "echo[foo]", "result")
            .mapping_key("mk")
            .build()
            .unwrap(),
        Sample::new(5),
    )
    .await
    .unwrap();
    let mut want = vec![
        "storage/R/files/step/result",
        "storage/R/files/dyn/result/mk",
        "storage/versioned_outputs/v7/s/o",
        "fs/R/echo[foo]/result",
        "s3/storage/R/echo--foo/result/mk",
    ];
    want.sort();
    assert_eq!(stored_paths(&s).await, want);
}

/// A prefix puts everything under it, and a prefix cannot climb out of the base.
pub async fn prefix_is_applied(s: Arc<dyn Storage>) {
    let layout = PathLayout::default().with_prefix("dagster/../x").unwrap();
    let m = msgpack(s.clone()).with_layout(layout);
    m.handle_output(&asset_out("a"), Sample::new(1))
        .await
        .unwrap();
    assert_eq!(stored_paths(&s).await, ["dagster/%2E./x/a"]);
}

/// Writing a partition of an asset that was stored unpartitioned removes the old object.
pub async fn becoming_partitioned_removes_the_old_object(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    m.handle_output(&asset_out("n"), Sample::new(1))
        .await
        .unwrap();
    m.handle_output(&daily_out("n", "2024-01-01"), Sample::new(2))
        .await
        .unwrap();
    assert_eq!(stored_paths(&s).await, ["n/2024-01-01"]);
    let got: Sample = m
        .load_input(&daily_in("n", &["2024-01-01"], false))
        .await
        .unwrap();
    assert_eq!(got, Sample::new(2));
}

/// A missing asset's error lists at most 20 existing assets and their count.
pub async fn missing_asset_lists_existing_assets(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    for i in 0..25 {
        m.handle_output(&asset_out(&format!("asset_{i:02}")), Sample::new(i))
            .await
            .unwrap();
    }
    m.handle_output(&op_out("R", "s", "o").build().unwrap(), Sample::new(0))
        .await
        .unwrap();
    let err = IoManager::<Sample>::load_input(&m, &input_of(&asset_out("asset_x")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let text = err.to_string();
    assert!(text.contains("25 asset(s)"), "{text}");
    assert!(
        text.contains("asset_00") && text.contains("asset_19"),
        "{text}"
    );
    assert!(!text.contains("asset_20"), "at most 20 names: {text}");
    assert!(
        !text.contains("storage"),
        "op outputs are not assets: {text}"
    );
    assert!(
        text.contains(&s.uri(&p("asset_x"))),
        "names the uri: {text}"
    );
}

/// Damaged stored bytes give `Corrupted`, naming the uri and the asset.
pub async fn corrupted_object_is_reported(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    m.handle_output(&asset_out("c"), Sample::new(1))
        .await
        .unwrap();
    let stored = s.get(&p("c")).await.unwrap();
    let mut flipped = stored.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let cases = [
        ("truncated", stored.slice(..stored.len() / 2)),
        ("flipped", Bytes::from(flipped)),
        ("garbage", Bytes::from_static(b"definitely not msgpack")),
    ];
    for (what, bytes) in cases {
        s.put(&p("c"), bytes, &PutOptions::default()).await.unwrap();
        let err = IoManager::<Sample>::load_input(&m, &input_of(&asset_out("c")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&s.uri(&p("c"))) && text.contains("asset `c`"),
            "{what}: {text}"
        );
    }
}

/// A value whose encoding fails.
#[derive(Debug, Clone)]
pub struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be encoded"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unencodable)
    }
}

/// A failed encode is `Encode`, and the object stored before is untouched.
pub async fn failed_encode_keeps_old_object(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    let out = asset_out("keep");
    IoManager::<Sample>::handle_output(&m, &out, Sample::new(1))
        .await
        .unwrap();
    let before = s.get(&p("keep")).await.unwrap();
    let err = IoManager::<Unencodable>::handle_output(&m, &out, Unencodable)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(s.get(&p("keep")).await.unwrap(), before);
    // Also when the asset is partitioned: the transition must not remove the old object first.
    let err =
        IoManager::<Unencodable>::handle_output(&m, &daily_out("keep", "2024-01-01"), Unencodable)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode);
    assert_eq!(s.get(&p("keep")).await.unwrap(), before);
}

/// The receipt's size, checksum and version match what is stored.
pub async fn receipt_matches_stored_object(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    let r = m
        .handle_output(&daily_out("r", "2024-01-01"), Sample::new(1))
        .await
        .unwrap();
    let path = p("r/2024-01-01");
    let stored = s.get(&path).await.unwrap();
    assert_eq!(r.uri, s.uri(&path), "the uri includes the partition");
    assert_eq!(r.path.as_deref(), Some("r/2024-01-01"));
    assert_eq!(r.bytes, stored.len() as u64);
    assert_eq!(
        r.checksum.as_deref(),
        Some(iomanager_core::receipt::checksum(&stored).as_str())
    );
    assert_eq!(r.version, s.head(&path).await.unwrap().version);
    assert_eq!(r.partition.as_deref(), Some("2024-01-01"));
    assert_eq!(r.retries, 0);
    let encoded = Codec::<Sample>::encode(&MessagePackCodec::new(), &Sample::new(1)).unwrap();
    assert_eq!(stored, encoded);
}

/// Transient failures are retried by `RetryStorage` and counted in the receipt.
pub async fn transient_errors_are_retried_and_counted(s: Arc<dyn Storage>) {
    let flaky = Arc::new(FlakyStorage::new(s.clone(), 2));
    let policy = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
    };
    let m = msgpack(Arc::new(RetryStorage::new(flaky, policy)));
    let out = asset_out("flaky");
    let r = m.handle_output(&out, Sample::new(1)).await.unwrap();
    assert_eq!(r.retries, 2);
    assert_eq!(
        IoManager::<Sample>::load_input(&m, &input_of(&out))
            .await
            .unwrap(),
        Sample::new(1)
    );
    // Without retries the same faults surface as a retryable error.
    let bare = msgpack(Arc::new(FlakyStorage::new(s, 1)));
    let err = bare.handle_output(&out, Sample::new(1)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

/// Partitions load concurrently, never more at once than the limit.
pub async fn partitions_load_concurrently_within_the_limit(s: Arc<dyn Storage>) {
    let writer = msgpack(s.clone());
    let days: Vec<String> = (1..=24).map(|d| format!("2024-01-{d:02}")).collect();
    for (i, d) in days.iter().enumerate() {
        writer
            .handle_output(&daily_out("conc", d), Sample::new(i as u64))
            .await
            .unwrap();
    }
    let counting = Arc::new(CountingStorage::new(s, Duration::from_millis(20)));
    let m = msgpack(counting.clone()).with_concurrency(4);
    let sel: Vec<&str> = days.iter().map(String::as_str).collect();
    let map: iomanager_core::PartitionMap<Sample> = m
        .load_partitions(&daily_in("conc", &sel, false))
        .await
        .unwrap();
    assert_eq!(map.len(), 24);
    let max = counting.max_in_flight();
    assert!(max > 1, "partitions were loaded one at a time");
    assert!(max <= 4, "{max} loads in flight with a limit of 4");
}

/// An empty selection makes no storage call at all.
pub async fn zero_partitions_touch_no_storage(s: Arc<dyn Storage>) {
    let counting = Arc::new(CountingStorage::new(s, Duration::ZERO));
    let m = msgpack(counting.clone());
    let map: iomanager_core::PartitionMap<Sample> = m
        .load_partitions(&daily_in("none", &[], true))
        .await
        .unwrap();
    assert!(map.is_empty());
    assert_eq!(counting.calls(), 0);
}

/// `allow_missing_partitions` skips only what is not found: a corrupt partition still fails.
pub async fn corrupted_partition_fails_even_when_missing_allowed(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone());
    m.handle_output(&daily_out("mixed", "2024-01-01"), Sample::new(1))
        .await
        .unwrap();
    s.put(
        &p("mixed/2024-01-02"),
        Bytes::from_static(b"junk"),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let err = IoManager::<Sample>::load_partitions(
        &m,
        &daily_in("mixed", &["2024-01-01", "2024-01-02", "2024-01-03"], true),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
    assert!(err.to_string().contains("2024-01-02"), "{err}");
}

/// A create-only manager never replaces a stored output (or says the storage cannot promise
/// it), and the first value stays.
pub async fn create_only_manager_never_overwrites(s: Arc<dyn Storage>) {
    let m = msgpack(s.clone()).with_put_mode(PutMode::CreateOnly);
    let out = asset_out("once");
    let first = m.handle_output(&out, Sample::new(1)).await;
    if !s.capabilities().create_only {
        assert_eq!(first.unwrap_err().kind(), ErrorKind::Unsupported);
        return;
    }
    first.unwrap();
    let err = m.handle_output(&out, Sample::new(2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    let input: InputContext = input_of(&out);
    assert_eq!(
        IoManager::<Sample>::load_input(&m, &input).await.unwrap(),
        Sample::new(1)
    );
}

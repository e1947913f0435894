//! The manager suite: what every [`IoManager`] does with assets, partitions and op outputs.

use std::sync::Arc;

use iomanager_core::{
    ErrorKind, InputContext, IoManager, OutputContext, PartitionKey, PartitionMap,
    PartitionsDefinition,
};

use crate::Sample;

/// The manager type every suite function takes.
pub type Manager = Arc<dyn IoManager<Sample>>;

/// A daily partitions definition starting 2024-01-01.
pub fn daily() -> PartitionsDefinition {
    PartitionsDefinition::daily("2024-01-01").unwrap()
}

/// An output context for asset `key` (`a/b` form).
pub fn asset_out(key: &str) -> OutputContext {
    OutputContext::builder().asset_key(key).build().unwrap()
}

/// An input context reading `out`.
pub fn input_of(out: &OutputContext) -> InputContext {
    InputContext::builder()
        .name("input")
        .upstream_output(out.clone())
        .build()
        .unwrap()
}

/// An output context for one daily partition of `key`.
pub fn daily_out(key: &str, day: &str) -> OutputContext {
    OutputContext::builder()
        .asset_key(key)
        .partitions_def(daily())
        .partition(day)
        .build()
        .unwrap()
}

/// An input context reading the given partitions of `key`.
pub fn daily_in(key: &str, days: &[&str], allow_missing: bool) -> InputContext {
    InputContext::builder()
        .name("input")
        .asset_key(key)
        .partitions_def(daily())
        .partitions(days.iter().copied())
        .allow_missing_partitions(allow_missing)
        .build()
        .unwrap()
}

/// An op output context.
pub fn op_out(run: &str, step: &str, name: &str) -> iomanager_core::OutputContextBuilder {
    OutputContext::builder()
        .run_id(run)
        .step_key(step)
        .name(name)
}

/// Stores and loads an asset; the receipt names where it went.
pub async fn asset_round_trip(m: Manager) {
    let out = asset_out("sales/daily");
    let receipt = m.handle_output(&out, Sample::new(1)).await.unwrap();
    assert!(!receipt.uri.is_empty());
    assert_eq!(receipt.partition, None);
    assert_eq!(m.load_input(&input_of(&out)).await.unwrap(), Sample::new(1));
}

/// `a/b` and `a_b` and `a` are three different assets.
pub async fn nested_asset_keys_are_distinct(m: Manager) {
    for (i, key) in ["a/b", "a_b", "b", "a/c"].iter().enumerate() {
        m.handle_output(&asset_out(key), Sample::new(i as u64))
            .await
            .unwrap();
    }
    for (i, key) in ["a/b", "a_b", "b", "a/c"].iter().enumerate() {
        let got = m.load_input(&input_of(&asset_out(key))).await.unwrap();
        assert_eq!(got, Sample::new(i as u64), "asset {key}");
    }
}

/// A second materialization replaces the first.
pub async fn overwrite_replaces(m: Manager) {
    let out = asset_out("x");
    m.handle_output(&out, Sample::new(1)).await.unwrap();
    m.handle_output(&out, Sample::new(2)).await.unwrap();
    assert_eq!(m.load_input(&input_of(&out)).await.unwrap(), Sample::new(2));
}

/// Loading an asset that was never stored is `NotFound`, naming the asset.
pub async fn missing_asset_is_not_found(m: Manager) {
    m.handle_output(&asset_out("present"), Sample::new(1))
        .await
        .unwrap();
    let err = m
        .load_input(&input_of(&asset_out("absent")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert!(text.contains("absent"), "the error names the asset: {text}");
    assert!(
        text.contains("present"),
        "the error lists what exists: {text}"
    );
}

/// Op outputs are keyed by run, step and name.
pub async fn op_outputs_by_identifier(m: Manager) {
    let a = op_out("run1", "step", "result").build().unwrap();
    let b = op_out("run2", "step", "result").build().unwrap();
    let c = op_out("run1", "step", "other").build().unwrap();
    m.handle_output(&a, Sample::new(1)).await.unwrap();
    m.handle_output(&b, Sample::new(2)).await.unwrap();
    m.handle_output(&c, Sample::new(3)).await.unwrap();
    assert_eq!(m.load_input(&input_of(&a)).await.unwrap(), Sample::new(1));
    assert_eq!(m.load_input(&input_of(&b)).await.unwrap(), Sample::new(2));
    assert_eq!(m.load_input(&input_of(&c)).await.unwrap(), Sample::new(3));
    let missing = op_out("run3", "step", "result").build().unwrap();
    assert_eq!(
        m.load_input(&input_of(&missing)).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Each mapping key of a dynamic output is its own value.
pub async fn mapping_keys_are_distinct(m: Manager) {
    for k in ["a", "b", "c"] {
        let out = op_out("r", "dyn", "result").mapping_key(k).build().unwrap();
        m.handle_output(&out, Sample::new(k.len() as u64 + k.as_bytes()[0] as u64))
            .await
            .unwrap();
    }
    for k in ["a", "b", "c"] {
        let out = op_out("r", "dyn", "result").mapping_key(k).build().unwrap();
        let got = m.load_input(&input_of(&out)).await.unwrap();
        assert_eq!(got, Sample::new(k.len() as u64 + k.as_bytes()[0] as u64));
    }
}

/// A versioned output is found by version, whatever the run; version plus mapping key fails.
pub async fn versioned_outputs(m: Manager) {
    let out = op_out("run1", "s", "o").version("v1").build().unwrap();
    m.handle_output(&out, Sample::new(9)).await.unwrap();
    let other_run = op_out("run2", "s", "o").version("v1").build().unwrap();
    assert_eq!(
        m.load_input(&input_of(&other_run)).await.unwrap(),
        Sample::new(9)
    );
    let bad = op_out("run1", "s", "o")
        .version("v1")
        .mapping_key("k")
        .build()
        .unwrap();
    let err = m.handle_output(&bad, Sample::new(1)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Mapping key and version both provided"),
        "{err}"
    );
}

/// Partitions of one asset are stored separately and load as bare values.
pub async fn partitions_are_separate(m: Manager) {
    for (i, d) in ["2024-01-01", "2024-01-02"].iter().enumerate() {
        let r = m
            .handle_output(&daily_out("p", d), Sample::new(i as u64))
            .await
            .unwrap();
        assert_eq!(r.partition.as_deref(), Some(*d));
    }
    let got = m
        .load_input(&daily_in("p", &["2024-01-02"], false))
        .await
        .unwrap();
    assert_eq!(got, Sample::new(1));
}

/// Multi-dimensional partitions store and load by their full key.
pub async fn multi_dimensional_partitions(m: Manager) {
    let def = PartitionsDefinition::multi([
        ("date", daily()),
        (
            "color",
            PartitionsDefinition::static_keys(["red", "blue"]).unwrap(),
        ),
    ])
    .unwrap();
    let key = |c: &str, d: &str| PartitionKey::multi([("color", c), ("date", d)]).unwrap();
    let mut n = 0;
    for c in ["red", "blue"] {
        for d in ["2024-01-01", "2024-01-02"] {
            let out = OutputContext::builder()
                .asset_key("m")
                .partitions_def(def.clone())
                .partition(key(c, d))
                .build()
                .unwrap();
            m.handle_output(&out, Sample::new(n)).await.unwrap();
            n += 1;
        }
    }
    let input = InputContext::builder()
        .asset_key("m")
        .partitions_def(def)
        .partitions([key("blue", "2024-01-02"), key("red", "2024-01-01")])
        .build()
        .unwrap();
    let map = m.load_partitions(&input).await.unwrap();
    let got: Vec<(String, u64)> = map.iter().map(|(k, v)| (k.to_string(), v.id)).collect();
    assert_eq!(
        got,
        [
            ("blue|2024-01-02".to_string(), 3),
            ("red|2024-01-01".to_string(), 0)
        ]
    );
}

/// Several partitions load into a map ordered as the selection, not as stored.
pub async fn load_partitions_keeps_selection_order(m: Manager) {
    let days: Vec<String> = (1..=20).map(|d| format!("2024-01-{d:02}")).collect();
    for (i, d) in days.iter().enumerate() {
        m.handle_output(&daily_out("ordered", d), Sample::new(i as u64))
            .await
            .unwrap();
    }
    let mut selection: Vec<&str> = days.iter().map(String::as_str).collect();
    selection.reverse();
    let map = m
        .load_partitions(&daily_in("ordered", &selection, false))
        .await
        .unwrap();
    let keys: Vec<String> = map.keys().map(ToString::to_string).collect();
    assert_eq!(keys, selection);
    for (k, v) in &map {
        let i = days.iter().position(|d| *d == k.to_string()).unwrap();
        assert_eq!(
            *v,
            Sample::new(i as u64),
            "partition {k} got another's value"
        );
    }
}

/// An empty selection loads an empty map.
pub async fn zero_partitions_load_nothing(m: Manager) {
    let map = m
        .load_partitions(&daily_in("never", &[], false))
        .await
        .unwrap();
    assert!(map.is_empty());
}

/// Without `allow_missing_partitions`, a missing partition fails and the error names it.
pub async fn missing_partition_fails_naming_it(m: Manager) {
    m.handle_output(&daily_out("gappy", "2024-01-01"), Sample::new(1))
        .await
        .unwrap();
    let err = m
        .load_partitions(&daily_in("gappy", &["2024-01-01", "2024-01-02"], false))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("2024-01-02"),
        "names the partition: {err}"
    );
    let err = m
        .load_input(&daily_in("gappy", &["2024-01-03"], false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2024-01-03"), "{err}");
}

/// With `allow_missing_partitions`, exactly the missing partitions are skipped and the others
/// keep their own values.
pub async fn allow_missing_partitions_skips_exactly_missing(m: Manager) {
    for (i, d) in ["2024-01-02", "2024-01-04"].iter().enumerate() {
        m.handle_output(&daily_out("holes", d), Sample::new(i as u64))
            .await
            .unwrap();
    }
    let sel = [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ];
    let map = m
        .load_partitions(&daily_in("holes", &sel, true))
        .await
        .unwrap();
    let got: Vec<(String, u64)> = map.iter().map(|(k, v)| (k.to_string(), v.id)).collect();
    assert_eq!(
        got,
        [("2024-01-02".to_string(), 0), ("2024-01-04".to_string(), 1)]
    );
}

/// `load_input` of several partitions is an error that points at `load_partitions`.
pub async fn load_input_of_several_partitions_is_an_error(m: Manager) {
    m.handle_output(&daily_out("two", "2024-01-01"), Sample::new(1))
        .await
        .unwrap();
    let err = m
        .load_input(&daily_in("two", &["2024-01-01", "2024-01-02"], false))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContext, "{err}");
    assert!(err.to_string().contains("load_partitions"), "{err}");
}

/// A single value for an output spanning several partitions is refused, storing nothing.
pub async fn output_spanning_partitions_needs_a_map(m: Manager) {
    let out = OutputContext::builder()
        .asset_key("span")
        .partitions_def(daily())
        .partition_range("2024-01-01", "2024-01-03")
        .build()
        .unwrap();
    let err = m.handle_output(&out, Sample::new(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContext, "{err}");
    assert!(
        err.to_string().contains("handle_output_partitions"),
        "{err}"
    );
    let err = m
        .load_input(&daily_in("span", &["2024-01-01"], false))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// A map of partition to value stores one object per partition.
pub async fn handle_output_partitions_stores_each(m: Manager) {
    let out = OutputContext::builder()
        .asset_key("backfill")
        .partitions_def(daily())
        .partition_range("2024-01-01", "2024-01-03")
        .build()
        .unwrap();
    let values: PartitionMap<Sample> = ["2024-01-01", "2024-01-02", "2024-01-03"]
        .iter()
        .enumerate()
        .map(|(i, d)| (PartitionKey::from(*d), Sample::new(i as u64)))
        .collect();
    let receipts = m.handle_output_partitions(&out, values).await.unwrap();
    assert_eq!(receipts.len(), 3);
    assert_eq!(receipts[1].partition.as_deref(), Some("2024-01-02"));
    let got = m
        .load_input(&daily_in("backfill", &["2024-01-03"], false))
        .await
        .unwrap();
    assert_eq!(got, Sample::new(2));
}

/// A map whose keys differ from the output's partitions is refused, naming the difference.
pub async fn handle_output_partitions_rejects_wrong_keys(m: Manager) {
    let out = OutputContext::builder()
        .asset_key("wrong")
        .partitions_def(daily())
        .partition_range("2024-01-01", "2024-01-02")
        .build()
        .unwrap();
    let values: PartitionMap<Sample> = [
        (PartitionKey::from("2024-01-01"), Sample::new(1)),
        (PartitionKey::from("2024-01-05"), Sample::new(5)),
    ]
    .into_iter()
    .collect();
    let err = m.handle_output_partitions(&out, values).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("2024-01-02") && text.contains("2024-01-05"),
        "{text}"
    );
    let err = m
        .load_input(&daily_in("wrong", &["2024-01-01"], false))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "nothing was stored");
}

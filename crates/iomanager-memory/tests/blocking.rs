//! The blocking facade over a real manager.

use std::sync::Arc;

use iomanager_core::{
    BlockingIoManager, ErrorKind, InputContext, IoManager, MessagePackCodec, OutputContext,
    PartitionsDefinition, StorageIoManager,
};
use iomanager_memory::{MemoryIoManager, MemoryStorage};

#[test]
fn stores_and_loads_without_a_runtime() {
    let inner: Arc<dyn IoManager<Vec<String>>> = Arc::new(StorageIoManager::new(
        MemoryStorage::shared(),
        MessagePackCodec::new(),
    ));
    let blocking = BlockingIoManager::new(inner).unwrap();
    let out = OutputContext::builder().asset_key("words").build().unwrap();
    let receipt = blocking
        .handle_output(&out, vec!["a".into(), "b".into()])
        .unwrap();
    assert!(receipt.bytes > 0);
    let input = InputContext::builder()
        .upstream_output(out)
        .build()
        .unwrap();
    assert_eq!(blocking.load_input(&input).unwrap(), ["a", "b"]);
}

#[test]
fn loads_partitions_without_a_runtime() {
    let inner: Arc<dyn IoManager<u32>> = Arc::new(MemoryIoManager::new());
    let blocking = BlockingIoManager::new(inner).unwrap();
    let def = PartitionsDefinition::daily("2024-01-01").unwrap();
    for (i, day) in ["2024-01-01", "2024-01-02"].iter().enumerate() {
        let out = OutputContext::builder()
            .asset_key("n")
            .partitions_def(def.clone())
            .partition(*day)
            .build()
            .unwrap();
        blocking.handle_output(&out, i as u32).unwrap();
    }
    let input = InputContext::builder()
        .asset_key("n")
        .partitions_def(def)
        .partition_range("2024-01-01", "2024-01-02")
        .build()
        .unwrap();
    let map = blocking.load_partitions(&input).unwrap();
    assert_eq!(map.values().copied().collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn refuses_to_run_inside_an_async_runtime() {
    let inner: Arc<dyn IoManager<u32>> = Arc::new(MemoryIoManager::new());
    let blocking = BlockingIoManager::new(inner.clone()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let err = BlockingIoManager::new(inner).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Runtime);
        let out = OutputContext::builder().asset_key("x").build().unwrap();
        let err = blocking.handle_output(&out, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Runtime);
        assert!(err.to_string().contains(".await"), "{err}");
    });
    drop(blocking);
}

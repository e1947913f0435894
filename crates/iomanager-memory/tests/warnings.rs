//! Skipping a missing partition under `allow_missing_partitions` logs a warning naming it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use iomanager_core::{
    InputContext, IoManager, MessagePackCodec, OutputContext, PartitionMap, PartitionsDefinition,
    StorageIoManager,
};
use iomanager_memory::MemoryStorage;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_skipped_partition_is_named_in_a_warning() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let m = StorageIoManager::new(MemoryStorage::shared(), MessagePackCodec::new());
            let def = PartitionsDefinition::daily("2024-01-01").unwrap();
            let out = OutputContext::builder()
                .asset_key("a")
                .partitions_def(def.clone())
                .partition("2024-01-02")
                .build()
                .unwrap();
            m.handle_output(&out, 2u8).await.unwrap();
            let input = InputContext::builder()
                .asset_key("a")
                .partitions_def(def)
                .partition_range("2024-01-01", "2024-01-03")
                .allow_missing_partitions(true)
                .build()
                .unwrap();
            let map: PartitionMap<u8> = m.load_partitions(&input).await.unwrap();
            assert_eq!(map.len(), 1);
        });
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for day in ["2024-01-01", "2024-01-03"] {
        assert!(
            text.contains(&format!("Couldn't load partition {day} and skipped it")),
            "no warning for {day}: {text}"
        );
    }
    assert!(!text.contains("partition 2024-01-02 and skipped"), "{text}");
    assert_eq!(text.matches("WARN").count(), 2, "{text}");
}

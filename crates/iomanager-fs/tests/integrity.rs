//! Corruption on disk is detected, and concurrent writers and readers of one key never see a
//! partial or mixed value.

use std::collections::HashSet;
use std::sync::Arc;

use iomanager_core::{ErrorKind, InputContext, IoManager, OutputContext};
use iomanager_fs::FsIoManager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Value {
    id: u64,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

fn value(id: u64, len: usize) -> Value {
    Value {
        id,
        body: vec![(id % 251) as u8; len],
    }
}

fn consistent(v: &Value, len: usize) -> bool {
    v.body.len() == len && v.body.iter().all(|b| *b == (v.id % 251) as u8)
}

fn out() -> OutputContext {
    OutputContext::builder()
        .asset_key(["table", "rows"])
        .build()
        .unwrap()
}

fn input() -> InputContext {
    InputContext::builder()
        .upstream_output(out())
        .build()
        .unwrap()
}

#[tokio::test]
async fn damaged_files_are_corrupted_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let m = FsIoManager::new(dir.path()).unwrap();
    let receipt = m.handle_output(&out(), value(7, 4096)).await.unwrap();
    let file = m.storage().base().join("table").join("rows");
    let good = std::fs::read(&file).unwrap();
    assert_eq!(receipt.bytes, good.len() as u64);

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    let mut flipped_header = good.clone();
    flipped_header[6] ^= 0x80;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("truncated to nothing", Vec::new()),
        ("one payload byte flipped", flipped),
        ("one header byte flipped", flipped_header),
        (
            "replaced by garbage",
            b"\x89PNG\r\n\x1a\n not what was stored".to_vec(),
        ),
        ("grown by a byte", [good.as_slice(), &[0]].concat()),
    ];
    for (what, bytes) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let err = IoManager::<Value>::load_input(&m, &input())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&file.display().to_string()),
            "{what}: names the file: {text}"
        );
        assert!(
            text.contains("asset `table/rows`"),
            "{what}: names the asset: {text}"
        );
    }
    // Storing again repairs it.
    std::fs::write(&file, &good).unwrap();
    let repaired: Value = m.load_input(&input()).await.unwrap();
    assert_eq!(repaired, value(7, 4096));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_see_only_complete_values() {
    const WRITERS: u64 = 8;
    const WRITES_EACH: u64 = 15;
    const LEN: usize = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let m = Arc::new(FsIoManager::new(dir.path()).unwrap());
    m.handle_output(&out(), value(0, LEN)).await.unwrap();
    let written: HashSet<u64> = std::iter::once(0)
        .chain((0..WRITERS).flat_map(|w| (0..WRITES_EACH).map(move |i| 1 + w * 1000 + i)))
        .collect();

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (m, done, written) = (m.clone(), done.clone(), written.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let v: Value = m
                    .load_input(&input())
                    .await
                    .expect("a read failed mid-write");
                assert!(consistent(&v, LEN), "a read saw a partial or mixed value");
                assert!(
                    written.contains(&v.id),
                    "a read saw a value nobody wrote: {}",
                    v.id
                );
                reads += 1;
            }
            reads
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let m = m.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES_EACH {
                m.handle_output(&out(), value(1 + w * 1000 + i, LEN))
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    let last: Value = m.load_input(&input()).await.unwrap();
    assert!(consistent(&last, LEN));
    assert!(
        written.contains(&last.id) && last.id != 0,
        "the final value is one that was written"
    );
    // No temporary file is left behind by the writers.
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("table"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1);
    eprintln!(
        "{} writes and {reads} concurrent reads, all complete",
        WRITERS * WRITES_EACH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_stream_to_disk_and_back() {
    use bytes::Bytes;
    use iomanager_core::BytesCodec;
    let dir = tempfile::tempdir().unwrap();
    let m = FsIoManager::new(dir.path()).unwrap().with_codec(BytesCodec);
    let blob = Bytes::from(
        (0..20 * 1024 * 1024)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>(),
    );
    let receipt = m.handle_output(&out(), blob.clone()).await.unwrap();
    let file = dir.path().join("table").join("rows");
    let stored = std::fs::read(&file).unwrap();
    assert_eq!(receipt.bytes, stored.len() as u64);
    assert_eq!(receipt.bytes, blob.len() as u64 + 21);
    assert_eq!(
        receipt.checksum.as_deref(),
        Some(iomanager_core::receipt::checksum(&stored).as_str())
    );
    let back: Bytes = m.load_input(&input()).await.unwrap();
    assert_eq!(back, blob);
    // A flipped bit in the stored blob is detected.
    let mut damaged = stored;
    damaged[1_000_000] ^= 4;
    std::fs::write(&file, damaged).unwrap();
    let err = IoManager::<Bytes>::load_input(&m, &input())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
}

//! A 2 GiB object goes to disk and back through the streaming API without the process holding
//! it: peak RSS grows by a bounded amount (the chunks in flight), far below the object's size.
//!
//! Alone in its own test binary, so no other test's allocations disturb the measurement.

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{ObjectPath, PutOptions, Storage};
use iomanager_fs::FsStorage;

const CHUNK: usize = 8 * 1024 * 1024;
const CHUNKS: usize = 256; // 2 GiB
/// The bound the test asserts: chunks in flight and buffers, nowhere near 2 GiB.
const LIMIT: u64 = 256 * 1024 * 1024;

fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Resets the peak resident set and returns the current one.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    status("VmRSS:")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gib_stream_to_disk_and_back_in_bounded_memory() {
    let storage = FsStorage::temporary().unwrap().non_durable();
    let path = ObjectPath::parse("huge/object").unwrap();

    let before = reset_peak();
    // Each chunk is made when the storage asks for it and dropped once written.
    let chunks = futures::stream::iter(0..CHUNKS)
        .map(|i| Ok(Bytes::from(vec![(i % 251) as u8; CHUNK])))
        .boxed();
    let res = storage
        .put_stream(&path, chunks, &PutOptions::default())
        .await
        .unwrap();
    let store_extra = status("VmHWM:").saturating_sub(before);
    assert_eq!(res.bytes, (CHUNK * CHUNKS) as u64);

    let before = reset_peak();
    let mut stream = storage.get_stream(&path).await.unwrap();
    let (mut total, mut index) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (j, b) in chunk.iter().enumerate().step_by(4096) {
            let expected = (((index + j) / CHUNK) % 251) as u8;
            assert_eq!(*b, expected, "byte {} is wrong", index + j);
        }
        index += chunk.len();
        total += chunk.len();
    }
    let load_extra = status("VmHWM:").saturating_sub(before);
    assert_eq!(total, CHUNK * CHUNKS);
    eprintln!(
        "2 GiB: peak RSS +{} MiB storing, +{} MiB loading",
        store_extra >> 20,
        load_extra >> 20
    );
    assert!(
        store_extra < LIMIT,
        "storing 2 GiB grew RSS by {} MiB",
        store_extra >> 20
    );
    assert!(
        load_extra < LIMIT,
        "loading 2 GiB grew RSS by {} MiB",
        load_extra >> 20
    );
}

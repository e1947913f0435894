//! A writer killed with SIGKILL at random points never leaves a partial object: the key holds
//! the complete old value or the complete new one.
//!
//! The test re-runs its own test binary as the writer (`writer_process`, selected with
//! `--exact` and an environment variable), kills it after a random delay, and checks what is
//! stored. Without the temporary-file-and-rename write, a kill mid-write leaves a truncated file
//! and the check fails.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{
    Codec, InputContext, IoManager, MessagePackCodec, ObjectPath, OutputContext, PutOptions,
    Storage,
};
use iomanager_fs::{FsIoManager, FsStorage};
use serde::{Deserialize, Serialize};

/// Where the writer process writes; set only in the child.
const CHILD_ENV: &str = "IOMANAGER_KILL_TEST_DIR";
/// The first generation the writer process writes.
const START_ENV: &str = "IOMANAGER_KILL_TEST_START";
/// Bytes per payload: 16 MiB values (stored as MessagePack binary, so encoding is a copy and
/// most of a write's time is spent writing), large enough that kills land mid-write.
const WORDS: usize = 16 * 1024 * 1024;
const KILLS: usize = 40;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    generation: u64,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

fn fill(generation: u64) -> u8 {
    (generation % 251) as u8
}

fn payload(generation: u64) -> Payload {
    Payload {
        generation,
        data: vec![fill(generation); WORDS],
    }
}

fn out_ctx() -> OutputContext {
    OutputContext::builder()
        .asset_key(["big", "object"])
        .build()
        .unwrap()
}

fn in_ctx() -> InputContext {
    InputContext::builder()
        .upstream_output(out_ctx())
        .build()
        .unwrap()
}

/// Writes generations `start`, `start + 1`, … to the same key until killed: even ones through the manager (a
/// whole-object put), odd ones streamed through the storage in 256 KiB chunks from a slow
/// producer (1 ms between chunks), so that many kills land while the object is half written.
async fn write_forever(dir: &Path, start: u64) {
    let storage = FsStorage::new(dir).unwrap();
    let manager = FsIoManager::from_storage(storage.clone(), MessagePackCodec::new());
    let path = ObjectPath::parse("big/object").unwrap();
    for generation in start.. {
        if generation % 2 == 0 {
            manager
                .handle_output(&out_ctx(), payload(generation))
                .await
                .unwrap();
        } else {
            let bytes =
                Codec::<Payload>::encode(&MessagePackCodec::new(), &payload(generation)).unwrap();
            let chunks: Vec<Bytes> = bytes
                .chunks(256 * 1024)
                .map(Bytes::copy_from_slice)
                .collect();
            let slow = futures::stream::iter(chunks).then(|c| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(c)
            });
            storage
                .put_stream(&path, slow.boxed(), &PutOptions::default())
                .await
                .unwrap();
        }
    }
}

/// The writer process's entry point. Run as part of the normal suite (without the environment
/// variable) it checks that a payload round-trips through the manager, which the kill test's
/// verdicts rely on.
#[test]
fn writer_process() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => {
            let start = std::env::var(START_ENV)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            rt.block_on(write_forever(Path::new(&dir), start))
        }
        None => rt.block_on(async {
            let storage = FsStorage::temporary().unwrap();
            let m = FsIoManager::from_storage(storage, MessagePackCodec::new());
            m.handle_output(&out_ctx(), payload(3)).await.unwrap();
            let back: Payload = m.load_input(&in_ctx()).await.unwrap();
            assert_eq!(back, payload(3));
        }),
    }
}

#[test]
fn sigkill_mid_write_leaves_old_or_new_value() {
    let storage = FsStorage::temporary().unwrap();
    let dir = storage.base().to_path_buf();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let manager = FsIoManager::from_storage(storage.clone(), MessagePackCodec::new());
    rt.block_on(manager.handle_output(&out_ctx(), payload(0)))
        .unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut last_generation = 0;
    let mut advanced = 0;
    let mut leftovers = std::collections::BTreeSet::new();
    let started = Instant::now();
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "writer_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env(START_ENV, (last_generation + 1).to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Random points: from before the first write completes to several writes in.
        let delay = Duration::from_millis(rand::random_range(10..400));
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let loaded: Payload = rt
            .block_on(manager.load_input(&in_ctx()))
            .unwrap_or_else(|e| panic!("round {round} (killed after {delay:?}): {e}"));
        assert_eq!(loaded.data.len(), WORDS, "round {round}: a partial value");
        assert!(
            loaded.data.iter().all(|w| *w == fill(loaded.generation)),
            "round {round}: a value mixing generations"
        );
        assert!(
            loaded.generation >= last_generation,
            "round {round}: went back in time"
        );
        if loaded.generation > last_generation {
            advanced += 1;
        }
        last_generation = loaded.generation;

        // A killed write may leave a temporary file: never listed, never loaded.
        let listed = rt
            .block_on(storage.list(&ObjectPath::root(), None))
            .unwrap();
        let names: Vec<String> = listed.iter().map(|m| m.path.to_string()).collect();
        assert_eq!(names, ["big/object"], "round {round}");
        for entry in std::fs::read_dir(dir.join("big")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(iomanager_fs::TMP_PREFIX) {
                leftovers.insert(path);
            }
        }
    }
    let leftovers_seen = leftovers.len();
    let report = rt.block_on(storage.cleanup(Duration::ZERO)).unwrap();
    assert_eq!(report.removed, leftovers.into_iter().collect::<Vec<_>>());
    let after = std::fs::read_dir(dir.join("big")).unwrap().count();
    assert_eq!(after, 1, "cleanup leaves only the object");
    assert!(
        advanced > 0,
        "the writer never completed a write; the test proved nothing"
    );
    assert!(
        leftovers_seen > 0,
        "no kill landed mid-write; the test proved nothing"
    );
    eprintln!(
        "{KILLS} kills in {:?}: value advanced {advanced} times, {leftovers_seen} temporary \
         files left by killed writers and swept by cleanup",
        started.elapsed()
    );
}

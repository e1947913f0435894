//! `S3IoManager` under injected faults: a [`FaultProxy`] between the manager and moto drops
//! connections, answers 500, 503 `SlowDown` and 429, cuts responses short and delays requests,
//! with a fixed seed, during a bounded workload of 500 stores and loads. Every operation must
//! succeed, every load must return exactly what was last stored under its key, and no multipart
//! upload may be left open.
//!
//! moto is started on 127.0.0.1 by `cargo xtask test`, which passes its endpoint in
//! `IOMANAGER_TEST_S3_ENDPOINT`. Without it this test fails (it is never skipped silently).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iomanager_core::{BytesCodec, IoManager, OutputReceipt, RetryPolicy};
use iomanager_s3::{S3Config, S3IoManager, S3Storage};
use iomanager_testkit::Sample;
use iomanager_testkit::manager::{asset_out, daily_in, daily_out, input_of};
use iomanager_testkit::proxy::{FaultProxy, Faults};

const SECRET: &str = "moto-test-secret-d41d8cd98f00";
const MIB: u64 = 1024 * 1024;

/// Operations in the workload.
const OPS: usize = 500;
/// Keys of each kind.
const SMALL_KEYS: u64 = 24;
const MEDIUM_KEYS: u64 = 6;
const LARGE_KEYS: usize = 2;
const NUMBER_KEYS: usize = 2;
const DAYS: u64 = 10;

fn endpoint() -> String {
    std::env::var("IOMANAGER_TEST_S3_ENDPOINT").expect(
        "IOMANAGER_TEST_S3_ENDPOINT is not set: run the tests with `cargo xtask test`, which \
         starts moto on 127.0.0.1 and sets it",
    )
}

/// moto's socket address, for the proxy (which only forwards to loopback).
fn moto_addr() -> SocketAddr {
    let url = endpoint();
    let host_port = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    host_port
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("cannot resolve IOMANAGER_TEST_S3_ENDPOINT {url}: {e}"))
        .find(|a| a.ip().is_loopback())
        .unwrap_or_else(|| panic!("IOMANAGER_TEST_S3_ENDPOINT {url} is not on 127.0.0.1"))
}

fn config(bucket: &str, endpoint: &str) -> S3Config {
    S3Config::new(bucket)
        .endpoint_url(endpoint)
        .region("us-east-1")
        .path_style(true)
        .static_credentials("testing", SECRET)
        // Small parts, so that the ~12 MiB values go up as three parts.
        .multipart(5 * MIB, 5 * MIB)
        .timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .retry(RetryPolicy {
            max_retries: 8,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(200),
            multiplier: 2.0,
        })
}

fn faults() -> Faults {
    Faults {
        drop_connection: 0.05,
        internal_error: 0.05,
        slow_down: 0.05,
        too_many_requests: 0.03,
        truncate_response: 0.03,
        delay: 0.05,
        delay_for: Duration::from_millis(50),
        seed: 0x104D_A7A5,
    }
}

/// xorshift64: the workload's plan and contents, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` bytes that differ for every `seed`.
fn blob(len: usize, seed: u64) -> Bytes {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// What one operation does.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// A `Sample` at `small/s<i>` (MessagePack).
    Small(u64),
    /// 64 KiB – 1 MiB of bytes at `medium/m<i>` (streamed put, one PUT).
    Medium(u64),
    /// ~12 MiB of bytes at `large/l<i>` (streamed put, multipart).
    Large(usize),
    /// ~6.5 MiB of MessagePack numbers at `numbers/n<i>` (replayable put, multipart).
    Numbers(usize),
    /// One daily partition of `events` (MessagePack).
    Partition(u64),
    /// Several partitions of `events` in one `load_partitions`.
    Partitions,
}

/// What was last stored under each key; a load must return exactly that.
#[derive(Default)]
struct Expected {
    small: Vec<Option<Sample>>,
    medium: Vec<Option<Bytes>>,
    large: Vec<Option<Bytes>>,
    numbers: Vec<Option<Vec<u64>>>,
    days: Vec<Option<Sample>>,
}

/// Tallies for the report.
#[derive(Debug, Default)]
struct Tally {
    stores: u64,
    loads: u64,
    store_retries: u64,
    retried_stores: u64,
    multipart_stores: u64,
}

impl Tally {
    fn stored(&mut self, r: &OutputReceipt) {
        self.stores += 1;
        self.store_retries += u64::from(r.retries);
        if r.retries > 0 {
            self.retried_stores += 1;
        }
    }
}

fn day(i: u64) -> String {
    format!("2024-01-{:02}", i + 1)
}

/// The operations, fixed by a seed: mostly small values, some medium ones, a handful of large
/// multipart ones at fixed places, and partitions stored one by one and loaded several at once.
fn plan() -> Vec<Op> {
    let mut rng = Rng::new(42);
    (0..OPS)
        .map(|i| match i % 50 {
            20 => Op::Large((i / 50) % LARGE_KEYS),
            45 => Op::Numbers((i / 50) % NUMBER_KEYS),
            _ => match rng.below(100) {
                0..58 => Op::Small(rng.below(SMALL_KEYS)),
                58..76 => Op::Medium(rng.below(MEDIUM_KEYS)),
                76..92 => Op::Partition(rng.below(DAYS)),
                _ => Op::Partitions,
            },
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_workload_survives_injected_faults() {
    let started = Instant::now();
    let bucket = format!(
        "faults-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 & 0xffff_ffff_ffff)
            .unwrap_or(0)
    );
    // The bucket is made, and checked at the end, on moto directly.
    let direct = S3Storage::new(config(&bucket, &endpoint())).await.unwrap();
    direct
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();

    let proxy = FaultProxy::start(moto_addr(), faults()).await.unwrap();
    // Connecting goes through the proxy too, so its check must survive the faults as well.
    let msgpack = S3IoManager::connect(config(&bucket, &proxy.url()))
        .await
        .unwrap_or_else(|e| panic!("connect through the proxy: {e}; {}", proxy.stats()));
    let blobs = S3IoManager::from_storage(msgpack.storage().clone(), BytesCodec).unwrap();

    let mut expected = Expected {
        small: vec![None; SMALL_KEYS as usize],
        medium: vec![None; MEDIUM_KEYS as usize],
        large: vec![None; LARGE_KEYS],
        numbers: vec![None; NUMBER_KEYS],
        days: vec![None; DAYS as usize],
    };
    let mut tally = Tally::default();
    let mut rng = Rng::new(7);

    for (i, op) in plan().into_iter().enumerate() {
        // Every store writes a value of its own.
        let version = i as u64 + 1;
        // A load of a key never stored becomes a store; otherwise stores and loads alternate at
        // random.
        let stored = match &op {
            Op::Small(k) => expected.small[*k as usize].is_some(),
            Op::Medium(k) => expected.medium[*k as usize].is_some(),
            Op::Large(k) => expected.large[*k].is_some(),
            Op::Numbers(k) => expected.numbers[*k].is_some(),
            Op::Partition(d) => expected.days[*d as usize].is_some(),
            Op::Partitions => expected.days.iter().any(Option::is_some),
        };
        let load = stored && (op == Op::Partitions || rng.below(2) == 0);
        let op = if op == Op::Partitions && !stored {
            Op::Partition(rng.below(DAYS))
        } else {
            op
        };
        let result: iomanager_core::Result<()> = async {
            match (&op, load) {
                (Op::Small(k), false) => {
                    let value = Sample::new(version);
                    let out = asset_out(&format!("small/s{k}"));
                    tally.stored(&msgpack.handle_output(&out, value.clone()).await?);
                    expected.small[*k as usize] = Some(value);
                }
                (Op::Small(k), true) => {
                    let input = input_of(&asset_out(&format!("small/s{k}")));
                    let got: Sample = msgpack.load_input(&input).await?;
                    tally.loads += 1;
                    assert_eq!(Some(&got), expected.small[*k as usize].as_ref(), "op {i}");
                }
                (Op::Medium(k), false) => {
                    let len = (64 * 1024 + rng.below(960 * 1024)) as usize;
                    let value = blob(len, version);
                    let out = asset_out(&format!("medium/m{k}"));
                    tally.stored(&blobs.handle_output(&out, value.clone()).await?);
                    expected.medium[*k as usize] = Some(value);
                }
                (Op::Medium(k), true) => {
                    let input = input_of(&asset_out(&format!("medium/m{k}")));
                    let got: Bytes = blobs.load_input(&input).await?;
                    tally.loads += 1;
                    let want = expected.medium[*k as usize].as_ref().unwrap();
                    assert!(
                        got == want,
                        "op {i}: medium/m{k} is not what was last stored"
                    );
                }
                (Op::Large(k), false) => {
                    let len = (12 * MIB - 4096 + rng.below(8192)) as usize;
                    let value = blob(len, version);
                    let out = asset_out(&format!("large/l{k}"));
                    let receipt = blobs.handle_output(&out, value.clone()).await?;
                    let etag = receipt.version.clone().unwrap_or_default();
                    assert!(
                        etag.trim_matches('"').ends_with("-3"),
                        "op {i}: ETag {etag}"
                    );
                    tally.multipart_stores += 1;
                    tally.stored(&receipt);
                    expected.large[*k] = Some(value);
                }
                (Op::Large(k), true) => {
                    let input = input_of(&asset_out(&format!("large/l{k}")));
                    let got: Bytes = blobs.load_input(&input).await?;
                    tally.loads += 1;
                    let want = expected.large[*k].as_ref().unwrap();
                    assert!(
                        got == want,
                        "op {i}: large/l{k} is not what was last stored"
                    );
                }
                (Op::Numbers(k), false) => {
                    let mut numbers = Rng::new(version);
                    let value: Vec<u64> =
                        (0..750_000).map(|_| numbers.next() | (1 << 63)).collect();
                    let out = asset_out(&format!("numbers/n{k}"));
                    let receipt = msgpack.handle_output(&out, value.clone()).await?;
                    let etag = receipt.version.clone().unwrap_or_default();
                    assert!(
                        etag.trim_matches('"').ends_with("-2"),
                        "op {i}: ETag {etag}"
                    );
                    tally.multipart_stores += 1;
                    tally.stored(&receipt);
                    expected.numbers[*k] = Some(value);
                }
                (Op::Numbers(k), true) => {
                    let input = input_of(&asset_out(&format!("numbers/n{k}")));
                    let got: Vec<u64> = msgpack.load_input(&input).await?;
                    tally.loads += 1;
                    let want = expected.numbers[*k].as_ref().unwrap();
                    assert!(
                        &got == want,
                        "op {i}: numbers/n{k} is not what was last stored"
                    );
                }
                (Op::Partition(d), false) => {
                    let value = Sample::new(version);
                    let out = daily_out("events", &day(*d));
                    tally.stored(&msgpack.handle_output(&out, value.clone()).await?);
                    expected.days[*d as usize] = Some(value);
                }
                (Op::Partition(d), true) => {
                    let input = daily_in("events", &[day(*d).as_str()], false);
                    let got: Sample = msgpack.load_input(&input).await?;
                    tally.loads += 1;
                    assert_eq!(Some(&got), expected.days[*d as usize].as_ref(), "op {i}");
                }
                (Op::Partitions, _) => {
                    // Up to six stored days, in a shuffled order.
                    let mut days: Vec<u64> = (0..DAYS)
                        .filter(|d| expected.days[*d as usize].is_some())
                        .collect();
                    for j in (1..days.len()).rev() {
                        days.swap(j, rng.below(j as u64 + 1) as usize);
                    }
                    days.truncate(6);
                    let names: Vec<String> = days.iter().map(|d| day(*d)).collect();
                    let selection: Vec<&str> = names.iter().map(String::as_str).collect();
                    let map = IoManager::<Sample>::load_partitions(
                        &msgpack,
                        &daily_in("events", &selection, false),
                    )
                    .await?;
                    tally.loads += 1;
                    let keys: Vec<String> = map.keys().map(ToString::to_string).collect();
                    assert_eq!(keys, names, "op {i}: partitions out of order");
                    for (d, value) in days.iter().zip(map.values()) {
                        assert_eq!(Some(value), expected.days[*d as usize].as_ref(), "op {i}");
                    }
                }
            }
            Ok::<(), iomanager_core::Error>(())
        }
        .await;
        if let Err(e) = result {
            panic!(
                "operation {i} ({op:?}) failed: {e} (kind {:?}); proxy: {}",
                e.kind(),
                proxy.stats()
            );
        }
    }

    let stats = proxy.stats();
    let elapsed = started.elapsed();
    println!(
        "{OPS} operations attempted, {} succeeded ({} stores, {} loads, {} multipart stores) \
         in {elapsed:.1?}",
        tally.stores + tally.loads,
        tally.stores,
        tally.loads,
        tally.multipart_stores
    );
    println!(
        "retried: {} retries over {} of {} stores",
        tally.store_retries, tally.retried_stores, tally.stores
    );
    println!(
        "injected: {} dropped connections, {} × 500, {} × 503 SlowDown, {} × 429, {} truncated \
         responses, {} delays of 50 ms ({} faults over {} requests, {} forwarded to moto, {} \
         upstream failures)",
        stats.dropped,
        stats.internal_errors,
        stats.slow_downs,
        stats.too_many_requests,
        stats.truncated,
        stats.delayed,
        stats.faults(),
        stats.requests,
        stats.forwarded,
        stats.upstream_failures
    );

    assert_eq!(
        tally.stores + tally.loads,
        OPS as u64,
        "every operation succeeds"
    );
    assert!(tally.multipart_stores >= 4, "{tally:?}");
    assert!(
        tally.store_retries > 0,
        "no store was retried: {tally:?}; {stats}"
    );
    for (count, kind) in [
        (stats.dropped, "dropped connections"),
        (stats.internal_errors, "500s"),
        (stats.slow_downs, "503s"),
        (stats.too_many_requests, "429s"),
        (stats.truncated, "truncated responses"),
        (stats.delayed, "delays"),
    ] {
        assert!(count > 0, "no {kind} were injected: {stats}");
    }
    assert_eq!(
        stats.requests,
        stats.forwarded
            + stats.dropped
            + stats.internal_errors
            + stats.slow_downs
            + stats.too_many_requests,
        "{stats}"
    );

    // No multipart upload is left open, asked of moto directly.
    let uploads = direct
        .client()
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "multipart uploads left open: {:?}",
        uploads.uploads()
    );
}

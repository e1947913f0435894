//! `S3IoManager` against an S3-compatible server, the Rust side of
//! `cargo xtask bench --compare-dagster-s3`.
//!
//! The xtask starts moto on 127.0.0.1, creates a bucket, and runs this bench and then
//! `benches/dagster/bench_dagster_s3.py` (Dagster's `S3PickleIOManager`) against the same
//! server, with the same data. This bench reads the server from `IOMANAGER_BENCH_S3_ENDPOINT`
//! and the bucket from `IOMANAGER_BENCH_S3_BUCKET` (created when missing), and writes
//! `rust_s3.json` (the schema of `rust.json`) into `IOMANAGER_BENCH_DIR`, by default
//! `target/iomanager-bench`. Without the endpoint it fails: it is never skipped silently. The
//! target has `bench = false`, so a plain `cargo bench --workspace` leaves it out; it runs
//! when named (`cargo bench -p iomanager-s3 --bench s3_vs_dagster`).
//!
//! Cases, timed like the filesystem comparison (`fs_vs_dagster`): the I/O calls alone,
//! contexts and values built beforehand, median of 3 runs (1 with `IOMANAGER_BENCH_QUICK=1`),
//! each run under a fresh key prefix that is deleted afterwards, untimed. Counts in
//! parentheses are the quick ones.
//!
//! * `s3_small_values/s3/{store,load}`: 1,000 (100) small structs of 10 fields, each its own
//!   asset `small/v{i}`, stored one after the other, then loaded one after the other.
//! * `s3_buffer_100mb/s3/{store,load}`: one value of 100,000,000 (10,000,000) raw bytes
//!   through `S3IoManager::with_codec(BytesCodec)` (a multipart upload above 16 MiB), with
//!   the peak RSS increase of each call.
//! * `s3_partitions_1000/s3/{store,load}`: 1,000 (100) daily partitions from 2020-01-01, each a
//!   small struct, stored with one `handle_output_partitions` call and loaded with ONE input
//!   spanning all of them through `load_partitions` (bounded concurrency, 16 by default).
//! * `s3_stream_1gib/s3/{store,load}`: 1 GiB (128 MiB) through the streaming API of
//!   `S3Storage`: `put_stream` fed by a generator of 8 MiB chunks (never holding the whole
//!   object) and `get_stream` consumed chunk by chunk, with the peak RSS increase of each
//!   (the target is under 200 MiB). This case has no Dagster counterpart and runs first, in
//!   a process that has not yet held any large buffer, so the allocator has no memory of
//!   earlier cases to recycle and the peak is not understated.
//!
//! Peak RSS: the kernel's high-water mark is reset through `/proc/self/clear_refs` (`5`),
//! `VmRSS` is read before the call and `VmHWM` after it; the largest increase over the runs is
//! reported.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{
    ByteStream, BytesCodec, InputContext, IoManager, ObjectPath, OutputContext, PartitionKey,
    PartitionMap, PartitionsDefinition, PutOptions, Storage,
};
use iomanager_s3::{S3Config, S3IoManager, S3Storage};
use serde::{Deserialize, Serialize};

/// Environment variable naming the S3 endpoint (moto, started by the xtask).
const ENDPOINT_VAR: &str = "IOMANAGER_BENCH_S3_ENDPOINT";

/// Environment variable naming the bucket, created when missing.
const BUCKET_VAR: &str = "IOMANAGER_BENCH_S3_BUCKET";

/// The access key id sent to the server (moto accepts any).
const ACCESS_KEY_ID: &str = "testing";

/// The secret access key sent to the server (moto accepts any).
const SECRET_ACCESS_KEY: &str = "testing";

/// Size of the chunks the streaming case generates: 8 MiB.
const CHUNK: usize = 8 * 1024 * 1024;

/// The peak RSS increase the streaming case must stay under: 200 MiB.
const STREAM_RSS_TARGET: u64 = 200 * 1024 * 1024;

/// Bytes in a MiB, for the printed rates.
const MIB: f64 = 1024.0 * 1024.0;

/// The case names, in the order `rust_s3.json` lists them.
const CASE_ORDER: [&str; 8] = [
    "s3_small_values/s3/store",
    "s3_small_values/s3/load",
    "s3_buffer_100mb/s3/store",
    "s3_buffer_100mb/s3/load",
    "s3_partitions_1000/s3/store",
    "s3_partitions_1000/s3/load",
    "s3_stream_1gib/s3/store",
    "s3_stream_1gib/s3/load",
];

/// Workload sizes of one run (full or quick).
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Repetitions of each case (the median is reported).
    runs: usize,
    /// Small values stored and loaded.
    small_values: u64,
    /// Bytes of the buffer value.
    buffer_bytes: usize,
    /// Daily partitions stored and loaded.
    partitions: usize,
    /// Bytes of the streamed object (a multiple of [`CHUNK`]).
    stream_bytes: u64,
}

/// The full run.
const FULL: Sizes = Sizes {
    runs: 3,
    small_values: 1_000,
    buffer_bytes: 100_000_000,
    partitions: 1_000,
    stream_bytes: 1 << 30,
};

/// The quick run (`IOMANAGER_BENCH_QUICK=1`): a smoke run.
const QUICK: Sizes = Sizes {
    runs: 1,
    small_values: 100,
    buffer_bytes: 10_000_000,
    partitions: 100,
    stream_bytes: 128 << 20,
};

/// The categories of the small values, as in the Dagster harness.
const CATEGORIES: [&str; 5] = ["books", "garden", "kitchen", "toys", "tools"];

/// The small value: 10 fields, the same data as the Dagster harness's dicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Small {
    /// The index.
    id: u64,
    /// `item-{i:07}`.
    name: String,
    /// A price with two decimals.
    price: f64,
    /// A quantity below 100.
    qty: u32,
    /// Whether the index is even.
    active: bool,
    /// One of [`CATEGORIES`].
    category: String,
    /// A Unix timestamp.
    ts: i64,
    /// `i / 7`.
    score: f64,
    /// Two short tags.
    tags: Vec<String>,
    /// `note for value {i:05}`.
    note: String,
}

/// The `i`-th small value (`small_value(i)` of `bench_dagster.py`).
fn small(i: u64) -> Small {
    Small {
        id: i,
        name: format!("item-{i:07}"),
        price: (i * 37 % 100_000) as f64 / 100.0,
        qty: (i % 100) as u32,
        active: i.is_multiple_of(2),
        category: CATEGORIES[(i % 5) as usize].to_owned(),
        ts: 1_600_000_000 + i as i64,
        score: i as f64 / 7.0,
        tags: vec![format!("t{}", i % 7), format!("g{}", i % 5)],
        note: format!("note for value {i:05}"),
    }
}

/// Whether `IOMANAGER_BENCH_QUICK` is set.
fn quick() -> bool {
    std::env::var_os("IOMANAGER_BENCH_QUICK").is_some()
}

/// Where `rust_s3.json` goes: `IOMANAGER_BENCH_DIR`, else `<target>/iomanager-bench`.
fn bench_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IOMANAGER_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("iomanager-bench")
}

/// A required environment variable, or a panic that says how to run the bench.
fn required_var(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: run `cargo xtask bench --compare-dagster-s3`, which starts \
                 moto on 127.0.0.1 and sets {ENDPOINT_VAR} and {BUCKET_VAR}"
            )
        })
}

/// Peak-RSS probe: resets the kernel's high-water mark, then reads it after the measured call.
struct Rss;

impl Rss {
    /// A `kB` field of `/proc/self/status`, in bytes.
    fn status(field: &str) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = text.lines().find(|l| l.starts_with(field))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Resets the peak and returns the current RSS.
    fn start() -> Option<u64> {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        Self::status("VmRSS:")
    }

    /// The peak RSS since [`Rss::start`] minus the RSS it returned.
    fn extra_since(start: Option<u64>) -> Option<u64> {
        Some(Self::status("VmHWM:")?.saturating_sub(start?))
    }
}

/// The result of one case.
#[derive(Debug, Default, Clone)]
struct Case {
    /// Median wall time of the timed calls.
    seconds: f64,
    /// Values stored or loaded (1 for a single buffer or stream).
    count: u64,
    /// Bytes stored (the objects' sizes).
    bytes: Option<u64>,
    /// Largest peak RSS increase over the runs.
    rss: Option<u64>,
}

/// The cases measured so far, written as `rust_s3.json`.
#[derive(Debug, Default)]
struct Report {
    /// Case name and result, in the order measured.
    cases: Vec<(String, Case)>,
}

impl Report {
    /// Prints and records a case.
    fn add(&mut self, name: &str, case: Case) {
        let rate = match case.bytes {
            Some(b) if case.count == 1 => format!("{:.1} MiB/s", b as f64 / MIB / case.seconds),
            _ => format!("{:.0} values/s", case.count as f64 / case.seconds),
        };
        let rss = case
            .rss
            .map(|r| format!(", peak RSS +{:.1} MiB", r as f64 / MIB))
            .unwrap_or_default();
        println!("{name:<32} {:>9.4} s  {rate}{rss}", case.seconds);
        self.cases.push((name.to_owned(), case));
    }

    /// The JSON of `rust.json`'s schema, cases in [`CASE_ORDER`].
    fn json(&self) -> String {
        let mut cases = self.cases.clone();
        cases.sort_by_key(|(name, _)| CASE_ORDER.iter().position(|c| *c == name.as_str()));
        let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "null".into());
        let mut out = String::from("{\n  \"quick\": ");
        out.push_str(if quick() { "true" } else { "false" });
        out.push_str(",\n  \"results\": {\n");
        for (i, (name, c)) in cases.iter().enumerate() {
            let _ = write!(
                out,
                "    \"{name}\": {{\"seconds\": {:.6}, \"count\": {}, \"bytes\": {}, \"peak_rss_extra_bytes\": {}}}",
                c.seconds,
                c.count,
                opt(c.bytes),
                opt(c.rss)
            );
            out.push_str(if i + 1 < cases.len() { ",\n" } else { "\n" });
        }
        out.push_str("  }\n}\n");
        out
    }
}

/// The median of the runs' times.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The output context of an unpartitioned asset.
fn asset_out(key: &str) -> OutputContext {
    OutputContext::builder()
        .asset_key(key)
        .build()
        .expect("valid key")
}

/// The input context that loads what `out` stored.
fn asset_in(out: &OutputContext) -> InputContext {
    InputContext::builder()
        .upstream_output(out.clone())
        .build()
        .expect("valid input")
}

/// The byte every position of chunk `index` of the streamed object holds (never 0, so no
/// page of a chunk is the kernel's shared zero page).
fn chunk_byte(index: u64) -> u8 {
    (index % 250) as u8 + 1
}

/// The streamed object: `chunks` chunks of [`CHUNK`] bytes, each made only when the consumer
/// asks for it, so at most the chunks the consumer keeps are in memory.
fn chunk_stream(chunks: u64) -> ByteStream {
    futures::stream::iter(0..chunks)
        .map(|index| Ok(Bytes::from(vec![chunk_byte(index); CHUNK])))
        .boxed()
}

/// The bench: the server, the bucket, an unprefixed storage for setup and cleanup, and the
/// results.
struct Bench {
    /// The S3 endpoint.
    endpoint: String,
    /// The bucket.
    bucket: String,
    /// The storage the bucket is created, and each run's keys deleted, through.
    admin: S3Storage,
    /// The key prefix of this bench run, unique per run of the process.
    run_prefix: String,
    /// The workload sizes.
    sizes: Sizes,
    /// The results.
    report: Report,
}

impl Bench {
    /// Connects to the server named by the environment and creates the bucket when missing.
    async fn new(sizes: Sizes) -> Self {
        let endpoint = required_var(ENDPOINT_VAR);
        let bucket = required_var(BUCKET_VAR);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let run_prefix = format!("iomanager-bench/rust-{:x}", nanos & 0xffff_ffff_ffff);
        let admin = S3Storage::new(config(&endpoint, &bucket, ""))
            .await
            .expect("S3 client");
        let exists = admin
            .client()
            .head_bucket()
            .bucket(&bucket)
            .send()
            .await
            .is_ok();
        if !exists {
            admin
                .client()
                .create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot create bucket {bucket} at {endpoint}: {e:?}"));
        }
        println!("S3 endpoint {endpoint}, bucket {bucket}, keys under {run_prefix}/");
        Self {
            endpoint,
            bucket,
            admin,
            run_prefix,
            sizes,
            report: Report::default(),
        }
    }

    /// The key prefix of run `run` of `case`.
    fn prefix(&self, case: &str, run: usize) -> String {
        format!("{}/{case}/run-{run}", self.run_prefix)
    }

    /// A connected manager (MessagePack) storing under `prefix`.
    async fn manager(&self, prefix: &str) -> S3IoManager {
        S3IoManager::connect(config(&self.endpoint, &self.bucket, prefix))
            .await
            .expect("connect")
    }

    /// Deletes every object under `prefix` (untimed cleanup, 16 deletes at once).
    async fn clear(&self, prefix: &str) {
        let base = ObjectPath::parse(prefix).expect("prefix");
        let listed = self.admin.list(&base, None).await.expect("list");
        futures::stream::iter(listed)
            .map(|meta| async move { self.admin.delete(&meta.path).await })
            .buffer_unordered(16)
            .for_each(|r| async move {
                r.expect("delete");
            })
            .await;
    }

    /// `s3_small_values`: stores the small values one after the other, then loads them one
    /// after the other.
    async fn small_values(&mut self) {
        let n = self.sizes.small_values;
        let values: Vec<Small> = (0..n).map(small).collect();
        let outs: Vec<OutputContext> = (0..n).map(|i| asset_out(&format!("small/v{i}"))).collect();
        let ins: Vec<InputContext> = outs.iter().map(asset_in).collect();
        let (mut store, mut load, mut bytes) = (Vec::new(), Vec::new(), 0u64);
        for run in 0..self.sizes.runs {
            let prefix = self.prefix("s3_small_values", run);
            let m = self.manager(&prefix).await;
            let batch = values.clone();
            let t = Instant::now();
            let mut stored = 0u64;
            for (out, value) in outs.iter().zip(batch) {
                stored += m.handle_output(out, value).await.expect("store").bytes;
            }
            store.push(t.elapsed().as_secs_f64());
            bytes = stored;
            let mut loaded: Vec<Small> = Vec::with_capacity(values.len());
            let t = Instant::now();
            for input in &ins {
                loaded.push(m.load_input(input).await.expect("load"));
            }
            load.push(t.elapsed().as_secs_f64());
            assert!(loaded == values, "s3_small_values: loaded values differ");
            self.clear(&prefix).await;
        }
        for (op, times) in [("store", store), ("load", load)] {
            self.report.add(
                &format!("s3_small_values/s3/{op}"),
                Case {
                    seconds: median(times),
                    count: n,
                    bytes: Some(bytes),
                    rss: None,
                },
            );
        }
    }

    /// `s3_buffer_100mb`: one buffer of raw bytes stored and loaded through `BytesCodec`.
    async fn buffer(&mut self) {
        let size = self.sizes.buffer_bytes;
        let buffer = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let out = asset_out("s3_buffer_100mb");
        let input = asset_in(&out);
        let (mut store, mut load, mut bytes) = (Vec::new(), Vec::new(), 0u64);
        let (mut store_rss, mut load_rss) = (0u64, 0u64);
        for run in 0..self.sizes.runs {
            let prefix = self.prefix("s3_buffer_100mb", run);
            let m = self.manager(&prefix).await.with_codec(BytesCodec);
            let value = buffer.clone();
            let r0 = Rss::start();
            let t = Instant::now();
            let receipt = m.handle_output(&out, value).await.expect("store");
            store.push(t.elapsed().as_secs_f64());
            store_rss = store_rss.max(Rss::extra_since(r0).unwrap_or(0));
            bytes = receipt.bytes;
            let r0 = Rss::start();
            let t = Instant::now();
            let loaded: Bytes = m.load_input(&input).await.expect("load");
            load.push(t.elapsed().as_secs_f64());
            load_rss = load_rss.max(Rss::extra_since(r0).unwrap_or(0));
            assert!(loaded == buffer, "s3_buffer_100mb: loaded bytes differ");
            drop(loaded);
            self.clear(&prefix).await;
        }
        for (op, times, rss) in [("store", store, store_rss), ("load", load, load_rss)] {
            self.report.add(
                &format!("s3_buffer_100mb/s3/{op}"),
                Case {
                    seconds: median(times),
                    count: 1,
                    bytes: Some(bytes),
                    rss: Some(rss),
                },
            );
        }
    }

    /// `s3_partitions_1000`: daily partitions stored with one `handle_output_partitions` call,
    /// then loaded with one input spanning them all through `load_partitions`.
    async fn partitions(&mut self) {
        let n = self.sizes.partitions;
        let def = PartitionsDefinition::daily("2020-01-01").expect("def");
        let days: Vec<PartitionKey> = def.keys().into_iter().take(n).collect();
        assert_eq!(
            days.len(),
            n,
            "not enough daily partitions since 2020-01-01"
        );
        let (first, last) = (days[0].clone(), days[n - 1].clone());
        let out = OutputContext::builder()
            .asset_key("parts")
            .partitions_def(def.clone())
            .partition_range(first.clone(), last.clone())
            .build()
            .expect("ctx");
        let input = InputContext::builder()
            .asset_key("parts")
            .partitions_def(def)
            .partition_range(first, last)
            .build()
            .expect("ctx");
        let (mut store, mut load, mut bytes) = (Vec::new(), Vec::new(), 0u64);
        for run in 0..self.sizes.runs {
            let prefix = self.prefix("s3_partitions_1000", run);
            let m = self.manager(&prefix).await;
            let values: PartitionMap<Small> = days
                .iter()
                .enumerate()
                .map(|(i, d)| (d.clone(), small(i as u64)))
                .collect();
            let t = Instant::now();
            let receipts = m
                .handle_output_partitions(&out, values)
                .await
                .expect("store");
            store.push(t.elapsed().as_secs_f64());
            bytes = receipts.values().map(|r| r.bytes).sum();
            let t = Instant::now();
            let loaded: PartitionMap<Small> = m.load_partitions(&input).await.expect("load");
            load.push(t.elapsed().as_secs_f64());
            assert_eq!(loaded.len(), n, "s3_partitions_1000: partitions missing");
            for (i, (key, value)) in loaded.iter().enumerate() {
                assert!(
                    key == &days[i] && value == &small(i as u64),
                    "s3_partitions_1000: partition {key} differs or is out of order"
                );
            }
            self.clear(&prefix).await;
        }
        for (op, times) in [("store", store), ("load", load)] {
            self.report.add(
                &format!("s3_partitions_1000/s3/{op}"),
                Case {
                    seconds: median(times),
                    count: n as u64,
                    bytes: Some(bytes),
                    rss: None,
                },
            );
        }
    }

    /// `s3_stream_1gib`: `S3Storage::put_stream` fed by [`chunk_stream`], then `get_stream`
    /// consumed chunk by chunk (checking the length and the first and last byte of every
    /// chunk received against the generated pattern).
    async fn stream(&mut self) {
        let total = self.sizes.stream_bytes;
        let chunks = total / CHUNK as u64;
        let (mut store, mut load) = (Vec::new(), Vec::new());
        let (mut store_rss, mut load_rss) = (0u64, 0u64);
        for run in 0..self.sizes.runs {
            let prefix = self.prefix("s3_stream_1gib", run);
            let storage = S3Storage::connect(config(&self.endpoint, &self.bucket, &prefix))
                .await
                .expect("connect");
            let path = ObjectPath::parse(&format!("{prefix}/object")).expect("path");
            let r0 = Rss::start();
            let t = Instant::now();
            let put = storage
                .put_stream(&path, chunk_stream(chunks), &PutOptions::default())
                .await
                .expect("put_stream");
            store.push(t.elapsed().as_secs_f64());
            store_rss = store_rss.max(Rss::extra_since(r0).unwrap_or(0));
            assert_eq!(put.bytes, total, "s3_stream_1gib: bytes stored");
            let r0 = Rss::start();
            let t = Instant::now();
            let mut stream = storage.get_stream(&path).await.expect("get_stream");
            let mut received = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.expect("chunk");
                if let (Some(&head), Some(&tail)) = (chunk.first(), chunk.last()) {
                    let last = received + chunk.len() as u64 - 1;
                    assert!(
                        head == chunk_byte(received / CHUNK as u64)
                            && tail == chunk_byte(last / CHUNK as u64),
                        "s3_stream_1gib: wrong bytes at offset {received}"
                    );
                }
                received += chunk.len() as u64;
            }
            load.push(t.elapsed().as_secs_f64());
            load_rss = load_rss.max(Rss::extra_since(r0).unwrap_or(0));
            assert_eq!(received, total, "s3_stream_1gib: bytes loaded");
            self.clear(&prefix).await;
        }
        for (op, times, rss) in [("store", store, store_rss), ("load", load, load_rss)] {
            let verdict = if rss < STREAM_RSS_TARGET {
                "under"
            } else {
                "NOT under"
            };
            println!(
                "s3_stream_1gib {op}: peak RSS +{:.1} MiB, {verdict} the 200 MiB target",
                rss as f64 / MIB
            );
            self.report.add(
                &format!("s3_stream_1gib/s3/{op}"),
                Case {
                    seconds: median(times),
                    count: 1,
                    bytes: Some(total),
                    rss: Some(rss),
                },
            );
        }
    }
}

/// The configuration of every client: the server, path-style addressing, static test
/// credentials and `prefix`; everything else (multipart above 16 MiB in 8 MiB parts, 4 parts
/// in flight, 16 partitions loaded at once) at its default.
fn config(endpoint: &str, bucket: &str, prefix: &str) -> S3Config {
    S3Config::new(bucket)
        .endpoint_url(endpoint)
        .region("us-east-1")
        .path_style(true)
        .static_credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        .prefix(prefix)
}

/// Runs every case and writes `rust_s3.json`.
fn main() {
    let sizes = if quick() { QUICK } else { FULL };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "== S3 comparison cases (median of {} run(s){}) ==",
        sizes.runs,
        if quick() { ", quick" } else { "" }
    );
    let report = rt.block_on(async {
        let mut bench = Bench::new(sizes).await;
        // First, while no large buffer has passed through the allocator (see the top of this file).
        bench.stream().await;
        bench.small_values().await;
        bench.buffer().await;
        bench.partitions().await;
        bench.report
    });
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("rust_s3.json");
    std::fs::write(&path, report.json()).expect("write rust_s3.json");
    println!("wrote {}", path.display());
}

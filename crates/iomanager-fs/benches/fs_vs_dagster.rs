//! Benchmarks of the filesystem and memory managers, run by `cargo xtask bench`.
//!
//! Two parts, in one binary:
//!
//! 1. The comparison cases of `docs/PERFORMANCE.md`, timed the way the Dagster harness
//!    (`benches/dagster/bench_dagster.py`) times them — the I/O calls alone, contexts built
//!    beforehand, median of 3 runs — with peak RSS measured around the large cases. They are
//!    written to `target/iomanager-bench/rust.json` for `cargo xtask bench --compare-dagster`
//!    to put side by side with Dagster's numbers.
//! 2. Criterion benchmarks of single operations, for regressions.
//!
//! `IOMANAGER_BENCH_QUICK=1` runs smaller counts (a smoke run).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use futures::StreamExt;
use iomanager_core::{
    BytesCodec, InputContext, IoManager, MessagePackCodec, OutputContext, PartitionKey,
    PartitionMap, PartitionsDefinition,
};
use iomanager_fs::{FsIoManager, FsStorage};
use iomanager_memory::MemoryIoManager;
use serde::{Deserialize, Serialize};

/// The small value: about 10 fields, as in the Dagster harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Small {
    id: u64,
    name: String,
    price: f64,
    qty: u32,
    active: bool,
    category: String,
    ts: i64,
    score: f64,
    tags: Vec<String>,
    note: String,
}

fn small(i: u64) -> Small {
    Small {
        id: i,
        name: format!("item-{i:07}"),
        price: i as f64 * 1.25,
        qty: (i % 100) as u32,
        active: i.is_multiple_of(2),
        category: ["a", "b", "c"][(i % 3) as usize].to_string(),
        ts: 1_700_000_000 + i as i64,
        score: (i % 1000) as f64 / 7.0,
        tags: vec!["red".into(), "big".into()],
        note: format!("note for item {i:08}"),
    }
}

/// One record of the large value: 5 fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    value: f64,
    flag: bool,
    ts: i64,
}

fn records(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            id: i,
            name: format!("rec-{i}"),
            value: i as f64 * 0.5,
            flag: i.is_multiple_of(3),
            ts: 1_700_000_000 + i as i64,
        })
        .collect()
}

fn quick() -> bool {
    std::env::var_os("IOMANAGER_BENCH_QUICK").is_some()
}

fn bench_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IOMANAGER_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("iomanager-bench")
}

/// Peak-RSS probe: resets the kernel's high-water mark, then reads it after the measured call.
struct Rss;

impl Rss {
    fn status(field: &str) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = text.lines().find(|l| l.starts_with(field))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Flushes dirty pages (as the Dagster harness does before each large call, so neither
    /// side pays for earlier writeback), resets the peak and returns the current RSS.
    fn start() -> Option<u64> {
        let _ = std::process::Command::new("sync").status();
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        Self::status("VmRSS:")
    }

    fn extra_since(start: Option<u64>) -> Option<u64> {
        Some(Self::status("VmHWM:")?.saturating_sub(start?))
    }
}

#[derive(Default)]
struct Case {
    seconds: f64,
    count: u64,
    bytes: Option<u64>,
    rss: Option<u64>,
}

#[derive(Default)]
struct Report {
    cases: Vec<(String, Case)>,
}

impl Report {
    fn add(&mut self, name: &str, case: Case) {
        let rate = if let Some(b) = case.bytes {
            format!("{:.1} MB/s", b as f64 / 1e6 / case.seconds)
        } else {
            format!("{:.0} values/s", case.count as f64 / case.seconds)
        };
        let rss = case
            .rss
            .map(|r| format!(", peak RSS +{:.1} MB", r as f64 / 1e6))
            .unwrap_or_default();
        println!("{name:<48} {:>9.4} s  {rate}{rss}", case.seconds);
        self.cases.push((name.to_owned(), case));
    }

    fn json(&self) -> String {
        let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "null".into());
        let mut out = String::from("{\n  \"quick\": ");
        out.push_str(if quick() { "true" } else { "false" });
        out.push_str(",\n  \"results\": {\n");
        for (i, (name, c)) in self.cases.iter().enumerate() {
            let _ = write!(
                out,
                "    \"{name}\": {{\"seconds\": {:.6}, \"count\": {}, \"bytes\": {}, \"peak_rss_extra_bytes\": {}}}",
                c.seconds,
                c.count,
                opt(c.bytes),
                opt(c.rss)
            );
            out.push_str(if i + 1 < self.cases.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("  }\n}\n");
        out
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

const RUNS: usize = 3;

fn asset_out(key: &str) -> OutputContext {
    OutputContext::builder()
        .asset_key(key)
        .build()
        .expect("valid key")
}

fn asset_in(out: &OutputContext) -> InputContext {
    InputContext::builder()
        .upstream_output(out.clone())
        .build()
        .expect("valid input")
}

/// Stores `n` small values one after the other (or `concurrency` at once), then loads them one
/// after the other; returns (store seconds, load seconds).
async fn small_values<M: IoManager<Small>>(m: &M, n: u64, concurrency: usize) -> (f64, f64) {
    let values: Vec<Small> = (0..n).map(small).collect();
    let outs: Vec<OutputContext> = (0..n).map(|i| asset_out(&format!("small/v{i}"))).collect();
    let ins: Vec<InputContext> = outs.iter().map(asset_in).collect();
    let t = Instant::now();
    if concurrency <= 1 {
        for (out, v) in outs.iter().zip(values.iter()) {
            m.handle_output(out, v.clone()).await.expect("store");
        }
    } else {
        futures::stream::iter(outs.iter().zip(values.iter()))
            .map(|(out, v)| m.handle_output(out, v.clone()))
            .buffer_unordered(concurrency)
            .for_each(|r| async move {
                r.expect("store");
            })
            .await;
    }
    let store = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (i, input) in ins.iter().enumerate() {
        let v: Small = m.load_input(input).await.expect("load");
        debug_assert_eq!(v.id, i as u64);
        std::hint::black_box(v);
    }
    let load = t.elapsed().as_secs_f64();
    (store, load)
}

/// A manager over a new, empty directory under `dir`. Nothing is deleted until the whole run
/// is over: on this kind of VM, creating many files soon after deleting many is several times
/// slower (ext4 revisits the recently freed inodes), which would penalise every repetition
/// after the first.
fn fs_manager(dir: &Path, durable: bool) -> FsIoManager {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let storage = FsStorage::new(dir.join(format!("run{n}")))
        .expect("bench dir")
        .with_durability(durable);
    FsIoManager::from_storage(storage, MessagePackCodec::new())
}

async fn comparison(report: &mut Report) {
    let q = quick();
    let root = bench_dir().join("data");
    // Leftovers of an earlier run are removed now, before anything is timed.
    let _ = std::fs::remove_dir_all(&root);
    let n_small: u64 = if q { 1_000 } else { 10_000 };

    // Small values, each its own asset.
    for (name, durable, concurrency) in [
        ("fs_nondurable", false, 1usize),
        ("fs_durable", true, 64),
        ("fs_durable_sequential", true, 1),
    ] {
        let (mut st, mut ld) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let m = fs_manager(&root.join("small"), durable);
            let (s, l) = small_values(&m, n_small, concurrency).await;
            st.push(s);
            ld.push(l);
        }
        report.add(
            &format!("small_values/{name}/store"),
            Case {
                seconds: median(st),
                count: n_small,
                ..Case::default()
            },
        );
        if name == "fs_nondurable" {
            report.add(
                "small_values/fs/load",
                Case {
                    seconds: median(ld),
                    count: n_small,
                    ..Case::default()
                },
            );
        }
    }
    {
        let (mut st, mut ld) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let m = MemoryIoManager::new();
            let (s, l) = small_values(&m, n_small, 1).await;
            st.push(s);
            ld.push(l);
        }
        report.add(
            "small_values/memory/store",
            Case {
                seconds: median(st),
                count: n_small,
                ..Case::default()
            },
        );
        report.add(
            "small_values/memory/load",
            Case {
                seconds: median(ld),
                count: n_small,
                ..Case::default()
            },
        );
    }
    // The whole path: building the contexts is part of each call.
    {
        let n = if q { 50 } else { 200 };
        let (mut st, mut ld) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let m = fs_manager(&root.join("ctx"), false);
            let t = Instant::now();
            for i in 0..n {
                let out = asset_out(&format!("small/v{i}"));
                m.handle_output(&out, small(i)).await.expect("store");
            }
            st.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for i in 0..n {
                let input = asset_in(&asset_out(&format!("small/v{i}")));
                let v: Small = m.load_input(&input).await.expect("load");
                std::hint::black_box(v);
            }
            ld.push(t.elapsed().as_secs_f64());
        }
        report.add(
            "small_values_with_context/fs_nondurable/store",
            Case {
                seconds: median(st),
                count: n,
                ..Case::default()
            },
        );
        report.add(
            "small_values_with_context/fs/load",
            Case {
                seconds: median(ld),
                count: n,
                ..Case::default()
            },
        );
    }

    // One large value: 1,000,000 records of 5 fields.
    {
        let n = if q { 100_000 } else { 1_000_000 };
        let value = records(n);
        let out = asset_out("large/records");
        let input = asset_in(&out);
        for (name, durable) in [("fs_nondurable", false), ("fs_durable", true)] {
            let (mut secs, mut rss, mut bytes) = (Vec::new(), 0, 0);
            for _ in 0..RUNS {
                let m = fs_manager(&root.join("large"), durable);
                let v = value.clone();
                let r0 = Rss::start();
                let t = Instant::now();
                let receipt = m.handle_output(&out, v).await.expect("store");
                secs.push(t.elapsed().as_secs_f64());
                rss = rss.max(Rss::extra_since(r0).unwrap_or(0));
                bytes = receipt.bytes;
            }
            report.add(
                &format!("large_records/{name}/store"),
                Case {
                    seconds: median(secs),
                    count: n,
                    bytes: Some(bytes),
                    rss: Some(rss),
                },
            );
        }
        let m = fs_manager(&root.join("large"), false);
        let bytes = m
            .handle_output(&out, value.clone())
            .await
            .expect("store")
            .bytes;
        drop(value);
        let (mut secs, mut rss) = (Vec::new(), 0);
        for _ in 0..RUNS {
            let r0 = Rss::start();
            let t = Instant::now();
            let v: Vec<Record> = m.load_input(&input).await.expect("load");
            secs.push(t.elapsed().as_secs_f64());
            rss = rss.max(Rss::extra_since(r0).unwrap_or(0));
            assert_eq!(v.len() as u64, n);
            drop(v);
        }
        report.add(
            "large_records/fs/load",
            Case {
                seconds: median(secs),
                count: n,
                bytes: Some(bytes),
                rss: Some(rss),
            },
        );
    }

    // A 100 MB byte buffer: raw bytes (`BytesCodec`, no copy on either side), and the same
    // buffer through MessagePack (`serde_bytes::ByteBuf`) for comparison.
    {
        let size = if q { 10_000_000 } else { 100_000_000 };
        let buffer = bytes::Bytes::from(vec![7u8; size]);
        let out = asset_out("buffer");
        let input = asset_in(&out);
        for (name, durable) in [("fs_nondurable", false), ("fs_durable", true)] {
            let (mut secs, mut rss) = (Vec::new(), 0);
            for _ in 0..RUNS {
                let m = fs_manager(&root.join("buffer"), durable).with_codec(BytesCodec);
                let v = buffer.clone();
                let r0 = Rss::start();
                let t = Instant::now();
                m.handle_output(&out, v).await.expect("store");
                secs.push(t.elapsed().as_secs_f64());
                rss = rss.max(Rss::extra_since(r0).unwrap_or(0));
            }
            report.add(
                &format!("buffer_100mb/{name}/store"),
                Case {
                    seconds: median(secs),
                    count: 1,
                    bytes: Some(size as u64),
                    rss: Some(rss),
                },
            );
        }
        let m = fs_manager(&root.join("buffer"), false).with_codec(BytesCodec);
        m.handle_output(&out, buffer.clone()).await.expect("store");
        let (mut secs, mut rss) = (Vec::new(), 0);
        for _ in 0..RUNS {
            let r0 = Rss::start();
            let t = Instant::now();
            let v: bytes::Bytes = m.load_input(&input).await.expect("load");
            secs.push(t.elapsed().as_secs_f64());
            rss = rss.max(Rss::extra_since(r0).unwrap_or(0));
            assert_eq!(v.len(), size);
        }
        report.add(
            "buffer_100mb/fs/load",
            Case {
                seconds: median(secs),
                count: 1,
                bytes: Some(size as u64),
                rss: Some(rss),
            },
        );

        let as_msgpack = serde_bytes::ByteBuf::from(buffer.to_vec());
        drop(buffer);
        let (mut secs, mut rss) = (Vec::new(), 0);
        for _ in 0..RUNS {
            let m = fs_manager(&root.join("buffer"), false);
            let v = as_msgpack.clone();
            let r0 = Rss::start();
            let t = Instant::now();
            m.handle_output(&out, v).await.expect("store");
            secs.push(t.elapsed().as_secs_f64());
            rss = rss.max(Rss::extra_since(r0).unwrap_or(0));
        }
        report.add(
            "buffer_100mb_msgpack/fs_nondurable/store",
            Case {
                seconds: median(secs),
                count: 1,
                bytes: Some(size as u64),
                rss: Some(rss),
            },
        );
        let m = fs_manager(&root.join("buffer"), false);
        m.handle_output(&out, as_msgpack).await.expect("store");
        let (mut secs, mut rss) = (Vec::new(), 0);
        for _ in 0..RUNS {
            let r0 = Rss::start();
            let t = Instant::now();
            let v: serde_bytes::ByteBuf = m.load_input(&input).await.expect("load");
            secs.push(t.elapsed().as_secs_f64());
            rss = rss.max(Rss::extra_since(r0).unwrap_or(0));
            assert_eq!(v.len(), size);
        }
        report.add(
            "buffer_100mb_msgpack/fs/load",
            Case {
                seconds: median(secs),
                count: 1,
                bytes: Some(size as u64),
                rss: Some(rss),
            },
        );
    }

    // 1,000 daily partitions, then one input loading all of them.
    {
        let n = if q { 100 } else { 1_000 };
        let def = PartitionsDefinition::daily("2020-01-01").expect("def");
        let days: Vec<PartitionKey> = def.keys().into_iter().take(n).collect();
        let (first, last) = (days[0].clone(), days[n - 1].clone());
        let out = OutputContext::builder()
            .asset_key("parts")
            .partitions_def(def.clone())
            .partition_range(first.clone(), last.clone())
            .build()
            .expect("ctx");
        let input = InputContext::builder()
            .asset_key("parts")
            .partitions_def(def.clone())
            .partition_range(first, last)
            .build()
            .expect("ctx");
        let singles: Vec<OutputContext> =
            days.iter().map(|d| out.for_partition(d.clone())).collect();
        for (name, durable) in [("fs_nondurable", false), ("fs_durable", true)] {
            let mut secs = Vec::new();
            for _ in 0..RUNS {
                let m = fs_manager(&root.join("parts"), durable);
                let t = Instant::now();
                if durable {
                    // Bounded concurrent writes: one object per partition.
                    let map: PartitionMap<Small> = days
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (d.clone(), small(i as u64)))
                        .collect();
                    m.handle_output_partitions(&out, map).await.expect("store");
                } else {
                    for (i, ctx) in singles.iter().enumerate() {
                        m.handle_output(ctx, small(i as u64)).await.expect("store");
                    }
                }
                secs.push(t.elapsed().as_secs_f64());
            }
            report.add(
                &format!("partitions_1000/{name}/store"),
                Case {
                    seconds: median(secs),
                    count: n as u64,
                    ..Case::default()
                },
            );
        }
        let m = fs_manager(&root.join("parts"), false);
        for (i, ctx) in singles.iter().enumerate() {
            m.handle_output(ctx, small(i as u64)).await.expect("store");
        }
        let mut secs = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let map: PartitionMap<Small> = m.load_partitions(&input).await.expect("load");
            secs.push(t.elapsed().as_secs_f64());
            assert_eq!(map.len(), n);
        }
        report.add(
            "partitions_1000/fs/load",
            Case {
                seconds: median(secs),
                count: n as u64,
                ..Case::default()
            },
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

fn criterion_benches(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let root = bench_dir().join("criterion-data");
    let mut group = c.benchmark_group("fs_small_value");
    group.throughput(Throughput::Elements(1));
    for (name, durable) in [("store_nondurable", false), ("store_durable", true)] {
        let m = fs_manager(&root.join(name), durable);
        let out = asset_out("one");
        group.bench_function(name, |b| {
            b.to_async(rt).iter(|| m.handle_output(&out, small(1)));
        });
    }
    let m = fs_manager(&root.join("load"), false);
    let out = asset_out("one");
    rt.block_on(m.handle_output(&out, small(1))).expect("store");
    let input = asset_in(&out);
    group.bench_function("load", |b| {
        b.to_async(rt).iter(|| async {
            let v: Small = m.load_input(&input).await.expect("load");
            v
        });
    });
    group.finish();

    let mut group = c.benchmark_group("memory_small_value");
    group.throughput(Throughput::Elements(1));
    let mem = MemoryIoManager::new();
    group.bench_function("store", |b| {
        b.to_async(rt).iter(|| mem.handle_output(&out, small(1)))
    });
    group.bench_function("load", |b| {
        b.to_async(rt).iter(|| async {
            let v: Small = mem.load_input(&input).await.expect("load");
            v
        });
    });
    group.finish();

    let mut group = c.benchmark_group("msgpack_100k_records");
    let value = records(100_000);
    let bytes = iomanager_core::Codec::<Vec<Record>>::encode(&MessagePackCodec::new(), &value)
        .expect("encode");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| iomanager_core::Codec::<Vec<Record>>::encode(&MessagePackCodec::new(), &value))
    });
    group.bench_function("decode", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| iomanager_core::Codec::<Vec<Record>>::decode(&MessagePackCodec::new(), bytes),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = Report::default();
    println!(
        "== comparison cases (median of {RUNS} runs{}) ==",
        if quick() { ", quick" } else { "" }
    );
    rt.block_on(comparison(&mut report));
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("rust.json"), report.json()).expect("write rust.json");
    println!("wrote {}", dir.join("rust.json").display());

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if quick() { 1 } else { 3 }))
        .sample_size(20)
        .configure_from_args();
    criterion_benches(&mut c, &rt);
    c.final_summary();
}

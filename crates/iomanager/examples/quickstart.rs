//! The quick start: a small pipeline run by hand with the contexts, on embedded defaults (local
//! files, no server).
//!
//! ```text
//! cargo run -p iomanager --example quickstart            # stores under ./iomanager-data
//! cargo run -p iomanager --example quickstart -- DIR     # stores under DIR
//! ```
//!
//! The pipeline:
//! - `raw/orders`: every order (an unpartitioned asset);
//! - `daily_orders`: the orders of each day, partitioned by day (seven partitions);
//! - `weekly_summary`: loads all seven daily partitions in one input (concurrently, in day order)
//!   and summarizes them;
//! - the op `split_by_region` fans out one output per region (a dynamic output: one mapping key
//!   per region), and a downstream op reads each back;
//! - a scratch value kept in memory, never serialized.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use iomanager::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    day: String,
    region: String,
    amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DaySummary {
    day: String,
    orders: usize,
    revenue_cents: u64,
}

fn orders() -> Vec<Order> {
    let regions = ["eu", "us", "apac"];
    (0..70)
        .map(|i| Order {
            id: i,
            day: format!("2024-01-{:02}", 1 + i % 7),
            region: regions[(i % 3) as usize].to_string(),
            amount_cents: 1_000 + u64::from(i) * 137,
        })
        .collect()
}

fn show(what: &str, receipt: &OutputReceipt) {
    let partition = receipt.partition.as_deref().unwrap_or("-");
    let checksum = receipt.checksum.as_deref().unwrap_or("-");
    println!(
        "{what:<34} {partition:<11} {:>7} B  {checksum:<25} {}",
        receipt.bytes, receipt.uri
    );
}

#[tokio::main]
async fn main() -> iomanager::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./iomanager-data".to_string());
    let files = FsIoManager::new(&dir)?;
    let memory = MemoryIoManager::new();
    let run_id = format!(
        "run-{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    println!("iomanager quick start: storing under {dir} (run {run_id})\n");
    println!(
        "{:<34} {:<11} {:>9}  {:<25} uri",
        "output", "partition", "bytes", "checksum"
    );

    // 1. An unpartitioned asset.
    let raw_out = OutputContext::builder()
        .asset_key(["raw", "orders"])
        .run_id(&run_id)
        .build()?;
    show(
        "asset raw/orders",
        &files.handle_output(&raw_out, orders()).await?,
    );

    // 2. A daily-partitioned asset: each partition reads the raw asset and keeps its day.
    let daily: PartitionsDefinition = TimeWindowPartitions::daily("2024-01-01")?
        .with_end("2024-01-08")?
        .into();
    let raw_in = InputContext::builder()
        .name("orders")
        .upstream_output(raw_out)
        .build()?;
    let all: Vec<Order> = files.load_input(&raw_in).await?;
    let days: Vec<PartitionKey> = daily.keys();
    for day in &days {
        let out = OutputContext::builder()
            .asset_key("daily_orders")
            .run_id(&run_id)
            .partitions_def(daily.clone())
            .partition(day.clone())
            .build()?;
        let todays: Vec<Order> = all
            .iter()
            .filter(|o| o.day == day.to_string())
            .cloned()
            .collect();
        show(
            "asset daily_orders",
            &files.handle_output(&out, todays).await?,
        );
    }

    // 3. A downstream asset loading every daily partition in one input.
    let week_in = InputContext::builder()
        .name("daily_orders")
        .asset_key("daily_orders")
        .partitions_def(daily.clone())
        .partition_range("2024-01-01", "2024-01-07")
        .build()?;
    let window = week_in.asset_partitions_time_window()?;
    let by_day: PartitionMap<Vec<Order>> = files.load_partitions(&week_in).await?;
    let summary: Vec<DaySummary> = by_day
        .iter()
        .map(|(day, orders)| DaySummary {
            day: day.to_string(),
            orders: orders.len(),
            revenue_cents: orders.iter().map(|o| o.amount_cents).sum(),
        })
        .collect();
    let summary_out = OutputContext::builder()
        .asset_key("weekly_summary")
        .run_id(&run_id)
        .build()?;
    show(
        "asset weekly_summary",
        &files.handle_output(&summary_out, summary.clone()).await?,
    );

    // 4. An op with a dynamic output: one mapping key per region.
    let mut regions: BTreeMap<String, Vec<Order>> = BTreeMap::new();
    for o in all {
        regions.entry(o.region.clone()).or_default().push(o);
    }
    let mut region_outputs = Vec::new();
    for (region, orders) in &regions {
        let out = OutputContext::builder()
            .run_id(&run_id)
            .step_key("split_by_region")
            .name("result")
            .mapping_key(region)
            .build()?;
        show(
            &format!("op split_by_region[{region}]"),
            &files.handle_output(&out, orders.clone()).await?,
        );
        region_outputs.push(out);
    }
    let mut totals = Vec::new();
    for out in region_outputs {
        let input = InputContext::builder()
            .name("orders")
            .upstream_output(out.clone())
            .build()?;
        let orders: Vec<Order> = files.load_input(&input).await?;
        totals.push((
            out.mapping_key().unwrap_or_default().to_string(),
            orders.len(),
        ));
    }

    // 5. A scratch value that never leaves memory.
    let scratch = OutputContext::builder()
        .asset_key("scratch/region_counts")
        .build()?;
    show(
        "asset scratch/region_counts (mem)",
        &memory.handle_output(&scratch, totals).await?,
    );

    let revenue: u64 = summary.iter().map(|d| d.revenue_cents).sum();
    println!(
        "\nweek {} .. {} (end exclusive): {} days, {} orders, revenue {}.{:02}",
        window.start.format("%Y-%m-%d"),
        window.end.format("%Y-%m-%d"),
        summary.len(),
        summary.iter().map(|d| d.orders).sum::<usize>(),
        revenue / 100,
        revenue % 100
    );
    println!("everything above is stored under {dir}; run again to overwrite atomically.");
    Ok(())
}

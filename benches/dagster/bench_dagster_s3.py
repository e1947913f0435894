#!/usr/bin/env python3
"""Dagster side of the iomanager-vs-Dagster benchmark on S3.

Times dagster-aws's ``S3PickleIOManager`` (pickled objects through boto3) against an
S3-compatible server on the same workloads as the Rust bench ``s3_vs_dagster`` of
``iomanager-s3``, and writes the results as JSON for ``cargo xtask bench --compare-dagster-s3``,
which starts ONE moto server on 127.0.0.1, runs the Rust bench and then this script against it,
and merges both into ``target/iomanager-bench/report_s3.md``.

Usage::

    python bench_dagster_s3.py --endpoint http://127.0.0.1:PORT --bucket BUCKET \\
        --out dagster_s3.json [--quick] [--debug-logs]

The manager is built the way dagster-aws documents it: an ``S3Resource`` with
``endpoint_url``, ``aws_access_key_id``, ``aws_secret_access_key`` and ``region_name``, passed
to ``S3PickleIOManager(s3_resource=..., s3_bucket=..., s3_prefix=...)``.

Cases (counts in parentheses are the ``--quick`` ones):

* ``s3_small_values/s3/{store,load}``: 1,000 (100) small dicts, each stored as its own asset
  ``small/v{i}`` and loaded back by an input context with the same asset key, one after the
  other.
* ``s3_buffer_100mb/s3/{store,load}``: one ``bytes`` value of 100,000,000 (10,000,000) bytes,
  with the peak RSS increase of each call.
* ``s3_partitions_1000/s3/{store,load}``: 1,000 (100) daily partitions of asset ``parts`` from
  2020-01-01, each a small dict, stored one ``handle_output`` per partition and loaded back with
  ONE input context spanning the whole key range (Dagster's ``UPathIOManager`` loads the
  partitions one after the other into a ``{partition_key: value}`` dict).

The Rust bench's ``s3_stream_1gib`` case has no counterpart here: a Dagster I/O manager's
``handle_output`` receives, and ``load_input`` returns, the whole value.

Each case runs 3 times (once with ``--quick``) and reports the median wall time of the I/O
calls alone, timed and settled exactly as ``bench_dagster.py`` does (whose data, context
builders and timing helpers this script imports): contexts are built before the timed loops
with ONE shared ``DagsterInstance.ephemeral()``, the heap is frozen during the timed region,
and every loaded value is compared with the stored one outside it. Each repetition builds a
fresh manager (a new boto3 client, whose bucket check runs before the timing) under a fresh key
prefix ``dagster-bench/dagster-<token>/<case>/run-<n>``, and deletes that prefix afterwards,
untimed; so the existence check ``S3PickleIOManager`` makes before every write never finds an
object to delete.

The JSON written to ``--out`` has the schema of ``bench_dagster.py``'s, with the versions of
dagster-aws and boto3 and the server added::

    {"dagster_version": str, "dagster_aws_version": str, "boto3_version": str, "python": str,
     "quick": bool, "repeats": int, "debug_logs": bool, "endpoint": str, "bucket": str,
     "results": {"<case>": {"seconds": float, "count": int, "bytes": int | null,
                            "peak_rss_extra_bytes": int | null, "runs_seconds": [float]}}}

``bytes`` is the total size of the objects the case stored.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import boto3
import dagster
from dagster import (
    DagsterInstance,
    DailyPartitionsDefinition,
    PartitionKeyRange,
    build_input_context,
    build_output_context,
)
from dagster_aws.s3 import S3PickleIOManager, S3Resource

import bench_dagster as fs_bench

ACCESS_KEY_ID = "testing"
"""The access key id sent to the server (moto accepts any)."""

SECRET_ACCESS_KEY = "testing"
"""The secret access key sent to the server (moto accepts any)."""

REGION = "us-east-1"
"""The region of the client."""

MB = fs_bench.MB
"""Bytes in the "MB" of the printed rates and sizes (a mebibyte, as in the xtask report)."""


@dataclass
class Sizes:
    """Workload sizes of one run (full or ``--quick``)."""

    repeats: int
    small_values: int
    buffer_bytes: int
    partitions: int


FULL = Sizes(repeats=3, small_values=1_000, buffer_bytes=100_000_000, partitions=1_000)
QUICK = Sizes(repeats=1, small_values=100, buffer_bytes=10_000_000, partitions=100)


class S3Bench:
    """Runs the cases against one bucket and collects their results."""

    def __init__(
        self,
        sizes: Sizes,
        endpoint: str,
        bucket: str,
        instance: DagsterInstance,
    ) -> None:
        self.sizes = sizes
        self.bucket = bucket
        self.instance = instance
        self.resource = S3Resource(
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )
        # The client for setup and cleanup (untimed), built the same way as the managers'.
        self.admin = self.resource.get_client()
        self.run_prefix = f"dagster-bench/dagster-{time.time_ns() & 0xFFFF_FFFF_FFFF:x}"
        self.results: dict[str, fs_bench.CaseResult] = {}

    def prefix(self, case: str, run: int) -> str:
        """The key prefix of repetition ``run`` of ``case``."""
        return f"{self.run_prefix}/{case}/run-{run}"

    def io_manager(self, prefix: str) -> S3PickleIOManager:
        """A manager storing under ``prefix``, its boto3 client built and checked already."""
        io_manager = S3PickleIOManager(
            s3_resource=self.resource, s3_bucket=self.bucket, s3_prefix=prefix
        )
        # Builds the client and runs the bucket check (list_objects) outside the timed calls.
        io_manager.inner_io_manager()
        return io_manager

    def keys(self, prefix: str) -> list[tuple[str, int]]:
        """Keys and sizes of the objects under ``prefix``."""
        found = []
        paginator = self.admin.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix + "/"):
            found.extend((obj["Key"], obj["Size"]) for obj in page.get("Contents", []))
        return found

    def stored_bytes(self, prefix: str) -> int:
        """Total size of the objects under ``prefix``."""
        return sum(size for _, size in self.keys(prefix))

    def clear(self, prefix: str) -> None:
        """Deletes every object under ``prefix`` (untimed cleanup)."""
        keys = [key for key, _ in self.keys(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.admin.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        fs_bench.check(not self.keys(prefix), f"objects left under {prefix}")

    def record(
        self,
        case: str,
        times: list[float],
        count: int,
        size: int | None,
        peaks: list[int | None] | None = None,
    ) -> None:
        """Stores and prints the result of ``case`` from the times of its repetitions."""
        result = fs_bench.CaseResult(
            seconds=statistics.median(times),
            count=count,
            bytes=size,
            peak_rss_extra_bytes=fs_bench.max_or_none(peaks or []),
            runs_seconds=times,
        )
        self.results[case] = result
        runs = ", ".join(f"{t:.4f}" for t in times)
        print(f"  {case}: {result.seconds:.4f} s (runs: {runs})", file=sys.stderr, flush=True)

    def small_values(self) -> None:
        """``s3_small_values/s3/{store,load}``."""
        n = self.sizes.small_values
        values = [fs_bench.small_value(i) for i in range(n)]
        store_times, load_times = [], []
        size = None
        for run in range(self.sizes.repeats):
            # Fresh contexts for every repetition, as each materialization gets its own.
            outputs, inputs = [], []
            with fs_bench.shared_instance_for_contexts(self.instance):
                for i in range(n):
                    outputs.append(fs_bench.small_output_context(i, self.instance))
                    inputs.append(fs_bench.small_input_context(i, outputs[i], self.instance))
            prefix = self.prefix("s3_small_values", run)
            io_manager = self.io_manager(prefix)
            loaded: list[Any] = [None] * n
            store_times.append(
                fs_bench.timed_loop(fs_bench.store_all, io_manager, outputs, values)
            )
            size = self.stored_bytes(prefix)
            load_times.append(fs_bench.timed_loop(fs_bench.load_all, io_manager, inputs, loaded))
            fs_bench.check(loaded == values, "s3_small_values: loaded values differ")
            self.clear(prefix)
            fs_bench.release_in_order(inputs, outputs)
        self.record("s3_small_values/s3/store", store_times, n, size)
        self.record("s3_small_values/s3/load", load_times, n, size)

    def buffer(self) -> None:
        """``s3_buffer_100mb/s3/{store,load}``."""
        case = "s3_buffer_100mb"
        value = os.urandom(self.sizes.buffer_bytes)
        store_times, load_times, store_rss, load_rss = [], [], [], []
        size = None
        for run in range(self.sizes.repeats):
            with fs_bench.shared_instance_for_contexts(self.instance):
                output = build_output_context(
                    step_key=case, name="result", asset_key=case, instance=self.instance
                )
                input_context = build_input_context(
                    name="value", asset_key=case, upstream_output=output, instance=self.instance
                )
            prefix = self.prefix(case, run)
            io_manager = self.io_manager(prefix)
            seconds, extra, _ = fs_bench.measure_call(io_manager.handle_output, output, value)
            store_times.append(seconds)
            store_rss.append(extra)
            size = self.stored_bytes(prefix)
            seconds, extra, loaded = fs_bench.measure_call(io_manager.load_input, input_context)
            load_times.append(seconds)
            load_rss.append(extra)
            fs_bench.check(loaded == value, f"{case}: loaded value differs")
            del loaded
            self.clear(prefix)
        self.record(f"{case}/s3/store", store_times, 1, size, store_rss)
        self.record(f"{case}/s3/load", load_times, 1, size, load_rss)

    def partitions(self) -> None:
        """``s3_partitions_1000/s3/{store,load}``."""
        n = self.sizes.partitions
        keys = fs_bench.daily_keys(n)
        values = {key: fs_bench.small_value(i) for i, key in enumerate(keys)}
        ordered_values = [values[key] for key in keys]
        partitions_def = DailyPartitionsDefinition(start_date="2020-01-01")
        store_times, load_times = [], []
        size = None
        for run in range(self.sizes.repeats):
            with fs_bench.shared_instance_for_contexts(self.instance):
                outputs = [
                    build_output_context(
                        step_key="parts",
                        name="result",
                        asset_key="parts",
                        partition_key=key,
                        asset_partitions_def=partitions_def,
                        instance=self.instance,
                    )
                    for key in keys
                ]
                upstream = build_output_context(
                    step_key="parts",
                    name="result",
                    asset_key="parts",
                    asset_partitions_def=partitions_def,
                    instance=self.instance,
                )
                input_context = build_input_context(
                    name="parts",
                    asset_key="parts",
                    asset_partition_key_range=PartitionKeyRange(keys[0], keys[-1]),
                    asset_partitions_def=partitions_def,
                    upstream_output=upstream,
                    instance=self.instance,
                )
            prefix = self.prefix("s3_partitions_1000", run)
            io_manager = self.io_manager(prefix)
            loaded: list[Any] = [None]
            store_times.append(
                fs_bench.timed_loop(fs_bench.store_all, io_manager, outputs, ordered_values)
            )
            size = self.stored_bytes(prefix)
            # One load_input call for the whole key range.
            load_times.append(
                fs_bench.timed_loop(fs_bench.load_all, io_manager, [input_context], loaded)
            )
            fs_bench.check(
                isinstance(loaded[0], dict) and len(loaded[0]) == n,
                f"s3_partitions_1000: expected a dict of {n} partitions",
            )
            fs_bench.check(loaded[0] == values, "s3_partitions_1000: loaded values differ")
            fs_bench.check(
                list(loaded[0]) == keys, "s3_partitions_1000: partitions out of order"
            )
            self.clear(prefix)
        self.record("s3_partitions_1000/s3/store", store_times, n, size)
        self.record("s3_partitions_1000/s3/load", load_times, n, size)


def rate(case: str, result: fs_bench.CaseResult) -> str:
    """Human-readable rate: MB/s for the buffer, values/s otherwise."""
    if result.seconds <= 0:
        return "-"
    if case.startswith("s3_buffer") and result.bytes:
        return f"{result.bytes / MB / result.seconds:,.1f} MB/s"
    return f"{result.count / result.seconds:,.0f} values/s"


def print_table(results: dict[str, fs_bench.CaseResult]) -> None:
    """Prints the results as an aligned table on stdout."""
    header = ("case", "count", "seconds", "rate", "stored", "peak RSS extra")
    rows = [
        (
            case,
            f"{r.count:,}",
            f"{r.seconds:.4f}",
            rate(case, r),
            fs_bench.human_bytes(r.bytes),
            fs_bench.human_bytes(r.peak_rss_extra_bytes),
        )
        for case, r in results.items()
    ]
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]
    for index, row in enumerate([header, *rows]):
        cells = [
            cell.ljust(widths[col]) if col == 0 else cell.rjust(widths[col])
            for col, cell in enumerate(row)
        ]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where to write the JSON results")
    parser.add_argument(
        "--endpoint", required=True, help="the S3 endpoint, e.g. http://127.0.0.1:5000"
    )
    parser.add_argument("--bucket", required=True, help="the bucket (must exist)")
    parser.add_argument("--quick", action="store_true", help="small counts, one repetition")
    parser.add_argument(
        "--debug-logs",
        action="store_true",
        help="keep Dagster's DEBUG console log lines (one per handle_output/load_input)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs every case, prints the table and writes the JSON."""
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if not args.debug_logs:
        logging.disable(logging.DEBUG)
    dagster_aws_version = importlib.metadata.version("dagster-aws")
    print(
        f"dagster {dagster.__version__}, dagster-aws {dagster_aws_version}, "
        f"boto3 {boto3.__version__}, python {platform.python_version()}, "
        f"{'quick' if args.quick else 'full'} run, {sizes.repeats} repetition(s), "
        f"S3 {args.endpoint} bucket {args.bucket}",
        file=sys.stderr,
        flush=True,
    )
    with DagsterInstance.ephemeral() as instance:
        bench = S3Bench(sizes, args.endpoint, args.bucket, instance)
        bench.small_values()
        bench.buffer()
        bench.partitions()

    report = {
        "dagster_version": dagster.__version__,
        "dagster_aws_version": dagster_aws_version,
        "boto3_version": boto3.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "repeats": sizes.repeats,
        "debug_logs": args.debug_logs,
        "endpoint": args.endpoint,
        "bucket": args.bucket,
        "results": {case: vars(result) for case, result in bench.results.items()},
    }
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
        out.write("\n")

    print()
    print_table(bench.results)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

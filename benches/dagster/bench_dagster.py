#!/usr/bin/env python3
"""Dagster side of the iomanager-vs-Dagster benchmark.

Times Dagster's own ``FilesystemIOManager`` (pickle files, ``PickledObjectFilesystemIOManager``)
and ``InMemoryIOManager`` on the same workloads as the Rust bench ``fs_vs_dagster`` of
``iomanager-fs``, and writes the results as JSON for ``cargo xtask bench --compare-dagster``,
which merges them with the Rust results into ``target/iomanager-bench/report.md``.

Usage::

    python bench_dagster.py --out dagster.json [--quick] [--base-dir DIR] [--debug-logs]

Cases (counts in parentheses are the ``--quick`` ones):

* ``small_values/{fs,memory}/{store,load}``: 10,000 (1,000) small dicts, each stored as its own
  asset ``small/v{i}`` and loaded back by an input context with the same asset key.
* ``small_values_with_context/fs/{store,load}``: 200 (50) small dicts; the timed loop also builds
  each context with the builders' default behaviour (see "Contexts" below).
* ``large_records/fs/{store,load}``: one value, a list of 1,000,000 (100,000) 5-field dicts.
* ``buffer_100mb/fs/{store,load}``: one ``bytes`` value of 100,000,000 (10,000,000) bytes.
* ``partitions_1000/fs/{store,load}``: 1,000 (100) daily partitions of asset ``parts`` from
  2020-01-01, each a small dict, stored one ``handle_output`` per partition and loaded back with
  ONE input context spanning the whole key range (a ``{partition_key: value}`` dict).

Each case runs 3 times (once with ``--quick``), each time into a fresh directory with fresh
contexts, and reports the median wall time of the I/O calls alone (``time.perf_counter``
around the loop of ``handle_output`` / ``load_input`` calls). Every loaded value is compared
with the stored one outside the timed region.

Before each timed region the script flushes earlier writes (``os.sync``), collects garbage and
freezes the live heap (``gc.freeze``), so neither writeback of earlier repetitions nor the
collector rescanning the prebuilt contexts and input values lands in the timed calls. The
directories of the many-file cases are only deleted at the very end: on ext4, creating files
within minutes of deleting many is much slower, as the inode allocator scans past recently
deleted inodes (10,000 small stores measured anywhere from 0.6 s to 7 s on a 2-CPU VM).

For the single-value cases the peak RSS increase during the call is measured from
``/proc/self/status`` (Linux only): the peak is reset by writing ``5`` to
``/proc/self/clear_refs``, ``VmRSS`` is read before the call and ``VmHWM`` after it; the
largest increase over the repetitions is reported (later repetitions can reuse memory the
allocator kept from earlier ones, so the first is usually the largest).

Contexts
    In Dagster 1.13, every ``OutputContext`` / ``InputContext`` made by ``build_output_context``
    / ``build_input_context`` enters ``build_resources`` without an instance, which creates a
    fresh ``DagsterInstance.ephemeral()`` (in-memory SQLite storages plus an alembic stamp, about
    40 ms and 1 MB each) even when ``instance=`` is passed: the builders use ``instance`` only
    for partition loading. Building 20,000 contexts that way would take about 15 minutes, so for
    every case except ``small_values_with_context`` the contexts are built before the timed loop
    with ONE shared ephemeral instance, both passed as ``instance=`` and substituted for the
    missing instance inside ``build_resources`` (``shared_instance_for_contexts``); the script
    checks that no other instance was created. ``small_values_with_context`` times the builders
    unpatched, which is what a test calling them pays.

Logging
    Contexts built outside a run log through Dagster's default console logger at DEBUG level,
    so every ``handle_output`` / ``load_input`` writes a "Writing file at ..." / "Loading file
    from ..." line to stderr. By default DEBUG logging is disabled (``logging.disable``), so the
    calls still reach the logger but nothing is formatted or written; ``--debug-logs`` keeps it.

Data (the Rust bench generates the same shapes)::

    small value i: {"id": i, "name": f"item-{i:07d}", "price": round((i * 37 % 100000) / 100, 2),
                    "qty": i % 100, "active": i % 2 == 0, "category": CATEGORIES[i % 5],
                    "ts": 1_600_000_000 + i, "score": i / 7.0, "tags": [f"t{i % 7}", f"g{i % 5}"],
                    "note": f"note for value {i:05d}"}
    large record i: {"id": i, "name": f"rec-{i:08d}", "value": i * 0.5, "flag": i % 3 == 0,
                     "ts": 1_600_000_000 + i}
    buffer: os.urandom(100_000_000)

The JSON written to ``--out``::

    {"dagster_version": str, "python": str, "quick": bool, "repeats": int, "debug_logs": bool,
     "results": {"<case>": {"seconds": float, "count": int, "bytes": int | null,
                            "peak_rss_extra_bytes": int | null, "runs_seconds": [float]}}}

``seconds`` is the median of ``runs_seconds`` (one entry per repetition), ``count`` the number
of values (records for ``large_records``, 1 for the buffer) and ``bytes`` the size of the
stored files (null for the in-memory manager).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster
from dagster import (
    AssetKey,
    DagsterInstance,
    DailyPartitionsDefinition,
    FilesystemIOManager,
    InMemoryIOManager,
    PartitionKeyRange,
    build_input_context,
    build_output_context,
)

CATEGORIES = ["books", "garden", "kitchen", "toys", "tools"]
"""Values of the ``category`` field of the small values."""

MB = 1024 * 1024
"""Bytes in the "MB" of the printed rates and sizes (a mebibyte, as in the xtask report)."""


@dataclass
class Sizes:
    """Workload sizes of one run (full or ``--quick``)."""

    repeats: int
    small_values: int
    with_context: int
    large_records: int
    buffer_bytes: int
    partitions: int


FULL = Sizes(
    repeats=3,
    small_values=10_000,
    with_context=200,
    large_records=1_000_000,
    buffer_bytes=100_000_000,
    partitions=1_000,
)
QUICK = Sizes(
    repeats=1,
    small_values=1_000,
    with_context=50,
    large_records=100_000,
    buffer_bytes=10_000_000,
    partitions=100,
)


@dataclass
class CaseResult:
    """What the JSON reports for one case."""

    seconds: float
    count: int
    bytes: int | None = None
    peak_rss_extra_bytes: int | None = None
    runs_seconds: list[float] | None = None


# --------------------------------------------------------------------------------------------
# data


def small_value(i: int) -> dict[str, Any]:
    """The ``i``-th small value: a dict of 10 fields."""
    return {
        "id": i,
        "name": f"item-{i:07d}",
        "price": round((i * 37 % 100_000) / 100, 2),
        "qty": i % 100,
        "active": i % 2 == 0,
        "category": CATEGORIES[i % 5],
        "ts": 1_600_000_000 + i,
        "score": i / 7.0,
        "tags": [f"t{i % 7}", f"g{i % 5}"],
        "note": f"note for value {i:05d}",
    }


def large_record(i: int) -> dict[str, Any]:
    """The ``i``-th record of the large value: a dict of 5 fields."""
    return {
        "id": i,
        "name": f"rec-{i:08d}",
        "value": i * 0.5,
        "flag": i % 3 == 0,
        "ts": 1_600_000_000 + i,
    }


def daily_keys(count: int) -> list[str]:
    """The first ``count`` daily partition keys from 2020-01-01."""
    start = dt.date(2020, 1, 1)
    return [(start + dt.timedelta(days=d)).isoformat() for d in range(count)]


# --------------------------------------------------------------------------------------------
# measurement helpers


def status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``VmRSS``) in bytes, or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Resets ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Settles the machine before a timed region and keeps the collector off the live heap.

    ``os.sync`` first flushes what earlier repetitions wrote or deleted, so that writeback does
    not land in the timed region. Then ``gc.freeze`` moves the live objects to the permanent
    generation, so collections during the timed region do not rescan what the harness prepared
    (up to 20,000 contexts, the input values); objects the timed calls create are collected as
    usual.
    """
    if hasattr(os, "sync"):
        os.sync()
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def measure_call(call: Callable[..., Any], *args: Any) -> tuple[float, int | None, Any]:
    """Runs ``call(*args)`` once: (seconds, peak RSS increase in bytes or None, its result).

    Dirty pages are flushed first (``os.sync``), as the Rust bench does before each large
    call, so neither side pays for the other's (or its own earlier) writeback.
    """
    os.sync()
    with frozen_heap():
        can_reset = reset_peak_rss()
        before = status_kb("VmRSS")
        start = time.perf_counter()
        result = call(*args)
        seconds = time.perf_counter() - start
        peak = status_kb("VmHWM")
    extra = None
    if can_reset and before is not None and peak is not None:
        extra = max(0, peak - before)
    return seconds, extra, result


def timed_loop(loop: Callable[..., None], *args: Any) -> float:
    """Wall time of one call of ``loop(*args)`` (with a frozen heap, see ``frozen_heap``)."""
    with frozen_heap():
        start = time.perf_counter()
        loop(*args)
        return time.perf_counter() - start


def store_all(io_manager: Any, contexts: list[Any], values: list[Any]) -> None:
    """The timed store loop: one ``handle_output`` per context."""
    for context, value in zip(contexts, values, strict=True):
        io_manager.handle_output(context, value)


def load_all(io_manager: Any, contexts: list[Any], loaded: list[Any]) -> None:
    """The timed load loop: one ``load_input`` per context, results into ``loaded``."""
    for index, context in enumerate(contexts):
        loaded[index] = io_manager.load_input(context)


def store_building_contexts(io_manager: Any, values: list[Any]) -> None:
    """Store loop that also builds each output context the default way (fresh instance)."""
    for i, value in enumerate(values):
        io_manager.handle_output(small_output_context(i, None), value)


def load_building_contexts(io_manager: Any, loaded: list[Any]) -> None:
    """Load loop that also builds each input context the default way (fresh instance).

    The filesystem manager reads the asset path from the input's own asset key, so no
    upstream output context is needed.
    """
    for i in range(len(loaded)):
        context = build_input_context(name="value", asset_key=small_asset_key(i))
        loaded[i] = io_manager.load_input(context)


def release_in_order(*lists: list[Any]) -> None:
    """Drops the items of ``lists`` index by index (item 0 of each list, then item 1, ...).

    Every context owns a console log handler, and ``logging`` keeps a global list of handler
    weak references that a dying handler is removed from with ``list.remove``. Dropping
    contexts in the order they were built keeps each removal near the front of that list;
    dropping 20,000 of them newest first (as freeing a Python list does) takes minutes.
    """
    for index in range(max(len(items) for items in lists)):
        for items in lists:
            if index < len(items):
                items[index] = None
    for items in lists:
        items.clear()


def tree_bytes(path: str) -> int:
    """Total size of the regular files under ``path`` (or of ``path`` itself)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(directory, name))
    return total


def max_or_none(values: list[int | None]) -> int | None:
    """The largest non-None value, or None when there is none."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def check(condition: bool, message: str) -> None:
    """Raises ``AssertionError(message)`` unless ``condition`` (kept under ``python -O``)."""
    if not condition:
        raise AssertionError(message)


# --------------------------------------------------------------------------------------------
# contexts


@contextlib.contextmanager
def shared_instance_for_contexts(instance: DagsterInstance) -> Iterator[None]:
    """Makes the context builders use ``instance`` instead of a fresh ephemeral instance.

    ``OutputContext`` / ``InputContext`` call ``build_resources`` without an instance, which
    then enters ``ephemeral_instance_if_missing(None)``; this swaps that helper (as imported by
    ``dagster._core.execution.build_resources``) for one that yields ``instance``, and checks
    on exit that ``DagsterInstance.ephemeral`` was not called meanwhile.
    """
    import dagster._core.execution.build_resources as build_resources_module

    original_helper = build_resources_module.ephemeral_instance_if_missing
    original_ephemeral = DagsterInstance.ephemeral
    created = [0]

    @contextlib.contextmanager
    def use_shared(given: DagsterInstance | None) -> Iterator[DagsterInstance]:
        yield given if given is not None else instance

    def counting_ephemeral(*args: Any, **kwargs: Any) -> DagsterInstance:
        created[0] += 1
        return original_ephemeral(*args, **kwargs)

    build_resources_module.ephemeral_instance_if_missing = use_shared
    DagsterInstance.ephemeral = staticmethod(counting_ephemeral)  # type: ignore[method-assign]
    try:
        yield
    finally:
        build_resources_module.ephemeral_instance_if_missing = original_helper
        DagsterInstance.ephemeral = staticmethod(original_ephemeral)  # type: ignore[method-assign]
    check(created[0] == 0, f"{created[0]} ephemeral instance(s) created while building contexts")


def small_asset_key(i: int) -> AssetKey:
    """Asset key of the ``i``-th small value: ``small/v{i}``."""
    return AssetKey(["small", f"v{i}"])


def small_output_context(i: int, instance: DagsterInstance | None):
    """Output context of the ``i``-th small value (distinct step key for the memory manager)."""
    return build_output_context(
        step_key=f"small_v{i}",
        name="result",
        asset_key=small_asset_key(i),
        instance=instance,
    )


def small_input_context(i: int, upstream, instance: DagsterInstance | None):
    """Input context loading the ``i``-th small value stored through ``upstream``."""
    return build_input_context(
        name="value",
        asset_key=small_asset_key(i),
        upstream_output=upstream,
        instance=instance,
    )


# --------------------------------------------------------------------------------------------
# cases


class Bench:
    """Runs the cases of one benchmark run and collects their results."""

    def __init__(self, sizes: Sizes, base_dir: str, instance: DagsterInstance) -> None:
        self.sizes = sizes
        self.base_dir = base_dir
        self.instance = instance
        self.results: dict[str, CaseResult] = {}
        self._scratch_counter = 0

    def scratch(self, name: str) -> str:
        """A fresh, not yet existing directory under the base dir (deleted with it at the end)."""
        self._scratch_counter += 1
        return os.path.join(self.base_dir, f"{self._scratch_counter:03d}-{name}")

    def record(
        self,
        case: str,
        times: list[float],
        count: int,
        size: int | None = None,
        peaks: list[int | None] | None = None,
    ) -> None:
        """Stores and prints the result of ``case`` from the times of its repetitions."""
        result = CaseResult(
            seconds=statistics.median(times),
            count=count,
            bytes=size,
            peak_rss_extra_bytes=max_or_none(peaks or []),
            runs_seconds=times,
        )
        self.results[case] = result
        runs = ", ".join(f"{t:.4f}" for t in times)
        print(f"  {case}: {result.seconds:.4f} s (runs: {runs})", file=sys.stderr, flush=True)

    def small_values(self) -> None:
        """``small_values/{fs,memory}/{store,load}``."""
        n = self.sizes.small_values
        values = [small_value(i) for i in range(n)]

        for kind in ("fs", "memory"):
            store_times, load_times, sizes = [], [], []
            for _ in range(self.sizes.repeats):
                # Fresh contexts for every repetition, as each materialization gets its own
                # (an output context also refuses a second "path" metadata entry).
                # Built interleaved so that release_in_order frees them in creation order.
                outputs, inputs = [], []
                with shared_instance_for_contexts(self.instance):
                    for i in range(n):
                        outputs.append(small_output_context(i, self.instance))
                        inputs.append(small_input_context(i, outputs[i], self.instance))
                directory = self.scratch(f"small-{kind}")
                if kind == "fs":
                    io_manager = FilesystemIOManager(base_dir=directory).create_io_manager(None)
                else:
                    io_manager = InMemoryIOManager()
                loaded: list[Any] = [None] * n
                store_times.append(timed_loop(store_all, io_manager, outputs, values))
                if kind == "fs":
                    sizes.append(tree_bytes(directory))
                load_times.append(timed_loop(load_all, io_manager, inputs, loaded))
                check(loaded == values, f"small_values/{kind}: loaded values differ")
                release_in_order(inputs, outputs)
            size = sizes[0] if sizes else None
            self.record(f"small_values/{kind}/store", store_times, n, size)
            self.record(f"small_values/{kind}/load", load_times, n, size)

    def small_values_with_context(self) -> None:
        """``small_values_with_context/fs/{store,load}``: contexts built in the timed loop."""
        n = self.sizes.with_context
        values = [small_value(i) for i in range(n)]
        store_times, load_times = [], []
        size = None
        for _ in range(self.sizes.repeats):
            directory = self.scratch("with-context")
            io_manager = FilesystemIOManager(base_dir=directory).create_io_manager(None)
            loaded: list[Any] = [None] * n
            store_times.append(timed_loop(store_building_contexts, io_manager, values))
            size = tree_bytes(directory)
            load_times.append(timed_loop(load_building_contexts, io_manager, loaded))
            check(loaded == values, "small_values_with_context: loaded values differ")
        self.record("small_values_with_context/fs/store", store_times, n, size)
        self.record("small_values_with_context/fs/load", load_times, n, size)

    def single_value(self, case: str, value: Any, count: int) -> None:
        """``<case>/fs/{store,load}`` for one large value stored as asset ``<case>``."""
        store_times, load_times, store_rss, load_rss = [], [], [], []
        size = None
        for _ in range(self.sizes.repeats):
            with shared_instance_for_contexts(self.instance):
                output = build_output_context(
                    step_key=case, name="result", asset_key=case, instance=self.instance
                )
                input_context = build_input_context(
                    name="value", asset_key=case, upstream_output=output, instance=self.instance
                )
            directory = self.scratch(case)
            io_manager = FilesystemIOManager(base_dir=directory).create_io_manager(None)
            seconds, extra, _ = measure_call(io_manager.handle_output, output, value)
            store_times.append(seconds)
            store_rss.append(extra)
            size = tree_bytes(os.path.join(directory, case))
            seconds, extra, loaded = measure_call(io_manager.load_input, input_context)
            load_times.append(seconds)
            load_rss.append(extra)
            check(loaded == value, f"{case}: loaded value differs")
            del loaded
            # Unlike the many-file cases, the one large file is deleted right away: deleting one
            # inode does not slow down file creation, and the next repetition then writes into
            # recycled page-cache memory instead of memory the (virtual) machine has to fault in
            # for the first time, which is what a long-running process sees.
            shutil.rmtree(directory, ignore_errors=True)
        self.record(f"{case}/fs/store", store_times, count, size, store_rss)
        self.record(f"{case}/fs/load", load_times, count, size, load_rss)

    def large_records(self) -> None:
        """``large_records/fs/{store,load}``."""
        n = self.sizes.large_records
        value = [large_record(i) for i in range(n)]
        self.single_value("large_records", value, n)

    def buffer(self) -> None:
        """``buffer_100mb/fs/{store,load}``."""
        value = os.urandom(self.sizes.buffer_bytes)
        self.single_value("buffer_100mb", value, 1)

    def partitions(self) -> None:
        """``partitions_1000/fs/{store,load}``."""
        n = self.sizes.partitions
        keys = daily_keys(n)
        values = {key: small_value(i) for i, key in enumerate(keys)}
        ordered_values = [values[key] for key in keys]
        partitions_def = DailyPartitionsDefinition(start_date="2020-01-01")
        store_times, load_times = [], []
        size = None
        for _ in range(self.sizes.repeats):
            with shared_instance_for_contexts(self.instance):
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
            directory = self.scratch("partitions")
            io_manager = FilesystemIOManager(base_dir=directory).create_io_manager(None)
            loaded: list[Any] = [None]
            store_times.append(timed_loop(store_all, io_manager, outputs, ordered_values))
            size = tree_bytes(directory)
            # One load_input call for the whole key range.
            load_times.append(timed_loop(load_all, io_manager, [input_context], loaded))
            check(
                isinstance(loaded[0], dict) and len(loaded[0]) == n,
                f"partitions: expected a dict of {n} partitions",
            )
            check(loaded[0] == values, "partitions: loaded values differ")
        self.record("partitions_1000/fs/store", store_times, n, size)
        self.record("partitions_1000/fs/load", load_times, n, size)


# --------------------------------------------------------------------------------------------
# output


def rate(case: str, result: CaseResult) -> str:
    """Human-readable rate: MB/s for the single large values, values/s otherwise."""
    if result.seconds <= 0:
        return "-"
    if case.startswith(("large_records/", "buffer_100mb/")) and result.bytes:
        return f"{result.bytes / MB / result.seconds:,.1f} MB/s"
    return f"{result.count / result.seconds:,.0f} values/s"


def human_bytes(value: int | None) -> str:
    """``value`` bytes as MB, or kB below 1 MB ("-" when absent)."""
    if value is None:
        return "-"
    if value < MB:
        return f"{value / 1024:,.1f} kB"
    return f"{value / MB:,.1f} MB"


def print_table(results: dict[str, CaseResult]) -> None:
    """Prints the results as an aligned table on stdout."""
    header = ("case", "count", "seconds", "rate", "stored", "peak RSS extra")
    rows = [
        (
            case,
            f"{r.count:,}",
            f"{r.seconds:.4f}",
            rate(case, r),
            human_bytes(r.bytes),
            human_bytes(r.peak_rss_extra_bytes),
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
    parser.add_argument("--quick", action="store_true", help="small counts, one repetition")
    parser.add_argument(
        "--base-dir",
        help="scratch directory to create and delete (must not exist or be empty); "
        "default: a new temporary directory",
    )
    parser.add_argument(
        "--debug-logs",
        action="store_true",
        help="keep Dagster's DEBUG console log lines (one per handle_output/load_input)",
    )
    return parser.parse_args(argv)


def make_base_dir(requested: str | None) -> str:
    """Creates the scratch directory; refuses a non-empty existing one."""
    if requested is None:
        return tempfile.mkdtemp(prefix="dagster-bench-")
    if os.path.isdir(requested) and os.listdir(requested):
        raise SystemExit(f"error: --base-dir {requested} exists and is not empty")
    os.makedirs(requested, exist_ok=True)
    return requested


def main(argv: list[str] | None = None) -> int:
    """Runs every case, prints the table and writes the JSON."""
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if not args.debug_logs:
        logging.disable(logging.DEBUG)

    base_dir = make_base_dir(args.base_dir)
    print(
        f"dagster {dagster.__version__}, python {platform.python_version()}, "
        f"{'quick' if args.quick else 'full'} run, {sizes.repeats} repetition(s), "
        f"scratch {base_dir}",
        file=sys.stderr,
        flush=True,
    )
    try:
        with DagsterInstance.ephemeral() as instance:
            bench = Bench(sizes, base_dir, instance)
            bench.small_values()
            bench.small_values_with_context()
            bench.large_records()
            bench.buffer()
            bench.partitions()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)

    report = {
        "dagster_version": dagster.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "repeats": sizes.repeats,
        "debug_logs": args.debug_logs,
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

#!/usr/bin/env python3
"""Turns an fs_bench JSON report into one table of medians and ratios.

Usage: bench_table.py REPORT.json

The table comes from fs_bench's paired benchmarks, "Pair/<op>/<depth>/
<resolver>": each iteration runs capfs, the raw unconfined call and the floor
(the minimal confined syscall sequence; for kernel Stat and Lstat the cheaper
of the two three-syscall sequences) in turn, each call timed on its own, and
reports the median time per call of each. Shown per operation, depth and
resolver: those medians (microseconds of wall time per call sequence, the
median over the run's repetitions), the two ratios, heap allocations per
capfs call, and whether the issue's targets hold. The separate benchmarks
("<op>/<depth>/<variant>", CPU time) are in the JSON report as well; the
openat2-against-openat reference below comes from them.
"""

import json
import os
import platform
import sys

TARGET_FLOOR = 1.10  # capfs / floor, every operation and depth
TARGET_ONE_COMPONENT = 1.05  # capfs / raw, one-component paths
TARGET_READDIR = 1.20  # capfs ReadDir / raw getdents64
ZERO_ALLOC_OPS = {"OpenAt", "Stat", "Lstat", "MkdirRmdir", "CreateUnlink"}
ORDER = ["OpenAt", "OpenAtDotDot", "OpenAtSymlinks", "Stat", "Lstat",
         "MkdirRmdir", "Rename", "CreateUnlink", "ReadDir"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load(path):
    with open(path) as f:
        report = json.load(f)
    pairs = {}  # (op, depth, resolver) -> counters
    separate = {}  # "op/depth/variant" -> CPU time, us
    for b in report["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        parts = name.split("/")
        if parts[0] == "Pair" and len(parts) == 4:
            pairs[(parts[1], int(parts[2]), parts[3])] = b
        elif len(parts) == 3:
            scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
            separate[name] = b["cpu_time"] * scale
    return report.get("context", {}), pairs, separate


def fmt_us(v):
    if v is None:
        return "-"
    return "%.2f" % v if v < 100 else "%.0f" % v


def fmt_ratio(v):
    return "-" if v is None else "%.2f" % v


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, pairs, separate = load(sys.argv[1])
    print("machine: %d cores, %s, Linux %s; load average at start %s" % (
        context.get("num_cpus", os.cpu_count() or 0), cpu_model(),
        platform.release(),
        " ".join("%.2f" % x for x in context.get("load_avg", [])) or "?"))
    print("times: median wall time per call sequence, microseconds "
          "(paired benchmarks)")
    print()
    header = ("operation", "depth", "resolver", "capfs", "raw", "floor",
              "capfs/raw", "capfs/floor", "allocs/op", "target")
    rows = []
    misses = 0
    order = lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[0], k[1],
                       k[2] != "kernel")
    for key in sorted(pairs, key=order):
        op, depth, resolver = key
        b = pairs[key]
        us = lambda c: b[c] / 1000.0 if c in b else None
        capfs, raw = us("capfs_ns"), us("raw_ns")
        floors = [v for v in (us("floor_ns"), us("floor_alt_ns")) if v]
        floor = min(floors) if floors else None
        alt = us("floor_alt_ns") is not None and floor == us("floor_alt_ns")
        r_raw = b.get("capfs_over_raw")
        r_floor = b.get("capfs_over_floor")
        a = b.get("allocs_per_op")
        checks = []
        if op == "ReadDir":
            checks.append(r_raw is not None and r_raw <= TARGET_READDIR)
        else:
            checks.append(r_floor is not None and r_floor <= TARGET_FLOOR)
            if depth == 1:
                checks.append(r_raw is not None and r_raw <= TARGET_ONE_COMPONENT)
            if op in ZERO_ALLOC_OPS:
                checks.append(a == 0)
        ok = all(checks)
        misses += 0 if ok else 1
        rows.append((op, str(depth), resolver, fmt_us(capfs), fmt_us(raw),
                     fmt_us(floor) + (" (parent)" if alt else ""),
                     fmt_ratio(r_raw), fmt_ratio(r_floor),
                     "-" if a is None else "%.2f" % a, "ok" if ok else "MISS"))
    if not rows:
        sys.exit("no Pair/ benchmarks in the report")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))

    ref = []
    for d in sorted({int(n.split("/")[1]) for n in separate if n.startswith("OpenAt/")}):
        raw = separate.get("OpenAt/%d/raw" % d)
        o2 = separate.get("OpenAt/%d/openat2" % d)
        if raw and o2:
            ref.append((d, raw, o2))
    if ref:
        print()
        print("openat2(RESOLVE_BENEATH)+close against openat+close, unconfined "
              "(separate benchmarks, CPU time):")
        for d, raw, o2 in ref:
            print("  depth %-3d openat %s us, openat2 %s us, ratio %s" % (
                d, fmt_us(raw), fmt_us(o2), fmt_ratio(o2 / raw)))
    print()
    print("targets: capfs/floor <= %.2f; one component capfs/raw <= %.2f; "
          "ReadDir capfs/raw <= %.2f; 0 allocs/op for %s. %d row(s) miss." % (
              TARGET_FLOOR, TARGET_ONE_COMPONENT, TARGET_READDIR,
              ", ".join(sorted(ZERO_ALLOC_OPS)), misses))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turns an fs_bench JSON report into one table of medians and ratios.

Usage: bench_table.py REPORT.json

fs_bench names its benchmarks "<operation>/<depth>/<variant>", with variant
one of raw, openat2, floor:kernel, floor:kernel-parent, floor:userspace,
capfs:kernel, capfs:userspace. This prints, for every operation, depth and
resolver: the capfs median, the raw (unconfined) median, the floor median
(the minimal confined syscall sequence; for the kernel resolver the cheaper
of floor:kernel and floor:kernel-parent when both were measured), the two
ratios, heap allocations per capfs call, and whether the issue's target
holds. Times are CPU time per iteration (the thread's user and system time),
in microseconds; the medians are over the run's repetitions.
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
    medians = {}
    allocs = {}
    for b in report["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        medians[name] = b["cpu_time"] * scale
        if "allocs_per_op" in b:
            allocs[name] = b["allocs_per_op"]
    return report.get("context", {}), medians, allocs


def fmt_us(v):
    if v is None:
        return "-"
    return "%.2f" % v if v < 100 else "%.0f" % v


def fmt_ratio(v):
    return "-" if v is None else "%.2f" % v


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, medians, allocs = load(sys.argv[1])
    reps = None
    keys = {}
    for name in medians:
        parts = name.split("/")
        if len(parts) != 3:
            continue
        op, depth, variant = parts
        keys.setdefault((op, int(depth)), {})[variant] = name

    print("machine: %d cores, %s, Linux %s; load average at start %s" % (
        context.get("num_cpus", os.cpu_count() or 0), cpu_model(),
        platform.release(),
        " ".join("%.2f" % x for x in context.get("load_avg", [])) or "?"))
    print("times: median CPU time per call sequence, microseconds")
    print()
    header = ("operation", "depth", "resolver", "capfs", "raw", "floor",
              "capfs/raw", "capfs/floor", "allocs/op", "target")
    rows = []
    misses = 0
    for (op, depth) in sorted(keys, key=lambda k: (
            ORDER.index(k[0]) if k[0] in ORDER else 99, k[0], k[1])):
        v = keys[(op, depth)]
        raw = medians.get(v.get("raw"))
        for resolver in ("kernel", "userspace"):
            cap_name = v.get("capfs:" + resolver)
            if cap_name is None:
                continue
            capfs = medians[cap_name]
            floor_names = ["floor:" + resolver]
            if resolver == "kernel":
                floor_names.append("floor:kernel-parent")
            floors = [(medians[v[n]], n) for n in floor_names if n in v]
            floor, floor_name = min(floors) if floors else (None, None)
            if op == "ReadDir":
                floor = None  # one component: the floor is the raw call
            r_raw = capfs / raw if raw else None
            r_floor = capfs / floor if floor else None
            a = allocs.get(cap_name)
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
            note = "" if floor_name in (None, "floor:" + resolver) else " (parent)"
            rows.append((op, str(depth), resolver, fmt_us(capfs), fmt_us(raw),
                         fmt_us(floor) + note, fmt_ratio(r_raw),
                         fmt_ratio(r_floor),
                         "-" if a is None else "%.2f" % a,
                         "ok" if ok else "MISS"))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))

    ref = [(d, medians.get(v.get("raw")), medians.get(v.get("openat2")))
           for (op, d), v in sorted(keys.items()) if op == "OpenAt" and "openat2" in v]
    if ref:
        print()
        print("openat2(RESOLVE_BENEATH)+close against openat+close, unconfined (raw):")
        for d, raw, o2 in ref:
            print("  depth %-3d openat %s us, openat2 %s us, ratio %s" % (
                d, fmt_us(raw), fmt_us(o2), fmt_ratio(o2 / raw if raw and o2 else None)))
    print()
    print("targets: capfs/floor <= %.2f; one component capfs/raw <= %.2f; "
          "ReadDir capfs/raw <= %.2f; 0 allocs/op for %s. %d row(s) miss." % (
              TARGET_FLOOR, TARGET_ONE_COMPONENT, TARGET_READDIR,
              ", ".join(sorted(ZERO_ALLOC_OPS)), misses))


if __name__ == "__main__":
    main()

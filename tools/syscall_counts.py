#!/usr/bin/env python3
"""Counts the syscalls of every fs_bench benchmark per iteration, under strace.

Usage: tools/syscall_counts.py [-- extra fs_bench flags]

Runs fs_bench under `strace -f` with --fs_bench_iterations=N (every
benchmark runs exactly N iterations, after writing its name to /dev/null),
cuts the trace at those markers, and prints for every operation and depth
the syscalls per iteration of capfs beside those of its floor, per resolver,
with the breakdown by syscall where they differ. The benchmark library's own
calls (its CPU clock, its console output) are left out.
It builds and runs fs_bench with `bazel run -c opt --run_under=strace`.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

ITERATIONS = 50
IGNORED = {"clock_gettime"}
LINE = re.compile(r"^\d+\s+([a-z0-9_]+)\((.*)$")
MARKER = re.compile(r'^\d+\s+write\(\d+, "([^"]+)", \d+\)')


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    if args:
        sys.exit(__doc__)
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace")
        subprocess.run(
            ["bazel", "run", "-c", "opt",
             "--run_under=strace -f -qq -o %s" % trace,
             "//capfs_test/bench:fs_bench", "--",
             "--fs_bench_iterations=%d" % ITERATIONS] +
            (extra or ["--benchmark_filter=-^Pair/"]),
            check=True, stdout=subprocess.DEVNULL)
        counts = collections.OrderedDict()
        current = None
        with open(trace, errors="replace") as f:
            for line in f:
                m = MARKER.match(line)
                if m and m.group(1).count("/") == 2:
                    current = m.group(1)
                    counts[current] = collections.Counter()
                    continue
                if m and m.group(1) == "end":
                    current = None
                    continue
                m = LINE.match(line)
                if not m or current is None:
                    continue
                name, rest = m.groups()
                if name in IGNORED or (name == "write" and rest.startswith(("1,", "2,"))):
                    continue
                counts[current][name] += 1

    def per_iter(c):
        return {k: v / ITERATIONS for k, v in c.items() if v / ITERATIONS >= 0.05}

    def total(c):
        return sum(per_iter(c).values())

    def breakdown(c):
        return " ".join("%s:%g" % (k, round(v, 2)) for k, v in sorted(per_iter(c).items()))

    groups = collections.OrderedDict()
    for name, c in counts.items():
        op, depth, variant = name.split("/")
        groups.setdefault((op, depth), {})[variant] = c
    print("syscalls per iteration (strace, %d iterations each)" % ITERATIONS)
    print("| operation | depth | raw | kernel: capfs | kernel: floor | userspace: capfs | userspace: floor | differences |")
    print("|---|---|---|---|---|---|---|---|")
    for (op, depth), v in groups.items():
        cells = []
        notes = []
        for resolver in ("kernel", "userspace"):
            cap = v.get("capfs:" + resolver)
            floors = [(total(v[n]), n) for n in ("floor:" + resolver, "floor:kernel-parent")
                      if n in v and (resolver == "kernel" or n == "floor:userspace")]
            if op == "ReadDir":
                floors = [(total(v["raw"]), "raw")]
            fl_total, fl_name = min(floors) if floors else (None, None)
            cells.append("%g" % round(total(cap), 2) if cap is not None else "-")
            cells.append("%g" % round(fl_total, 2) if fl_total is not None else "-")
            if cap is not None and fl_name is not None and per_iter(cap) != per_iter(v[fl_name]):
                notes.append("%s: capfs {%s} floor {%s}" % (
                    resolver, breakdown(cap), breakdown(v[fl_name])))
        raw = v.get("raw")
        print("| %s | %s | %s | %s | %s |" % (
            op, depth, "%g" % round(total(raw), 2) if raw else "-",
            " | ".join(cells), "; ".join(notes) or "same calls"))


if __name__ == "__main__":
    main()

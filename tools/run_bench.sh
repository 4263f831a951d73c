#!/usr/bin/env bash
# What `capfs run` costs a whole process, against the program alone and
# against bubblewrap giving it the same read-only tree. Each of
#   capfs:  capfs run --ro=DIR -- /bin/true
#   alone:  /bin/true
#   bwrap:  bwrap --ro-bind DIR DIR --ro-bind /usr /usr (+ /bin, /lib,
#           /lib64, /sbin as on this system) -- /bin/true
# is started and waited for RUNS times (default 200), interleaved (capfs,
# alone, bwrap, capfs, ...) so that the machine's load falls on all three
# alike, by a small Python loop (posix_spawn + waitpid, the same for all).
# Prints each one's median wall time and the ratios of the medians. The
# targets: capfs / alone <= 2.5 (two execs against one), capfs / bwrap <= 0.8.
#
# Usage: tools/run_bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-200}"
bash tools/setup.sh
bazel build --config=ci -c opt //tools:capfs >&2
capfs="$PWD/bazel-bin/tools/capfs"

dir="$(mktemp -d /tmp/capfs-run-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
echo "data" > "$dir/file.txt"

# The tree capfs run grants by default, the same for bwrap: DIR and /usr
# read-only, and /bin, /lib, /lib64, /sbin as they are here (symlinks into
# /usr on a merged-/usr system, directories elsewhere).
bwrap_args=(--ro-bind "$dir" "$dir" --ro-bind /usr /usr)
for d in /bin /lib /lib64 /sbin; do
  if [ -L "$d" ]; then
    bwrap_args+=(--symlink "$(readlink "$d")" "$d")
  elif [ -d "$d" ]; then
    bwrap_args+=(--ro-bind "$d" "$d")
  fi
done

# Both must work before they are timed.
"$capfs" run --ro="$dir" -- /bin/cat "$dir/file.txt" >/dev/null
bwrap "${bwrap_args[@]}" -- /bin/cat "$dir/file.txt" >/dev/null

python3 - "$runs" "$(uname -r)" "$(nproc)" \
  capfs "$capfs" run --ro="$dir" -- /bin/true ";" \
  alone /bin/true ";" \
  bwrap "$(command -v bwrap)" "${bwrap_args[@]}" -- /bin/true ";" <<'EOF'
import os, statistics, sys, time

runs, kernel, cpus = int(sys.argv[1]), sys.argv[2], sys.argv[3]
commands, current = {}, []
for word in sys.argv[4:]:
    if word == ";":
        commands[current[0]] = current[1:]
        current = []
    else:
        current.append(word)

def once(argv):
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter_ns() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv}: exit status {status}")
    return elapsed / 1e6  # ms

for _ in range(10):  # warm the page cache and the binaries
    for argv in commands.values():
        once(argv)
times = {name: [] for name in commands}
for _ in range(runs):
    for name, argv in commands.items():
        times[name].append(once(argv))

median = {name: statistics.median(t) for name, t in times.items()}
print(f"{runs} interleaved runs of each, Linux {kernel}, {cpus} CPUs, "
      f"load average {os.getloadavg()[0]:.2f}")
print(f"{'':8} {'median':>10} {'p10':>9} {'p90':>9}")
for name, t in times.items():
    q = statistics.quantiles(t, n=10)
    print(f"{name:8} {median[name]:8.3f}ms {q[0]:7.3f}ms {q[-1]:7.3f}ms")
a = median["capfs"] / median["alone"]
b = median["capfs"] / median["bwrap"]
print(f"capfs run / alone: {a:.2f} (target <= 2.5: {'met' if a <= 2.5 else 'MISSED'})")
print(f"capfs run / bwrap: {b:.2f} (target <= 0.8: {'met' if b <= 0.8 else 'MISSED'})")
EOF

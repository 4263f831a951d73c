#!/usr/bin/env bash
# Runs the filesystem benchmarks with repetitions and prints one table: for
# every operation, depth and resolver, the capfs median beside the raw
# unconfined call and the minimal confined syscall sequence (the floor), the
# two ratios and the heap allocations per call.
#
#   tools/bench.sh                       # everything, 5 repetitions
#   BENCH_REPETITIONS=9 tools/bench.sh   # more repetitions
#   tools/bench.sh --benchmark_filter='^(OpenAt|Stat)/'   # extra fs_bench flags
#
# BENCH_JSON=path keeps the raw JSON report. Machines are noisy: take the
# figures when the load average is low; ratios within one run are what count.
set -euo pipefail
cd "$(dirname "$0")/.."

repetitions="${BENCH_REPETITIONS:-5}"
min_time="${BENCH_MIN_TIME:-0.2}"
json="${BENCH_JSON:-}"
cleanup=()
if [ -z "$json" ]; then
  json="$(mktemp --suffix=.json)"
  cleanup+=("$json")
fi
trap 'rm -f "${cleanup[@]:-}"' EXIT
json="$(realpath "$json")"

echo "bench: fs_bench, ${repetitions} repetitions (a few minutes)" >&2
bazel run -c opt //capfs_test/bench:fs_bench -- \
  --benchmark_repetitions="$repetitions" \
  --benchmark_min_time="$min_time" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true \
  --benchmark_out="$json" --benchmark_out_format=json \
  "$@" >/dev/null
python3 tools/bench_table.py "$json"

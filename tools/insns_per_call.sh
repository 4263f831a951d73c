#!/usr/bin/env bash
# Counts the user-space instructions one call of a benchmark costs, without
# timing anything: gdb single-steps the benchmark from one call of a libc
# function (__close by default) to the next, once it is in its steady state.
# On a host whose timings spread by tens of percent from run to run, this
# count does not move. For the awaitable Dir calls against liburing by hand:
#
#   bazel build -c opt //capfs_test/bench:async_fs_bench
#   tools/insns_per_call.sh bazel-out/k8-opt/bin/capfs_test/bench/async_fs_bench \
#       'async_fs_uring/openat_path/1/re'
#   tools/insns_per_call.sh bazel-out/k8-opt/bin/capfs_test/bench/async_fs_bench \
#       'liburing/openat_path/1/re'
#
# Prints, for three consecutive gaps, the instructions and the distinct code
# lines and pages they ran from, then the last gap's instructions by
# function. Environment: INSNS_BREAK (another function to count between),
# INSNS_SKIP (calls to let pass first: 5500, past async_fs_bench's 2,000
# closes while it builds its tree and into the benchmark's steady state),
# INSNS_ROUNDS (gaps, 3). With 1,000 calls in flight a gap is one call's
# completion side only (its task resuming, closing and ending): the
# submissions happen in a burst elsewhere.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BENCHMARK_BINARY BENCHMARK_FILTER" >&2
  exit 2
fi
command -v gdb >/dev/null || { echo "$0: needs gdb" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
out="$(gdb -q -batch -x "$here/insns_per_call.py" --args "$1" \
  --benchmark_filter="$2" --benchmark_min_time=0.5 2>&1 || true)"
if ! grep -q '^RESULT ' <<<"$out"; then
  # No count: ptrace refused, no such benchmark, fewer calls than
  # INSNS_SKIP, or a script error. gdb's last words say which.
  echo "$0: nothing counted; gdb's output ends:" >&2
  tail -n 20 <<<"$out" >&2
  exit 1
fi
grep -E '^(RESULT|FUNCTION) ' <<<"$out" |
  sed -e 's/^RESULT //' -e 's/^FUNCTION /  /'

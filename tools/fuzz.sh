#!/usr/bin/env bash
# Runs the differential resolver fuzzer (capfs_test/fuzz) for SECONDS.
#
#   tools/fuzz.sh SECONDS [libFuzzer flags or more corpus dirs...]
#   tools/fuzz.sh --merge GROWN_CORPUS_DIR...
#
# The first form builds //capfs_test/fuzz:resolver_diff_fuzzer with
# --config=fuzz (clang-14, libFuzzer, ASan+UBSan), copies the checked-in
# corpus into a scratch directory and fuzzes there, so the checked-in corpus
# only changes on purpose. It prints the executions, the speed, the corpus
# growth and any crash file, and exits non-zero when the fuzzer found
# something. The second form minimizes grown corpora into the checked-in
# one (libFuzzer -merge=1): only inputs that add coverage are kept.
#
# Needs tools/setup.sh's packages (clang-14, libclang-rt-14-dev). Building
# with --config=fuzz reconfigures Bazel's C++ toolchain; the next plain build
# reconfigures it back (one rebuild each way).
set -euo pipefail
caller_dir="$PWD"
cd "$(dirname "$0")/.."

# Arguments that are not flags are directories named from the caller's
# directory: make them absolute, since this script runs from the root.
args=()
for a in "$@"; do
  case "$a" in
    -* | /*) args+=("$a") ;;
    *) if [ -e "$caller_dir/$a" ]; then args+=("$caller_dir/$a"); else args+=("$a"); fi ;;
  esac
done
set -- "${args[@]}"

usage() {
  echo "usage: $0 SECONDS [libFuzzer flags or corpus dirs...]" >&2
  echo "       $0 --merge GROWN_CORPUS_DIR..." >&2
  exit 2
}
[ $# -ge 1 ] || usage

corpus=capfs_test/fuzz/corpus
dict=capfs_test/fuzz/resolver_diff_fuzzer.dict
target=//capfs_test/fuzz:resolver_diff_fuzzer
bazel_flags=(--config=fuzz)
if [ -n "${CI:-}" ]; then bazel_flags+=(--config=ci); fi

echo "fuzz: building $target with --config=fuzz" >&2
build_log="$(mktemp "${TMPDIR:-/tmp}/capfs-fuzz-build.XXXXXX")"
if ! bazel build "${bazel_flags[@]}" "$target" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  rm -f "$build_log"
  exit 1
fi
rm -f "$build_log"
bin="$(bazel info "${bazel_flags[@]}" bazel-bin 2>/dev/null)/capfs_test/fuzz/resolver_diff_fuzzer"

if [ "$1" = "--merge" ]; then
  shift
  [ $# -ge 1 ] || usage
  for d in "$@"; do [ -d "$d" ] || usage; done
  before=$(ls "$corpus" | wc -l)
  # Merge the grown corpus into a fresh copy of the checked-in one, then
  # replace it: -merge=1 keeps the files already there and adds only those
  # that bring new coverage.
  merged="$(mktemp -d "${TMPDIR:-/tmp}/capfs-fuzz-merge.XXXXXX")"
  cp "$corpus"/* "$merged"/
  "$bin" -merge=1 -dict="$dict" "$merged" "$@" 2>&1 |
    grep -E '^MERGE-OUTER|ERROR' >&2 || true
  rm -f "$corpus"/*
  cp "$merged"/* "$corpus"/
  rm -rf "$merged"
  echo "corpus: $before files before, $(ls "$corpus" | wc -l) after merge" >&2
  exit 0
fi

seconds="$1"
shift
case "$seconds" in ''|*[!0-9]*) usage ;; esac

scratch="$(mktemp -d "${TMPDIR:-/tmp}/capfs-fuzz.XXXXXX")"
mkdir "$scratch/corpus" "$scratch/artifacts"
cp "$corpus"/* "$scratch/corpus/"
start_files=$(ls "$scratch/corpus" | wc -l)
echo "fuzz: ${seconds}s on $start_files corpus files; scratch: $scratch" >&2

status=0
"$bin" -max_total_time="$seconds" -timeout=20 -dict="$dict" \
  -print_final_stats=1 -artifact_prefix="$scratch/artifacts/" \
  "$scratch/corpus" "$@" >"$scratch/fuzz.log" 2>&1 || status=$?

# The last status line and the final statistics.
grep -E '^#[0-9]+.*(pulse|DONE|NEW|REDUCE)' "$scratch/fuzz.log" | tail -n 1 >&2 || true
grep -E '^stat::' "$scratch/fuzz.log" >&2 || true
echo "fuzz: corpus $start_files -> $(ls "$scratch/corpus" | wc -l) files" \
  "(grown corpus in $scratch/corpus; keep it with: $0 --merge $scratch/corpus)" >&2

crashes=$(find "$scratch/artifacts" -type f)
if [ "$status" -ne 0 ] || [ -n "$crashes" ]; then
  echo "fuzz: FAILED (exit $status); the finding:" >&2
  grep -E '^==== capfs resolver fuzzer|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' \
    "$scratch/fuzz.log" | head -n 5 >&2 || true
  for f in $crashes; do
    echo "fuzz: crash file $f; replay it with:" >&2
    echo "  CAPFS_FUZZ_VERBOSE=1 $bin $f" >&2
  done
  echo "fuzz: full log $scratch/fuzz.log" >&2
  exit 1
fi
echo "fuzz: no finding" >&2

#!/usr/bin/env bash
# capfs outside Bazel: installs it to a temporary prefix with tools/install.sh,
# then builds and runs the programs in tools/consumer/ against that prefix,
# once with pkg-config and plain g++, once with CMake. refuse_escape checks
# that Dir::OpenAt("../x") is refused (kPermissionDenied, kEscape);
# runtime_task runs a Task on a loop (a timer, then the same refusal through
# the worker pool), which proves libcapfs_runtime.a's link line. Also checks
# that no header the public ones do not need was installed.
#
# The README's "Using capfs without Bazel" recipes are these commands.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d "${TMPDIR:-/tmp}/capfs-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
# The sources are copied away from the tree so that nothing can resolve an
# include from it.
cp -r tools/consumer "$work/src"

echo "consumer: tools/install.sh $prefix" >&2
install_log="$work/install.log"
if ! bash tools/install.sh "$prefix" >"$install_log" 2>&1; then
  cat "$install_log" >&2
  exit 1
fi

failures=0
fail() { echo "consumer: FAIL: $*" >&2; failures=$((failures + 1)); }

# Only headers the public ones include: nothing of the core's resolvers or of
# the syscall layer's file calls.
for h in capfs/internal capfs/sys/fs.h; do
  [ ! -e "$prefix/include/$h" ] || fail "$h was installed"
done
for f in lib/libcapfs.a lib/libcapfs_runtime.a include/capfs/capfs.h \
  include/capfs/runtime/runtime.h lib/pkgconfig/capfs.pc \
  lib/pkgconfig/capfs-runtime.pc lib/cmake/capfs/capfsConfig.cmake; do
  [ -f "$prefix/$f" ] || fail "$f is missing"
done

# run NAME PROGRAM: runs PROGRAM in a scratch directory; it must exit 0.
run() {
  local dir="$work/run-$1"
  mkdir -p "$dir"
  if (cd "$dir" && "$2"); then
    echo "consumer: $1: ok" >&2
  else
    fail "$1 exited $?"
  fi
}

# 1. pkg-config and plain g++.
(
  cd "$work/src"
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  g++ -O2 -o refuse_escape refuse_escape.cc $(pkg-config --cflags --libs --static capfs)
  g++ -O2 -o runtime_task runtime_task.cc $(pkg-config --cflags --libs --static capfs-runtime)
) || fail "the pkg-config build failed"
[ -x "$work/src/refuse_escape" ] && run "pkg-config refuse_escape" "$work/src/refuse_escape"
[ -x "$work/src/runtime_task" ] && run "pkg-config runtime_task" "$work/src/runtime_task"

# 2. CMake: find_package(capfs CONFIG), capfs::capfs and capfs::runtime.
cmake_log="$work/cmake.log"
if cmake -S "$work/src" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" >"$cmake_log" 2>&1 &&
  cmake --build "$work/build" >>"$cmake_log" 2>&1; then
  run "cmake refuse_escape" "$work/build/refuse_escape"
  run "cmake runtime_task" "$work/build/runtime_task"
else
  cat "$cmake_log" >&2
  fail "the CMake build failed"
fi

if [ "$failures" -ne 0 ]; then
  echo "consumer: $failures failure(s)" >&2
  exit 1
fi
echo "consumer: PASS" >&2

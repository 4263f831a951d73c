#!/usr/bin/env bash
# Installs what capfs needs to build and test on a fresh Debian 12 machine.
#
# Idempotent: packages already present are not fetched again, and the script
# does nothing when everything is in place. Runs as root, or through sudo.
# Only Debian's own packages are used; Bazel downloads nothing afterwards.
set -euo pipefail

packages=(
  bazel-bootstrap        # Bazel 4.2.3
  bazel-rules-java       # @rules_java as a local repository
  bazel-platforms        # @platforms as a local repository
  g++ pkg-config
  libabsl-dev            # @com_google_absl
  libgtest-dev libgmock-dev   # @com_google_googletest
  libbenchmark-dev       # @com_github_google_benchmark
  clang-14 libclang-rt-14-dev  # --config=fuzz, asan, tsan
  libseccomp-dev         # fault-injection tests of the kernel resolver
  libuv1-dev libboost-dev  # peers in the runtime benchmark
  bubblewrap             # the peer in tools/run_bench.sh (capfs run / bwrap)
  strace                 # syscalls per round trip in the benchmarks
  liburing-dev           # the runtime's io_uring path (and its benchmark peer)
  manpages-dev
  cmake clang-format     # tools/consumer_test.sh's CMake build; tools/format.sh
)

# Pinned: tools/format.sh's output must not change under a maintainer's feet.
buildifier_version=8.2.1

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# npm (for buildifier): Debian's package, unless a Node.js install has one.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ "${#missing[@]}" -ne 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# buildifier (BUILD and .bzl formatting and lint, tools/format.sh), from npm.
if ! buildifier --version 2>/dev/null | grep -q "version: ${buildifier_version}\b"; then
  echo "setup: installing buildifier ${buildifier_version} (npm @bazel/buildifier)" >&2
  "${sudo[@]}" npm install -g --silent --no-fund --no-audit \
    "@bazel/buildifier@${buildifier_version}" >/dev/null
fi

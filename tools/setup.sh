#!/usr/bin/env bash
# Installs what capfs needs to build and test on a fresh Debian 12 machine.
#
# Idempotent: packages already present are not fetched again, and the script
# exits at once when everything is in place. Runs as root, or through sudo.
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
  liburing-dev           # the runtime's io_uring path (and its benchmark peer)
  manpages-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

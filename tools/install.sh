#!/usr/bin/env bash
# Installs capfs for builds that do not use Bazel (CMake, Makefiles, plain
# g++): optimized static libraries, the public headers, pkg-config files and a
# CMake package.
#
#   tools/install.sh PREFIX
#
# PREFIX/include/capfs/...                  the public headers (and the few
#                                           internal ones they include)
# PREFIX/lib/libcapfs.a                     //capfs and its syscall layer //capfs/sys
# PREFIX/lib/libcapfs_runtime.a             every library under //capfs/runtime that
#                                           the //capfs/runtime umbrella depends on
# PREFIX/lib/pkgconfig/capfs.pc             pkg-config --static --libs capfs
# PREFIX/lib/pkgconfig/capfs-runtime.pc     pkg-config --static --libs capfs-runtime
# PREFIX/lib/cmake/capfs/capfsConfig.cmake  find_package(capfs CONFIG):
#                                           capfs::capfs, capfs::runtime
#
# The libraries are built with `bazel build -c opt --force_pic` (so they can go
# into executables and shared libraries alike) and link against Debian's
# Abseil (libabsl-dev), which the pkg-config files and the CMake package name
# as a dependency. The headers need C++20: both say so (Cflags: -std=c++20;
# INTERFACE_COMPILE_FEATURES cxx_std_20). The install is relocatable for CMake
# (paths relative to the package file); the .pc files carry PREFIX.
set -euo pipefail
cd "$(dirname "$0")/.."

# No release has been tagged yet; the first one sets this.
version="0.1.0"

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"

bazel_flags=(-c opt --force_pic)
if [ -n "${CI:-}" ]; then bazel_flags+=(--config=ci); fi

# Bazel queries print progress on stderr; keep it unless it succeeds.
log="$(mktemp "${TMPDIR:-/tmp}/capfs-install.XXXXXX")"
trap 'rm -f "$log"' EXIT
quiet() {
  if ! "$@" 2>"$log"; then
    cat "$log" >&2
    return 1
  fi
}

# The project's libraries in each archive: capfs's own cc_library targets
# (under //capfs/...) that the core, and then the runtime umbrella, depend
# on. New runtime targets (:net, :process, ...) join the umbrella's deps and so
# this list without any change here.
core_set='kind(cc_library, deps(//capfs)) intersect //capfs/...'
runtime_set="(kind(cc_library, deps(//capfs/runtime)) intersect //capfs/...) except ($core_set)"
core_targets=($(quiet bazel query "$core_set"))
runtime_targets=($(quiet bazel query "$runtime_set"))
# The system libraries they link (//third_party wrappers with no sources of
# their own, e.g. liburing's -l:liburing.a): only their link flags travel.
core_system_set='kind(cc_library, deps(//capfs)) intersect //third_party/...'
runtime_system_set="(kind(cc_library, deps(//capfs/runtime)) intersect //third_party/...) except ($core_system_set)"
core_system=($(quiet bazel query "$core_system_set"))
runtime_system=($(quiet bazel query "$runtime_system_set"))
echo "install: building ${core_targets[*]} ${runtime_targets[*]} (-c opt)" >&2
bazel build "${bazel_flags[@]}" "${core_targets[@]}" "${runtime_targets[@]}"

execroot="$(quiet bazel info "${bazel_flags[@]}" execution_root)"

# archives TARGET...: the static archive each target built (PIC), one path a
# line, relative to the execution root; a target without sources has none.
archives() {
  local set
  set="set($*)"
  quiet bazel cquery "${bazel_flags[@]}" "$set" --output=starlark \
    --starlark:expr='"\n".join([(l.pic_static_library or l.static_library).path for li in providers(target)["CcInfo"].linking_context.linker_inputs.to_list() if li.owner == target.label for l in li.libraries if l.pic_static_library or l.static_library])' |
    sed '/^$/d'
}

# link_flags TARGET...: the targets' own linkopts (-pthread, -lseccomp, ...),
# which a consumer's link needs too.
link_flags() {
  local set
  set="set($*)"
  quiet bazel cquery "${bazel_flags[@]}" "$set" --output=starlark \
    --starlark:expr='"\n".join([f for li in providers(target)["CcInfo"].linking_context.linker_inputs.to_list() if li.owner == target.label for f in li.user_link_flags])' |
    sed '/^$/d' | awk '!seen[$0]++'
}

# absl_pc_names TARGET...: the Debian pkg-config names (absl_status, ...) of the
# Abseil libraries the targets depend on directly. capfs's BUILD files use
# Abseil's upstream labels (@com_google_absl//absl/status:statusor), which
# third_party/system_libs.bzl makes aliases of one target per Debian .pc file
# (@com_google_absl//:absl_statusor); the actual target's name is the .pc's.
absl_pc_names() {
  local deps
  deps="$(quiet bazel query "labels(deps, set($*))" | grep '^@com_google_absl//' || true)"
  [ -n "$deps" ] || return 0
  quiet bazel query "labels(actual, set($deps)) + (set($deps) except kind(alias, set($deps)))" |
    sed -n 's|^@com_google_absl//:\(absl_.*\)$|\1|p' | sort -u
}

# combine OUT ARCHIVE...: one archive with the members of all, by ar's MRI script.
combine() {
  local out="$1"
  shift
  rm -f "$out"
  {
    echo "create $out"
    for a in "$@"; do echo "addlib $execroot/$a"; done
    echo "save"
    echo "end"
  } | ar -M
  ranlib "$out"
}

mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/capfs" "$prefix/include"
combine "$prefix/lib/libcapfs.a" $(archives "${core_targets[@]}")
combine "$prefix/lib/libcapfs_runtime.a" $(archives "${runtime_targets[@]}")

# Headers. The public ones are the hdrs of these targets outside internal/ and
# sys/. Some public runtime headers are templates that include runtime
# internals (capfs/runtime/internal/fiber.h, scheduler.h, ...) and the event
# loop's syscall header (capfs/sys/io.h), so a consumer cannot compile without
# them: the compiler lists what the public headers include, transitively
# (g++ -MM), and exactly those are installed too. Nothing else under
# capfs/internal/, capfs/sys/ or capfs/runtime/internal/ is.
hdr_labels="$(quiet bazel query "labels(hdrs, set(${core_targets[*]} ${runtime_targets[*]}))")"
public=()
for label in $hdr_labels; do
  path="${label#//}"
  path="${path/://}"
  case "$path" in
    */internal/* | capfs/sys/*) ;;
    *) public+=("$path") ;;
  esac
done
needed="$(
  for h in "${public[@]}"; do
    g++ -std=c++20 -x c++ -I. -MM "$h"
  done | tr ' \\' '\n\n' | grep '^capfs/.*\.h$' | sort -u
)"
rm -rf "$prefix/include/capfs"
for h in $needed; do
  install -D -m 644 "$h" "$prefix/include/$h"
done
internal_needed="$(echo "$needed" | grep -E '(^|/)(internal|sys)/' || true)"
echo "install: $(echo "$needed" | wc -l) headers; internal ones the public headers include:" \
  $internal_needed >&2

# pc_list NAME...: "a, b, c".
pc_list() { local IFS=','; echo "$*" | sed 's/,/, /g'; }
# pc_field NAME VALUE: the line "NAME: VALUE", none when VALUE is empty.
pc_field() { if [ -n "$2" ]; then echo "$1: $2"; fi; }
core_absl=($(absl_pc_names "${core_targets[@]}"))
runtime_absl=($(absl_pc_names "${runtime_targets[@]}"))
core_flags=($(link_flags "${core_targets[@]}" "${core_system[@]}"))
runtime_flags=($(link_flags "${runtime_targets[@]}" "${runtime_system[@]}"))

cat >"$prefix/lib/pkgconfig/capfs.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: capfs
Description: Directory capabilities for untrusted paths (C++20, static; link with --static)
Version: $version
$(pc_field Requires.private "$(pc_list "${core_absl[@]}")")
Cflags: -I\${includedir} -std=c++20
Libs: -L\${libdir} -lcapfs
$(pc_field Libs.private "${core_flags[*]}")
EOF

cat >"$prefix/lib/pkgconfig/capfs-runtime.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: capfs-runtime
Description: capfs's event loop: coroutines, timers, awaitable I/O, a worker pool (C++20, static; link with --static)
Version: $version
Requires: capfs = $version
$(pc_field Requires.private "$(pc_list "${runtime_absl[@]}")")
Cflags: -I\${includedir} -std=c++20
Libs: -L\${libdir} -lcapfs_runtime
$(pc_field Libs.private "${runtime_flags[*]}")
EOF

# CMake: Debian's Abseil has a CMake package whose targets are the .pc names
# with "absl::" for "absl_" (absl_statusor -> absl::statusor). Link flags
# (-pthread, ...) go into the same list: CMake passes items starting with "-"
# to the linker as they are.
cmake_list() { (IFS=';'; echo "$*"); }
cmake_targets() { local t=(); for n in "$@"; do t+=("absl::${n#absl_}"); done; echo "${t[@]}"; }
cat >"$prefix/lib/cmake/capfs/capfsConfig.cmake" <<EOF
# capfs $version, installed by tools/install.sh.
#
#   find_package(capfs CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE capfs::capfs)    # or capfs::runtime
#
# Both targets are static libraries and need C++20 (cxx_std_20 is part of
# their interface); they link Debian's Abseil (libabsl-dev) through its own
# CMake package.
include(CMakeFindDependencyMacro)
find_dependency(absl CONFIG)

get_filename_component(_capfs_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET capfs::capfs)
  add_library(capfs::capfs STATIC IMPORTED)
  set_target_properties(capfs::capfs PROPERTIES
    IMPORTED_LOCATION "\${_capfs_prefix}/lib/libcapfs.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_capfs_prefix}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_20
    INTERFACE_LINK_LIBRARIES "$(cmake_list $(cmake_targets "${core_absl[@]}") "${core_flags[@]}")")
endif()

if(NOT TARGET capfs::runtime)
  add_library(capfs::runtime STATIC IMPORTED)
  set_target_properties(capfs::runtime PROPERTIES
    IMPORTED_LOCATION "\${_capfs_prefix}/lib/libcapfs_runtime.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_capfs_prefix}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_20
    INTERFACE_LINK_LIBRARIES "$(cmake_list capfs::capfs $(cmake_targets "${runtime_absl[@]}") "${runtime_flags[@]}")")
endif()

unset(_capfs_prefix)
EOF

cat >"$prefix/lib/cmake/capfs/capfsConfigVersion.cmake" <<EOF
# capfs $version: compatible with a request for the same major version (0.x:
# the same minor version) that is not newer.
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(PACKAGE_FIND_VERSION_MAJOR STREQUAL "0" AND
       NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$(echo "$version" | cut -d. -f2)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$(echo "$version" | cut -d. -f1)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
EOF

echo "install: capfs $version in $prefix (libcapfs.a, libcapfs_runtime.a, pkg-config, CMake)" >&2

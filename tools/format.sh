#!/usr/bin/env bash
# Formats the project's files: buildifier on BUILD, WORKSPACE and .bzl files,
# clang-format (the root .clang-format: Google style) on the C++ under capfs/,
# capfs_test/, tools/ and examples/.
#
#   tools/format.sh                  # rewrites every file that needs it
#   tools/format.sh --check          # changes nothing; lists the files that
#                                    # need formatting and buildifier's lint
#                                    # warnings, and exits 1 if there are any
#   tools/format.sh [--check] FILE...   # only these files
#
# The lint warnings are for a maintainer to fix by hand (buildifier's automatic
# lint fixes can change meaning); formatting never does. buildifier and
# clang-format come from tools/setup.sh.
set -euo pipefail
caller_dir="$PWD"
cd "$(dirname "$0")/.."

check=false
if [ "${1:-}" = "--check" ]; then
  check=true
  shift
fi

for tool in buildifier clang-format; do
  if ! command -v "$tool" >/dev/null; then
    echo "format: $tool is missing; run tools/setup.sh" >&2
    exit 2
  fi
done

is_bazel_file() {
  case "$1" in
    BUILD | */BUILD | BUILD.bazel | */BUILD.bazel | WORKSPACE | */WORKSPACE | \
      WORKSPACE.bazel | */WORKSPACE.bazel | *.bzl) return 0 ;;
  esac
  return 1
}
is_cc_file() {
  case "$1" in
    capfs/*.cc | capfs/*.h | capfs_test/*.cc | capfs_test/*.h | tools/*.cc | \
      tools/*.h | examples/*.cc | examples/*.h) return 0 ;;
  esac
  return 1
}

if [ $# -gt 0 ]; then
  # Named files, from the caller's directory, as paths from the root.
  root="$PWD"
  files=()
  for f in "$@"; do
    case "$f" in /*) ;; *) f="$caller_dir/$f" ;; esac
    f="$(realpath -s "$f")"
    files+=("${f#"$root"/}")
  done
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files and new ones that are not ignored (bazel-* is).
  mapfile -t files < <(git ls-files --cached --others --exclude-standard | sort -u)
else
  mapfile -t files < <(find . -path './bazel-*' -prune -o -type f -print | sed 's|^\./||' | sort)
fi

bazel_files=()
cc_files=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  if is_bazel_file "$f"; then bazel_files+=("$f"); fi
  if is_cc_file "$f"; then cc_files+=("$f"); fi
done

# buildifier 8's native-* warnings ask for rules to be loaded from rules_cc's
# per-rule files and from rules_shell, for Bazel 7 and later where they left
# Bazel's core. This project pins Bazel 4.2.3, whose rules are built in and for
# which neither exists (third_party/rules_cc is a stand-in with cc/defs.bzl).
lint_off=native-cc-binary,native-cc-library,native-cc-test,native-cc-import
lint_off+=,native-cc-proto,native-cc-fdo-prefetch-hints,native-cc-fdo-profile
lint_off+=,native-cc-objc-library,native-cc-objc-import,native-cc-toolchain
lint_off+=,native-cc-toolchain-suite,native-sh-binary,native-sh-test,native-sh-library
warnings="-${lint_off//,/,-}"

if ! $check; then
  if [ ${#bazel_files[@]} -gt 0 ]; then
    buildifier --mode=fix --lint=off "${bazel_files[@]}"
  fi
  if [ ${#cc_files[@]} -gt 0 ]; then
    clang-format -i -style=file "${cc_files[@]}"
  fi
  echo "format: ${#bazel_files[@]} Bazel files, ${#cc_files[@]} C++ files formatted" >&2
  exit 0
fi

need=()
lint=""
if [ ${#bazel_files[@]} -gt 0 ]; then
  # Prints "FILE # reformat" for each file to format and FILE:LINE: for each
  # lint warning; exits 4 when there is either.
  out="$(buildifier --mode=check --lint=warn --warnings="$warnings" "${bazel_files[@]}" 2>&1)" || true
  mapfile -t -O "${#need[@]}" need < <(sed -n 's/^\(.*\) # reformat$/\1/p' <<<"$out")
  lint="$(grep -v ' # reformat$' <<<"$out" || true)"
fi
if [ ${#cc_files[@]} -gt 0 ]; then
  # --dry-run -Werror reports "FILE:LINE:COL: error: code should be
  # clang-formatted" for each place that would change.
  mapfile -t -O "${#need[@]}" need < <(
    clang-format -style=file --dry-run -Werror "${cc_files[@]}" 2>&1 |
      sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u
  )
fi

status=0
if [ ${#need[@]} -gt 0 ]; then
  echo "format: ${#need[@]} file(s) need formatting (run tools/format.sh FILE... to fix):" >&2
  printf '  %s\n' "${need[@]}" >&2
  status=1
fi
if [ -n "$lint" ]; then
  echo "format: buildifier lint warnings (fix by hand):" >&2
  sed 's/^/  /' <<<"$lint" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "format: ${#bazel_files[@]} Bazel files, ${#cc_files[@]} C++ files: clean" >&2
fi
exit "$status"

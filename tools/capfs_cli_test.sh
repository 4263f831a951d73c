#!/usr/bin/env bash
# The capfs tool end to end: in-tree commands work; "../x", "/etc/passwd" and
# an escaping symlink are refused with one clear line, exit code 3, and no
# change to the tree or outside it.
set -uo pipefail

capfs="$(cd "$(dirname "$0")" && pwd)/capfs"
[ -x "$capfs" ] || capfs="${TEST_SRCDIR}/capfs/tools/capfs"
work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/capfs_cli.XXXXXX")"
scratch="$(mktemp -d "${TEST_TMPDIR:-/tmp}/capfs_cli_scratch.XXXXXX")"
trap 'rm -rf "$work" "$scratch"' EXIT
root="$work/root"
mkdir -p "$root/docs" "$work/outside"
echo "hello" > "$root/docs/hello.txt"
echo "secret" > "$work/outside/secret"
ln -s ../outside/secret "$root/escape"
ln -s /etc/passwd "$root/abs"
ln -s docs/hello.txt "$root/greeting"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect CODE STDOUT STDERR -- ARGS...: runs capfs with ARGS, checks all three.
expect() {
  local want_code="$1" want_out="$2" want_err="$3"
  shift 4
  local out err code
  out="$("$capfs" "$@" 2>"$scratch/stderr" </dev/null)"
  code=$?
  err="$(cat "$scratch/stderr")"
  [ "$code" = "$want_code" ] || fail "capfs $*: exit $code, want $want_code ($err)"
  [ "$out" = "$want_out" ] || fail "capfs $*: stdout [$out], want [$want_out]"
  [ "$err" = "$want_err" ] || fail "capfs $*: stderr [$err], want [$want_err]"
}

R="--root=$root"
before="$(cd "$work" && find . -printf '%p %y %s %l\n' | sort)"

# Refusals: a clear line, exit code 3, nothing touched.
expect 3 "" "capfs: cat ../x: path escapes the directory" -- "$R" cat ../x
expect 3 "" "capfs: cat /etc/passwd: absolute path not allowed in a confined directory" -- "$R" cat /etc/passwd
expect 3 "" "capfs: cat escape: path escapes the directory" -- "$R" cat escape
expect 3 "" "capfs: cat abs: path escapes the directory" -- "$R" cat abs
expect 3 "" "capfs: put ../outside/secret: path escapes the directory" -- "$R" put ../outside/secret
expect 3 "" "capfs: rm docs/../../outside/secret: path escapes the directory" -- "$R" rm docs/../../outside/secret
expect 3 "" "capfs: mkdir docs/new: directory is read-only" -- "$R" --read-only mkdir docs/new
for resolver in kernel userspace; do
  expect 3 "" "capfs: stat escape/: path escapes the directory" -- "$R" --resolver=$resolver stat escape/
done
after="$(cd "$work" && find . -printf '%p %y %s %l\n' | sort)"
[ "$before" = "$after" ] || fail "a refused call changed the tree: $(diff <(echo "$before") <(echo "$after"))"

# OS errors: exit code 1.
expect 1 "" "capfs: cat missing: No such file or directory" -- "$R" cat missing

# Usage errors: exit code 2.
"$capfs" cat x >/dev/null 2>&1; [ $? = 2 ] || fail "no --root should be a usage error"
"$capfs" "$R" >/dev/null 2>&1; [ $? = 2 ] || fail "no command should be a usage error"
"$capfs" "$R" frobnicate >/dev/null 2>&1; [ $? = 2 ] || fail "unknown command"
"$capfs" "$R" --resolver=magic ls >/dev/null 2>&1; [ $? = 2 ] || fail "bad --resolver"
"$capfs" --help 2>&1 | grep -q "Every PATH is resolved beneath DIR" || fail "--help"

# In-tree commands work, through both resolvers.
for resolver in auto kernel userspace; do
  F=("$R" "--resolver=$resolver")
  expect 0 "hello" "" -- "${F[@]}" cat docs/hello.txt
  expect 0 "hello" "" -- "${F[@]}" cat greeting
  expect 0 "hello" "" -- "${F[@]}" cat docs/../docs/./hello.txt
  expect 0 "../outside/secret" "" -- "${F[@]}" readlink escape
  expect 0 "" "" -- "${F[@]}" mkdir new
  expect 0 "" "" -- "${F[@]}" ln -s ../docs/hello.txt new/link
  expect 0 "hello" "" -- "${F[@]}" cat new/link
  echo "written" | "$capfs" "${F[@]}" put new/file || fail "put"
  expect 0 "written" "" -- "${F[@]}" cat new/file
  expect 0 "" "" -- "${F[@]}" mv new/file new/moved
  expect 0 "link@
moved" "" -- "${F[@]}" ls new
  expect 0 "" "" -- "${F[@]}" rm new/link new/moved
  expect 0 "" "" -- "${F[@]}" rmdir new
  "$capfs" "${F[@]}" stat docs/hello.txt | grep -q "Type: regular file" || fail "stat"
  "$capfs" "${F[@]}" stat greeting | grep -q "Type: symbolic link" || fail "stat link"
  # In-root: ".." stops at the root and "/" is the root.
  expect 0 "hello" "" -- "${F[@]}" --in-root cat ../../docs/hello.txt
  expect 0 "hello" "" -- "${F[@]}" --in-root cat /docs/hello.txt
  expect 1 "" "capfs: cat abs: No such file or directory" -- "${F[@]}" --in-root cat abs
done
expect 0 "abs@
docs/
escape@
greeting@" "" -- "$R" ls

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"

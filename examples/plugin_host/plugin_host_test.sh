#!/usr/bin/env bash
# The plugin host end to end: the benign plugin's output is in the scratch
# area; the hostile plugin is refused every escape it tries, and the disk
# shows it: the sentinel and the data are unchanged, nothing was created or
# moved outside the scratch area, the host's bait sockets accepted nothing.
set -uo pipefail

here="${TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/capfs/examples/plugin_host"
[ -x "$here/plugin_host" ] || here="$(cd "$(dirname "$0")" && pwd)"
host="$here/plugin_host"
work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/plugin_host.XXXXXX")"
logs="$(mktemp -d "${TEST_TMPDIR:-/tmp}/plugin_host_logs.XXXXXX")"
trap 'rm -rf "$work" "$logs"' EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

mkdir -p "$work/data/sub" "$work/outside"
printf 'alpha beta\ngamma\ndelta epsilon zeta\n' > "$work/data/input.txt"
echo "nested" > "$work/data/sub/nested.txt"
echo "the host's secret: must stay unread and unchanged" > "$work/outside/sentinel.txt"

# Everything outside the scratch areas, contents included.
snapshot() {
  (cd "$work" && find . -path ./scratch-benign -prune -o -path ./scratch-hostile -prune -o \
    -printf '%p %y %s %m %l\n' | sort
   sha256sum data/input.txt data/sub/nested.txt outside/sentinel.txt)
}
before="$(snapshot)"

# run NAME: runs the host with NAME_plugin on a fresh scratch area.
run() {
  local name="$1"
  mkdir -p "$work/scratch-$name"
  "$host" --plugin="$here/${name}_plugin" --data="$work/data" \
    --scratch="$work/scratch-$name" --sentinel="$work/outside/sentinel.txt" \
    >"$logs/$name.out" 2>"$logs/$name.err" </dev/null
  local code=$?
  echo "== plugin_host with ${name}_plugin (exit $code)"
  cat "$logs/$name.out" "$logs/$name.err"
  [ "$code" = 0 ] || fail "$name: host exited $code"
  grep -q "^host: connections accepted: abstract socket unix:@[^:]*: 0; TCP 127.0.0.1:[0-9]*: 0$" \
    "$logs/$name.out" || fail "$name: the host's bait sockets accepted a connection (or no count)"
  grep -q "^host: plugin exited with 0$" "$logs/$name.out" || fail "$name: plugin did not exit 0"
}

# --- The benign plugin: its output exists, and is right.
run benign
want="$(printf 'lines 3\nwords 6\nbytes 36')"
[ "$(cat "$work/scratch-benign/summary.txt" 2>/dev/null)" = "$want" ] ||
  fail "benign: summary.txt is [$(cat "$work/scratch-benign/summary.txt" 2>&1)], want [$want]"
grep -q "^plugin: OUTPUT summary.txt 25$" "$logs/benign.out" || fail "benign: no OUTPUT report"

# --- The hostile plugin: every attempt reported, every one refused.
run hostile
refused=(
  capfs-dotdot capfs-absolute capfs-write-read-only-data
  capfs-follow-planted-symlink
  raw-follow-planted-symlink-read raw-follow-planted-symlink-write
  raw-follow-planted-symlink-etc-passwd raw-open-etc-passwd
  raw-open-proc-self-root raw-openat-dotdot-list raw-openat-dotdot-read
  raw-openat-dotdot-opath-then-read raw-write-read-only-data
  raw-create-outside-scratch raw-rename-out-of-scratch
  raw-hardlink-sentinel-into-scratch raw-mkdir-outside raw-exec-shell
  abstract-socket-of-host tcp-connect-to-host signal-host
)
# What Landlock does not restrict, shown rather than hidden.
gaps=(raw-stat-outside)
for a in "${refused[@]}"; do
  grep -q "^plugin: REPORT $a refused " "$logs/hostile.out" || fail "hostile: $a was not refused"
done
for a in "${gaps[@]}"; do
  grep -q "^plugin: REPORT $a gap " "$logs/hostile.out" || fail "hostile: $a is not the documented gap"
done
reports="$(grep -c '^plugin: REPORT ' "$logs/hostile.out")"
[ "$reports" = "$(( ${#refused[@]} + ${#gaps[@]} ))" ] ||
  fail "hostile: $reports reports, want $(( ${#refused[@]} + ${#gaps[@]} ))"
grep -q "ESCAPED" "$logs/hostile.out" && fail "hostile: an attempt escaped"
# The kernel refused them, not only capfs: the raw attempts name EACCES,
# EPERM or EXDEV (Landlock's errors), never a missing file.
grep "^plugin: REPORT raw-" "$logs/hostile.out" | grep -v " gap " |
  grep -v -E " refused (EACCES|EPERM|EXDEV) " && fail "hostile: a raw attempt failed for another reason"
grep -E "^plugin: REPORT (abstract-socket-of-host|tcp-connect-to-host|signal-host) refused (EACCES|EPERM) " \
  "$logs/hostile.out" | wc -l | grep -q '^3$' || fail "hostile: sockets or signal not refused by Landlock"

# --- On disk.
after="$(snapshot)"
[ "$before" = "$after" ] || fail "something outside the scratch areas changed: $(diff <(echo "$before") <(echo "$after"))"
listing="$(cd "$work/scratch-hostile" && ls -A | sort | tr '\n' ' ')"
[ "$listing" = "abs-link bait.txt passwd-link rel-link " ] ||
  fail "hostile scratch holds [$listing], want only the planted bait"
[ "$(cat "$work/scratch-hostile/bait.txt")" = "bait" ] || fail "bait.txt changed"
for f in escaped.txt escaped-by-rename.txt escaped-dir; do
  [ -e "$work/$f" ] && fail "$f exists outside the scratch area"
done

# --- Control: the same hostile plugin WITHOUT Landlock, on a copy of the
# tree. capfs still refuses what goes through a Dir, but the raw calls get
# out, and this test sees it (on disk too): what the refusals above owe to
# the kernel.
control="$work-control"
mkdir -p "$control/data" "$control/outside" "$control/scratch"
cp "$work/data/input.txt" "$control/data/"
cp "$work/outside/sentinel.txt" "$control/outside/"
"$host" --unconfined --plugin="$here/hostile_plugin" --data="$control/data" \
  --scratch="$control/scratch" --sentinel="$control/outside/sentinel.txt" \
  >"$logs/control.out" 2>"$logs/control.err" </dev/null
echo "== control: hostile_plugin with --unconfined (exit $?)"
cat "$logs/control.out" "$logs/control.err"
for a in capfs-dotdot capfs-absolute capfs-write-read-only-data capfs-follow-planted-symlink; do
  grep -q "^plugin: REPORT $a refused " "$logs/control.out" || fail "control: capfs did not refuse $a"
done
for a in raw-follow-planted-symlink-write raw-open-etc-passwd raw-openat-dotdot-read \
         raw-write-read-only-data raw-create-outside-scratch abstract-socket-of-host tcp-connect-to-host; do
  grep -q "^plugin: REPORT $a ESCAPED " "$logs/control.out" || fail "control: $a did not get out without Landlock"
done
grep -q "escaped" "$control/outside/sentinel.txt" || fail "control: the sentinel was not written without Landlock"
[ -e "$control/escaped.txt" ] || fail "control: nothing was created outside without Landlock"
grep -q "abstract socket unix:@[^:]*: 1; TCP 127.0.0.1:[0-9]*: 1$" "$logs/control.out" ||
  fail "control: the bait sockets were not reached without Landlock"
rm -rf "$control"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"

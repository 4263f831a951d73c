#!/usr/bin/env bash
# `capfs run` end to end: a program confined by Landlock to the trees it is
# given reads and writes there and nowhere else; refusals are shown as a user
# meets them (the program's own error line, or capfs's one line when the
# program cannot start); exit codes, signals, environment, session, --no-tcp,
# --strict and usage. Runs as root: Landlock restricts root too.
set -uo pipefail

capfs="$(cd "$(dirname "$0")" && pwd)/capfs"
[ -x "$capfs" ] || capfs="${TEST_SRCDIR}/capfs/tools/capfs"
work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/capfs_run.XXXXXX")"
scratch="$(mktemp -d "${TEST_TMPDIR:-/tmp}/capfs_run_scratch.XXXXXX")"
trap 'rm -rf "$work" "$scratch"' EXIT

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

box="$work/box"
mkdir -p "$box/data" "$box/out"
echo "inside" > "$box/data/in.txt"
echo "secret" > "$box/secret.txt"
D="$box/data" O="$box/out"

# expect_err CODE STDERR_REGEX -- ARGS...: exit code, and stderr matching.
expect_err() {
  local want_code="$1" want_err="$2"
  shift 3
  local code err
  "$capfs" "$@" >/dev/null 2>"$scratch/stderr" </dev/null
  code=$?
  err="$(cat "$scratch/stderr")"
  [ "$code" = "$want_code" ] || fail "capfs $*: exit $code, want $want_code ($err)"
  echo "$err" | grep -qE -- "$want_err" || fail "capfs $*: stderr [$err] does not match [$want_err]"
}

# Inside the trees: reading (--ro) and writing (--rw) work.
expect 0 "inside" "" -- run --ro="$D" -- /bin/cat "$D/in.txt"
expect 0 "inside" "" -- run --ro="$D" --cwd="$D" -- /bin/cat in.txt
expect 0 "" "" -- run --rw="$O" -- /usr/bin/touch "$O/made"
[ -f "$O/made" ] || fail "run --rw: the file was not made"
# Outside them, or writing where only reading was granted: refused by the kernel.
expect 1 "" "/usr/bin/touch: cannot touch '$D/new': Permission denied" -- run --ro="$D" -- /usr/bin/touch "$D/new"
[ -e "$D/new" ] && fail "run --ro: a file was made"
expect 1 "" "/bin/cat: $D/../secret.txt: Permission denied" -- run --ro="$D" -- /bin/cat "$D/../secret.txt"
expect 1 "" "/bin/cat: /etc/passwd: Permission denied" -- run --ro="$D" -- /bin/cat /etc/passwd
expect 1 "" "/bin/cat: /etc/passwd: Permission denied" -- run --bare --rox=/usr -- /bin/cat /etc/passwd
ln -s ../secret.txt "$D/link-out"
expect 1 "" "/bin/cat: $D/link-out: Permission denied" -- run --ro="$D" -- /bin/cat "$D/link-out"
rm "$D/link-out"
# Exit status passed through; a signal N as 128+N.
expect 7 "" "" -- run -- /bin/sh -c 'exit 7'
expect 143 "" "" -- run -- /bin/sh -c 'kill -TERM $$'
expect 137 "" "" -- run -- /bin/sh -c 'kill -KILL $$'
# The environment: this one, or built from --env alone.
expect 0 "A=1
B=x=y" "" -- run --clear-env --env=A=1 --env=B=x=y -- /usr/bin/env
HOME_SEEN="$("$capfs" run --env=HOME=/nowhere -- /bin/sh -c 'echo $HOME' 2>&1)"
[ "$HOME_SEEN" = "/nowhere" ] || fail "run --env did not replace HOME: [$HOME_SEEN]"
# A session of its own (no controlling terminal to push keystrokes into).
expect 0 "own session" "" -- run --ro=/proc -- /usr/bin/awk '{ print ($1 == $6) ? "own session" : "shared session" }' /proc/self/stat
# --no-tcp: connecting is refused by the kernel, not by the (absent) peer.
expect_err 1 "Permission denied" -- run --no-tcp -- /bin/bash -c 'echo > /dev/tcp/127.0.0.1/9'
expect_err 1 "Connection refused" -- run -- /bin/bash -c 'echo > /dev/tcp/127.0.0.1/9'
# Cannot start: one line saying why, and which grant is missing.
expect 127 "" "capfs: run: cannot start no-such-program: no such program in \$PATH" -- run -- no-such-program
expect 126 "" "capfs: run: cannot start /bin/true: it (/usr/bin/true) is outside every --rox/--rwx tree, so Landlock refuses to execute it (add --rox=/usr/bin)" -- run --bare -- /bin/true
expect_err 126 "^capfs: run: cannot start /bin/true: its loader /lib64/ld-linux-x86-64.so.2 \(/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\) is outside every --rox/--rwx tree, so Landlock refuses to execute it \(add --rox=/usr/lib/x86_64-linux-gnu\)$" -- run --bare --rox=/usr/bin -- /bin/true
expect 0 "" "" -- run --bare --rox=/usr/bin --rox=/usr/lib -- /bin/true
printf '#!/bin/sh\necho script\n' > "$D/script.sh"
chmod 0755 "$D/script.sh"
expect 126 "" "capfs: run: cannot start $D/script.sh: it is outside every --rox/--rwx tree, so Landlock refuses to execute it (add --rox=$D)" -- run --ro="$D" -- "$D/script.sh"
expect 0 "script" "" -- run --rox="$D" -- "$D/script.sh"
chmod 0644 "$D/script.sh"
expect 126 "" "capfs: run: cannot start $D/script.sh: not executable (mode 0644)" -- run --rox="$D" -- "$D/script.sh"
rm "$D/script.sh"
# What this kernel cannot enforce: one line, or with --strict a refusal.
# (--max-abi=N makes capfs act as on a kernel that stops at ABI N.)
expect 0 "" "" -- run --no-tcp --no-ipc --strict -- /bin/true
expect_err 0 "^capfs: run: Landlock ABI 3 .*TCP not restricted \(needs ABI 4\)" -- run --max-abi=3 --no-tcp -- /bin/true
expect_err 125 "^capfs: run: refused \(--strict\): .*Landlock ABI 3 .* cannot enforce TCP" -- run --max-abi=3 --no-tcp --strict -- /bin/true
expect_err 125 "^capfs: run: refused \(--strict\): .*cannot enforce .*truncat" -- run --max-abi=2 --strict -- /bin/true
# Usage errors.
expect_err 2 "^capfs: run: --cwd=/etc is outside every granted tree" -- run --ro="$D" --cwd=/etc -- /bin/true
expect_err 2 "^capfs: run: no CMD given" -- run --ro="$D"
expect_err 2 "^capfs: run: unknown flag '--frobnicate'" -- run --frobnicate -- /bin/true
expect_err 125 "^capfs: run: --ro=$box/missing: No such file or directory" -- run --ro="$box/missing" -- /bin/true
# Signals sent to capfs reach the program: it traps SIGTERM (and SIGHUP)
# and exits 42, which capfs passes on (killed itself, capfs would give 143).
for sig in TERM HUP; do
  rm -f "$O/started"
  # (python3 rather than a shell or perl: those open /dev/null, which is
  # outside every granted tree.)
  "$capfs" run --rw="$O" -- /usr/bin/python3 -c "import signal, sys, time
signal.signal(signal.SIG$sig, lambda *args: sys.exit(42))
open('$O/started', 'w').close()
time.sleep(20)
sys.exit(1)" </dev/null &
  pid=$!
  for _ in $(seq 400); do [ -e "$O/started" ] && break; sleep 0.05; done
  kill -"$sig" "$pid"
  wait "$pid"
  code=$?
  [ "$code" = 42 ] || fail "run: SIG$sig was not passed on to the program (exit $code, want 42)"
done
# Help.
"$capfs" run --help | grep -q -- "--rox=DIR      read and execute beneath DIR" || fail "run --help"
"$capfs" --help | grep -q "run \[FLAGS\] -- CMD" || fail "--help does not list run"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"

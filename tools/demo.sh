#!/usr/bin/env bash
# The quick start: installs what is missing, builds the capfs tool, makes a
# demo tree with a hostile symlink in it, and runs capfs on it, showing the
# in-tree commands working and the escapes refused.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
echo "demo: building the capfs tool (bazel build //tools:capfs; about 20 seconds the first time)" >&2
bazel build --config=ci //tools:capfs
capfs="$PWD/bazel-bin/tools/capfs"

demo="$(mktemp -d /tmp/capfs-demo.XXXXXX)"
trap 'rm -rf "$demo"' EXIT
mkdir -p "$demo/root/docs"
echo "the plugin's own notes" > "$demo/root/notes.txt"
echo "# docs" > "$demo/root/docs/readme.md"
echo "host secret: do not leak" > "$demo/secret.txt"
ln -s ../secret.txt "$demo/root/escape"         # a hostile relative symlink
ln -s /etc/passwd "$demo/root/passwd"           # a hostile absolute symlink
ln -s docs/readme.md "$demo/root/readme"        # a harmless one

echo "Demo tree: $demo/root (secret.txt lives next to it, outside)"
run() {
  printf '\n$ capfs --root=DEMO %s\n' "$*"
  set +e
  "$capfs" --root="$demo/root" "$@"
  local code=$?
  set -e
  printf '[exit %d]\n' "$code"
}

echo; echo "== In the tree: everything works"
run ls
run cat notes.txt readme
echo "written through capfs" | run put docs/new.txt
run ls docs
run mv docs/new.txt docs/renamed.txt
run cat docs/renamed.txt
run readlink escape

echo; echo "== Out of the tree: refused, nothing read or written"
run cat ../secret.txt
run cat /etc/passwd
run cat escape
run cat passwd
run cat docs/../../secret.txt
echo "overwrite" | run put ../secret.txt
run --read-only rm notes.txt

echo; echo "== --in-root: the tree is its own root, as after chroot"
run --in-root cat ../../../notes.txt
run --in-root cat /docs/readme.md
run --in-root cat passwd

echo; echo "== capfs run: a program confined by the kernel (Landlock) to DEMO"
echo "   (the same escapes, tried by an ordinary program with plain system calls)"
run_sandboxed() {
  local shown="" a
  for a in "$@"; do
    case "$a" in *" "*) a="\"$a\"" ;; esac
    shown+=" $a"
  done
  printf '\n$ capfs run%s\n' "$(echo "$shown" | sed "s|$demo/root|DEMO|g")"
  set +e
  "$capfs" run "$@" 2>&1 | sed "s|$demo/root|DEMO|g"
  local code=${PIPESTATUS[0]}
  set -e
  printf '[exit %d]\n' "$code"
}
run_sandboxed --ro="$demo/root" -- /bin/cat "$demo/root/notes.txt"
run_sandboxed --ro="$demo/root" -- /bin/cat "$demo/root/../secret.txt"
run_sandboxed --ro="$demo/root" -- /bin/cat "$demo/root/escape"
run_sandboxed --ro="$demo/root" -- /bin/cat /etc/passwd
run_sandboxed --ro="$demo/root" -- /bin/sh -c "echo overwrite > $demo/root/notes.txt"
run_sandboxed --rw="$demo/root" -- /bin/sh -c "echo made inside > $demo/root/made.txt && cat $demo/root/made.txt"
run_sandboxed --bare --ro="$demo/root" -- /bin/cat "$demo/root/notes.txt"

echo; echo "The secret is untouched: $(cat "$demo/secret.txt")"

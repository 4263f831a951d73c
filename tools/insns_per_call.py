# gdb script for tools/insns_per_call.sh: counts the user-space instructions
# a benchmark runs between two consecutive calls of one libc function (by
# default __close, which every open benchmark ends its call with), once the
# benchmark has reached its steady state.
#
# Settings come from the environment: INSNS_BREAK (the function), INSNS_SKIP
# (hits of it to let pass first), INSNS_ROUNDS (gaps to count). Each gap is
# single-stepped (a syscall is one step), at most 200,000 instructions.
# Prints, per gap, the instructions, the distinct 64-byte code lines and 4 KiB
# code pages they came from, then the last gap's instructions per function.

import collections
import os

import gdb

BREAK = os.environ.get("INSNS_BREAK", "__close")
SKIP = int(os.environ.get("INSNS_SKIP", "5500"))
ROUNDS = int(os.environ.get("INSNS_ROUNDS", "3"))
MAX_STEPS = 200000


def function_of(pc):
    text = gdb.execute("info symbol %d" % pc, to_string=True)
    if text.startswith("No symbol"):
        return "?"
    return text.split(" in section ")[0].split(" + ")[0].strip()


gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set breakpoint pending on")
gdb.execute("break %s" % BREAK)
gdb.execute("run")  # stops at the first call
gdb.execute("ignore 1 %d" % max(SKIP - 1, 0))
gdb.execute("continue")
gdb.execute("delete")
target = int(gdb.parse_and_eval("$pc"))

counts = None
for _ in range(ROUNDS):
    pcs = []
    while len(pcs) < MAX_STEPS:
        gdb.execute("stepi", to_string=True)
        pc = int(gdb.parse_and_eval("$pc"))
        pcs.append(pc)
        if pc == target:
            break
    if pcs[-1] != target:
        print("RESULT gap longer than %d instructions" % MAX_STEPS)
        break
    print("RESULT instructions=%d code_lines=%d code_pages=%d" %
          (len(pcs), len({p >> 6 for p in pcs}), len({p >> 12 for p in pcs})))
    counts = collections.Counter(function_of(p) for p in pcs)

if counts is not None:
    for name, n in counts.most_common():
        print("FUNCTION %6d %s" % (n, name[:110]))
gdb.execute("kill")

// libFuzzer entry point of the differential resolver fuzzer: every input is
// decoded into a tree and a sequence of Dir operations (program.h) and run
// through the kernel resolver on one twin and the userspace resolver on the
// other (differential.h). Any disagreement, escape, leak or changed sentinel
// prints what happened and traps, so libFuzzer saves the input.
//
// CAPFS_FUZZ_VERBOSE=1 in the environment prints every program and outcome
// (for reading what a saved input does).

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <string>

#include "capfs_test/fuzz/differential.h"
#include "capfs_test/fuzz/program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Removes its trees at exit (not after a crash: the trees are evidence).
  static capfs_fuzz::Differential differential;
  static const bool verbose = getenv("CAPFS_FUZZ_VERBOSE") != nullptr;
  capfs_fuzz::Program program = capfs_fuzz::Decode(data, size);
  std::string log;
  std::string failure = differential.Run(program, verbose ? &log : nullptr);
  if (verbose) fprintf(stderr, "%s\n", log.c_str());
  if (!failure.empty()) {
    if (!verbose) {
      // Run again with the log on, for the whole story.
      (void)differential.Run(program, &log);
      fprintf(stderr, "%s\n", log.c_str());
    }
    fprintf(stderr, "\n==== capfs resolver fuzzer: %s\n", failure.c_str());
    fflush(stderr);
    __builtin_trap();
  }
  return 0;
}

// The seed programs of the resolver fuzzer: the shapes that matter, written
// by hand. make_seed_corpus encodes them into corpus/ (each in both scopes),
// and the corpus replay test runs them directly as well, so they keep being
// checked whatever corpus minimization keeps.

#ifndef CAPFS_TEST_FUZZ_SEEDS_H_
#define CAPFS_TEST_FUZZ_SEEDS_H_

#include <string>
#include <vector>

#include "capfs_test/fuzz/program.h"

namespace capfs_fuzz {

struct Seed {
  std::string name;  // a file name: [a-z0-9_-]
  Program program;
};

// Every seed, in both scopes (names end in "-beneath" or "-inroot").
std::vector<Seed> SeedPrograms();

}  // namespace capfs_fuzz

#endif  // CAPFS_TEST_FUZZ_SEEDS_H_

// Writes the seed programs (seeds.h), encoded, into the directory given:
//   bazel run //capfs_test/fuzz:make_seed_corpus -- $PWD/capfs_test/fuzz/corpus

#include <stdio.h>

#include <fstream>
#include <string>

#include "absl/status/statusor.h"
#include "capfs_test/fuzz/program.h"
#include "capfs_test/fuzz/seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  int written = 0;
  for (const capfs_fuzz::Seed& seed : capfs_fuzz::SeedPrograms()) {
    absl::StatusOr<std::string> bytes = capfs_fuzz::Encode(seed.program);
    if (!bytes.ok()) {
      fprintf(stderr, "seed %s: %s\n", seed.name.c_str(),
              bytes.status().ToString().c_str());
      return 1;
    }
    std::string path = std::string(argv[1]) + "/seed-" + seed.name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    if (!out) {
      fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    ++written;
  }
  fprintf(stderr, "wrote %d seeds to %s\n", written, argv[1]);
  return 0;
}

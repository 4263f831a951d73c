// The fuzzer's main when it is built without libFuzzer: runs each file named
// on the command line (or each file in a named directory) once, as libFuzzer
// would, so saved inputs replay with a plain build:
//   bazel run //capfs_test/fuzz:resolver_diff_fuzzer -- crash-1234

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> InputsIn(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {path};
  std::vector<std::string> files;
  if (DIR* d = opendir(path.c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') files.push_back(path + "/" + e->d_name);
    }
    closedir(d);
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 0;
  for (int i = 1; i < argc; ++i) {
    for (const std::string& file : InputsIn(argv[i])) {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        fprintf(stderr, "cannot read %s\n", file.c_str());
        return 1;
      }
      std::stringstream buf;
      buf << in.rdbuf();
      std::string data = buf.str();
      fprintf(stderr, "running %s (%zu bytes)\n", file.c_str(), data.size());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                             data.size());
      ++runs;
    }
  }
  fprintf(stderr, "%d inputs ran without a finding\n", runs);
  return 0;
}

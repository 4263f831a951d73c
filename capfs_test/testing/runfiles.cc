#include "capfs_test/testing/runfiles.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "capfs_test/testing/temp_tree.h"

namespace capfs_test {

std::string RunfilePath(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && workspace != nullptr) {
    return absl::StrCat(srcdir, "/", workspace, "/", rel);
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  CheckOrDie(n > 0, "readlink /proc/self/exe");
  return absl::StrCat(absl::string_view(self, static_cast<size_t>(n)),
                      ".runfiles/capfs/", rel);
}

}  // namespace capfs_test

// Helpers for the runtime's tests: every suite runs once per backend.

#ifndef CAPFS_TEST_RUNTIME_RUNTIME_TEST_UTIL_H_
#define CAPFS_TEST_RUNTIME_RUNTIME_TEST_UTIL_H_

#include <dirent.h>

#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "capfs/runtime/runtime.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace testing {

// A test fixture whose parameter is the backend the loop uses.
class BackendTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  LoopOptions Options() const {
    LoopOptions options;
    options.backend = GetParam();
    return options;
  }
  // Runs `main()` on a fresh loop; `main` stays alive until it is done.
  template <typename Main>
  auto RunMain(Main main) {
    return ::capfs::runtime::Run(main(), Options());
  }
};

inline std::string BackendTestName(
    const ::testing::TestParamInfo<IoBackend>& info) {
  return IoBackendName(info.param);
}

#define CAPFS_INSTANTIATE_FOR_BACKENDS(Suite)                            \
  INSTANTIATE_TEST_SUITE_P(                                              \
      Backends, Suite,                                                   \
      ::testing::Values(::capfs::runtime::IoBackend::kEpoll,             \
                        ::capfs::runtime::IoBackend::kPoll),             \
      ::capfs::runtime::testing::BackendTestName)

// The descriptors this process has open now.
inline std::set<int> OpenFds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::stoi(e->d_name);
    if (fd != own) fds.insert(fd);
  }
  closedir(d);
  return fds;
}

// Sets `*done` when it goes out of scope: shows that a task's frame ended.
class SetOnExit {
 public:
  explicit SetOnExit(bool* done) : done_(done) {}
  ~SetOnExit() { *done_ = true; }

 private:
  bool* done_;
};

}  // namespace testing
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_TEST_RUNTIME_RUNTIME_TEST_UTIL_H_

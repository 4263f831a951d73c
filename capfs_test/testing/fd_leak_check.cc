#include "capfs_test/testing/fd_leak_check.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace capfs_test {

std::string OpenFdsSnapshot() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return "cannot list /proc/self/fd";
  int own = dirfd(d);
  std::map<int, std::string> fds;
  while (struct dirent* e = readdir(d)) {
    int fd;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd == own) continue;
    char target[PATH_MAX];
    ssize_t n = readlinkat(own, e->d_name, target, sizeof(target) - 1);
    fds[fd] = n < 0 ? "?" : std::string(target, static_cast<size_t>(n));
  }
  closedir(d);
  std::string out;
  for (const auto& [fd, target] : fds) absl::StrAppend(&out, fd, " -> ", target, "\n");
  return out;
}

void FdLeakCheck::OnTestStart(const testing::TestInfo&) {
  before_ = OpenFdsSnapshot();
}

void FdLeakCheck::OnTestEnd(const testing::TestInfo& info) {
  std::string after = OpenFdsSnapshot();
  if (after != before_) {
    ADD_FAILURE() << "test " << info.test_suite_name() << "." << info.name()
                  << " changed the open descriptors.\nbefore:\n"
                  << before_ << "after:\n"
                  << after;
  }
}

}  // namespace capfs_test

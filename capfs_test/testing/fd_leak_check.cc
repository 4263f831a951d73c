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

namespace {

// The open descriptors and what they point at; false when /proc/self/fd
// cannot be listed.
bool ListOpenFds(std::map<int, std::string>* fds) {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return false;
  int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    int fd;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd == own) continue;
    char target[PATH_MAX];
    ssize_t n = readlinkat(own, e->d_name, target, sizeof(target) - 1);
    (*fds)[fd] = n < 0 ? "?" : std::string(target, static_cast<size_t>(n));
  }
  closedir(d);
  return true;
}

}  // namespace

std::set<int> OpenFdNumbers() {
  std::map<int, std::string> fds;
  ListOpenFds(&fds);
  std::set<int> out;
  for (const auto& entry : fds) out.insert(entry.first);
  return out;
}

std::string OpenFdsSnapshot() {
  std::map<int, std::string> fds;
  if (!ListOpenFds(&fds)) return "cannot list /proc/self/fd";
  std::string out;
  for (const auto& [fd, target] : fds)
    absl::StrAppend(&out, fd, " -> ", target, "\n");
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

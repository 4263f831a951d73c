// ForkEpoch (capfs/runtime/internal/fork_epoch.h): the same at every call in
// one process, and in a child made by any kind of fork, none of which runs a
// handler of capfs's, different from every value its ancestors returned.

#include "capfs/runtime/internal/fork_epoch.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "capfs/fd.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace internal {
namespace {

enum class Method { kFork, kUnderscoreFork, kRawClone };

struct Case {
  const char* name;
  Method method;
};

constexpr Case kCases[] = {
    {"fork", Method::kFork},
    // glibc's fork without its atfork handlers (glibc 2.34).
    {"underscore_fork", Method::kUnderscoreFork},
    // The system call itself, which glibc never sees.
    {"raw_clone", Method::kRawClone},
};

pid_t ForkBy(Method method) {
  switch (method) {
    case Method::kFork:
      return fork();
    case Method::kUnderscoreFork:
      return _Fork();
    case Method::kRawClone:
      return static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  }
  return -1;
}

// In a child: writes `values` to `fd` and exits, with nothing else run.
[[noreturn]] void ReportAndExit(int fd, const uint64_t* values, size_t n) {
  const ssize_t want = static_cast<ssize_t>(n * sizeof(uint64_t));
  _exit(write(fd, values, want) == want ? 0 : 1);
}

// Forks by `method`; the child (and, through it, a grandchild forked the
// same way) reports its epochs: child's first call, child's second call,
// grandchild's. False when something failed on the way.
bool ChildEpochs(Method method, uint64_t out[3]) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  Fd read_end(fds[0]), write_end(fds[1]);
  const pid_t pid = ForkBy(method);
  if (pid < 0) return false;
  if (pid == 0) {
    uint64_t values[3] = {ForkEpoch(), ForkEpoch(), 0};
    int inner[2];
    if (pipe2(inner, O_CLOEXEC) != 0) _exit(1);
    const pid_t grandchild = ForkBy(method);
    if (grandchild < 0) _exit(1);
    if (grandchild == 0) {
      const uint64_t mine = ForkEpoch();
      ReportAndExit(inner[1], &mine, 1);
    }
    int status = 0;
    if (waitpid(grandchild, &status, 0) != grandchild || status != 0 ||
        read(inner[0], &values[2], sizeof(values[2])) !=
            static_cast<ssize_t>(sizeof(values[2]))) {
      _exit(1);
    }
    ReportAndExit(write_end.get(), values, 3);
  }
  write_end = Fd();
  int status = 0;
  const bool reaped = waitpid(pid, &status, 0) == pid;
  const ssize_t want = 3 * sizeof(uint64_t);
  return reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
         read(read_end.get(), out, want) == want;
}

class ForkEpochTest : public ::testing::TestWithParam<Case> {};

TEST_P(ForkEpochTest, AChildAndItsChildEachHaveTheirOwn) {
  const uint64_t parent = ForkEpoch();
  if (parent == 0) GTEST_SKIP() << "no MADV_WIPEONFORK on this kernel";
  EXPECT_EQ(ForkEpoch(), parent);
  uint64_t child[3] = {};
  ASSERT_TRUE(ChildEpochs(GetParam().method, child));
  EXPECT_NE(child[0], 0u);
  EXPECT_NE(child[0], parent);
  EXPECT_EQ(child[1], child[0]) << "a child's epoch changed between calls";
  EXPECT_NE(child[2], 0u);
  EXPECT_NE(child[2], child[0]);
  EXPECT_NE(child[2], parent);
  EXPECT_EQ(ForkEpoch(), parent) << "the parent's epoch changed";
}

INSTANTIATE_TEST_SUITE_P(Methods, ForkEpochTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace internal
}  // namespace runtime
}  // namespace capfs

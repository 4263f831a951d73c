// Spawn on a system without clone3 (as under Docker's default seccomp
// profile, which refuses it with EPERM) and without close_range (before
// Linux 5.9: ENOSYS): a seccomp filter makes both fail, in a child process
// of the test (a filter cannot be removed), which then spawns the helper
// and checks what it inherited.

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/process_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using ::capfs::runtime::testing::HelperOptions;
using ::capfs::runtime::testing::Outcome;
using ::capfs::runtime::testing::SpawnAndCollect;

// In the forked child: 0 when everything held, else 1 with a message.
int CheckUnderFilter(IoBackend backend) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr ||
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone3), 0) < 0 ||
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(close_range), 0) <
          0 ||
      seccomp_load(ctx) < 0) {
    fprintf(stderr, "seccomp filter not loaded\n");
    return 1;
  }
  seccomp_release(ctx);
  // Inherited descriptors, close-on-exec or not, low and high.
  std::vector<int> open = {::fcntl(2, F_DUPFD, 3), ::fcntl(2, F_DUPFD, 3),
                           ::fcntl(2, F_DUPFD, 250),
                           ::fcntl(2, F_DUPFD_CLOEXEC, 251)};
  SpawnOptions options = HelperOptions({"fds", "exit", "5"});
  options.fds = {{7, open[0]}};
  LoopOptions loop;
  loop.backend = backend;
  absl::StatusOr<Outcome> got = Run(
      [&]() -> Task<absl::StatusOr<Outcome>> {
        co_return co_await SpawnAndCollect(std::move(options));
      }(),
      loop);
  for (int fd : open) ::close(fd);
  if (!got.ok()) {
    fprintf(stderr, "spawn: %s\n", got.status().ToString().c_str());
    return 1;
  }
  if (got->out != "0 1 2 7\n" || got->status.code != 5) {
    fprintf(stderr, "got %s, %s\n", got->out.c_str(),
            got->status.ToString().c_str());
    return 1;
  }
  return 0;
}

class ProcessFallbackTest : public ::testing::TestWithParam<IoBackend> {};

INSTANTIATE_TEST_SUITE_P(Backends, ProcessFallbackTest,
                         ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                         [](const ::testing::TestParamInfo<IoBackend>& info) {
                           return std::string(IoBackendName(info.param));
                         });

TEST_P(ProcessFallbackTest, NoClone3NoCloseRange) {
  fflush(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(CheckUnderFilter(GetParam()));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status << " (the child's message is on stderr)";
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

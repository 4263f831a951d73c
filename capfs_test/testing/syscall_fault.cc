#include "capfs_test/testing/syscall_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace capfs_test {
namespace {

int ErrnoOf(SyscallFault fault) {
  switch (fault) {
    case SyscallFault::kEnosys:
      return ENOSYS;
    case SyscallFault::kEperm:
      return EPERM;
    case SyscallFault::kEagain:
      return EAGAIN;
  }
  return EINVAL;
}

// openat2 with an open_how of the kernel's first size.
long CallOpenat2() {
  struct {
    uint64_t flags, mode, resolve;
  } how = {O_PATH | O_CLOEXEC, 0, 0};
  long fd = syscall(SCMP_SYS(openat2), AT_FDCWD, "/", &how, sizeof(how));
  if (fd >= 0) close(static_cast<int>(fd));
  return fd;
}

}  // namespace

std::string SyscallFaultName(SyscallFault fault) {
  return strerrorname_np(ErrnoOf(fault));
}

absl::Status InstallSyscallFault(SyscallFault fault) {
  const int err = ErrnoOf(fault);
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return absl::InternalError("seccomp_init failed");
  int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), SCMP_SYS(openat2), 0);
  if (r == 0 && fault != SyscallFault::kEagain) {
    r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), SCMP_SYS(faccessat2), 0);
  }
  if (r == 0) r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r != 0) {
    return absl::InternalError(
        absl::StrCat("seccomp filter not loaded: ", strerror(-r)));
  }
  if (CallOpenat2() != -1 || errno != err) {
    return absl::InternalError(
        absl::StrCat("openat2 does not fail with ", SyscallFaultName(fault),
                     " under the filter: ", strerror(errno)));
  }
  return absl::OkStatus();
}

bool ChildRun::exited_ok() const {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

ChildRun RunUnderFault(SyscallFault fault, const std::string& binary,
                       const std::vector<std::string>& args,
                       const std::vector<std::string>& env) {
  // Everything the child needs is made before fork.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_copy = env;
  ChildRun run;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    run.output = absl::StrCat("pipe2: ", strerror(errno));
    run.status = -1;
    return run;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    if (absl::Status s = InstallSyscallFault(fault); !s.ok()) {
      fprintf(stderr, "%s\n", s.ToString().c_str());
      _exit(97);
    }
    // The child is a whole run of its binary: not this test's shard, output
    // files or filter (a --test_filter meant for this test, which the child
    // would otherwise read, could leave it running nothing).
    for (const char* var :
         {"GTEST_SHARD_INDEX", "GTEST_TOTAL_SHARDS", "GTEST_SHARD_STATUS_FILE",
          "TEST_SHARD_INDEX", "TEST_TOTAL_SHARDS", "TEST_SHARD_STATUS_FILE",
          "XML_OUTPUT_FILE", "GTEST_OUTPUT", "TEST_PREMATURE_EXIT_FILE",
          "TESTBRIDGE_TEST_ONLY", "GTEST_FILTER"}) {
      unsetenv(var);
    }
    for (std::string& e : env_copy) putenv(e.data());
    execv(binary.c_str(), argv.data());
    fprintf(stderr, "exec %s: %s\n", binary.c_str(), strerror(errno));
    _exit(98);
  }
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    run.output = absl::StrCat("fork: ", strerror(errno));
    run.status = -1;
    return run;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    run.output.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  while (waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
  }
  return run;
}

}  // namespace capfs_test

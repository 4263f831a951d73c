// Fault injection for the kernel resolver: a seccomp filter that makes
// openat2(2) fail, as it does on kernels or sandboxes without it.
//
// A filter cannot be removed once loaded, so it goes in a child process
// (RunInChild, or a fork that then execs a test binary), never in a test
// process itself. Loading sets PR_SET_NO_NEW_PRIVS, which needs no
// privilege.
//
//   RunInChild({}, [] {
//     if (absl::Status s = InstallSyscallFault(SyscallFault::kEnosys); !s.ok())
//       return s.ToString();
//     ... capfs calls now see a kernel without openat2 ...
//   });

#ifndef CAPFS_TEST_TESTING_SYSCALL_FAULT_H_
#define CAPFS_TEST_TESTING_SYSCALL_FAULT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace capfs_test {

enum class SyscallFault {
  kEnosys,  // a kernel before 5.6: openat2 (and faccessat2, 5.8) are ENOSYS
  kEperm,   // a seccomp profile older than openat2 that refuses what it
            // does not know with EPERM: openat2 and faccessat2 are EPERM
  kEagain,  // openat2 always says EAGAIN, as it does when a rename races a
            // ".." step: every kernel resolution runs out of retries
};

// "ENOSYS", "EPERM", "EAGAIN".
std::string SyscallFaultName(SyscallFault fault);

// Loads the filter for `fault` into the calling process, then checks that
// openat2 now fails as it should.
absl::Status InstallSyscallFault(SyscallFault fault);

// What a child run of a test binary printed, and how it ended.
struct ChildRun {
  std::string output;  // stdout and stderr
  int status = 0;      // as waitpid gives it
  bool exited_ok() const;
};

// Runs the test binary `binary` with `args` in a child process under the
// filter for `fault`, with `env` ("NAME=value") added to this test's
// environment minus what Bazel tells this test alone (sharding, its test
// filter, its XML and exit files).
ChildRun RunUnderFault(SyscallFault fault, const std::string& binary,
                       const std::vector<std::string>& args,
                       const std::vector<std::string>& env);

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_SYSCALL_FAULT_H_

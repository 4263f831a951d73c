#include "capfs_test/testing/syscall_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
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
    return absl::InternalError(absl::StrCat(
        "openat2 does not fail with ", SyscallFaultName(fault),
        " under the filter: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace capfs_test

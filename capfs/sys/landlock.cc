#include "capfs/sys/landlock.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "capfs/sys/fs.h"

// The same numbers on every architecture (the unified syscall table).
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

namespace capfs {
namespace internal {

int SysLandlockCreateRuleset(const LandlockRulesetAttr* attr, size_t size,
                             uint32_t flags) {
  return static_cast<int>(RetryEintr([&] {
    return ::syscall(SYS_landlock_create_ruleset, attr, size, flags);
  }));
}

int SysLandlockAddPathBeneathRule(int ruleset_fd,
                                  const LandlockPathBeneathAttr& attr) {
  return static_cast<int>(RetryEintr([&] {
    return ::syscall(SYS_landlock_add_rule, ruleset_fd,
                     kLandlockRulePathBeneath, &attr, 0u);
  }));
}

int SysLandlockRestrictSelf(int ruleset_fd, uint32_t flags) {
  return static_cast<int>(RetryEintr([&] {
    return ::syscall(SYS_landlock_restrict_self, ruleset_fd, flags);
  }));
}

int SysSetNoNewPrivs() {
  return RetryEintr([] { return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); });
}

}  // namespace internal
}  // namespace capfs

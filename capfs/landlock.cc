#include "capfs/landlock.h"

#include <errno.h>
#include <fcntl.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"
#include "capfs/sys/landlock.h"

namespace capfs {
namespace {

using internal::kLandlockFsExecute;
using internal::kLandlockFsIoctlDev;
using internal::kLandlockFsMakeDir;
using internal::kLandlockFsMakeFifo;
using internal::kLandlockFsMakeReg;
using internal::kLandlockFsMakeSock;
using internal::kLandlockFsMakeSym;
using internal::kLandlockFsReadDir;
using internal::kLandlockFsReadFile;
using internal::kLandlockFsRefer;
using internal::kLandlockFsRemoveDir;
using internal::kLandlockFsRemoveFile;
using internal::kLandlockFsResolveUnix;
using internal::kLandlockFsTruncate;
using internal::kLandlockFsWriteFile;

constexpr uint64_t kReadRights = kLandlockFsReadFile | kLandlockFsReadDir;
// Everything that changes the tree beneath a Dir, except MAKE_CHAR and
// MAKE_BLOCK (a sandbox has no business making devices), plus device ioctls
// and connecting to the pathname sockets beneath.
constexpr uint64_t kWriteRights =
    kLandlockFsWriteFile | kLandlockFsRemoveDir | kLandlockFsRemoveFile |
    kLandlockFsMakeDir | kLandlockFsMakeReg | kLandlockFsMakeSock |
    kLandlockFsMakeFifo | kLandlockFsMakeSym | kLandlockFsRefer |
    kLandlockFsTruncate | kLandlockFsIoctlDev | kLandlockFsResolveUnix;

uint64_t RightsOf(Access access) {
  switch (access) {
    case Access::kRead:
      return kReadRights;
    case Access::kReadExec:
      return kReadRights | kLandlockFsExecute;
    case Access::kReadWrite:
      return kReadRights | kWriteRights;
    case Access::kReadWriteExec:
      return kReadRights | kWriteRights | kLandlockFsExecute;
  }
  return 0;
}

bool Writes(Access access) {
  return access == Access::kReadWrite || access == Access::kReadWriteExec;
}

int ProbeAbi() {
  int r = internal::SysLandlockCreateRuleset(
      nullptr, 0, internal::kLandlockCreateRulesetVersion);
  // ENOSYS: no Landlock in this kernel; EOPNOTSUPP: built in but disabled
  // at boot. Anything else (a seccomp filter's EPERM) also means none here.
  return r > 0 ? r : 0;
}

// The ABI a ruleset is built for: the kernel's, lowered by max_abi, and
// never newer than capfs knows.
int TargetAbi(int kernel_abi, int max_abi) {
  int abi = std::min(kernel_abi, internal::kLandlockMaxKnownAbi);
  if (max_abi > 0) abi = std::min(abi, max_abi);
  return abi;
}

// What `abi` leaves unenforced of what was asked, one phrase each (empty:
// fully enforced), as fully_enforced() defines it.
std::vector<std::string> Missing(int abi, const LandlockOptions& options) {
  std::vector<std::string> missing;
  if (abi == 0) {
    missing.push_back("filesystem rules (Landlock unavailable, needs ABI 3)");
  } else if (abi < 3) {
    missing.push_back("truncation (needs ABI 3)");
  }
  if (options.deny_tcp && abi < 4) missing.push_back("TCP (needs ABI 4)");
  if (options.scope_ipc && abi < 6) {
    missing.push_back("abstract Unix sockets and signals (needs ABI 6)");
  }
  return missing;
}

std::string AbiLabel(int abi, int kernel_abi) {
  std::string label = absl::StrCat("Landlock ABI ", abi);
  if (abi < std::min(kernel_abi, internal::kLandlockMaxKnownAbi)) {
    absl::StrAppend(&label, " (lowered by max_abi; the kernel has ", kernel_abi,
                    ")");
  }
  return label;
}

std::string DescribePolicy(int abi, int kernel_abi,
                           const LandlockOptions& options) {
  if (abi == 0) {
    return "Landlock unavailable (the kernel has none or it is disabled): "
           "nothing enforced";
  }
  std::vector<std::string> parts;
  parts.push_back("filesystem rules enforced");
  if (abi < 2) {
    parts.push_back(
        "renames and links between directories always refused (needs ABI 2)");
  }
  if (abi < 3) parts.push_back("truncation not restricted (needs ABI 3)");
  if (abi < 5) parts.push_back("device ioctls not restricted (needs ABI 5)");
  if (abi < 9) {
    parts.push_back("pathname Unix sockets not restricted (needs ABI 9)");
  }
  if (!options.deny_tcp) {
    parts.push_back("TCP not restricted (not asked)");
  } else if (abi < 4) {
    parts.push_back("TCP not restricted (needs ABI 4)");
  } else {
    parts.push_back("TCP bind and connect denied");
  }
  if (!options.scope_ipc) {
    parts.push_back("abstract sockets and signals not scoped (not asked)");
  } else if (abi < 6) {
    parts.push_back("abstract sockets and signals not scoped (needs ABI 6)");
  } else {
    parts.push_back("abstract sockets and signals scoped");
  }
  if (abi < 8) {
    parts.push_back(
        "RestrictSelf confines the calling thread only (all threads need ABI "
        "8)");
  }
  return absl::StrCat(AbiLabel(abi, kernel_abi), ": ",
                      absl::StrJoin(parts, "; "));
}

// The descriptor a rule on `dir` is anchored on: its own, or for Dir::Cwd()
// and Dir::Unconfined() (AT_FDCWD) one opened here on "." or "/" and kept in
// `opened`.
absl::StatusOr<int> AnchorOf(const Dir& dir, size_t index, Fd& opened) {
  if (dir.fd() >= 0) return dir.fd();
  if (dir.fd() != AT_FDCWD) {
    return absl::InvalidArgumentError(
        absl::StrCat("Landlock::Build: rule ", index, " has a moved-from Dir"));
  }
  const char* path = dir.confined() ? "." : "/";
  int fd = internal::SysOpenAt(AT_FDCWD, path, O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return ErrnoError(-fd, "openat", path);
  opened = Fd(fd);
  return fd;
}

}  // namespace

int LandlockAbi() {
  static const int abi = ProbeAbi();
  return abi;
}

absl::StatusOr<Landlock> Landlock::Build(absl::Span<const LandlockRule> rules,
                                         LandlockOptions options) {
  if (options.max_abi < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Landlock::Build: max_abi ", options.max_abi, " is negative"));
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].dir == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("Landlock::Build: rule ", i, " has a null Dir"));
    }
    if (Writes(rules[i].access) && rules[i].dir->options().read_only) {
      return ViolationError(Violation::kReadOnly, "landlock_add_rule",
                            absl::StrCat("rule ", i));
    }
  }
  const int kernel_abi = LandlockAbi();
  const int abi = TargetAbi(kernel_abi, options.max_abi);
  std::vector<std::string> missing = Missing(abi, options);
  if (options.strict && !missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Landlock::Build (strict): ", AbiLabel(abi, kernel_abi),
                     " cannot enforce ", absl::StrJoin(missing, ", ")));
  }

  Landlock landlock;
  landlock.abi_ = abi;
  landlock.fully_enforced_ = missing.empty();
  landlock.description_ = DescribePolicy(abi, kernel_abi, options);
  if (abi == 0) {
    // Best effort on a kernel without Landlock: nothing to build. The rules
    // are still checked, so that a bad one fails here as it would elsewhere.
    for (size_t i = 0; i < rules.size(); ++i) {
      Fd opened;
      absl::StatusOr<int> anchor = AnchorOf(*rules[i].dir, i, opened);
      if (!anchor.ok()) return anchor.status();
    }
    return landlock;
  }

  const uint64_t handled_fs = internal::LandlockFsRightsOfAbi(abi);
  internal::LandlockRulesetAttr attr = {};
  attr.handled_access_fs = handled_fs;
  if (options.deny_tcp && abi >= 4) {
    attr.handled_access_net =
        internal::kLandlockNetBindTcp | internal::kLandlockNetConnectTcp;
  }
  if (options.scope_ipc && abi >= 6) {
    attr.scoped = internal::kLandlockScopeAbstractUnixSocket |
                  internal::kLandlockScopeSignal;
  }
  int fd = internal::SysLandlockCreateRuleset(
      &attr, internal::LandlockRulesetAttrSize(abi), 0);
  if (fd < 0) return ErrnoError(-fd, "landlock_create_ruleset", "");
  landlock.ruleset_ = Fd(fd);

  for (size_t i = 0; i < rules.size(); ++i) {
    Fd opened;
    absl::StatusOr<int> anchor = AnchorOf(*rules[i].dir, i, opened);
    if (!anchor.ok()) return anchor.status();
    // Every right is valid on a directory, and a Dir is always one (Open
    // uses O_DIRECTORY, FromFd checks), so only the ABI masks the rights.
    internal::LandlockPathBeneathAttr rule = {};
    rule.allowed_access = RightsOf(rules[i].access) & handled_fs;
    rule.parent_fd = *anchor;
    int r = internal::SysLandlockAddPathBeneathRule(fd, rule);
    if (r < 0) {
      return ErrnoError(-r, "landlock_add_rule", absl::StrCat("rule ", i));
    }
  }
  // A single-threaded child (Spawn's) needs no TSYNC; audit-log defaults.
  landlock.child_restrict_flags_ = 0;
  return landlock;
}

int Landlock::abi() const { return abi_; }

bool Landlock::fully_enforced() const { return fully_enforced_; }

std::string Landlock::Describe() const { return description_; }

absl::Status Landlock::RestrictSelf() const {
  int r = internal::SysSetNoNewPrivs();
  if (r < 0) return ErrnoError(-r, "prctl(PR_SET_NO_NEW_PRIVS)", "");
  if (abi_ == 0) return absl::OkStatus();  // best effort: nothing to enforce
  const uint32_t flags = abi_ >= 8 ? internal::kLandlockRestrictSelfTsync : 0;
  r = internal::SysLandlockRestrictSelf(ruleset_.get(), flags);
  if (r < 0) return ErrnoError(-r, "landlock_restrict_self", "");
  return absl::OkStatus();
}

}  // namespace capfs

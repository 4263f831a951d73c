// Landlock's system calls (landlock(7)) and the constants of its ABI, up to
// ABI 9, spelled here because the C library's and the system's
// <linux/landlock.h> stop earlier (Debian's at ABI 2). Every value below was
// checked against the kernel's include/uapi/linux/landlock.h.
//
// The wrappers follow the syscall layer's convention (capfs/sys/fs.h): EINTR
// is retried, the result is returned on success and -errno on failure. The
// ruleset descriptor the kernel returns is always close-on-exec.
//
// Not part of the API: include capfs/landlock.h instead.

#ifndef CAPFS_SYS_LANDLOCK_H_
#define CAPFS_SYS_LANDLOCK_H_

#include <stddef.h>
#include <stdint.h>

namespace capfs {
namespace internal {

// The newest Landlock ABI capfs knows.
inline constexpr int kLandlockMaxKnownAbi = 9;

// landlock_create_ruleset(2) flags.
inline constexpr uint32_t kLandlockCreateRulesetVersion = 1u << 0;
inline constexpr uint32_t kLandlockCreateRulesetErrata = 1u << 1;  // ABI 7

// landlock_add_rule(2) rule types.
inline constexpr int kLandlockRulePathBeneath = 1;
inline constexpr int kLandlockRuleNetPort = 2;  // ABI 4

// Filesystem access rights (struct landlock_ruleset_attr.handled_access_fs,
// struct landlock_path_beneath_attr.allowed_access).
inline constexpr uint64_t kLandlockFsExecute = 1ull << 0;
inline constexpr uint64_t kLandlockFsWriteFile = 1ull << 1;
inline constexpr uint64_t kLandlockFsReadFile = 1ull << 2;
inline constexpr uint64_t kLandlockFsReadDir = 1ull << 3;
inline constexpr uint64_t kLandlockFsRemoveDir = 1ull << 4;
inline constexpr uint64_t kLandlockFsRemoveFile = 1ull << 5;
inline constexpr uint64_t kLandlockFsMakeChar = 1ull << 6;
inline constexpr uint64_t kLandlockFsMakeDir = 1ull << 7;
inline constexpr uint64_t kLandlockFsMakeReg = 1ull << 8;
inline constexpr uint64_t kLandlockFsMakeSock = 1ull << 9;
inline constexpr uint64_t kLandlockFsMakeFifo = 1ull << 10;
inline constexpr uint64_t kLandlockFsMakeBlock = 1ull << 11;
inline constexpr uint64_t kLandlockFsMakeSym = 1ull << 12;
inline constexpr uint64_t kLandlockFsRefer = 1ull << 13;        // ABI 2
inline constexpr uint64_t kLandlockFsTruncate = 1ull << 14;     // ABI 3
inline constexpr uint64_t kLandlockFsIoctlDev = 1ull << 15;     // ABI 5
inline constexpr uint64_t kLandlockFsResolveUnix = 1ull << 16;  // ABI 9

// The rights a rule on a file (rather than a directory) may carry: the
// kernel refuses the others there with EINVAL. A directory takes them all.
inline constexpr uint64_t kLandlockFsFileRights =
    kLandlockFsExecute | kLandlockFsWriteFile | kLandlockFsReadFile |
    kLandlockFsTruncate | kLandlockFsIoctlDev | kLandlockFsResolveUnix;

// Network access rights (handled_access_net, landlock_net_port_attr), ABI 4.
inline constexpr uint64_t kLandlockNetBindTcp = 1ull << 0;
inline constexpr uint64_t kLandlockNetConnectTcp = 1ull << 1;

// Scopes (handled in landlock_ruleset_attr.scoped), ABI 6.
inline constexpr uint64_t kLandlockScopeAbstractUnixSocket = 1ull << 0;
inline constexpr uint64_t kLandlockScopeSignal = 1ull << 1;

// landlock_restrict_self(2) flags: audit logging (ABI 7) and all threads
// (ABI 8).
inline constexpr uint32_t kLandlockRestrictSelfLogSameExecOff = 1u << 0;
inline constexpr uint32_t kLandlockRestrictSelfLogNewExecOn = 1u << 1;
inline constexpr uint32_t kLandlockRestrictSelfLogSubdomainsOff = 1u << 2;
inline constexpr uint32_t kLandlockRestrictSelfTsync = 1u << 3;

// The filesystem rights ABI `abi` knows (0 for abi <= 0).
constexpr uint64_t LandlockFsRightsOfAbi(int abi) {
  if (abi <= 0) return 0;
  uint64_t rights = (kLandlockFsMakeSym << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) rights |= kLandlockFsRefer;
  if (abi >= 3) rights |= kLandlockFsTruncate;
  if (abi >= 5) rights |= kLandlockFsIoctlDev;
  if (abi >= 9) rights |= kLandlockFsResolveUnix;
  return rights;
}

// struct landlock_ruleset_attr as of ABI 6 (it grew: 8 bytes up to ABI 3,
// 16 from ABI 4, 24 from ABI 6). The kernel accepts a larger struct whose
// unknown tail is zero, but capfs passes the size of the ABI it targets.
struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
static_assert(sizeof(LandlockRulesetAttr) == 24);

// The size of struct landlock_ruleset_attr that ABI `abi` reads.
constexpr size_t LandlockRulesetAttrSize(int abi) {
  return abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
}

// struct landlock_path_beneath_attr: packed, 12 bytes.
struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};
static_assert(sizeof(LandlockPathBeneathAttr) == 12);

// landlock_create_ruleset(2): a new ruleset descriptor (close-on-exec), or
// with kLandlockCreateRulesetVersion (attr null, size 0) the ABI version.
int SysLandlockCreateRuleset(const LandlockRulesetAttr* attr, size_t size,
                             uint32_t flags);

// landlock_add_rule(2) of a LANDLOCK_RULE_PATH_BENEATH rule.
int SysLandlockAddPathBeneathRule(int ruleset_fd,
                                  const LandlockPathBeneathAttr& attr);

// landlock_restrict_self(2) of the calling thread (all threads with
// kLandlockRestrictSelfTsync).
int SysLandlockRestrictSelf(int ruleset_fd, uint32_t flags);

// prctl(PR_SET_NO_NEW_PRIVS, 1): what landlock_restrict_self requires of a
// thread without CAP_SYS_ADMIN.
int SysSetNoNewPrivs();

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_SYS_LANDLOCK_H_

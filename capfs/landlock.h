// Landlock (landlock(7)): confinement by the kernel, anchored on Dirs, for
// this process or for a child started by capfs::runtime::Spawn.
//
//   absl::StatusOr<capfs::Dir> data = capfs::Dir::Open("/srv/data");
//   absl::StatusOr<capfs::Landlock> sandbox = capfs::Landlock::Build(
//       {{&*data, capfs::Access::kRead}}, {.strict = true});
//   if (sandbox.ok()) status = sandbox->RestrictSelf();
//
// A ruleset handles every filesystem right its ABI knows, so whatever no rule
// grants is denied. Rules are anchored on the Dirs' own descriptors, never on
// paths. A built ruleset is reusable for any number of children.
//
// Best effort by default: on a kernel whose Landlock ABI is older than the
// policy needs, Build still succeeds and enforces what that ABI can;
// fully_enforced() and Describe() say exactly what is not enforced, and
// `strict` makes Build fail instead. Without Landlock at all (abi() 0) a
// non-strict Build gives a ruleset that enforces nothing and whose
// RestrictSelf only sets no_new_privs and returns OK.
//
// What Landlock never covers, at any ABI (docs/landlock.md has the table):
// stat, access, chmod, chown, utimes, xattrs and chdir, on any path;
// descriptors opened before the restriction (inherited ones included); UDP
// and other non-TCP sockets; pathname Unix sockets before ABI 9.

#ifndef CAPFS_LANDLOCK_H_
#define CAPFS_LANDLOCK_H_

#include <stdint.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "capfs/dir.h"
#include "capfs/fd.h"

namespace capfs {

// What a rule grants beneath its Dir (the Dir itself and everything under
// it), as Landlock rights, masked to those the ruleset's ABI knows:
//   kRead       READ_FILE, READ_DIR: reading files and listing directories.
//   kReadWrite  kRead plus every right that changes the tree except making
//               devices: WRITE_FILE, REMOVE_DIR, REMOVE_FILE, MAKE_DIR,
//               MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_SYM, REFER (ABI 2:
//               renames and links between directories, so that renaming
//               within a read-write Dir or between two read-write Dirs
//               works), TRUNCATE (ABI 3); device ioctls, IOCTL_DEV (ABI 5);
//               and connecting to the pathname Unix sockets beneath it,
//               RESOLVE_UNIX (ABI 9), as write permission on a socket allows
//               connecting to it.
//   The Exec forms add EXECUTE: running the files beneath (the program and
//   its dynamic loader and libraries each need it).
// MAKE_CHAR and MAKE_BLOCK are never granted.
enum class Access { kRead, kReadExec, kReadWrite, kReadWriteExec };

// `access` beneath `dir`. The rule is anchored on dir->fd() as it is when
// Build runs: a later rename of the directory moves the rule with it. For
// Dir::Cwd(), which has no descriptor of its own, Build opens "." (the
// current directory at the time of Build; a later chdir does not move the
// rule); for Dir::Unconfined(), "/" (the whole filesystem). `dir` must
// outlive Build only.
struct LandlockRule {
  const Dir* dir;
  Access access;
};

// How a ruleset is built. `max_abi` lowers the ABI used (to mimic an older
// kernel, or to pin a policy): the ruleset then handles only that ABI's
// rights, and RestrictSelf uses only that ABI's flags. Negative is
// kInvalidArgument; above 9 means 9.
struct LandlockOptions {
  bool strict = false;     // fail instead of enforcing less than asked
  int max_abi = 0;         // 0: the newest ABI capfs and the kernel know
  bool deny_tcp = false;   // ABI 4: no TCP bind or connect at all
  bool scope_ipc = false;  // ABI 6: no abstract Unix sockets or signals out
};

// The running kernel's Landlock ABI; 0 when it has none or it is disabled
// (landlock_create_ruleset says ENOSYS or EOPNOTSUPP). Probed once with
// LANDLOCK_CREATE_RULESET_VERSION, then cached for the process.
int LandlockAbi();

// A built ruleset: immutable, reusable for any number of children.
class Landlock {
 public:
  // Creates a ruleset for ABI min(LandlockAbi(), options.max_abi or 9) that
  // handles every filesystem right of that ABI, TCP bind and connect when
  // options.deny_tcp, and the abstract Unix socket and signal scopes when
  // options.scope_ipc, and adds one rule per entry of `rules` (several rules
  // on one directory add up).
  // Errors: a null or moved-from `dir`, or a negative max_abi, is
  // kInvalidArgument; kReadWrite or kReadWriteExec on a read-only Dir is
  // kPermissionDenied with ViolationOf() kReadOnly (a rule never grants more
  // than its Dir); with options.strict, a ruleset that would not be
  // fully_enforced() is kFailedPrecondition, its message saying what is
  // missing and which ABI would enforce it; a failing Landlock call keeps its
  // errno and names the call.
  static absl::StatusOr<Landlock> Build(absl::Span<const LandlockRule> rules,
                                        LandlockOptions options = {});

  Landlock(Landlock&&) = default;
  Landlock& operator=(Landlock&&) = default;

  // The ABI the ruleset was built for (0: nothing can be enforced).
  int abi() const;
  // Every right asked for is enforced by this kernel: abi() is 3 or more
  // (below it truncation is never restricted, so even kRead would allow
  // it), 4 or more with deny_tcp, 6 or more with scope_ipc.
  bool fully_enforced() const;
  // What is enforced and what is not, in one line a person can read, e.g.
  // "Landlock ABI 7: filesystem rules enforced; pathname Unix sockets not
  // restricted (needs ABI 9); TCP not restricted (not asked); ...".
  std::string Describe() const;
  // no_new_privs, then restricts the calling thread (all threads where the
  // kernel has LANDLOCK_RESTRICT_SELF_TSYNC).
  // Irreversible. Below ABI 8, only the calling thread and the threads and
  // processes it creates afterwards are restricted: call it before starting
  // threads. With abi() 0 it sets no_new_privs and returns OK, enforcing
  // nothing (Build with `strict` refuses that case). Errors keep the errno of
  // prctl or landlock_restrict_self.
  absl::Status RestrictSelf() const;

  // For capfs::runtime::Spawn, which restricts a single-threaded child with
  // raw syscalls just before execve: the ruleset's descriptor (close-on-exec;
  // -1 when abi() is 0 and there is nothing to enforce) and the flags to pass
  // to landlock_restrict_self(2) in that child. The flags are 0: a
  // single-threaded child needs no TSYNC, and the kernel's audit-log
  // defaults (ABI 7) are kept. The child must set no_new_privs first.
  int ruleset_fd() const { return ruleset_.get(); }
  uint32_t child_restrict_flags() const { return child_restrict_flags_; }

 private:
  Landlock() = default;

  Fd ruleset_;
  int abi_ = 0;
  uint32_t child_restrict_flags_ = 0;
  bool fully_enforced_ = false;
  std::string description_;
};

}  // namespace capfs

#endif  // CAPFS_LANDLOCK_H_

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
// (The contract of each call, and what each ABI enforces, is documented below
// with its declaration.)

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

// What a rule grants beneath its Dir. kRead: reading files and listing
// directories. kReadWrite adds every right that changes the tree (except
// making devices) and device ioctls. The Exec forms add executing files.
enum class Access { kRead, kReadExec, kReadWrite, kReadWriteExec };

struct LandlockRule {
  const Dir* dir;
  Access access;
};

struct LandlockOptions {
  bool strict = false;     // fail instead of enforcing less than asked
  int max_abi = 0;         // 0: the newest ABI capfs and the kernel know
  bool deny_tcp = false;   // ABI 4: no TCP bind or connect at all
  bool scope_ipc = false;  // ABI 6: no abstract Unix sockets or signals out
};

// The running kernel's Landlock ABI; 0 when it has none or it is disabled.
int LandlockAbi();

class Landlock {
 public:
  static absl::StatusOr<Landlock> Build(absl::Span<const LandlockRule> rules,
                                        LandlockOptions options = {});

  Landlock(Landlock&&) = default;
  Landlock& operator=(Landlock&&) = default;

  // The ABI the ruleset was built for (0: nothing can be enforced).
  int abi() const;
  // Every right asked for is enforced by this kernel.
  bool fully_enforced() const;
  // What is enforced and what is not, in one line a person can read.
  std::string Describe() const;
  // no_new_privs, then restricts the calling thread (all threads where the
  // kernel has LANDLOCK_RESTRICT_SELF_TSYNC).
  absl::Status RestrictSelf() const;

  // For capfs::runtime::Spawn, which restricts a single-threaded child with
  // raw syscalls just before execve: the ruleset's descriptor (close-on-exec;
  // -1 when abi() is 0 and there is nothing to enforce) and the flags to pass
  // to landlock_restrict_self(2) in that child.
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

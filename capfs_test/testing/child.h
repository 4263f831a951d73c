// Runs a function in a forked child: chrooted, without privileges, or both.
//
// Used for two things root (or a chroot) changes: the oracle of InRoot scope
// is the plain call made in a process chroot'ed at the Dir, and permission
// cases must not be bypassed by root. Privileges are dropped by clearing
// every capability (capset), which makes root subject to permission checks
// like any owner, also inside Bazel's sandbox where setresuid is refused.

#ifndef CAPFS_TEST_TESTING_CHILD_H_
#define CAPFS_TEST_TESTING_CHILD_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace capfs_test {

struct ChildOptions {
  std::string chroot_dir;        // chroot here first, when not empty
  bool drop_privileges = false;  // then clear every capability
};

// Runs `fn` in a child process set up as `options` say and returns the
// string it returned, or an error when the set-up failed or the child died.
absl::StatusOr<std::string> RunInChild(const ChildOptions& options,
                                       absl::FunctionRef<std::string()> fn);

// Clears every capability of the calling thread's process. Returns false
// (errno set) on failure.
bool DropAllCapabilities();

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_CHILD_H_

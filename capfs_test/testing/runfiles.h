// Where a test finds the binaries it depends on (`data = [...]` in BUILD):
// under Bazel's runfiles tree, whether it runs under `bazel test` or
// straight from bazel-bin.

#ifndef CAPFS_TEST_TESTING_RUNFILES_H_
#define CAPFS_TEST_TESTING_RUNFILES_H_

#include <string>

#include "absl/strings/string_view.h"

namespace capfs_test {

// The runfile at `rel` (a path in the capfs workspace, such as
// "capfs_test/conformance_test"): $TEST_SRCDIR/$TEST_WORKSPACE/rel under
// `bazel test`, else beside this binary in its .runfiles tree.
std::string RunfilePath(absl::string_view rel);

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_RUNFILES_H_

// The tree every conformance case runs against, and the paths tried on it.
//
// A case directory holds two siblings: root/ (the Dir) and outside/ (a
// sentinel that nothing may reach). root/ has files, directories, relative
// and absolute symlinks, links that leave and come back, dangling links,
// loops, a chain of 41 links, and directories whose permissions deny search
// or listing.

#ifndef CAPFS_TEST_CONFORMANCE_STANDARD_TREE_H_
#define CAPFS_TEST_CONFORMANCE_STANDARD_TREE_H_

#include <string>
#include <vector>

namespace capfs_test {

// Builds the standard tree in `case_dir` (which must exist and be empty but
// for root/ and outside/, which are created when missing). Symlinks that
// name the host path of the case directory use `case_dir` verbatim.
void BuildStandardTree(const std::string& case_dir);

// Empties root/ and outside/ in `case_dir` (keeping both directories, so
// descriptors of them stay valid) and builds the standard tree again.
void RebuildStandardTree(const std::string& case_dir);

// Whether a path leaves root/ in Beneath scope.
enum class Leaves {
  kNo,            // never
  kWhenFollowed,  // only if its last component (a symlink) is followed
  kYes,           // even without following the last component
};

struct PathCase {
  std::string path;
  Leaves leaves = Leaves::kNo;
  // Runs without capabilities, so that permission bits apply to root too.
  bool needs_permission_checks = false;
};

// The paths every operation is tried with, relative and absolute.
const std::vector<PathCase>& StandardPaths();

}  // namespace capfs_test

#endif  // CAPFS_TEST_CONFORMANCE_STANDARD_TREE_H_

// The tree every conformance case runs against, and the paths tried on it.
//
// A case directory holds two siblings: root/ (the Dir) and outside/ (a
// sentinel that nothing may reach). root/ has files, directories, relative
// and absolute symlinks, links that leave and come back, dangling links,
// loops, a chain of 41 links, and directories whose permissions deny search
// or listing.

#ifndef CAPFS_TEST_CONFORMANCE_STANDARD_TREE_H_
#define CAPFS_TEST_CONFORMANCE_STANDARD_TREE_H_

#include <ostream>
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
  // The case's name in test names; empty for the one PathName derives from
  // the path. Given only where the path is too long to spell out.
  std::string name = "";
};

// A case's name, usable in a test name (letters, digits and '_'), derived
// from its path alone so that it does not change when cases are added:
// each component in CamelCase ("link_file" is LinkFile), "." is Dot, ".."
// is Up, a slash is '_' ("dir/sub/../inner/" is Dir_Sub_Up_Inner_), a
// leading slash is Abs_ ("/file" is Abs_File), and "" is EmptyPath.
std::string PathName(const PathCase& pc);

// For gtest's messages: the path, cut at 64 bytes.
void PrintTo(const PathCase& pc, std::ostream* os);

// The paths every operation is tried with, relative and absolute. Their
// names (PathName) are unique.
const std::vector<PathCase>& StandardPaths();

}  // namespace capfs_test

#endif  // CAPFS_TEST_CONFORMANCE_STANDARD_TREE_H_

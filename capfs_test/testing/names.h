// Names of capfs's enums as the tests print and compare them.
//
//   ResolverName(Resolver::kUserspace) == "userspace"
//   KindName(S_IFLNK | 0777) == "symlink"
//
// KindName gives one name per kind a test tells apart ("file", "dir",
// "symlink") and "other" for the rest, whether the kind comes from a
// struct stat or from capfs::FileStat, so that the two can be compared.

#ifndef CAPFS_TEST_TESTING_NAMES_H_
#define CAPFS_TEST_TESTING_NAMES_H_

#include <sys/types.h>

#include <string>

#include "capfs/dir.h"
#include "capfs/file.h"

namespace capfs_test {

// "kernel", "userspace" or "auto".
std::string ResolverName(capfs::Resolver resolver);

// "Beneath" or "InRoot".
std::string ScopeName(capfs::Scope scope);

// "file", "dir", "symlink" or "other".
std::string KindName(mode_t mode);
std::string KindName(capfs::FileKind kind);

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_NAMES_H_

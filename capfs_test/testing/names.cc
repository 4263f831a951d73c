#include "capfs_test/testing/names.h"

#include <sys/stat.h>

namespace capfs_test {

std::string ResolverName(capfs::Resolver resolver) {
  switch (resolver) {
    case capfs::Resolver::kKernel:
      return "kernel";
    case capfs::Resolver::kUserspace:
      return "userspace";
    case capfs::Resolver::kAuto:
      return "auto";
  }
  return "?";
}

std::string ScopeName(capfs::Scope scope) {
  return scope == capfs::Scope::kBeneath ? "Beneath" : "InRoot";
}

std::string KindName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "symlink";
    default:
      return "other";
  }
}

std::string KindName(capfs::FileKind kind) {
  switch (kind) {
    case capfs::FileKind::kRegular:
      return "file";
    case capfs::FileKind::kDirectory:
      return "dir";
    case capfs::FileKind::kSymlink:
      return "symlink";
    default:
      return "other";
  }
}

}  // namespace capfs_test

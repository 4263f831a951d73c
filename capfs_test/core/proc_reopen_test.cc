// The userspace resolver's one use of a magic link: "/" in InRoot scope
// names the root with no lookup, so a root the caller may not search is
// reopened through /proc/self/fd/N. That path is trusted only when /proc is
// a real procfs and only for what it reaches when that is the very root:
// something mounted over /proc (the runc CVE-2019-16884 class) could lead
// anywhere.
//
// Each case runs in a child with a mount namespace of its own, where it
// mounts what the case needs over /proc, then drops its capabilities (so
// that the root's missing search permission applies) and opens "/".

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;
using capfs::Scope;

// What is put over /proc before the call, and what the call must give.
struct ReopenCase {
  std::string name;
  // Mounts in the child's own mount namespace, where `root_fd` is the Dir's
  // descriptor and `root_path` its host path; false (errno set) on failure.
  bool (*mount_over_proc)(int root_fd, const std::string& root_path);
  std::string want;  // "ok root" or "errno <NAME>"
};

// A tmpfs over /proc where self/fd/`fd` is a symlink to `target`.
bool FakeProcSelfFd(int fd, const std::string& target) {
  if (mount("none", "/proc", "tmpfs", 0, nullptr) != 0) return false;
  if (mkdir("/proc/self", 0755) != 0) return false;
  if (mkdir("/proc/self/fd", 0755) != 0) return false;
  std::string link = absl::StrCat("/proc/self/fd/", fd);
  return symlink(target.c_str(), link.c_str()) == 0;
}

void PrintTo(const ReopenCase& c, std::ostream* os) { *os << c.name; }

const ReopenCase kCases[] = {
    // The real procfs: the reopen works and reaches the root itself.
    {"RealProcfs", [](int, const std::string&) { return true; }, "ok root"},
    // Not procfs: a tmpfs whose self/fd/N is a plain symlink. Refused even
    // where it leads to the root itself (the identity check alone would let
    // that through), since a plain path is no descriptor's.
    {"TmpfsLinkToTheRoot",
     [](int root_fd, const std::string& root_path) {
       return FakeProcSelfFd(root_fd, root_path);
     },
     "errno EACCES"},
    {"TmpfsLinkElsewhere",
     [](int root_fd, const std::string&) {
       return FakeProcSelfFd(root_fd, "/");
     },
     "errno EACCES"},
    // procfs, but /proc/self/fd/N is not the root any more (another procfs
    // directory bound over it: fdinfo/N, a file): the identity check refuses.
    {"OtherProcDirOverSelfFd",
     [](int, const std::string&) {
       return mount("/proc/self/fdinfo", "/proc/self/fd", nullptr, MS_BIND,
                    nullptr) == 0;
     },
     "errno EACCES"},
};

class ProcReopenTest : public testing::TestWithParam<ReopenCase> {};

TEST_P(ProcReopenTest, ReopensOnlyTheRootThroughARealProcfs) {
  TempDir temp;
  const std::string root = temp.Join("root");
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  MakeFile(AT_FDCWD, root + "/file", "f");
  DirOptions options;
  options.resolver = Resolver::kUserspace;
  options.scope = Scope::kInRoot;
  absl::StatusOr<Dir> dir = Dir::Open(root, options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  struct stat want_st;
  ASSERT_EQ(fstat(dir->fd(), &want_st), 0);
  // May list and read, may not search (once capabilities are gone).
  ASSERT_EQ(chmod(root.c_str(), 0600), 0);

  const ReopenCase& c = GetParam();
  absl::StatusOr<std::string> got = RunInChild({}, [&]() -> std::string {
    if (unshare(CLONE_NEWNS) != 0) return absl::StrCat("unshare: ", errno);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return absl::StrCat("private mounts: ", strerror(errno));
    }
    if (!c.mount_over_proc(dir->fd(), root))
      return absl::StrCat("mount: ", strerror(errno));
    if (!DropAllCapabilities()) return "cannot drop capabilities";
    // The search permission is really gone: a lookup is refused.
    if (dir->Stat(".").status().ok()) return "the root is searchable";
    absl::StatusOr<capfs::Fd> f = dir->OpenAt("/", O_RDONLY);
    if (!f.ok()) {
      const char* name = strerrorname_np(capfs::ErrnoOf(f.status()));
      return absl::StrCat("errno ", name ? name : "none");
    }
    struct stat st;
    if (fstat(f->get(), &st) != 0) return "fstat failed";
    return st.st_dev == want_st.st_dev && st.st_ino == want_st.st_ino
               ? "ok root"
               : "ok something else";
  });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, c.want);
}

INSTANTIATE_TEST_SUITE_P(Mounts, ProcReopenTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<ReopenCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace capfs_test

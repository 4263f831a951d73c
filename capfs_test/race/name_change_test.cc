// The userspace resolver when a name changes between two of its lookups,
// made deterministic: this binary interposes readlinkat(2), and a case arms
// it to exchange two names (renameat2 RENAME_EXCHANGE) just before the
// resolver reads a name it has just seen as a symlink. The race tests meet
// this window by chance; here every case meets it once, exactly.
//
// The answer must be one that some state of the tree gives (before or after
// the exchange), never the ELOOP or ENOTDIR that the resolver once returned
// there.

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

// What the interposed readlinkat does before reading `name`: exchange `a`
// and `b` in `dirfd`, once, or (with `flip_back`) every time, exchanging
// them back after each O_PATH open of `name` too, so that every open sees
// the first state and every readlinkat the second.
struct Exchange {
  bool armed = false;
  std::string name;
  int dirfd = -1;
  std::string a;
  std::string b;
  bool flip_back = false;
  int fired = 0;
};
Exchange g_exchange;  // the tests are single-threaded

void DoExchange(const Exchange& x) {
  if (renameat2(x.dirfd, x.a.c_str(), x.dirfd, x.b.c_str(), RENAME_EXCHANGE) !=
      0) {
    perror("exchange");
    abort();
  }
}

}  // namespace
}  // namespace capfs_test

// Interposes the C library's readlinkat and openat for capfs's syscall
// wrappers.
extern "C" ssize_t readlinkat(int dirfd, const char* path, char* buf,
                              size_t size) {
  capfs_test::Exchange& x = capfs_test::g_exchange;
  if (x.armed && x.name == path) {
    x.armed = x.flip_back;
    ++x.fired;
    capfs_test::DoExchange(x);
  }
  return syscall(SYS_readlinkat, dirfd, path, buf, size);
}

extern "C" int openat(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  int fd = static_cast<int>(syscall(SYS_openat, dirfd, path, flags, mode));
  capfs_test::Exchange& x = capfs_test::g_exchange;
  if (x.armed && x.flip_back && x.name == path && (flags & O_PATH)) {
    capfs_test::DoExchange(x);
  }
  return fd;
}

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;

std::string Errno(const absl::Status& s) {
  const char* name = strerrorname_np(capfs::ErrnoOf(s));
  return absl::StrCat("errno ", name != nullptr ? name : "?");
}

std::string Read(const absl::StatusOr<capfs::Fd>& fd) {
  if (!fd.ok()) return Errno(fd.status());
  char buf[64];
  ssize_t n = read(fd->get(), buf, sizeof(buf));
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

class NameChangeTest : public testing::Test {
 protected:
  void SetUp() override {
    root_path_ = temp_.Join("root");
    MakeDir(AT_FDCWD, root_path_);
    root_ = open(root_path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(root_ >= 0, "open root");
    DirOptions options;
    options.resolver = Resolver::kUserspace;
    absl::StatusOr<Dir> d = Dir::Open(root_path_, options);
    CheckOrDie(d.ok(), "Dir::Open");
    dir_.emplace_back(*std::move(d));
  }
  void TearDown() override {
    g_exchange = Exchange();
    close(root_);
  }

  // Arms the exchange of `a` and `b` in `at` (relative to the root) before
  // the next readlinkat of `name`.
  void Arm(const std::string& name, const std::string& at, const std::string& a,
           const std::string& b, bool flip_back = false) {
    int fd = at.empty()
                 ? root_
                 : openat(root_, at.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(fd >= 0, "open " + at);
    if (fd != root_) held_.push_back(fd);
    g_exchange = Exchange{true, name, fd, a, b, flip_back, 0};
  }
  const Dir& dir() const { return dir_.front(); }

  TempDir temp_;
  std::string root_path_;
  int root_ = -1;
  std::vector<Dir> dir_;
  std::vector<int> held_;

  ~NameChangeTest() override {
    for (int fd : held_) close(fd);
  }
};

// An intermediate component: "d" is a symlink to "linked" when the walk
// looks, a directory when it reads it.
TEST_F(NameChangeTest, SymlinkOnThePathBecomesADirectory) {
  MakeDir(root_, "linked");
  MakeFile(root_, "linked/file", "via the link");
  MakeSymlink(root_, "linked", "d");
  MakeDir(root_, "s");
  MakeFile(root_, "s/file", "the directory");
  Arm("d", "", "d", "s");
  std::string got = Read(dir().OpenAt("d/file", O_RDONLY));
  EXPECT_EQ(g_exchange.fired, 1) << "readlinkat was not interposed";
  EXPECT_EQ(got, "the directory");
}

// The last component opened: "f" is a symlink when the open looks, a file
// when the walk reads it.
TEST_F(NameChangeTest, SymlinkToOpenBecomesAFile) {
  MakeDir(root_, "d");
  MakeFile(root_, "d/target", "via the link");
  MakeSymlink(root_, "target", "d/f");
  MakeFile(root_, "d/g", "the file");
  Arm("f", "d", "f", "g");
  std::string got = Read(dir().OpenAt("d/f", O_RDONLY));
  EXPECT_EQ(g_exchange.fired, 1) << "readlinkat was not interposed";
  EXPECT_EQ(got, "the file");
}

// The last component stat'ed: "f" is a symlink when fstatat looks, a file
// when the walk reads it; the answer is that file.
TEST_F(NameChangeTest, SymlinkToStatBecomesAFile) {
  MakeDir(root_, "d");
  MakeFile(root_, "d/target", "via the link");
  MakeSymlink(root_, "target", "d/f");
  MakeFile(root_, "d/g", "the file");
  struct stat g;
  ASSERT_EQ(fstatat(root_, "d/g", &g, AT_SYMLINK_NOFOLLOW), 0);
  Arm("f", "d", "f", "g");
  absl::StatusOr<capfs::FileStat> st = dir().Stat("d/f");
  EXPECT_EQ(g_exchange.fired, 1) << "readlinkat was not interposed";
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->ino, g.st_ino);
}

// A symlink that becomes another symlink is simply followed: the walk acts
// on what it reads.
TEST_F(NameChangeTest, SymlinkBecomesAnotherSymlink) {
  MakeDir(root_, "one");
  MakeFile(root_, "one/file", "one");
  MakeDir(root_, "two");
  MakeFile(root_, "two/file", "two");
  MakeSymlink(root_, "one", "d");
  MakeSymlink(root_, "two", "s");
  Arm("d", "", "d", "s");
  std::string got = Read(dir().OpenAt("d/file", O_RDONLY));
  EXPECT_EQ(g_exchange.fired, 1) << "readlinkat was not interposed";
  EXPECT_EQ(got, "two");
}

// A last component that changes under every attempt: the open is tried
// again on each change, then fails with EAGAIN (as openat2 does when renames
// keep racing it), neither looping forever nor claiming ELOOP.
TEST_F(NameChangeTest, NameThatKeepsChangingIsEagain) {
  MakeDir(root_, "d");
  MakeFile(root_, "d/target", "via the link");
  MakeSymlink(root_, "target", "d/f");
  MakeFile(root_, "d/g", "the file");
  Arm("f", "d", "f", "g", /*flip_back=*/true);
  absl::StatusOr<capfs::Fd> fd = dir().OpenAt("d/f", O_RDONLY);
  g_exchange.armed = false;
  EXPECT_EQ(Errno(fd.status()), "errno EAGAIN");
  EXPECT_GT(g_exchange.fired, 60);
}

// A regular file on the path stays ENOTDIR, after the one extra lookup.
TEST_F(NameChangeTest, AFileOnThePathIsStillNotADirectory) {
  MakeFile(root_, "f", "file");
  absl::StatusOr<capfs::Fd> fd = dir().OpenAt("f/x", O_RDONLY);
  EXPECT_EQ(Errno(fd.status()), "errno ENOTDIR");
}

}  // namespace
}  // namespace capfs_test

// Dir::ReadDir on directories larger than one getdents64 batch, and on the
// edge cases of its batching (empty, one entry), against readdir(3); and the
// kind it reports for every kind of file, against lstat(2).

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirEntry;
using capfs::DirOptions;
using capfs::FileKind;
using capfs::Resolver;

// One name per kind, so that no two kinds compare equal.
std::string KindWord(FileKind kind) {
  switch (kind) {
    case FileKind::kUnknown:
      return "unknown";
    case FileKind::kRegular:
      return "file";
    case FileKind::kDirectory:
      return "dir";
    case FileKind::kSymlink:
      return "symlink";
    case FileKind::kBlockDevice:
      return "block";
    case FileKind::kCharDevice:
      return "char";
    case FileKind::kFifo:
      return "fifo";
    case FileKind::kSocket:
      return "socket";
  }
  return "?";
}

std::string DtypeWord(unsigned char type) {
  switch (type) {
    case DT_REG:
      return "file";
    case DT_DIR:
      return "dir";
    case DT_LNK:
      return "symlink";
    case DT_BLK:
      return "block";
    case DT_CHR:
      return "char";
    case DT_FIFO:
      return "fifo";
    case DT_SOCK:
      return "socket";
  }
  return "unknown";
}

// "name:kind" for every entry of the host directory `path`, sorted.
std::vector<std::string> HostListing(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  CheckOrDie(d != nullptr, "opendir");
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    out.push_back(absl::StrCat(name, ":", DtypeWord(e->d_type)));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> CapfsListing(const std::vector<DirEntry>& entries) {
  std::vector<std::string> out;
  for (const DirEntry& e : entries) {
    out.push_back(absl::StrCat(e.name, ":", KindWord(e.kind)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The kind lstat(2) gives, in the same words.
std::string LstatWord(int dirfd, const std::string& name) {
  struct stat st;
  CheckOrDie(fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0,
             "fstatat " + name);
  return KindWord(capfs::FileKindFromMode(st.st_mode));
}

// Binds a Unix socket at `name` in the directory `dirfd`. A child does it
// from inside the directory, so that the host path's length (a sockaddr_un
// holds 108 bytes) does not matter; the socket stays when the child exits.
void MakeSocket(int dirfd, const std::string& name) {
  absl::StatusOr<std::string> out = RunInChild({}, [&]() -> std::string {
    if (fchdir(dirfd) != 0) return "fchdir failed";
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return "socket failed";
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    CheckOrDie(name.size() < sizeof(addr.sun_path), "socket name too long");
    name.copy(addr.sun_path, name.size());
    int r = bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
    close(s);
    return r == 0 ? "" : "bind failed";
  });
  CheckOrDie(out.ok() && out->empty(), "bind a socket at " + name);
}

class ReadDirTest : public testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    DirOptions options;
    options.resolver = GetParam();
    absl::StatusOr<Dir> d = Dir::Open(tmp_.path(), options);
    ASSERT_TRUE(d.ok()) << d.status();
    dir_ = std::make_unique<Dir>(*std::move(d));
    root_ = open(tmp_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_, 0);
  }
  void TearDown() override { close(root_); }

  TempDir tmp_;
  std::unique_ptr<Dir> dir_;
  int root_ = -1;
};

TEST_P(ReadDirTest, EmptyDirectory) {
  MakeDir(root_, "empty");
  absl::StatusOr<std::vector<DirEntry>> e = dir_->ReadDir("empty");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->empty());
}

TEST_P(ReadDirTest, OneEntry) {
  MakeDir(root_, "one");
  MakeFile(root_, "one/f", "");
  absl::StatusOr<std::vector<DirEntry>> e = dir_->ReadDir("one");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(CapfsListing(*e), HostListing(tmp_.Join("one")));
}

// Long names make a few thousand entries span several 64 KiB batches.
TEST_P(ReadDirTest, ManyBatches) {
  MakeDir(root_, "big");
  const std::string pad(100, 'x');
  for (int i = 0; i < 3000; ++i) {
    std::string name = absl::StrCat("big/", pad, i);
    switch (i % 3) {
      case 0:
        MakeFile(root_, name, "");
        break;
      case 1:
        MakeDir(root_, name);
        break;
      default:
        MakeSymlink(root_, "nowhere", name);
        break;
    }
  }
  absl::StatusOr<std::vector<DirEntry>> e = dir_->ReadDir("big/");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->size(), 3000u);
  EXPECT_EQ(CapfsListing(*e), HostListing(tmp_.Join("big")));
}

// Each kind of file a directory can hold, made under its own name.
struct KindCase {
  const char* name;
  FileKind kind;
  void (*make)(int dirfd, const std::string& name);
};

const KindCase kKindCases[] = {
    {"regular", FileKind::kRegular,
     [](int fd, const std::string& n) { MakeFile(fd, n, "x"); }},
    {"empty_regular", FileKind::kRegular,
     [](int fd, const std::string& n) { MakeFile(fd, n, ""); }},
    {"directory", FileKind::kDirectory,
     [](int fd, const std::string& n) { MakeDir(fd, n); }},
    {"symlink", FileKind::kSymlink,
     [](int fd, const std::string& n) { MakeSymlink(fd, "regular", n); }},
    {"dangling_symlink", FileKind::kSymlink,
     [](int fd, const std::string& n) { MakeSymlink(fd, "missing", n); }},
    {"symlink_to_dir", FileKind::kSymlink,
     [](int fd, const std::string& n) { MakeSymlink(fd, "directory", n); }},
    {"fifo", FileKind::kFifo,
     [](int fd, const std::string& n) {
       CheckOrDie(mkfifoat(fd, n.c_str(), 0600) == 0, "mkfifoat");
     }},
    {"socket", FileKind::kSocket, MakeSocket},
};

// Every kind in one directory: ReadDir names each with its own kind (not
// following symlinks), as readdir(3)'s d_type and lstat(2) do.
TEST_P(ReadDirTest, TellsEveryKindApart) {
  MakeDir(root_, "kinds");
  int kinds = openat(root_, "kinds", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(kinds, 0);
  for (const KindCase& c : kKindCases) c.make(kinds, c.name);
  absl::StatusOr<std::vector<DirEntry>> e = dir_->ReadDir("kinds");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->size(), std::size(kKindCases));
  for (const KindCase& c : kKindCases) {
    SCOPED_TRACE(c.name);
    auto it = std::find_if(e->begin(), e->end(),
                           [&](const DirEntry& d) { return d.name == c.name; });
    ASSERT_NE(it, e->end());
    EXPECT_EQ(KindWord(it->kind), KindWord(c.kind));
    EXPECT_EQ(KindWord(it->kind), LstatWord(kinds, c.name));
  }
  EXPECT_EQ(CapfsListing(*e), HostListing(tmp_.Join("kinds")));
  close(kinds);
}

// A character device: mknod needs a privilege that the test's sandbox may
// not grant, so the one every system has, /dev/null, read through a Dir on
// /dev.
TEST_P(ReadDirTest, TellsACharDevice) {
  DirOptions options;
  options.resolver = GetParam();
  absl::StatusOr<Dir> dev = Dir::Open("/dev", options);
  ASSERT_TRUE(dev.ok()) << dev.status();
  absl::StatusOr<std::vector<DirEntry>> e = dev->ReadDir(".");
  ASSERT_TRUE(e.ok()) << e.status();
  auto null = std::find_if(e->begin(), e->end(),
                           [](const DirEntry& d) { return d.name == "null"; });
  ASSERT_NE(null, e->end());
  EXPECT_EQ(KindWord(null->kind), "char");
  int devfd = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(devfd, 0);
  EXPECT_EQ(LstatWord(devfd, "null"), "char");
  close(devfd);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, ReadDirTest,
                         testing::Values(Resolver::kKernel,
                                         Resolver::kUserspace),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           return info.param == Resolver::kKernel
                                      ? std::string("Kernel")
                                      : std::string("Userspace");
                         });

}  // namespace
}  // namespace capfs_test

// Dir::ReadDir on directories larger than one getdents64 batch, and on the
// edge cases of its batching (empty, one entry), against readdir(3).

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirEntry;
using capfs::DirOptions;
using capfs::FileKind;
using capfs::Resolver;

// "name:kind" for every entry of the host directory `path`, sorted.
std::vector<std::string> HostListing(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  CheckOrDie(d != nullptr, "opendir");
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    out.push_back(absl::StrCat(name, ":",
                               e->d_type == DT_DIR   ? "dir"
                               : e->d_type == DT_LNK ? "symlink"
                                                     : "file"));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> CapfsListing(const std::vector<DirEntry>& entries) {
  std::vector<std::string> out;
  for (const DirEntry& e : entries) {
    out.push_back(absl::StrCat(e.name, ":",
                               e.kind == FileKind::kDirectory ? "dir"
                               : e.kind == FileKind::kSymlink ? "symlink"
                                                              : "file"));
  }
  std::sort(out.begin(), out.end());
  return out;
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

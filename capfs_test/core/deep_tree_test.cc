// Trees deeper than the descriptor limit: Walk and RemoveAll hold a bounded
// window of descriptors (capfs/internal/tree_walk.h), so a 10,000-level tree
// is walked and removed with RLIMIT_NOFILE at 256. A descriptor limit set
// for the test is put back afterwards.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs/internal/tree_walk.h"
#include "capfs_test/testing/fd_limit.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace {

using capfs_test::FdLimit;

constexpr int kDepth = 10000;
constexpr rlim_t kFdLimit = 256;

// Builds d/d/d/... `depth` levels below `top` (through descriptors: the path
// is far longer than PATH_MAX), with a file "f" at the bottom.
void BuildDeep(const std::string& top, int depth) {
  int fd = open(top.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < depth; ++i) {
    ASSERT_EQ(mkdirat(fd, "d", 0755), 0) << i;
    int next = openat(fd, "d", O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(next, 0);
    close(fd);
    fd = next;
  }
  int f = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(f, 0);
  close(f);
  close(fd);
}

class DeepTreeTest : public testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(temp_.Join("root").c_str(), 0755), 0);
    BuildDeep(temp_.Join("root"), kDepth);
    DirOptions options;
    options.resolver = GetParam();
    absl::StatusOr<Dir> d = Dir::Open(temp_.Join("root"), options);
    ASSERT_TRUE(d.ok()) << d.status();
    root_ = std::make_unique<Dir>(*std::move(d));
  }
  void TearDown() override {
    // Whatever a failed test left, removed without the lowered limit.
    if (root_) (void)root_->RemoveAll("d");
  }

  capfs_test::TempDir temp_;
  std::unique_ptr<Dir> root_;
};

TEST_P(DeepTreeTest, WalkVisitsEveryLevelWithFewDescriptors) {
  FdLimit limit(kFdLimit);
  int dirs = 0;
  int files = 0;
  size_t deepest = 0;
  absl::Status s = root_->Walk(
      ".",
      [&](absl::string_view rel, const FileStat& st) -> absl::StatusOr<bool> {
        if (st.kind == FileKind::kDirectory) ++dirs;
        if (st.kind == FileKind::kRegular) ++files;
        deepest = std::max(deepest, rel.size());
        return true;
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(dirs, kDepth + 1);  // "." and every level
  EXPECT_EQ(files, 1);
  EXPECT_EQ(deepest, static_cast<size_t>(2 * kDepth + 1));  // "d/d/.../f"
}

TEST_P(DeepTreeTest, RemoveAllRemovesEveryLevelWithFewDescriptors) {
  {
    FdLimit limit(kFdLimit);
    absl::Status s = root_->RemoveAll("d");
    ASSERT_TRUE(s.ok()) << s;
  }
  absl::StatusOr<std::vector<DirEntry>> left = root_->ReadDir(".");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_P(DeepTreeTest, RemoveAllOfDotEmptiesAndKeepsTheDir) {
  {
    FdLimit limit(kFdLimit);
    absl::Status s = root_->RemoveAll(".");
    ASSERT_TRUE(s.ok()) << s;
  }
  absl::StatusOr<FileStat> st = root_->Stat(".");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->kind, FileKind::kDirectory);
  absl::StatusOr<std::vector<DirEntry>> left = root_->ReadDir(".");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

// The window's reopen through "..": with a window of 2 levels, the walk
// reopens ancestors on its way back up. The visitor, at the bottom, moves a
// directory of the walk out to a sibling of the start: ".." of the moved
// directory is then outside, and the recorded identity must keep the walk
// from listing it (it reopens the ancestor from the start by name instead),
// or stop it with EAGAIN when that name is gone too.
class WindowReopenTest : public testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"start", "start/a", "start/a/b", "start/a/b/c",
                          "start/a/b/c/d", "start/a/b/c/d/e", "outside"}) {
      ASSERT_EQ(mkdir(temp_.Join(d).c_str(), 0755), 0) << d;
    }
    int f = open(temp_.Join("outside/out_marker").c_str(),
                 O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(f, 0);
    close(f);
  }

  // Walks start/ with a window of 2, running `at_bottom` once at "a/b/c/d/e";
  // returns WalkTree's result and the paths visited.
  internal::ResolveResult WalkWith(const std::function<void()>& at_bottom,
                                   std::vector<std::string>* visited) {
    Fd start(
        open(temp_.Join("start").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(start.valid());
    return internal::WalkTree(
        std::move(start),
        [&](absl::string_view rel, const struct stat&, bool*) {
          visited->push_back(std::string(rel));
          if (rel == "a/b/c/d/e") at_bottom();
          return true;
        },
        /*window=*/2);
  }

  capfs_test::TempDir temp_;
};

TEST_F(WindowReopenTest, AncestorMovedOutIsReopenedFromTheStart) {
  std::vector<std::string> visited;
  internal::ResolveResult r = WalkWith(
      [&] {
        ASSERT_EQ(rename(temp_.Join("start/a/b").c_str(),
                         temp_.Join("outside/b").c_str()),
                  0);
      },
      &visited);
  EXPECT_TRUE(r.ok());
  for (const std::string& v : visited) {
    EXPECT_EQ(v.find("out_marker"), std::string::npos) << "listed outside";
  }
}

TEST_F(WindowReopenTest, AncestorGoneStopsWithEagain) {
  std::vector<std::string> visited;
  internal::ResolveResult r = WalkWith(
      [&] {
        ASSERT_EQ(rename(temp_.Join("start/a/b").c_str(),
                         temp_.Join("outside/b").c_str()),
                  0);
        ASSERT_EQ(rename(temp_.Join("start/a").c_str(),
                         temp_.Join("start/a2").c_str()),
                  0);
      },
      &visited);
  EXPECT_TRUE(r.IsErrno(EAGAIN));
  for (const std::string& v : visited) {
    EXPECT_EQ(v.find("out_marker"), std::string::npos) << "listed outside";
  }
}

INSTANTIATE_TEST_SUITE_P(Resolvers, DeepTreeTest,
                         testing::Values(Resolver::kKernel,
                                         Resolver::kUserspace),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           return info.param == Resolver::kKernel ? "Kernel"
                                                                  : "Userspace";
                         });

}  // namespace
}  // namespace capfs

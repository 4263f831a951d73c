// Trees deeper than the descriptor limit: Walk and RemoveAll hold a bounded
// window of descriptors (capfs/internal/tree_walk.h), so a 10,000-level tree
// is walked and removed with RLIMIT_NOFILE at 256, and MkdirAll makes a
// path as deep as PATH_MAX allows with the same limit. A descriptor limit
// set for the test is put back afterwards.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
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

// A Dir on an empty directory "root" with the resolver under test.
class RootDirTest : public testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(temp_.Join("root").c_str(), 0755), 0);
    DirOptions options;
    options.resolver = GetParam();
    absl::StatusOr<Dir> d = Dir::Open(temp_.Join("root"), options);
    ASSERT_TRUE(d.ok()) << d.status();
    root_ = std::make_unique<Dir>(*std::move(d));
  }

  capfs_test::TempDir temp_;
  std::unique_ptr<Dir> root_;
};

class DeepTreeTest : public RootDirTest {
 protected:
  void SetUp() override {
    RootDirTest::SetUp();
    if (HasFatalFailure()) return;
    BuildDeep(temp_.Join("root"), kDepth);
  }
  void TearDown() override {
    // Whatever a failed test left, removed without the lowered limit.
    if (root_) (void)root_->RemoveAll("d");
  }
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

// MkdirAll of deep paths, from an empty Dir (or one whose first levels
// exist), with the descriptor limit at 256: every level is made, with the
// mode asked for, and nothing else. "..", "." and repeated slashes on the
// way are resolved as the path says.
struct MkdirAllCase {
  const char* name;
  int existing;      // levels of "x/x/..." there before
  std::string path;  // what MkdirAll is given
  int levels;        // levels of "x/x/..." there after
  std::string also;  // another directory that must exist after, or ""
};

std::string Levels(int n) {
  std::string p;
  for (int i = 0; i < n; ++i) absl::StrAppend(&p, i == 0 ? "" : "/", "x");
  return p;
}

class DeepMkdirAllTest : public RootDirTest {
 protected:
  void TearDown() override {
    if (root_) (void)root_->RemoveAll("x");
  }

  // The directories named "x" beneath the root, counted by Walk.
  int ChainDepth() {
    int dirs = 0;
    absl::Status s = root_->Walk(
        ".",
        [&](absl::string_view rel, const FileStat& st) -> absl::StatusOr<bool> {
          if (st.kind == FileKind::kDirectory &&
              (rel == "x" || absl::EndsWith(rel, "/x"))) {
            ++dirs;
          }
          return true;
        });
    EXPECT_TRUE(s.ok()) << s;
    return dirs;
  }
};

TEST_P(DeepMkdirAllTest, MakesEveryLevelWithFewDescriptors) {
  // 2,000 levels: 3,999 bytes, within PATH_MAX.
  const std::vector<MkdirAllCase> cases = {
      {"from_empty", 0, Levels(2000), 2000, ""},
      {"half_there", 1000, Levels(2000), 2000, ""},
      {"all_there", 2000, Levels(2000), 2000, ""},
      {"trailing_slash", 0, Levels(1500) + "/", 1500, ""},
      {"doubled_slashes", 0, absl::StrReplaceAll(Levels(1000), {{"/", "//"}}),
       1000, ""},
      // ".." after new levels: back to the level above, then new names
      // there (a sibling chain of "y").
      {"dotdot_after_new", 0, Levels(1000) + "/../y/y/y", 1000,
       Levels(999) + "/y/y/y"},
      {"dot_after_new", 0, Levels(500) + "/./x/x", 502, ""},
  };
  for (const MkdirAllCase& c : cases) {
    SCOPED_TRACE(c.name);
    if (c.existing > 0) {
      ASSERT_TRUE(root_->MkdirAll(Levels(c.existing), 0755).ok());
    }
    {
      FdLimit limit(kFdLimit);
      absl::Status s = root_->MkdirAll(c.path, 0750);
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_EQ(ChainDepth(), c.levels);
    absl::StatusOr<FileStat> bottom = root_->Stat(Levels(c.levels));
    ASSERT_TRUE(bottom.ok()) << bottom.status();
    EXPECT_EQ(bottom->kind, FileKind::kDirectory);
    if (c.existing < c.levels) {
      // Made here: the mode asked for (the test's umask is at most 022).
      EXPECT_EQ(bottom->perm & 0700, 0700u);
      EXPECT_EQ(bottom->perm & 0007, 0u);
    }
    if (!c.also.empty()) {
      absl::StatusOr<FileStat> also = root_->Stat(c.also);
      ASSERT_TRUE(also.ok()) << also.status();
      EXPECT_EQ(also->kind, FileKind::kDirectory);
    }
    ASSERT_TRUE(root_->RemoveAll("x").ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Resolvers, DeepMkdirAllTest,
                         testing::Values(Resolver::kKernel,
                                         Resolver::kUserspace),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           return info.param == Resolver::kKernel ? "Kernel"
                                                                  : "Userspace";
                         });

INSTANTIATE_TEST_SUITE_P(Resolvers, DeepTreeTest,
                         testing::Values(Resolver::kKernel,
                                         Resolver::kUserspace),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           return info.param == Resolver::kKernel ? "Kernel"
                                                                  : "Userspace";
                         });

}  // namespace
}  // namespace capfs

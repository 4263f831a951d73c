// Awaitable Dir operations against a temporary directory.

#include "capfs/runtime/async_dir.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "capfs/dir.h"
#include "capfs/file.h"
#include "capfs/status.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class AsyncDirTest : public BackendTest {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    std::string templ = absl::StrCat(base ? base : "/tmp", "/async_dir_XXXXXX");
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    path_ = templ;
    absl::StatusOr<Dir> dir = Dir::Open(path_);
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
  }
  void TearDown() override {
    dir_.reset();
    std::string cmd = absl::StrCat("rm -rf '", path_, "'");
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  const Dir& dir() { return *dir_; }

  std::string path_;
  std::optional<Dir> dir_;
};
CAPFS_INSTANTIATE_FOR_BACKENDS(AsyncDirTest);

TEST_P(AsyncDirTest, EveryOperationWorksThroughTheWorkers) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    // Each step names the operation; the first failure is the result.
    if (absl::Status r = co_await Mkdir(dir(), "sub"); !r.ok()) co_return r;
    absl::StatusOr<Fd> f =
        co_await OpenAt(dir(), "sub/file", O_WRONLY | O_CREAT, 0640);
    if (!f.ok()) co_return f.status();
    // The write goes to a worker too (a plain capfs::WriteAll would block
    // the loop).
    if (absl::Status r = co_await RunBlocking(
            [&] { return capfs::WriteAll(*f, "12345"); });
        !r.ok()) {
      co_return r;
    }
    absl::StatusOr<FileStat> st = co_await Stat(dir(), "sub/file");
    if (!st.ok()) co_return st.status();
    EXPECT_EQ(st->kind, FileKind::kRegular);
    EXPECT_EQ(st->size, 5u);
    EXPECT_EQ(st->perm, 0640u);
    if (absl::Status r = co_await Symlink(dir(), "sub/file", "link"); !r.ok()) {
      co_return r;
    }
    absl::StatusOr<std::string> target = co_await ReadLink(dir(), "link");
    if (!target.ok()) co_return target.status();
    EXPECT_EQ(*target, "sub/file");
    absl::StatusOr<FileStat> lst = co_await Lstat(dir(), "link");
    if (!lst.ok()) co_return lst.status();
    EXPECT_EQ(lst->kind, FileKind::kSymlink);
    absl::StatusOr<Dir> sub = co_await OpenDir(dir(), "sub");
    if (!sub.ok()) co_return sub.status();
    if (absl::Status r = co_await Rename(*sub, "file", dir(), "moved");
        !r.ok()) {
      co_return r;
    }
    absl::StatusOr<std::vector<DirEntry>> entries = co_await ReadDir(dir(), ".");
    if (!entries.ok()) co_return entries.status();
    std::vector<std::string> names;
    for (const DirEntry& e : *entries) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"link", "moved", "sub"}));
    if (absl::Status r = co_await Unlink(dir(), "link"); !r.ok()) co_return r;
    if (absl::Status r = co_await Unlink(dir(), "moved"); !r.ok()) co_return r;
    if (absl::Status r = co_await Rmdir(dir(), "sub"); !r.ok()) co_return r;
    absl::StatusOr<std::vector<DirEntry>> empty = co_await ReadDir(dir(), ".");
    if (!empty.ok()) co_return empty.status();
    EXPECT_TRUE(empty->empty());
    co_return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

// Confinement and errors are the Dir's own, unchanged by the detour.
TEST_P(AsyncDirTest, ErrorsAndRefusalsAreTheDirs) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    absl::StatusOr<Fd> missing = co_await OpenAt(dir(), "nope", O_RDONLY);
    EXPECT_EQ(ErrnoOf(missing.status()), ENOENT) << missing.status();
    absl::StatusOr<Fd> escape = co_await OpenAt(dir(), "../x", O_RDONLY);
    EXPECT_EQ(ViolationOf(escape.status()), Violation::kEscape)
        << escape.status();
    absl::Status twice = co_await Mkdir(dir(), "d");
    EXPECT_TRUE(twice.ok()) << twice;
    twice = co_await Mkdir(dir(), "d");
    EXPECT_EQ(ErrnoOf(twice), EEXIST) << twice;
    co_return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(AsyncDirTest, CancelledBeforeStartingDoesNothing) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Cancel();
      co_return co_await Mkdir(dir(), "never");
    });
  });
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_NE(access(absl::StrCat(path_, "/never").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

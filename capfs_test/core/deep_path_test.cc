// Paths deeper than the descriptor limit, through the userspace resolver:
// it keeps a window of descriptors (capfs/internal/userspace_resolver.h), so
// a path of 1,500 levels resolves with RLIMIT_NOFILE at 256, to the answer
// openat2 gives, and a ".." back past the window reopens the ancestor and
// checks its identity. The descriptor limit set for a test is put back
// afterwards.

#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <ostream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs/internal/userspace_resolver.h"
#include "capfs_test/testing/fd_limit.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace {

using capfs_test::CheckOrDie;
using capfs_test::FdLimit;

constexpr rlim_t kFdLimit = 256;

// `unit` repeated `n` times.
std::string Repeat(absl::string_view unit, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) absl::StrAppend(&s, unit);
  return s;
}
std::string Down(int n) { return Repeat("d/", n); }
std::string Up(int n) { return Repeat("../", n); }

// Builds a chain d/d/d/... `depth` levels below `top`, with a file "f" at
// every level (the top included) holding `tag` and the level's depth
// ("a0", "a1", ...), and the symlink `link_name` -> `link_target` at level
// `link_depth` (none when `link_name` is empty).
void BuildChain(const std::string& top, int depth, absl::string_view tag,
                int link_depth = -1, const std::string& link_name = "",
                const std::string& link_target = "") {
  int fd = open(top.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  CheckOrDie(fd >= 0, top);
  for (int i = 0;; ++i) {
    capfs_test::MakeFile(fd, "f", absl::StrCat(tag, i));
    if (i == link_depth) capfs_test::MakeSymlink(fd, link_target, link_name);
    if (i == depth) break;
    capfs_test::MakeDir(fd, "d");
    int next = openat(fd, "d", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(next >= 0, "open d");
    close(fd);
    fd = next;
  }
  close(fd);
}

// What a call answered, as one comparable string: the file's content,
// "made" for a directory made, "escape", or the errno's name.
std::string Outcome(const absl::Status& s) {
  if (ViolationOf(s) == Violation::kEscape) return "escape";
  return absl::StrCat("errno ", ErrnoOf(s));
}
std::string ReadOutcome(const Dir& dir, absl::string_view path) {
  absl::StatusOr<std::string> r = dir.ReadFile(path);
  return r.ok() ? *r : Outcome(r.status());
}

Dir OpenRoot(const std::string& path, Resolver resolver, Scope scope) {
  DirOptions options;
  options.resolver = resolver;
  options.scope = scope;
  absl::StatusOr<Dir> d = Dir::Open(path, options);
  CheckOrDie(d.ok(), path);
  return *std::move(d);
}

// ---------------------------------------------------------------------------
// Deep paths: each case resolved with the userspace resolver under the
// lowered limit, expected to give the fixed answer and the kernel's.

constexpr int kChainDepth = 1500;

enum class Op { kReadFile, kMkdir };

struct DeepCase {
  const char* name;
  Op op;
  std::string path;
  std::string beneath;  // the expected outcome in each scope
  std::string in_root;
};

const DeepCase kDeepCases[] = {
    {"FileAtTheBottom", Op::kReadFile, Down(1500) + "f", "1500", "1500"},
    {"DownUpPastTheWindowDown", Op::kReadFile,
     Down(1000) + Up(300) + Down(100) + "f", "800", "800"},
    {"UpToTheRootPastTheWindow", Op::kReadFile, Down(200) + Up(200) + "f", "0",
     "0"},
    {"UpPastTheRootClampsInRoot", Op::kReadFile, Down(100) + Up(101) + "d/f",
     "escape", "1"},
    {"DeepUpPastTheRootClampsInRoot", Op::kReadFile, Down(600) + Up(601) + "f",
     "escape", "0"},
    // "up" at level 1200 -> ../ 100 times.
    {"SymlinkUpPastTheWindow", Op::kReadFile, Down(1200) + "up/f", "1100",
     "1100"},
    // "abs" at level 1200 -> /d/d/f.
    {"AbsoluteSymlinkDeep", Op::kReadFile, Down(1200) + "abs", "escape", "2"},
    {"MkdirAtTheBottom", Op::kMkdir, Down(1500) + "new", "made", "made"},
    {"MkdirAfterClimbingPastTheWindow", Op::kMkdir,
     Down(1000) + Up(300) + "new", "made", "made"},
};

void PrintTo(const DeepCase& c, std::ostream* os) { *os << c.name; }

class DeepPathTest
    : public testing::TestWithParam<std::tuple<DeepCase, Scope>> {
 protected:
  void SetUp() override {
    root_ = temp_.Join("root");
    CheckOrDie(mkdir(root_.c_str(), 0755) == 0, root_);
    BuildChain(root_, kChainDepth, "", 1200, "up", Up(100));
    // The second link at the same level, by its host path (2,400 bytes
    // below the root: within PATH_MAX).
    std::string at = absl::StrCat(root_, "/", Down(1200), "abs");
    CheckOrDie(symlink("/d/d/f", at.c_str()) == 0, at);
  }

  // What `c` gives with `resolver`, in the test's scope.
  std::string Run(const DeepCase& c, Resolver resolver, Scope scope) {
    Dir dir = OpenRoot(root_, resolver, scope);
    FdLimit limit(kFdLimit);
    if (c.op == Op::kReadFile) return ReadOutcome(dir, c.path);
    absl::Status s = dir.Mkdir(c.path, 0755);
    if (!s.ok()) return Outcome(s);
    // Made where the path says: the kernel resolver finds it, then it goes
    // (so that the other resolver can make it again).
    Dir check = OpenRoot(root_, Resolver::kKernel, scope);
    absl::StatusOr<FileStat> st = check.Lstat(c.path);
    if (!st.ok() || st->kind != FileKind::kDirectory) return "not made";
    if (!check.Rmdir(c.path).ok()) return "not removed";
    return "made";
  }

  capfs_test::TempDir temp_;
  std::string root_;
};

TEST_P(DeepPathTest, UserspaceResolvesWithinTheLimitAsTheKernelDoes) {
  const DeepCase& c = std::get<0>(GetParam());
  const Scope scope = std::get<1>(GetParam());
  ASSERT_LT(c.path.size(), kPathMax);
  const std::string& want = scope == Scope::kBeneath ? c.beneath : c.in_root;
  EXPECT_EQ(Run(c, Resolver::kUserspace, scope), want);
  EXPECT_EQ(Run(c, Resolver::kKernel, scope), want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DeepPathTest,
    testing::Combine(testing::ValuesIn(kDeepCases),
                     testing::Values(Scope::kBeneath, Scope::kInRoot)),
    [](const testing::TestParamInfo<std::tuple<DeepCase, Scope>>& info) {
      return absl::StrCat(
          std::get<0>(info.param).name,
          std::get<1>(info.param) == Scope::kBeneath ? "_Beneath" : "_InRoot");
    });

// ---------------------------------------------------------------------------
// A rename during the climb, injected at the reopen step: root/a is a chain
// of 100 levels ("a0".."a100"), outside/b another ("b0".."b100"), beside the
// root. The path goes down a/ to the bottom and climbs 80 levels, past the
// window, to a/d^20/f ("a20"). The hook exchanges a/d^30 with outside/b/d^30
// just before the reopen of a/d^29 (30 levels below the root) through ".."
// of a/d^30's directory, which is then outside/b/d^29, not the level the
// walk came down through. Following it would read outside/b/d^20/f ("b20"):
// outside.

constexpr int kRenameChain = 100;

enum class Exchanges { kOnce, kAtEveryReopen };

struct RenameCase {
  const char* name;
  Exchanges exchanges;
  std::string want;  // in both scopes
};

const RenameCase kRenameCases[] = {
    // The resolution starts again on the tree as it is now, and finds a20.
    {"ExchangedOnceIsResolvedAgain", Exchanges::kOnce, "a20"},
    // Every restart meets another exchange (back and forth): EAGAIN, never
    // b20.
    {"ExchangedAtEveryReopenIsEagain", Exchanges::kAtEveryReopen,
     absl::StrCat("errno ", EAGAIN)},
};

void PrintTo(const RenameCase& c, std::ostream* os) { *os << c.name; }

struct HookState {
  std::string from;  // the two directories to exchange
  std::string to;
  Exchanges exchanges;
  int calls = 0;  // reopens of a/d^29
};

void ExchangeHook(void* arg, size_t depth) {
  auto* h = static_cast<HookState*>(arg);
  if (depth != 30) return;  // a/d^29: "a" is 1, a/d is 2, ...
  ++h->calls;
  if (h->exchanges == Exchanges::kOnce && h->calls > 1) return;
  CheckOrDie(renameat2(AT_FDCWD, h->from.c_str(), AT_FDCWD, h->to.c_str(),
                       RENAME_EXCHANGE) == 0,
             "exchange");
}

class AncestorRenameTest
    : public testing::TestWithParam<std::tuple<RenameCase, Scope>> {
 protected:
  void SetUp() override {
    for (const char* d : {"root", "root/a", "outside", "outside/b"}) {
      std::string p = temp_.Join(d);
      CheckOrDie(mkdir(p.c_str(), 0755) == 0, p);
    }
    BuildChain(temp_.Join("root/a"), kRenameChain, "a");
    BuildChain(temp_.Join("outside/b"), kRenameChain, "b");
  }
  void TearDown() override {
    internal::SetAncestorReopenHookForTesting(nullptr, nullptr);
  }

  capfs_test::TempDir temp_;
};

TEST_P(AncestorRenameTest, MovedAncestorIsNeverFollowed) {
  const RenameCase& c = std::get<0>(GetParam());
  const Scope scope = std::get<1>(GetParam());
  const std::string path = "a/" + Down(kRenameChain) + Up(80) + "f";
  // Without the hook, the climb reopens levels past the window: the case
  // exercises the reopen, not the held descriptors.
  ASSERT_GT(kRenameChain - 80, 0);
  ASSERT_GT(80, static_cast<int>(internal::kResolveWindow));
  Dir dir = OpenRoot(temp_.Join("root"), Resolver::kUserspace, scope);
  ASSERT_EQ(ReadOutcome(dir, path), "a20");

  HookState hook;
  hook.from = temp_.Join("root/a/" + Down(30).substr(0, 59));  // a/d^30
  hook.to = temp_.Join("outside/b/" + Down(30).substr(0, 59));
  hook.exchanges = c.exchanges;
  internal::SetAncestorReopenHookForTesting(&ExchangeHook, &hook);
  std::string got = ReadOutcome(dir, path);
  internal::SetAncestorReopenHookForTesting(nullptr, nullptr);
  EXPECT_EQ(got, c.want);
  EXPECT_GT(hook.calls, 0);
  if (c.exchanges == Exchanges::kAtEveryReopen) {
    // One exchange per attempt: every restart was made.
    EXPECT_EQ(hook.calls, internal::kMaxAncestorRetries + 1);
  } else {
    EXPECT_EQ(hook.calls, 2);  // the attempt that met it, the one after
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AncestorRenameTest,
    testing::Combine(testing::ValuesIn(kRenameCases),
                     testing::Values(Scope::kBeneath, Scope::kInRoot)),
    [](const testing::TestParamInfo<std::tuple<RenameCase, Scope>>& info) {
      return absl::StrCat(
          std::get<0>(info.param).name,
          std::get<1>(info.param) == Scope::kBeneath ? "_Beneath" : "_InRoot");
    });

}  // namespace
}  // namespace capfs

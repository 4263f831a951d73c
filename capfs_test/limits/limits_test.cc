// Resource exhaustion and bad input: each gives a clean error (or exactly
// what the plain Linux call gives), no crash, no leaked descriptor (the
// per-test check of test_main), and changes nothing.
//
//  - Bad paths, for every operation, both resolvers and both scopes: 4096
//    components of "a/", 100,000 of "./", paths at PATH_MAX - 1, PATH_MAX
//    and PATH_MAX + 1 bytes, names at NAME_MAX - 1, NAME_MAX and
//    NAME_MAX + 1, invalid UTF-8 (bytes, not text, to the kernel), and NUL
//    bytes (kInvalidArgument before any syscall).
//  - Bad symlink targets: empty, PATH_MAX - 1 and PATH_MAX bytes, NUL.
//  - A tree 4096 levels deep, walked in one resolution through symlinks and
//    in several OpenDir hops.
//  - Descriptor exhaustion: RLIMIT_NOFILE lowered (in a child) so that the
//    userspace resolver, which holds one descriptor per level, runs out
//    mid-walk.

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/conformance/operations.h"
#include "capfs_test/conformance/standard_tree.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "capfs_test/testing/names.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;
using capfs::Scope;

std::string Repeat(absl::string_view s, int n) {
  std::string out;
  out.reserve(s.size() * n);
  for (int i = 0; i < n; ++i) out.append(s.data(), s.size());
  return out;
}

// "dir" + slashes + "inner": a path to root/dir/inner of exactly `size`
// bytes.
std::string InnerPathOfSize(size_t size) {
  return "dir" + std::string(size - 8, '/') + "inner";
}

struct BadPath {
  std::string name;
  std::string path;
  // The refusal capfs gives such a path by itself, in Describe's words (or
  // the error the kernel meets before reading the path); empty when the
  // answer is whatever the plain call gives on a twin tree.
  std::string want;
};

std::vector<BadPath> BadPaths() {
  return {
      {"4096_components", Repeat("a/", 4096), "errno ENAMETOOLONG"},
      {"100k_dot_components", Repeat("./", 100000) + "file",
       "errno ENAMETOOLONG"},
      {"path_max_minus_1", InnerPathOfSize(PATH_MAX - 1), ""},
      {"path_max", InnerPathOfSize(PATH_MAX), "errno ENAMETOOLONG"},
      {"path_max_plus_1", InnerPathOfSize(PATH_MAX + 1), "errno ENAMETOOLONG"},
      {"name_max_minus_1", "dir/" + std::string(NAME_MAX - 1, 'n'), ""},
      {"name_max", "dir/" + std::string(NAME_MAX, 'n'), ""},
      {"name_max_plus_1", "dir/" + std::string(NAME_MAX + 1, 'n'),
       "errno ENAMETOOLONG"},
      {"long_name_mid_path", std::string(NAME_MAX + 1, 'n') + "/file",
       "errno ENAMETOOLONG"},
      {"utf8_invalid_bytes", "dir/\xff\xfe", ""},
      {"utf8_overlong_dotdot", "\xc0\xae\xc0\xae", ""},
      {"utf8_overlong_dotdot_mid", "dir/\xc0\xae\xc0\xae/inner", ""},
      {"utf8_overlong_slash", "dir\xc0\xafinner", ""},
      {"utf8_lone_continuation", "dir/a\x80z", ""},
      {"utf8_surrogate", "\xed\xa0\x80", ""},
      {"utf8_right_to_left_override", "dir/\xe2\x80\xaeinner", ""},
      {"nul_alone", std::string("\0", 1), "errno EINVAL"},
      {"nul_at_end", std::string("dir/inner\0", 10), "errno EINVAL"},
      {"nul_hiding_escape", std::string("dir\0/../../outside", 18),
       "errno EINVAL"},
      {"nul_after_dotdot", std::string("..\0", 3), "errno EINVAL"},
  };
}

// One side of a twin: a case directory with the standard tree.
struct Side {
  std::string dir;
  std::string root() const { return dir + "/root"; }
};

class BadInputTest
    : public testing::TestWithParam<std::tuple<Resolver, Scope>> {
 protected:
  void SetUp() override {
    capfs_ = Side{temp_.Join("capfs")};
    oracle_ = Side{temp_.Join("oracle")};
    for (const Side* s : {&capfs_, &oracle_}) {
      CheckOrDie(mkdir(s->dir.c_str(), 0755) == 0, "mkdir case dir");
      BuildStandardTree(s->dir);
    }
    pristine_ = SnapshotTree(capfs_.dir, capfs_.dir);
  }

  DirOptions Options() const {
    DirOptions o;
    o.resolver = std::get<0>(GetParam());
    o.scope = std::get<1>(GetParam());
    return o;
  }

  // `op` on `path` through capfs, in words; the tree is left in `*after`
  // and rebuilt.
  std::string Capfs(const Op& op, const std::string& path, std::string* after) {
    absl::StatusOr<Dir> root = Dir::Open(capfs_.root(), Options());
    CheckOrDie(root.ok(), "Dir::Open");
    absl::StatusOr<Dir> sub = root->OpenDir("dir/sub");
    CheckOrDie(sub.ok(), "OpenDir dir/sub");
    std::map<ino_t, std::string> inodes = InodePaths(capfs_.dir);
    RawResult r = RunCapfs(op, *root, *sub, path);
    return Settle(capfs_, r, inodes, after);
  }

  // `op` on `path` as the plain call on the twin, in words.
  std::string Plain(const Op& op, const std::string& path, std::string* after) {
    int root = open(oracle_.root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    int sub = openat(root, "dir/sub", O_PATH | O_DIRECTORY | O_CLOEXEC);
    std::map<ino_t, std::string> inodes = InodePaths(oracle_.dir);
    RawResult r = RunPlain(op, root, sub, path);
    close(sub);
    close(root);
    return Settle(oracle_, r, inodes, after);
  }

  std::string Settle(const Side& side, const RawResult& r,
                     std::map<ino_t, std::string> inodes, std::string* after) {
    *after = SnapshotTree(side.dir, side.dir);
    if (r.ino != 0 && inodes.count(r.ino) == 0) inodes = InodePaths(side.dir);
    std::string described = Describe(r, inodes, side.dir);
    if (*after != pristine_) RebuildStandardTree(side.dir);
    return described;
  }

  TempDir temp_;
  Side capfs_;
  Side oracle_;
  std::string pristine_;
};

TEST_P(BadInputTest, CleanErrorOrThePlainCallsAnswer) {
  for (const Op& op : AllOps()) {
    // What the plain call gives whatever this path is, if anything: the
    // refusal of an operation the kernel rejects before reading the path
    // (bad flags, say), or the error on its other path (a rename from a
    // missing name).
    std::string unused;
    const std::string on_file = Plain(op, "dir/inner", &unused);
    const std::string on_missing = Plain(op, "missing/x", &unused);
    const std::string whatever_the_path =
        on_file == on_missing && absl::StartsWith(on_file, "errno ") ? on_file
                                                                     : "";
    for (const BadPath& bad : BadPaths()) {
      SCOPED_TRACE(absl::StrCat(bad.name, " ", op.name));
      std::string tree;
      std::string got = Capfs(op, bad.path, &tree);
      const bool has_nul = bad.path.find('\0') != std::string::npos;
      std::string want_tree;
      const std::string plain =
          has_nul ? whatever_the_path : Plain(op, bad.path, &want_tree);
      if (bad.want.empty()) {
        EXPECT_EQ(got, plain);
        EXPECT_EQ(tree, want_tree) << "the tree afterwards differs";
        continue;
      }
      // A path capfs refuses by itself (DESIGN.md section 3): that refusal,
      // or the error the kernel meets before reading this path; never
      // anything else, and nothing changed.
      EXPECT_TRUE(got == bad.want || (!plain.empty() && got == plain))
          << got << ", want " << bad.want
          << (plain.empty() ? "" : " or " + plain);
      EXPECT_EQ(tree, pristine_) << "the tree changed";
    }
  }
}

TEST_P(BadInputTest, NulIsInvalidArgumentBeforeAnySyscall) {
  absl::StatusOr<Dir> root = Dir::Open(capfs_.root(), Options());
  ASSERT_TRUE(root.ok());
  const std::string nul("dir\0inner", 9);
  EXPECT_EQ(root->OpenAt(nul, O_RDONLY).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(root->Mkdir(nul).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(root->Symlink(nul, "new_link").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SnapshotTree(capfs_.dir, capfs_.dir), pristine_);
}

// Symlink stores its target verbatim: the kernel's limits on a target, and
// NUL, are the only refusals.
TEST_P(BadInputTest, SymlinkTargets) {
  struct Target {
    std::string target;
    std::string want;  // empty: what symlinkat gives on the twin
  };
  for (const Target& t :
       std::vector<Target>{{"", ""},
                           {std::string(PATH_MAX - 1, 't'), ""},
                           {std::string(PATH_MAX, 't'), "errno ENAMETOOLONG"},
                           {"\xff\xfe/\xc0\xae\xc0\xae", ""},
                           {std::string("a\0b", 3), "errno EINVAL"}}) {
    SCOPED_TRACE(absl::StrCat("target of ", t.target.size(), " bytes"));
    absl::StatusOr<Dir> root = Dir::Open(capfs_.root(), Options());
    ASSERT_TRUE(root.ok());
    RawResult r;
    absl::Status s = root->Symlink(t.target, "dir/new_link");
    r.violation = capfs::ViolationOf(s);
    r.err = capfs::ErrnoOf(s);
    std::string tree;
    std::string got = Settle(capfs_, r, {}, &tree);
    if (!t.want.empty()) {
      EXPECT_EQ(got, t.want);
      EXPECT_EQ(tree, pristine_);
      continue;
    }
    int o = open(oracle_.root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    RawResult p;
    if (symlinkat(t.target.c_str(), o, "dir/new_link") != 0) p.err = errno;
    close(o);
    std::string want_tree;
    EXPECT_EQ(got, Settle(oracle_, p, {}, &want_tree));
    EXPECT_EQ(tree, want_tree);
  }
}

std::string ParamName(
    const testing::TestParamInfo<std::tuple<Resolver, Scope>>& info) {
  return absl::StrCat(
      std::get<0>(info.param) == Resolver::kKernel ? "Kernel" : "Userspace",
      std::get<1>(info.param) == Scope::kBeneath ? "Beneath" : "InRoot");
}

INSTANTIATE_TEST_SUITE_P(
    Resolvers, BadInputTest,
    testing::Combine(testing::Values(Resolver::kKernel, Resolver::kUserspace),
                     testing::Values(Scope::kBeneath, Scope::kInRoot)),
    ParamName);

// Deep trees and descriptor exhaustion. These run in children, where the
// descriptor limit can be changed without touching other tests.

// A directory chain "a/a/.../a" of `levels` levels.
std::string ChainPath(int levels) {
  std::string p = Repeat("a/", levels);
  p.pop_back();
  return p;
}

// Makes a chain of `depth` directories named "a" beneath `at`, holding one
// descriptor at a time; `at_level(fd, level)` runs in each (level 1 is
// at/a).
void MakeChain(int at, int depth,
               const std::function<void(int fd, int level)>& at_level) {
  int cur = fcntl(at, F_DUPFD_CLOEXEC, 0);
  CheckOrDie(cur >= 0, "dup");
  for (int level = 1; level <= depth; ++level) {
    CheckOrDie(mkdirat(cur, "a", 0755) == 0, "mkdir a");
    int next = openat(cur, "a", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(next >= 0, "open a");
    close(cur);
    cur = next;
    at_level(cur, level);
  }
  close(cur);
}

// The descriptor open at `level` of the chain beneath `at`, or -1.
int OpenChainLevel(int at, int level) {
  int cur = fcntl(at, F_DUPFD_CLOEXEC, 0);
  for (int i = 0; i < level && cur >= 0; ++i) {
    int next = openat(cur, "a", O_PATH | O_DIRECTORY | O_CLOEXEC);
    close(cur);
    cur = next;
  }
  return cur;
}

// How many descriptors this process has open (it needs one more for the
// listing, so call it with the limit not exhausted).
int OpenDescriptors() {
  std::string snapshot = OpenFdsSnapshot();
  return static_cast<int>(std::count(snapshot.begin(), snapshot.end(), '\n'));
}

// Sets the soft RLIMIT_NOFILE so that exactly `free` descriptor numbers are
// left for new descriptors. Returns the limit set.
rlim_t LeaveFreeDescriptors(int free) {
  int n = 0;
  for (int seen = 0; seen < free; ++n) {
    if (fcntl(n, F_GETFD) < 0) ++seen;
  }
  struct rlimit lim;
  CheckOrDie(getrlimit(RLIMIT_NOFILE, &lim) == 0, "getrlimit");
  lim.rlim_cur = static_cast<rlim_t>(n);
  CheckOrDie(setrlimit(RLIMIT_NOFILE, &lim) == 0, "setrlimit");
  return lim.rlim_cur;
}

void SetSoftDescriptorLimit(rlim_t soft) {
  struct rlimit lim;
  CheckOrDie(getrlimit(RLIMIT_NOFILE, &lim) == 0, "getrlimit");
  lim.rlim_cur = std::min(soft, lim.rlim_max);
  CheckOrDie(setrlimit(RLIMIT_NOFILE, &lim) == 0, "setrlimit");
}

absl::StatusOr<Dir> OpenWith(const std::string& path, Resolver resolver,
                             Scope scope = Scope::kBeneath) {
  DirOptions options;
  options.resolver = resolver;
  options.scope = scope;
  return Dir::Open(path, options);
}

// "ok <content>" for a file read through `dir`, or the error in words.
std::string ReadThrough(const Dir& dir, const std::string& path) {
  absl::StatusOr<capfs::Fd> fd = dir.OpenAt(path, O_RDONLY);
  if (!fd.ok()) {
    const char* name = strerrorname_np(capfs::ErrnoOf(fd.status()));
    return absl::StrCat("errno ", name != nullptr ? name : "?");
  }
  char buf[64];
  ssize_t n = read(fd->get(), buf, sizeof(buf));
  return absl::StrCat("ok ", absl::string_view(buf, n > 0 ? n : 0));
}

std::string Errno(const absl::Status& s) {
  if (s.ok()) return "ok";
  const char* name = strerrorname_np(capfs::ErrnoOf(s));
  return absl::StrCat("errno ", name != nullptr ? name : "?");
}

class DeepTreeTest : public testing::Test {
 protected:
  // root/a/.../a, 4096 levels, with "bottom" at the last; root/j1 leads to
  // level 2047, and level 2047's j2 to 2047 levels further: "j1/j2/a/a"
  // is level 4096 in one resolution of a short path.
  static constexpr int kDepth = 4096;
  static constexpr int kHop = 2047;

  void SetUp() override {
    root_ = temp_.Join("root");
    CheckOrDie(mkdir(root_.c_str(), 0755) == 0, "mkdir root");
    int r = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(r >= 0, "open root");
    MakeSymlink(r, ChainPath(kHop), "j1");
    MakeChain(r, kDepth, [](int fd, int level) {
      if (level == kHop) MakeSymlink(fd, ChainPath(kHop), "j2");
      if (level == kDepth) MakeFile(fd, "bottom", "bottom");
    });
    close(r);
  }

  TempDir temp_;
  std::string root_;
};

// With descriptors enough, every resolver walks 4096 levels: in one
// resolution through two symlinks, and in four OpenDir hops of 1024.
TEST_F(DeepTreeTest, EveryResolverWalks4096Levels) {
  absl::StatusOr<std::string> report = RunInChild({}, [&] {
    SetSoftDescriptorLimit(RLIM_INFINITY);  // as high as the hard limit
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    std::string out;
    if (lim.rlim_cur < kDepth + 64) {
      return absl::StrCat("hard RLIMIT_NOFILE ", lim.rlim_max,
                          " is below the walk's need");
    }
    for (Resolver r :
         {Resolver::kKernel, Resolver::kUserspace, Resolver::kAuto}) {
      for (Scope scope : {Scope::kBeneath, Scope::kInRoot}) {
        absl::StatusOr<Dir> root = OpenWith(root_, r, scope);
        if (!root.ok()) return root.status().ToString();
        const int before = OpenDescriptors();
        std::string via_links = ReadThrough(*root, "j1/j2/a/a/bottom");
        std::string via_hops;
        {
          absl::StatusOr<Dir> d = root->OpenDir(".");
          for (int hop = 0; hop < kDepth / 1024 && d.ok(); ++hop) {
            d = d->OpenDir(ChainPath(1024));
          }
          via_hops = d.ok() ? ReadThrough(*d, "bottom") : Errno(d.status());
        }
        if (via_links != "ok bottom" || via_hops != "ok bottom") {
          absl::StrAppend(&out, ResolverName(r), ": links ", via_links,
                          ", hops ", via_hops, "\n");
        }
        if (OpenDescriptors() != before) {
          absl::StrAppend(&out, ResolverName(r), " leaked descriptors\n");
        }
      }
    }
    return out;
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
}

// The userspace resolver keeps a window of 64 descriptors over the levels
// it walks (a ".." past it reopens the ancestor and checks its identity), so
// under a descriptor limit far below the depth it walks as far as the
// kernel resolver does: every resolver, with the soft RLIMIT_NOFILE at 256,
// stats level 2047 in one path, reads the bottom of the 4096 levels through
// two symlinks, and makes and removes a directory at level 2000, leaking no
// descriptor.
TEST_F(DeepTreeTest, EveryResolverWalksDeeperThanTheDescriptorLimit) {
  absl::StatusOr<std::string> report = RunInChild({}, [&] {
    SetSoftDescriptorLimit(256);
    std::string out;
    for (Resolver r :
         {Resolver::kUserspace, Resolver::kKernel, Resolver::kAuto}) {
      absl::StatusOr<Dir> d = OpenWith(root_, r);
      if (!d.ok()) return absl::StrCat(ResolverName(r), ": open");
      const int open_fds = OpenDescriptors();
      if (absl::Status s = d->Stat(ChainPath(kHop)).status(); !s.ok()) {
        absl::StrAppend(&out, ResolverName(r), " stat: ", s.ToString(), "\n");
      }
      if (std::string got = ReadThrough(*d, "j1/j2/a/a/bottom");
          got != "ok bottom") {
        absl::StrAppend(&out, ResolverName(r), " links: ", got, "\n");
      }
      const std::string made = ChainPath(2000) + "/new";
      if (absl::Status s = d->Mkdir(made); !s.ok()) {
        absl::StrAppend(&out, ResolverName(r), " mkdir: ", s.ToString(), "\n");
      }
      int level = OpenChainLevel(d->fd(), 2000);
      struct stat st;
      if (level < 0 || fstatat(level, "new", &st, AT_SYMLINK_NOFOLLOW) != 0) {
        absl::StrAppend(&out, ResolverName(r), " mkdir: not at level 2000\n");
      }
      if (level >= 0) close(level);
      if (absl::Status s = d->Rmdir(made); !s.ok()) {
        absl::StrAppend(&out, ResolverName(r), " rmdir: ", s.ToString(), "\n");
      }
      if (OpenDescriptors() != open_fds) {
        absl::StrAppend(&out, ResolverName(r), ": descriptors leaked\n");
      }
    }
    return out;
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
}

// Descriptors exhausted at every point of a walk: RLIMIT_NOFILE leaves 0 to
// 12 free descriptors, and every operation on a path 30 levels deep, with
// every resolver, must give either its answer with no limit or EMFILE, and
// on EMFILE change nothing; no descriptor may leak.
TEST(FdExhaustionTest, EveryOperationFailsCleanlyMidWalk) {
  TempDir temp;
  const std::string case_dir = temp.Join("case");
  const std::string root = case_dir + "/root";
  auto build = [&] {
    RemoveTree(case_dir);
    CheckOrDie(mkdir(case_dir.c_str(), 0755) == 0, "mkdir case");
    CheckOrDie(mkdir(root.c_str(), 0755) == 0, "mkdir root");
    int r = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(r >= 0, "open root");
    MakeFile(r, "empty_file", "");
    MakeChain(r, 32, [](int fd, int level) {
      if (level == 30) {
        MakeFile(fd, "inner", "inner");
        MakeDir(fd, "sub");
      }
    });
    close(r);
  };
  build();
  const std::string pristine = SnapshotTree(case_dir);
  const std::string path = ChainPath(30) + "/inner";
  absl::StatusOr<std::string> report = RunInChild({}, [&] {
    std::string out;
    std::map<std::string, int> emfile;  // per resolver
    for (Resolver r :
         {Resolver::kKernel, Resolver::kUserspace, Resolver::kAuto}) {
      absl::StatusOr<Dir> dir = OpenWith(root, r);
      if (!dir.ok()) return dir.status().ToString();
      absl::StatusOr<Dir> sub = dir->OpenDir(ChainPath(30) + "/sub");
      if (!sub.ok()) return sub.status().ToString();
      for (const Op& op : AllOps()) {
        const std::string want = Describe(RunCapfs(op, *dir, *sub, path),
                                          InodePaths(case_dir), case_dir);
        if (SnapshotTree(case_dir) != pristine) build();
        // build() replaced the tree: open the Dirs anew.
        dir = OpenWith(root, r);
        sub = dir->OpenDir(ChainPath(30) + "/sub");
        const int open_fds = OpenDescriptors();
        struct rlimit saved;
        getrlimit(RLIMIT_NOFILE, &saved);
        for (int free = 0; free <= 12; ++free) {
          LeaveFreeDescriptors(free);
          RawResult raw = RunCapfs(op, *dir, *sub, path);
          setrlimit(RLIMIT_NOFILE, &saved);
          std::string got = Describe(raw, InodePaths(case_dir), case_dir);
          const bool changed = SnapshotTree(case_dir) != pristine;
          if (got == "errno EMFILE") {
            ++emfile[ResolverName(r)];
            if (changed) {
              absl::StrAppend(&out, ResolverName(r), " ", op.name, " with ",
                              free, " free: EMFILE but the tree changed\n");
            }
          } else if (got != want) {
            absl::StrAppend(&out, ResolverName(r), " ", op.name, " with ", free,
                            " free: ", got, ", want ", want, "\n");
          }
          if (OpenDescriptors() != open_fds) {
            absl::StrAppend(&out, ResolverName(r), " ", op.name, " with ", free,
                            " free: descriptors leaked\n");
          }
          if (changed) {
            build();
            dir = OpenWith(root, r);
            sub = dir->OpenDir(ChainPath(30) + "/sub");
          }
        }
      }
    }
    std::cout << "[limits] calls that met EMFILE (23 operations x 13 limits):";
    for (const auto& [name, n] : emfile) std::cout << " " << name << " " << n;
    std::cout << std::endl;
    if (emfile["userspace"] <= emfile["kernel"]) {
      out += "the userspace resolver did not run out mid-walk more often\n";
    }
    return out;
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
}

}  // namespace
}  // namespace capfs_test

// Every awaitable Dir call (capfs/runtime/async_dir.h) against the sync Dir
// call, on the conformance table's paths and operations.
//
// Two twin standard trees: the sync call runs on one, the awaitable call on
// the other, and the two must agree on everything: status code, errno,
// violation, what was opened or stat'ed (by name), a symlink's target, a
// listing, and the tree afterwards (inside root/ and outside it). Each case
// runs on a fresh loop once per backend and per set of paths the loop may
// use (fs_paths.h): the defaults (nonblocking on the loop, then io_uring),
// each of the two alone, and the workers alone; on tmpfs, where the
// in-memory fast paths apply, and on the test's temporary directory (a disk
// filesystem here), where only RESOLVE_CACHED's do. Permission cases run
// both sides in children without capabilities. The counters (fs_paths.h)
// must show that the paths under test served calls, and that no other did.
//
// Each (configuration, scope, operation, path) is a test of its own,
// Config_Scope_Op_Path (see PathName in standard_tree.h); the twin trees of
// each filesystem are built once per run and put back after a case that
// changed them.

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/conformance/operations.h"
#include "capfs_test/conformance/standard_tree.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/names.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;
using capfs::Scope;
using capfs::runtime::AsyncFsCounts;
using capfs::runtime::AsyncFsCountsNow;
using capfs::runtime::AsyncFsOptions;
using capfs::runtime::IoBackend;
using capfs::runtime::LoopOptions;
using capfs::runtime::Task;

// Where the trees are.
enum class Fs { kTmpfs, kTestTmpdir };

struct Config {
  const char* name;
  IoBackend backend;
  AsyncFsOptions paths;
  Fs fs;
  Resolver resolver = Resolver::kKernel;
};

const std::vector<Config>& Configs() {
  static const std::vector<Config>* configs = [] {
    auto* out = new std::vector<Config>;
    // Both backends with io_uring on and off; each path alone on epoll.
    out->push_back(
        {"epoll_default_tmpfs", IoBackend::kEpoll, {true, true}, Fs::kTmpfs});
    out->push_back(
        {"poll_default_tmpfs", IoBackend::kPoll, {true, true}, Fs::kTmpfs});
    out->push_back({"epoll_default_disk",
                    IoBackend::kEpoll,
                    {true, true},
                    Fs::kTestTmpdir});
    out->push_back(
        {"epoll_loop_only", IoBackend::kEpoll, {true, false}, Fs::kTmpfs});
    out->push_back(
        {"poll_loop_only", IoBackend::kPoll, {true, false}, Fs::kTmpfs});
    out->push_back(
        {"epoll_io_uring_only", IoBackend::kEpoll, {false, true}, Fs::kTmpfs});
    out->push_back(
        {"epoll_workers_only", IoBackend::kEpoll, {false, false}, Fs::kTmpfs});
    return out;
  }();
  return *configs;
}

// A status in words: code, errno, violation.
std::string StatusWords(const absl::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(s.code()), "/",
                      capfs::ErrnoOf(s), "/",
                      static_cast<int>(capfs::ViolationOf(s)));
}

struct Result {
  RawResult raw;
  std::string status;  // StatusWords
};

Result FromStatus(const absl::Status& s) {
  Result r;
  r.status = StatusWords(s);
  r.raw.violation = capfs::ViolationOf(s);
  r.raw.err =
      r.raw.violation == capfs::Violation::kNone ? capfs::ErrnoOf(s) : 0;
  if (!s.ok() && r.raw.err == 0 && r.raw.violation == capfs::Violation::kNone) {
    r.raw.err = -1;
    r.raw.text = std::string(s.message());
  }
  return r;
}

std::string Sibling(const std::string& path) {
  return absl::StrCat(capfs::SplitLast(path).parent, "renamed");
}

void FromFd(int fd, Result* r) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    r->raw.err = errno;
    return;
  }
  r->raw.ino = st.st_ino;
  r->raw.kind = KindName(st.st_mode);
}

// `op` on `path` through the sync Dir calls (kAsync false) or the awaitable
// ones, on the loop either way.
template <bool kAsync>
Task<Result> RunOp(const Op& op, const Dir& root, const Dir& sub,
                   const std::string& path) {
  namespace rt = capfs::runtime;
  constexpr char kTarget[] = "t/../x";
  switch (op.kind) {
    case OpKind::kOpen: {
      absl::StatusOr<capfs::Fd> fd;
      if constexpr (kAsync) {
        fd = co_await rt::OpenAt(root, path, op.flags, op.mode);
      } else {
        fd = root.OpenAt(path, op.flags, op.mode);
      }
      Result r = FromStatus(fd.status());
      if (fd.ok()) FromFd(fd->get(), &r);
      co_return r;
    }
    case OpKind::kOpenDir: {
      absl::StatusOr<Dir> d;
      if constexpr (kAsync) {
        d = co_await rt::OpenDir(root, path);
      } else {
        d = root.OpenDir(path);
      }
      Result r = FromStatus(d.status());
      if (d.ok()) {
        FromFd(d->fd(), &r);
        if (d->options().scope != root.options().scope ||
            d->options().resolver != root.options().resolver ||
            d->options().read_only != root.options().read_only) {
          r.raw.text = "options not inherited";
        }
      }
      co_return r;
    }
    case OpKind::kStat:
    case OpKind::kLstat: {
      const bool follow = op.kind == OpKind::kStat;
      absl::StatusOr<capfs::FileStat> st;
      if constexpr (kAsync) {
        // Not `follow ? co_await ... : co_await ...`: g++ 12 miscompiles
        // co_await inside a conditional expression.
        if (follow) {
          st = co_await rt::Stat(root, path);
        } else {
          st = co_await rt::Lstat(root, path);
        }
      } else {
        st = follow ? root.Stat(path) : root.Lstat(path);
      }
      Result r = FromStatus(st.status());
      if (st.ok()) {
        r.raw.ino = st->ino;
        r.raw.kind = KindName(st->kind);
        // Everything else a stat says, but the times (the twins differ).
        r.raw.text = absl::StrCat(st->size, " ", st->perm, " ", st->nlink, " ",
                                  st->uid, " ", st->gid);
      }
      co_return r;
    }
    case OpKind::kReadLink: {
      absl::StatusOr<std::string> t;
      if constexpr (kAsync) {
        t = co_await rt::ReadLink(root, path);
      } else {
        t = root.ReadLink(path);
      }
      Result r = FromStatus(t.status());
      if (t.ok()) r.raw.text = *t;
      co_return r;
    }
    case OpKind::kReadDir: {
      absl::StatusOr<std::vector<capfs::DirEntry>> entries;
      if constexpr (kAsync) {
        entries = co_await rt::ReadDir(root, path);
      } else {
        entries = root.ReadDir(path);
      }
      Result r = FromStatus(entries.status());
      if (entries.ok()) {
        std::vector<std::string> names;
        for (const capfs::DirEntry& e : *entries) {
          names.push_back(absl::StrCat(e.name, ":", KindName(e.kind)));
        }
        std::sort(names.begin(), names.end());
        r.raw.text = absl::StrJoin(names, ",");
      }
      co_return r;
    }
    default:
      break;
  }
  // The calls that give only a status.
  absl::Status s;
  if constexpr (kAsync) {
    switch (op.kind) {
      case OpKind::kMkdir:
        s = co_await rt::Mkdir(root, path, op.mode);
        break;
      case OpKind::kUnlink:
        s = co_await rt::Unlink(root, path);
        break;
      case OpKind::kRmdir:
        s = co_await rt::Rmdir(root, path);
        break;
      case OpKind::kSymlink:
        s = co_await rt::Symlink(root, kTarget, path);
        break;
      case OpKind::kRenameFrom:
        s = co_await rt::Rename(root, path, root, "renamed");
        break;
      case OpKind::kRenameTo:
        s = co_await rt::Rename(root, "empty_file", root, path);
        break;
      case OpKind::kRenameAcross:
        s = co_await rt::Rename(root, path, sub, "moved");
        break;
      case OpKind::kRenameWithin:
        s = co_await rt::Rename(root, path, root, Sibling(path));
        break;
      case OpKind::kRenameToMissing:
        s = co_await rt::Rename(root, path, root, "missing_dir/x");
        break;
      case OpKind::kSymlinkEmptyTarget:
        s = co_await rt::Symlink(root, "", path);
        break;
      case OpKind::kLinkFrom:
        s = co_await rt::Link(root, path, root, "linked");
        break;
      case OpKind::kLinkTo:
        s = co_await rt::Link(root, "file", root, path);
        break;
      default:
        s = absl::InternalError("no such operation");
    }
  } else {
    switch (op.kind) {
      case OpKind::kMkdir:
        s = root.Mkdir(path, op.mode);
        break;
      case OpKind::kUnlink:
        s = root.Unlink(path);
        break;
      case OpKind::kRmdir:
        s = root.Rmdir(path);
        break;
      case OpKind::kSymlink:
        s = root.Symlink(kTarget, path);
        break;
      case OpKind::kRenameFrom:
        s = root.Rename(path, root, "renamed");
        break;
      case OpKind::kRenameTo:
        s = root.Rename("empty_file", root, path);
        break;
      case OpKind::kRenameAcross:
        s = root.Rename(path, sub, "moved");
        break;
      case OpKind::kRenameWithin:
        s = root.Rename(path, root, Sibling(path));
        break;
      case OpKind::kRenameToMissing:
        s = root.Rename(path, root, "missing_dir/x");
        break;
      case OpKind::kSymlinkEmptyTarget:
        s = root.Symlink("", path);
        break;
      case OpKind::kLinkFrom:
        s = root.Link(path, root, "linked");
        break;
      case OpKind::kLinkTo:
        s = root.Link("file", root, path);
        break;
      default:
        s = absl::InternalError("no such operation");
    }
  }
  co_return FromStatus(s);
}

// A base directory on the filesystem `fs`.
std::string BaseFor(Fs fs, const TempDir& tmpfs_dir) {
  if (fs == Fs::kTmpfs) return tmpfs_dir.path();
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/async_conf_XXXXXX");
  CheckOrDie(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  return tmpl;
}

// The twin trees on one filesystem, built when a case first needs them and
// shared by every case after (a case that changes a tree puts it back).
struct Twins {
  std::string base;
  std::string sync;
  std::string async;
  std::string pristine_root;
  std::string pristine_outside;
  std::map<std::string, std::map<ino_t, std::string>> inodes;  // by side;
                                                               // none after
                                                               // a rebuild
};

using CaseParam = std::tuple<Config, Scope, Op, PathCase>;

class AsyncConformanceTest : public testing::TestWithParam<CaseParam> {
 public:
  static void TearDownTestSuite() {
    if (twins_ != nullptr) {
      for (const auto& [fs, t] : *twins_) {
        if (fs != Fs::kTmpfs) RemoveTree(t.base);
      }
    }
    delete twins_;
    twins_ = nullptr;
    delete tmpfs_;
    tmpfs_ = nullptr;
  }

 protected:
  const Config& config() const { return std::get<0>(GetParam()); }
  Scope scope() const { return std::get<1>(GetParam()); }
  const Op& op() const { return std::get<2>(GetParam()); }
  const PathCase& path_case() const { return std::get<3>(GetParam()); }

  // The twins on this case's filesystem.
  static Twins& TwinsOn(Fs fs) {
    if (twins_ == nullptr) twins_ = new std::map<Fs, Twins>;
    auto it = twins_->find(fs);
    if (it != twins_->end()) return it->second;
    if (tmpfs_ == nullptr) tmpfs_ = new TempDir;
    Twins t;
    t.base = BaseFor(fs, *tmpfs_);
    // Equal lengths: symlinks to the host path of a side have equal sizes.
    t.sync = t.base + "/sync_";
    t.async = t.base + "/async";
    for (const std::string* d : {&t.sync, &t.async}) {
      CheckOrDie(mkdir(d->c_str(), 0755) == 0, "mkdir case dir");
      BuildStandardTree(*d);
    }
    t.pristine_root = SnapshotTree(t.sync + "/root", t.sync);
    t.pristine_outside = SnapshotTree(t.sync + "/outside", t.sync);
    return twins_->emplace(fs, std::move(t)).first->second;
  }

  // The call on `side`'s tree, in words; the trees afterwards in `*after`,
  // and the tree rebuilt if the call changed it.
  template <bool kAsync>
  std::string Side(Twins& twins, const std::string& side, const PathCase& pc,
                   std::string* after) {
    auto run = [&]() -> std::string {
      DirOptions options;
      options.resolver = config().resolver;
      options.scope = scope();
      absl::StatusOr<Dir> root = Dir::Open(side + "/root", options);
      if (!root.ok()) return root.status().ToString();
      absl::StatusOr<Dir> sub = root->OpenDir("dir/sub");
      if (!sub.ok()) return sub.status().ToString();
      LoopOptions loop;
      loop.backend = config().backend;
      loop.fs = config().paths;
      absl::StatusOr<std::string> r = capfs::runtime::Run(
          [&]() -> Task<absl::StatusOr<std::string>> {
            Result r = co_await RunOp<kAsync>(op(), *root, *sub, pc.path);
            co_return absl::StrCat(r.status, " ", r.raw.Serialize());
          }(),
          loop);
      return r.ok() ? *r : r.status().ToString();
    };
    std::string serialized;
    if (pc.needs_permission_checks) {
      ChildOptions child;
      child.drop_privileges = true;
      absl::StatusOr<std::string> out = RunInChild(child, run);
      serialized = out.ok() ? *out : out.status().ToString();
    } else {
      serialized = run();
    }
    // "status raw": name the inode on this side.
    size_t space = serialized.find(' ');
    std::string status = serialized.substr(0, space);
    RawResult raw = RawResult::Parse(
        space == std::string::npos ? "" : serialized.substr(space + 1));
    const std::string pristine =
        absl::StrCat(twins.pristine_root, "\n--\n", twins.pristine_outside);
    if (!Mutates(op())) {
      std::map<ino_t, std::string>& inodes = twins.inodes[side];
      if (inodes.empty()) inodes = InodePaths(side);
      *after = pristine;
      return absl::StrCat(status, " ", Describe(raw, inodes, side));
    }
    std::string described =
        absl::StrCat(status, " ",
                     Describe(raw,
                              raw.ino != 0 ? InodePaths(side)
                                           : std::map<ino_t, std::string>(),
                              side));
    *after = absl::StrCat(SnapshotTree(side + "/root", side), "\n--\n",
                          SnapshotTree(side + "/outside", side));
    if (*after != pristine) {
      RebuildStandardTree(side);
      twins.inodes.erase(side);
    }
    return described;
  }

  static TempDir* tmpfs_;
  static std::map<Fs, Twins>* twins_;
};

TempDir* AsyncConformanceTest::tmpfs_ = nullptr;
std::map<Fs, Twins>* AsyncConformanceTest::twins_ = nullptr;

TEST_P(AsyncConformanceTest, SameAsTheSyncCall) {
  const AsyncFsCounts before = AsyncFsCountsNow();
  const PathCase& pc = path_case();
  Twins& twins = TwinsOn(config().fs);
  // A walk through many symlinks may say ELOOP now and then while another
  // process renames directories (see conformance_test.cc): a case where
  // either side says ELOOP and the two disagree is run again.
  std::string want, got, want_tree, got_tree;
  for (int attempt = 0; attempt < 3; ++attempt) {
    want = Side<false>(twins, twins.sync, pc, &want_tree);
    got = Side<true>(twins, twins.async, pc, &got_tree);
    if (want == got || (want.find("ELOOP") == std::string::npos &&
                        got.find("ELOOP") == std::string::npos)) {
      break;
    }
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_tree, want_tree) << "the trees afterwards differ";
  // A configuration that allows neither path, or a resolver they do not
  // serve, runs nothing on them (counted in this process only: permission
  // cases run in children). ServedByThePathsUnderTest checks the converse.
  const AsyncFsCounts after = AsyncFsCountsNow();
  if (config().resolver != Resolver::kKernel ||
      (!config().paths.on_loop && !config().paths.io_uring)) {
    EXPECT_EQ(after.on_loop, before.on_loop);
    EXPECT_EQ(after.io_uring, before.io_uring);
  }
}

// The paths a configuration allows serve calls: a Stat and an OpenDir run
// on the loop, a Mkdir, a Link and a rename on io_uring, with the kernel's
// resolver.
class ServedByThePathsUnderTest
    : public testing::TestWithParam<std::tuple<Config, Scope>> {};

TEST_P(ServedByThePathsUnderTest, CountersShowThem) {
  const Config& config = std::get<0>(GetParam());
  TempDir tmpfs;
  const std::string base = BaseFor(config.fs, tmpfs);
  const std::string side = base + "/side";
  CheckOrDie(mkdir(side.c_str(), 0755) == 0, "mkdir case dir");
  BuildStandardTree(side);
  DirOptions options;
  options.resolver = Resolver::kKernel;
  options.scope = std::get<1>(GetParam());
  absl::StatusOr<Dir> root = Dir::Open(side + "/root", options);
  ASSERT_TRUE(root.ok()) << root.status();
  absl::StatusOr<Dir> sub = root->OpenDir("dir/sub");
  ASSERT_TRUE(sub.ok()) << sub.status();
  // Settled once: the ring checks need the loop's ring (runtime_test_util.h).
  const bool ring =
      config.paths.io_uring && capfs::runtime::testing::IoUringUsable();
  // The operation named `name` of the table on `path`, awaited.
  auto run = [&](const std::string& name, const std::string& path) {
    auto op = std::find_if(AllOps().begin(), AllOps().end(),
                           [&](const Op& o) { return o.name == name; });
    CheckOrDie(op != AllOps().end(), "no operation " + name);
    LoopOptions loop;
    loop.backend = config.backend;
    loop.fs = config.paths;
    // The ring checks below need the loop's ring: wait for it when the
    // user's locked memory is spent for now (runtime_test_util.h).
    absl::StatusOr<std::string> r = capfs::runtime::testing::RunWithRing(
        [&]() -> Task<absl::StatusOr<std::string>> {
          Result r = co_await RunOp<true>(*op, *root, *sub, path);
          co_return r.status;
        }(),
        loop, ring);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_EQ(*r, StatusWords(absl::OkStatus())) << name;
    }
  };
  AsyncFsCounts before = AsyncFsCountsNow();
  run("Stat", "dir/inner");
  run("OpenDir", "dir/sub");
  AsyncFsCounts after = AsyncFsCountsNow();
  if (config.paths.on_loop) {
    EXPECT_GT(after.on_loop, before.on_loop) << "nothing ran on the loop";
  } else {
    EXPECT_EQ(after.on_loop, before.on_loop);
  }
  // Each call the ring serves, alone: a Mkdir, a Link, a rename.
  for (const auto& [name, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"Mkdir", "dir/made"},
           {"LinkFrom", "dir/inner"},
           {"RenameFrom", "dir/inner"}}) {
    before = after;
    run(name, path);
    after = AsyncFsCountsNow();
    if (ring) {
      EXPECT_GT(after.io_uring, before.io_uring)
          << name << ": nothing ran on io_uring";
    } else {
      EXPECT_EQ(after.io_uring, before.io_uring) << name;
    }
  }
  if (config.fs != Fs::kTmpfs) RemoveTree(base);
}

INSTANTIATE_TEST_SUITE_P(
    Configs, ServedByThePathsUnderTest,
    testing::Combine(testing::ValuesIn(Configs()),
                     testing::Values(Scope::kBeneath, Scope::kInRoot)),
    [](const testing::TestParamInfo<std::tuple<Config, Scope>>& info) {
      return absl::StrCat(std::get<0>(info.param).name, "_",
                          ScopeName(std::get<1>(info.param)));
    });

// Config_Scope_Op_Path.
std::string CaseName(const testing::TestParamInfo<CaseParam>& info) {
  return absl::StrCat(std::get<0>(info.param).name, "_",
                      ScopeName(std::get<1>(info.param)), "_",
                      std::get<2>(info.param).name, "_",
                      PathName(std::get<3>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Table, AsyncConformanceTest,
                         testing::Combine(testing::ValuesIn(Configs()),
                                          testing::Values(Scope::kBeneath,
                                                          Scope::kInRoot),
                                          testing::ValuesIn(AllOps()),
                                          testing::ValuesIn(StandardPaths())),
                         CaseName);

}  // namespace
}  // namespace capfs_test

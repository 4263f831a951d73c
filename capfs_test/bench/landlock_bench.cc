// landlock_bench: what confining a process with capfs::Landlock costs, beside
// the same raw Landlock syscalls written by hand, in one run.
//
//   Build/5dirs/{capfs,raw}   building a ruleset with one rule on each of 5
//                             Dirs (4 kRead, 1 kReadWrite), then closing it;
//                             timed in this process.
//   BuildRestrict/5dirs/{capfs,raw}/{thread,process}
//                             build, then no_new_privs and
//                             landlock_restrict_self: the whole cost of
//                             confining. Restricting is irreversible, so each
//                             iteration runs in a fresh thread (below ABI 8
//                             only the calling thread is restricted; the
//                             ruleset is built with max_abi 7 at most, so
//                             that capfs does not use TSYNC and restrict this
//                             process) or in a fresh forked child, which
//                             times itself (manual time). The process form
//                             also counts the child's first touches of its
//                             copy-on-write pages (the first malloc in a
//                             fresh child alone costs hundreds of
//                             microseconds on a loaded VM); the thread form
//                             is Landlock's own cost.
//   Restrict/5dirs/{capfs,raw}/{thread,process}
//                             no_new_privs and landlock_restrict_self alone,
//                             of a ruleset built once in this process: what
//                             Spawn's child pays, the ruleset being built
//                             once in the parent.
//   OpenAt/depth:N/confined:{0,1}
//                             openat(dirfd, path) + close of a file N
//                             components beneath a Dir, in a child that is or
//                             is not restricted to the 5 Dirs: the cost
//                             Landlock adds to each open. Each iteration is
//                             one child doing kOpensPerChild opens after a
//                             warm-up; the time reported is per open.
//
//   bazel run -c opt //capfs_test/bench:landlock_bench

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/temp_tree.h"

namespace {

using capfs_test::CheckOrDie;
using capfs_test::MakeDir;
using capfs_test::MakeFile;

constexpr int kDirs = 5;
constexpr int kOpensPerChild = 10000;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Five Dirs, each with "f" and "a/b/c/d/f" in it.
struct Fixture {
  capfs_test::TempDir temp;
  std::vector<capfs::Dir> dirs;
  std::vector<capfs::LandlockRule> rules;

  Fixture() {
    for (int i = 0; i < kDirs; ++i) {
      int root = open(temp.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      CheckOrDie(root >= 0, "open temp");
      std::string d = absl::StrCat("d", i);
      MakeDir(root, d);
      MakeFile(root, d + "/f", "x");
      MakeDir(root, d + "/a");
      MakeDir(root, d + "/a/b");
      MakeDir(root, d + "/a/b/c");
      MakeDir(root, d + "/a/b/c/d");
      MakeFile(root, d + "/a/b/c/d/f", "x");
      close(root);
      absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(temp.Join(d));
      CheckOrDie(dir.ok(), "Dir::Open");
      dirs.push_back(*std::move(dir));
    }
    for (int i = 0; i < kDirs; ++i) {
      rules.push_back({&dirs[i], i == 0 ? capfs::Access::kReadWrite
                                        : capfs::Access::kRead});
    }
  }
};

Fixture& TheFixture() {
  static Fixture* f = new Fixture;
  return *f;
}

// The filesystem rights capfs handles at `abi`, for the raw baseline.
uint64_t HandledFs(int abi) {
  int bits = abi >= 9 ? 17 : abi >= 5 ? 16 : abi >= 3 ? 15 : abi >= 2 ? 14 : 13;
  return (uint64_t{1} << bits) - 1;
}

// The raw sequence: create, add one rule per Dir, same rights as capfs's.
int RawBuild(const Fixture& f, int abi) {
  landlock_ruleset_attr attr = {};
  attr.handled_access_fs = HandledFs(abi);
  int fd = static_cast<int>(
      syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0));
  if (fd < 0) return -1;
  const uint64_t read =
      LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
  // kReadWrite: everything but EXECUTE, MAKE_CHAR, MAKE_BLOCK.
  const uint64_t write = HandledFs(abi) & ~(LANDLOCK_ACCESS_FS_EXECUTE |
                                            LANDLOCK_ACCESS_FS_MAKE_CHAR |
                                            LANDLOCK_ACCESS_FS_MAKE_BLOCK);
  for (int i = 0; i < kDirs; ++i) {
    landlock_path_beneath_attr rule = {};
    rule.allowed_access = i == 0 ? write : read;
    rule.parent_fd = f.dirs[i].fd();
    if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &rule,
                0) != 0) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

bool RawRestrict(int ruleset_fd) {
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_landlock_restrict_self, ruleset_fd, 0) == 0;
}

// Runs `fn` in a forked child and returns what it returns (nanoseconds), or
// -1 when the child failed.
int64_t InChild(absl::FunctionRef<int64_t()> fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    int64_t ns = fn();
    _exit(write(p[1], &ns, sizeof(ns)) == sizeof(ns) ? 0 : 1);
  }
  close(p[1]);
  int64_t ns = -1;
  if (pid < 0 || read(p[0], &ns, sizeof(ns)) != sizeof(ns)) ns = -1;
  close(p[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ns = -1;
  return ns;
}

void BM_Build_Capfs(benchmark::State& state) {
  Fixture& f = TheFixture();
  for (auto _ : state) {
    absl::StatusOr<capfs::Landlock> l = capfs::Landlock::Build(f.rules);
    if (!l.ok()) {
      state.SkipWithError(l.status().ToString().c_str());
      break;
    }
  }
}

void BM_Build_Raw(benchmark::State& state) {
  Fixture& f = TheFixture();
  const int abi = capfs::LandlockAbi();
  for (auto _ : state) {
    int fd = RawBuild(f, abi);
    if (fd < 0) {
      state.SkipWithError("raw build failed");
      break;
    }
    close(fd);
  }
}

// Manual time: `fn` returns the nanoseconds one iteration took, or -1.
void RunTimedInChildren(benchmark::State& state,
                        absl::FunctionRef<int64_t()> fn, int ops = 1) {
  for (auto _ : state) {
    int64_t ns = InChild(fn);
    if (ns < 0) {
      state.SkipWithError("child failed");
      break;
    }
    state.SetIterationTime(static_cast<double>(ns) / ops / 1e9);
  }
}

// Manual time: `fn` runs in a fresh thread and returns the nanoseconds one
// iteration took, or -1.
void RunTimedInThreads(benchmark::State& state,
                       absl::FunctionRef<int64_t()> fn) {
  for (auto _ : state) {
    int64_t ns = -1;
    std::thread([&] { ns = fn(); }).join();
    if (ns < 0) {
      state.SkipWithError("thread failed");
      break;
    }
    state.SetIterationTime(static_cast<double>(ns) / 1e9);
  }
}

// At most ABI 7: RestrictSelf then restricts the calling thread only.
constexpr capfs::LandlockOptions kThreadOnly = {.max_abi = 7};
int ThreadOnlyAbi() { return std::min(capfs::LandlockAbi(), 7); }

void BM_BuildRestrictThread_Capfs(benchmark::State& state) {
  Fixture& f = TheFixture();
  RunTimedInThreads(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    absl::StatusOr<capfs::Landlock> l =
        capfs::Landlock::Build(f.rules, kThreadOnly);
    if (!l.ok() || !l->RestrictSelf().ok()) return -1;
    return NowNs() - t0;
  });
}

void BM_BuildRestrictThread_Raw(benchmark::State& state) {
  Fixture& f = TheFixture();
  const int abi = ThreadOnlyAbi();
  RunTimedInThreads(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    int fd = RawBuild(f, abi);
    if (fd < 0 || !RawRestrict(fd)) return -1;
    int64_t ns = NowNs() - t0;
    close(fd);  // after timing, as capfs's ruleset is closed after it
    return ns;
  });
}

void BM_RestrictThread_Capfs(benchmark::State& state) {
  Fixture& f = TheFixture();
  absl::StatusOr<capfs::Landlock> l =
      capfs::Landlock::Build(f.rules, kThreadOnly);
  CheckOrDie(l.ok(), "Build");
  RunTimedInThreads(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    if (!l->RestrictSelf().ok()) return -1;
    return NowNs() - t0;
  });
}

void BM_RestrictThread_Raw(benchmark::State& state) {
  Fixture& f = TheFixture();
  int fd = RawBuild(f, ThreadOnlyAbi());
  CheckOrDie(fd >= 0, "raw build");
  RunTimedInThreads(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    if (!RawRestrict(fd)) return -1;
    return NowNs() - t0;
  });
  close(fd);
}

void BM_BuildRestrict_Capfs(benchmark::State& state) {
  Fixture& f = TheFixture();
  RunTimedInChildren(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    absl::StatusOr<capfs::Landlock> l = capfs::Landlock::Build(f.rules);
    if (!l.ok() || !l->RestrictSelf().ok()) return -1;
    return NowNs() - t0;
  });
}

void BM_BuildRestrict_Raw(benchmark::State& state) {
  Fixture& f = TheFixture();
  const int abi = capfs::LandlockAbi();
  RunTimedInChildren(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    int fd = RawBuild(f, abi);
    if (fd < 0 || !RawRestrict(fd)) return -1;
    int64_t ns = NowNs() - t0;
    close(fd);  // after timing, as capfs's ruleset is closed after it
    return ns;
  });
}

void BM_RestrictProcess_Capfs(benchmark::State& state) {
  Fixture& f = TheFixture();
  absl::StatusOr<capfs::Landlock> l = capfs::Landlock::Build(f.rules);
  CheckOrDie(l.ok(), "Build");
  RunTimedInChildren(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    if (!l->RestrictSelf().ok()) return -1;
    return NowNs() - t0;
  });
}

void BM_RestrictProcess_Raw(benchmark::State& state) {
  Fixture& f = TheFixture();
  int fd = RawBuild(f, capfs::LandlockAbi());
  CheckOrDie(fd >= 0, "raw build");
  RunTimedInChildren(state, [&]() -> int64_t {
    int64_t t0 = NowNs();
    if (!RawRestrict(fd)) return -1;
    return NowNs() - t0;
  });
  close(fd);
}

// state.range(0): depth of the file (1 or 5); state.range(1): confined.
void BM_OpenAt(benchmark::State& state) {
  Fixture& f = TheFixture();
  const char* path = state.range(0) == 1 ? "f" : "a/b/c/d/f";
  const bool confined = state.range(1) != 0;
  absl::StatusOr<capfs::Landlock> l = capfs::Landlock::Build(f.rules);
  CheckOrDie(l.ok(), "Build");
  // The last Dir, so that the rules before it are not the first matched.
  const int dirfd = f.dirs[kDirs - 1].fd();
  RunTimedInChildren(
      state,
      [&]() -> int64_t {
        if (confined && !l->RestrictSelf().ok()) return -1;
        // Warm the dentry cache and the child's pages before timing.
        for (int i = 0; i < 100; ++i) {
          int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
          if (fd < 0) return -1;
          close(fd);
        }
        int64_t t0 = NowNs();
        for (int i = 0; i < kOpensPerChild; ++i) {
          int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
          if (fd < 0) return -1;
          close(fd);
        }
        return NowNs() - t0;
      },
      kOpensPerChild);
}

BENCHMARK(BM_Build_Capfs)->Name("Build/5dirs/capfs");
BENCHMARK(BM_Build_Raw)->Name("Build/5dirs/raw");
BENCHMARK(BM_BuildRestrictThread_Capfs)
    ->Name("BuildRestrict/5dirs/capfs/thread")
    ->UseManualTime()
    ->Iterations(2000);
BENCHMARK(BM_BuildRestrictThread_Raw)
    ->Name("BuildRestrict/5dirs/raw/thread")
    ->UseManualTime()
    ->Iterations(2000);
BENCHMARK(BM_BuildRestrict_Capfs)
    ->Name("BuildRestrict/5dirs/capfs/process")
    ->UseManualTime()
    ->Iterations(300);
BENCHMARK(BM_BuildRestrict_Raw)
    ->Name("BuildRestrict/5dirs/raw/process")
    ->UseManualTime()
    ->Iterations(300);
BENCHMARK(BM_RestrictThread_Capfs)
    ->Name("Restrict/5dirs/capfs/thread")
    ->UseManualTime()
    ->Iterations(2000);
BENCHMARK(BM_RestrictThread_Raw)
    ->Name("Restrict/5dirs/raw/thread")
    ->UseManualTime()
    ->Iterations(2000);
BENCHMARK(BM_RestrictProcess_Capfs)
    ->Name("Restrict/5dirs/capfs/process")
    ->UseManualTime()
    ->Iterations(300);
BENCHMARK(BM_RestrictProcess_Raw)
    ->Name("Restrict/5dirs/raw/process")
    ->UseManualTime()
    ->Iterations(300);
BENCHMARK(BM_OpenAt)
    ->Name("OpenAt")
    ->ArgNames({"depth", "confined"})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({5, 0})
    ->Args({5, 1})
    ->UseManualTime()
    ->Iterations(30);

}  // namespace

BENCHMARK_MAIN();

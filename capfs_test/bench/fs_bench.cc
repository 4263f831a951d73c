// fs_bench: what confinement costs, measured against the syscall limit.
//
// Every capfs operation runs here beside two baselines, over the same tree,
// with the same paths, in the same process, so that every figure is a ratio
// taken in one run:
//
//   raw              the plain, unconfined *at call on the same path (what a
//                    caller who trusts the path would issue);
//   floor:kernel     the minimal confined syscall sequence with openat2: one
//                    openat2 of the target, or of the parent and then the *at
//                    call on the last name, then the closes;
//   floor:userspace  the minimal confined walk without openat2: one
//                    openat(O_PATH|O_NOFOLLOW|O_DIRECTORY) per directory,
//                    the call on the leaf, then the closes, written by hand
//                    with the steps worked out before the timed loop;
//   capfs:kernel     capfs::Dir with Resolver::kKernel;
//   capfs:userspace  capfs::Dir with Resolver::kUserspace.
//
// A path of one component needs no resolution, so the floor there is the
// plain call with O_NOFOLLOW (or AT_SYMLINK_NOFOLLOW) on the Dir's
// descriptor, for both resolvers.
//
// Benchmark names are "<operation>/<depth>/<variant>", and
// "Pair/<operation>/<depth>/<resolver>" for the paired form (capfs, raw and
// floor timed call by call within each iteration; see RunPaired), from which
// tools/bench.sh builds its table. Every capfs benchmark reports
// `allocs_per_op`: heap allocations per capfs call, counted by the operator
// new below. --fs_bench_iterations=N is for tools/syscall_counts.py.
//
//   bazel run -c opt //capfs_test/bench:fs_bench -- --benchmark_filter=OpenAt/

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/names.h"
#include "capfs_test/testing/temp_tree.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

// ---------------------------------------------------------------------------
// Heap allocations, counted process-wide.

namespace {

std::atomic<uint64_t> g_allocations{0};

void* CountedAlloc(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* CountedAlignedAlloc(size_t size, std::align_val_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = nullptr;
  size_t a = std::max(static_cast<size_t>(align), sizeof(void*));
  if (posix_memalign(&p, a, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

}  // namespace

void* operator new(size_t size) { return CountedAlloc(size); }
void* operator new[](size_t size) { return CountedAlloc(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return malloc(size == 0 ? 1 : size);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return malloc(size == 0 ? 1 : size);
}
void* operator new(size_t size, std::align_val_t align) {
  void* p = CountedAlignedAlloc(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t size, std::align_val_t align) {
  void* p = CountedAlignedAlloc(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }
void operator delete(void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { free(p); }

namespace capfs_bench {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;
using capfs_test::CheckOrDie;
using capfs_test::ResolverName;

constexpr int kDepths[] = {1, 4, 16, 64};
constexpr int kMaxDepth = 64;
constexpr int kReadDirEntries = 10000;

// Each level of the tree is "sub/", so a depth-64 path to "file" is 256 bytes:
// the longest path the zero-allocation target covers.
constexpr absl::string_view kSub = "sub";

// ---------------------------------------------------------------------------
// Raw calls, spelled out so the baselines depend on nothing in capfs.

constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

// openat2 beneath `dirfd`, retried on EAGAIN: a rename anywhere on the
// system makes a walk through ".." fail that way, and any confined open
// must then try again.
int Openat2(int dirfd, const char* path, uint64_t flags, uint64_t mode = 0) {
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = kBeneath;
  int fd;
  do {
    fd = static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
  } while (fd < 0 && errno == EAGAIN);
  return fd;
}

// ---------------------------------------------------------------------------
// The userspace floor: a walk whose steps were worked out before timing, so
// that it pays for the syscalls and nothing else.

struct Step {
  enum Kind {
    kDescend,  // openat(O_PATH|O_NOFOLLOW|O_DIRECTORY) and push
    kDotDot,   // faccessat2(X_OK) on the directory left (the kernel's check
               // for ".."), then close it and pop
    kSymlink,  // the failed O_NOFOLLOW|O_DIRECTORY open that finds a symlink,
               // then readlinkat; its target's steps follow in the plan
  };
  Kind kind;
  std::string name;
};

struct WalkPlan {
  std::vector<Step> steps;
};

class FloorWalk {
 public:
  FloorWalk(int root, const WalkPlan& plan) : root_(root) {
    for (const Step& s : plan.steps) {
      switch (s.kind) {
        case Step::kDescend: {
          int fd = openat(cur(), s.name.c_str(),
                          O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
          if (fd < 0) {
            ok_ = false;
            return;
          }
          stack_[n_++] = fd;
          break;
        }
        case Step::kDotDot:
          syscall(SYS_faccessat2, cur(), "", X_OK, AT_EMPTY_PATH | AT_EACCESS);
          close(stack_[--n_]);
          break;
        case Step::kSymlink: {
          openat(cur(), s.name.c_str(),
                 O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
          char target[PATH_MAX];
          if (readlinkat(cur(), s.name.c_str(), target, sizeof(target)) < 0) {
            ok_ = false;
            return;
          }
          break;
        }
      }
    }
  }
  FloorWalk(const FloorWalk&) = delete;
  FloorWalk& operator=(const FloorWalk&) = delete;
  ~FloorWalk() {
    while (n_ > 0) close(stack_[--n_]);
  }

  bool ok() const { return ok_; }
  int cur() const { return n_ == 0 ? root_ : stack_[n_ - 1]; }

 private:
  int root_;
  int stack_[2 * kMaxDepth];
  int n_ = 0;
  bool ok_ = true;
};

// One path as each variant sees it.
struct PathCase {
  std::string path;    // given to capfs and to the raw call
  std::string parent;  // the kernel floor's openat2 for name-acting calls;
                       // empty: the Dir itself
  std::string leaf;    // the last component
  WalkPlan walk;       // the userspace floor's walk to the parent
  bool one_component = false;
};

// "sub/" repeated depth-1 times, then `leaf`.
PathCase DeepCase(int depth, absl::string_view leaf) {
  PathCase c;
  for (int i = 1; i < depth; ++i) {
    absl::StrAppend(&c.parent, c.parent.empty() ? "" : "/", kSub);
    c.walk.steps.push_back({Step::kDescend, std::string(kSub)});
  }
  c.path =
      c.parent.empty() ? std::string(leaf) : absl::StrCat(c.parent, "/", leaf);
  c.leaf = std::string(leaf);
  c.one_component = depth == 1;
  return c;
}

// ---------------------------------------------------------------------------
// The tree: sub/ nested kMaxDepth-1 deep, with "file" and "ren_a" at every
// level; lnk -> sub and sub/lnk -> sub; big/ with kReadDirEntries files.

class BenchTree {
 public:
  BenchTree() {
    root_path_ = tmp_.Join("root");
    capfs_test::MakeDir(AT_FDCWD, root_path_);
    root_fd_ = open(root_path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(root_fd_ >= 0, "open bench root");
    std::string level;
    for (int depth = 1; depth <= kMaxDepth; ++depth) {
      capfs_test::MakeFile(root_fd_, level + "file", "capfs");
      capfs_test::MakeFile(root_fd_, level + "ren_a", "");
      if (depth < kMaxDepth) {
        capfs_test::MakeDir(root_fd_, level + std::string(kSub));
        level += absl::StrCat(kSub, "/");
      }
    }
    capfs_test::MakeSymlink(root_fd_, "sub", "lnk");
    capfs_test::MakeSymlink(root_fd_, "sub", "sub/lnk");
    capfs_test::MakeFile(root_fd_, "written", "capfs");  // WriteFile's
    capfs_test::MakeDir(root_fd_, "big");
    for (int i = 0; i < kReadDirEntries; ++i) {
      char name[32];
      snprintf(name, sizeof(name), "big/entry%05d", i);
      int fd =
          openat(root_fd_, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      CheckOrDie(fd >= 0, name);
      close(fd);
    }
    kernel_ = OpenDir(Resolver::kKernel);
    userspace_ = OpenDir(Resolver::kUserspace);
  }
  ~BenchTree() { close(root_fd_); }

  int root_fd() const { return root_fd_; }
  const std::string& root_path() const { return root_path_; }
  // nullptr when this machine has no such resolver (no openat2 here, or
  // under a tool that does not know it): its benchmarks are skipped.
  const Dir* dir(Resolver r) const {
    return r == Resolver::kKernel ? kernel_.get() : userspace_.get();
  }

 private:
  std::unique_ptr<Dir> OpenDir(Resolver r) {
    DirOptions options;
    options.resolver = r;
    absl::StatusOr<Dir> d = Dir::Open(root_path_, options);
    if (!d.ok() && d.status().code() == absl::StatusCode::kUnimplemented) {
      fprintf(stderr, "fs_bench: no kernel resolver here: %s\n",
              d.status().ToString().c_str());
      return nullptr;
    }
    CheckOrDie(d.ok(), "capfs::Dir::Open of the bench root");
    return std::make_unique<Dir>(*std::move(d));
  }

  capfs_test::TempDir tmp_;
  std::string root_path_;
  int root_fd_ = -1;
  std::unique_ptr<Dir> kernel_;
  std::unique_ptr<Dir> userspace_;
};

// ---------------------------------------------------------------------------
// Measurement.

// Runs `body` (which returns false on failure) once per iteration.
template <typename Body>
void Measure(benchmark::State& state, Body body) {
  for (auto _ : state) {
    if (!body()) {
      state.SkipWithError("call failed");
      break;
    }
  }
}

// Measure, and report the heap allocations per capfs call (`calls` capfs
// calls per iteration).
template <typename Body>
void MeasureCapfs(benchmark::State& state, int calls, Body body) {
  uint64_t before = g_allocations.load(std::memory_order_relaxed);
  Measure(state, body);
  uint64_t after = g_allocations.load(std::memory_order_relaxed);
  double per_call =
      static_cast<double>(after - before) /
      static_cast<double>(std::max<int64_t>(1, state.iterations()) * calls);
  state.counters["allocs_per_op"] = per_call;
}

// Syscall-count mode (--fs_bench_iterations=N, for tools/syscall_counts.py
// under strace): every benchmark runs exactly N iterations, after writing
// its name to /dev/null so that a trace can be cut per benchmark.
int g_fixed_iterations = 0;
int g_marker_fd = -1;

template <typename Fn>
void Add(const std::string& op, int depth, const std::string& variant, Fn fn) {
  std::string name = absl::StrCat(op, "/", depth, "/", variant);
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(
      name.c_str(), [name, fn = std::move(fn)](benchmark::State& s) {
        if (g_marker_fd >= 0) {
          (void)!write(g_marker_fd, name.data(), name.size());
        }
        fn(s);
        if (g_marker_fd >= 0) (void)!write(g_marker_fd, "end", 3);
      });
  if (g_fixed_iterations > 0) b->Iterations(g_fixed_iterations);
}

// ---------------------------------------------------------------------------
// Paired measurement: "Pair/<op>/<depth>/<resolver>" runs capfs, the raw call
// and the floor (and an alternative floor, if any) in turn within every
// iteration, in a rotating order, and times each call with the TSC. The
// medians of the per-call samples are reported as counters (nanoseconds and
// ratios). Noise from the rest of the machine then falls on all variants
// alike, and a preempted call is one outlying sample, not a shifted median:
// on a loaded 2-core machine the ratios from separate benchmarks wander by
// +-15% from run to run, these by a few percent. tools/bench.sh builds its
// table from them.

uint64_t Ticks() {
#if defined(__x86_64__)
  unsigned aux;
  return __rdtscp(&aux);
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<uint64_t>(ts.tv_nsec);
#endif
}

// Ticks per nanosecond, measured once against CLOCK_MONOTONIC.
double TicksPerNs() {
  static const double ratio = [] {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t t0 = Ticks();
    usleep(50 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    uint64_t t1 = Ticks();
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    return static_cast<double>(t1 - t0) / ns;
  }();
  return ratio;
}

struct Variant {
  std::string name;  // "capfs" (first), "raw", "floor", "floor_alt"
  std::function<bool()> run;
};

constexpr size_t kMaxSamples = 1 << 16;

double MedianNs(std::vector<uint64_t>& v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + v.size() / 2;
  std::nth_element(v.begin(), mid, v.end());
  return static_cast<double>(*mid) / TicksPerNs();
}

void RunPaired(benchmark::State& state, const std::vector<Variant>& variants,
               int capfs_calls) {
  const size_t n = variants.size();
  std::vector<std::vector<uint64_t>> samples(n);
  for (auto& v : samples) v.reserve(kMaxSamples);
  uint64_t capfs_allocations = 0;
  size_t rotation = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (k + rotation) % n;
      const uint64_t a0 = g_allocations.load(std::memory_order_relaxed);
      const uint64_t t0 = Ticks();
      const bool ok = variants[i].run();
      const uint64_t t1 = Ticks();
      if (i == 0) {
        capfs_allocations += g_allocations.load(std::memory_order_relaxed) - a0;
      }
      if (!ok) {
        state.SkipWithError((variants[i].name + " failed").c_str());
        return;
      }
      if (samples[i].size() < kMaxSamples) samples[i].push_back(t1 - t0);
    }
    rotation = (rotation + 1) % n;
  }
  double floor_ns = 0;
  double capfs_ns = 0;
  double raw_ns = 0;
  for (size_t i = 0; i < n; ++i) {
    double ns = MedianNs(samples[i]);
    state.counters[variants[i].name + "_ns"] = ns;
    if (variants[i].name == "capfs") capfs_ns = ns;
    if (variants[i].name == "raw") raw_ns = ns;
    if (absl::StartsWith(variants[i].name, "floor") &&
        (floor_ns == 0 || ns < floor_ns)) {
      floor_ns = ns;
    }
  }
  if (raw_ns > 0) state.counters["capfs_over_raw"] = capfs_ns / raw_ns;
  if (floor_ns > 0) state.counters["capfs_over_floor"] = capfs_ns / floor_ns;
  state.counters["allocs_per_op"] =
      static_cast<double>(capfs_allocations) /
      static_cast<double>(std::max<int64_t>(1, state.iterations()) *
                          capfs_calls);
}

void AddPair(const std::string& op, int depth, Resolver r,
             std::vector<Variant> variants, int capfs_calls) {
  Add("Pair/" + op, depth, ResolverName(r),
      [variants = std::move(variants), capfs_calls](benchmark::State& s) {
        RunPaired(s, variants, capfs_calls);
      });
}

// The five variants of one operation. `raw`, `kernel_floor` and
// `userspace_floor` are bool() callables; `capfs` is bool(const Dir&) and
// makes `capfs_calls` capfs calls.
template <typename Raw, typename KernelFloor, typename UserspaceFloor,
          typename Capfs>
void AddOp(const BenchTree& t, const std::string& op, int depth,
           int capfs_calls, Raw raw, KernelFloor kernel_floor,
           UserspaceFloor userspace_floor, Capfs capfs,
           std::function<bool()> kernel_floor_alt = nullptr) {
  Add(op, depth, "raw", [=](benchmark::State& s) { Measure(s, raw); });
  Add(op, depth, "floor:kernel",
      [=](benchmark::State& s) { Measure(s, kernel_floor); });
  Add(op, depth, "floor:userspace",
      [=](benchmark::State& s) { Measure(s, userspace_floor); });
  for (Resolver r : {Resolver::kKernel, Resolver::kUserspace}) {
    const Dir* dir = t.dir(r);
    if (dir == nullptr) continue;
    Add(op, depth, "capfs:" + ResolverName(r), [=](benchmark::State& s) {
      MeasureCapfs(s, capfs_calls, [&] { return capfs(*dir); });
    });
    std::vector<Variant> v = {{"capfs", [=] { return capfs(*dir); }},
                              {"raw", raw}};
    if (r == Resolver::kKernel) {
      v.push_back({"floor", kernel_floor});
      if (kernel_floor_alt) v.push_back({"floor_alt", kernel_floor_alt});
    } else {
      v.push_back({"floor", userspace_floor});
    }
    AddPair(op, depth, r, std::move(v), capfs_calls);
  }
}

// The kernel floor of a call that acts on a name: openat2 of the parent (none
// when it is the Dir itself), `at(parent_fd, leaf)`, close.
template <typename At>
bool KernelAtParent(int root, const PathCase& c, At at) {
  if (c.parent.empty()) return at(root, c.leaf.c_str());
  int p = Openat2(root, c.parent.c_str(), O_PATH | O_DIRECTORY);
  if (p < 0) return false;
  bool ok = at(p, c.leaf.c_str());
  close(p);
  return ok;
}

// The userspace floor of the same: the walk to the parent, `at`, the closes.
template <typename At>
bool UserspaceAtParent(int root, const PathCase& c, At at) {
  FloorWalk w(root, c.walk);
  return w.ok() && at(w.cur(), c.leaf.c_str());
}

bool CloseIfOpen(int fd) {
  if (fd < 0) return false;
  close(fd);
  return true;
}

// ---------------------------------------------------------------------------
// OpenAt: O_RDONLY of an existing file, then close.

void AddOpen(const BenchTree& t, const std::string& op, int depth,
             const PathCase& c) {
  const int root = t.root_fd();
  AddOp(
      t, op, depth, 1,
      [=] {
        return CloseIfOpen(openat(root, c.path.c_str(), O_RDONLY | O_CLOEXEC));
      },
      [=] {
        return CloseIfOpen(c.one_component
                               ? openat(root, c.path.c_str(),
                                        O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                               : Openat2(root, c.path.c_str(), O_RDONLY));
      },
      [=] {
        int fd;
        {
          FloorWalk w(root, c.walk);
          if (!w.ok()) return false;
          fd = openat(w.cur(), c.leaf.c_str(),
                      O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        }
        return CloseIfOpen(fd);
      },
      [=](const Dir& d) { return d.OpenAt(c.path, O_RDONLY).ok(); });
  // The second raw baseline: openat2(RESOLVE_BENEATH) at every depth (at
  // depth 1 it costs more than the O_NOFOLLOW open that capfs issues there).
  Add(op, depth, "openat2", [=](benchmark::State& s) {
    Measure(s, [&] {
      return CloseIfOpen(Openat2(root, c.path.c_str(), O_RDONLY));
    });
  });
}

// ---------------------------------------------------------------------------
// Stat and Lstat of a regular file. Two confined sequences of three syscalls
// reach the metadata: openat2(O_PATH) of the target + fstat + close
// ("floor:kernel"), or openat2 of the parent + fstatat(AT_SYMLINK_NOFOLLOW)
// of the leaf + close ("floor:kernel-parent"; for Stat, a symlink leaf would
// then need more). tools/bench.sh takes the cheaper one as the floor.

void AddStat(const BenchTree& t, int depth, bool follow) {
  const std::string op = follow ? "Stat" : "Lstat";
  const PathCase c = DeepCase(depth, "file");
  const int root = t.root_fd();
  const int raw_flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
  auto lstat_at = [](int dirfd, const char* leaf) {
    struct stat st;
    return fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
  };
  AddOp(
      t, op, depth, 1,
      [=] {
        struct stat st;
        return fstatat(root, c.path.c_str(), &st, raw_flags) == 0;
      },
      [=] {
        if (c.one_component) return lstat_at(root, c.path.c_str());
        int fd =
            Openat2(root, c.path.c_str(), O_PATH | (follow ? 0 : O_NOFOLLOW));
        if (fd < 0) return false;
        struct stat st;
        bool ok = fstat(fd, &st) == 0;
        close(fd);
        return ok;
      },
      [=] { return UserspaceAtParent(root, c, lstat_at); },
      [=](const Dir& d) {
        return (follow ? d.Stat(c.path) : d.Lstat(c.path)).ok();
      },
      c.one_component ? std::function<bool()>()
                      : [=] { return KernelAtParent(root, c, lstat_at); });
  if (!c.one_component) {
    Add(op, depth, "floor:kernel-parent", [=](benchmark::State& s) {
      Measure(s, [&] { return KernelAtParent(root, c, lstat_at); });
    });
  }
}

// ---------------------------------------------------------------------------
// Name-acting calls. Each iteration leaves the tree as it found it, so each
// makes two calls: Mkdir + Rmdir, create (OpenAt O_CREAT|O_EXCL) + Unlink,
// and a Rename there and back.

void AddMkdirRmdir(const BenchTree& t, int depth) {
  const PathCase c = DeepCase(depth, "newdir");
  const int root = t.root_fd();
  auto mkdir_at = [](int fd, const char* name) {
    return mkdirat(fd, name, 0755) == 0;
  };
  auto rmdir_at = [](int fd, const char* name) {
    return unlinkat(fd, name, AT_REMOVEDIR) == 0;
  };
  AddOp(
      t, "MkdirRmdir", depth, 2,
      [=] {
        return mkdir_at(root, c.path.c_str()) && rmdir_at(root, c.path.c_str());
      },
      [=] {
        return KernelAtParent(root, c, mkdir_at) &&
               KernelAtParent(root, c, rmdir_at);
      },
      [=] {
        return UserspaceAtParent(root, c, mkdir_at) &&
               UserspaceAtParent(root, c, rmdir_at);
      },
      [=](const Dir& d) {
        return d.Mkdir(c.path, 0755).ok() && d.Rmdir(c.path).ok();
      });
}

void AddCreateUnlink(const BenchTree& t, int depth) {
  const PathCase c = DeepCase(depth, "newfile");
  const int root = t.root_fd();
  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  auto unlink_at = [](int fd, const char* name) {
    return unlinkat(fd, name, 0) == 0;
  };
  AddOp(
      t, "CreateUnlink", depth, 2,
      [=] {
        return CloseIfOpen(openat(root, c.path.c_str(), kCreate, 0644)) &&
               unlink_at(root, c.path.c_str());
      },
      [=] {
        int fd = c.one_component
                     ? openat(root, c.path.c_str(), kCreate | O_NOFOLLOW, 0644)
                     : Openat2(root, c.path.c_str(), kCreate, 0644);
        return CloseIfOpen(fd) && KernelAtParent(root, c, unlink_at);
      },
      [=] {
        int fd;
        {
          FloorWalk w(root, c.walk);
          if (!w.ok()) return false;
          fd = openat(w.cur(), c.leaf.c_str(), kCreate | O_NOFOLLOW, 0644);
        }
        return CloseIfOpen(fd) && UserspaceAtParent(root, c, unlink_at);
      },
      [=](const Dir& d) {
        return d.OpenAt(c.path, O_WRONLY | O_CREAT | O_EXCL, 0644).ok() &&
               d.Unlink(c.path).ok();
      });
}

// ren_a -> ren_b -> ren_a in one directory. Both names have the same parent,
// so one parent resolution serves both ends of each rename.
void AddRename(const BenchTree& t, int depth) {
  const PathCase a = DeepCase(depth, "ren_a");
  const PathCase b = DeepCase(depth, "ren_b");
  const int root = t.root_fd();
  auto there_and_back = [](int fd, const char* from, const char* to) {
    return renameat(fd, from, fd, to) == 0 && renameat(fd, to, fd, from) == 0;
  };
  auto rename_at = [](int fd, const char* from, const char* to) {
    return renameat(fd, from, fd, to) == 0;
  };
  AddOp(
      t, "Rename", depth, 2,
      [=] { return there_and_back(root, a.path.c_str(), b.path.c_str()); },
      [=] {
        return KernelAtParent(root, a,
                              [&](int p, const char* leaf) {
                                return rename_at(p, leaf, b.leaf.c_str());
                              }) &&
               KernelAtParent(root, b, [&](int p, const char* leaf) {
                 return rename_at(p, leaf, a.leaf.c_str());
               });
      },
      [=] {
        return UserspaceAtParent(root, a,
                                 [&](int p, const char* leaf) {
                                   return rename_at(p, leaf, b.leaf.c_str());
                                 }) &&
               UserspaceAtParent(root, b, [&](int p, const char* leaf) {
                 return rename_at(p, leaf, a.leaf.c_str());
               });
      },
      [=](const Dir& d) {
        return d.Rename(a.path, d, b.path).ok() &&
               d.Rename(b.path, d, a.path).ok();
      });
}

// ---------------------------------------------------------------------------
// ReadDir of kReadDirEntries entries against an open + getdents64 loop that
// looks at every entry's name and type + close.

void AddReadDir(const BenchTree& t) {
  const int root = t.root_fd();
  // capfs's batch size, allocated once, outside the timed calls.
  auto buf = std::make_shared<std::vector<char>>(64 * 1024);
  std::function<bool()> raw = [root, buf] {
    int fd = openat(root, "big", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t entries = 0;
    size_t checksum = 0;
    for (;;) {
      long n = syscall(SYS_getdents64, fd, buf->data(), buf->size());
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<struct dirent64*>(buf->data() + off);
        off += d->d_reclen;
        absl::string_view name(d->d_name);
        if (name == "." || name == "..") continue;
        ++entries;
        checksum += name.size() + d->d_type;
      }
    }
    close(fd);
    benchmark::DoNotOptimize(checksum);
    return entries == kReadDirEntries;
  };
  Add("ReadDir", 1, "raw", [=](benchmark::State& s) { Measure(s, raw); });
  for (Resolver r : {Resolver::kKernel, Resolver::kUserspace}) {
    const Dir* dir = t.dir(r);
    if (dir == nullptr) continue;
    auto capfs = [dir] {
      absl::StatusOr<std::vector<capfs::DirEntry>> e = dir->ReadDir("big");
      return e.ok() && e->size() == kReadDirEntries;
    };
    Add("ReadDir", 1, "capfs:" + ResolverName(r),
        [=](benchmark::State& s) { MeasureCapfs(s, 1, capfs); });
    // One component: the floor is the raw call itself.
    AddPair("ReadDir", 1, r, {{"capfs", capfs}, {"raw", raw}}, 1);
  }
}

// ---------------------------------------------------------------------------
// The calls of DESIGN.md 6.1 at one component, paired with the raw call that
// does the same on the same file (capfs first, then raw, in rotation). The
// raw truncate(2) runs from the tree's root, made the current directory
// once, so that it walks one component too. WriteFile's raw peer is the
// plain open(O_TRUNC) + write + close, which is not atomic: the ratio is
// the price of atomicity (a temporary name, a stat, a permission check, a
// rename). RemoveAll's is mkdir + rmdir of an empty directory.
//
// Chown, SetTimes, Truncate and WriteFile also have a floor: the fewest
// syscalls that do what their contract asks, written by hand for a name
// known beforehand to be a regular file. No single syscall changes the
// owner or times of what a name reaches with a final symlink followed and
// stays confined (fchownat and utimensat with AT_SYMLINK_NOFOLLOW change a
// symlink itself), so their floor is an O_PATH|O_NOFOLLOW open, the call on
// that descriptor (AT_EMPTY_PATH), a close. Truncate's adds what opening the
// inode reached for writing through a verified procfs path takes (fstat,
// statfs of /proc/self/fd, the reopen, fstat to compare, ftruncate, close).
// WriteFile's is an atomic replacement that keeps the old file's permission
// bits after checking write permission on it (fstatat, faccessat2, create a
// temporary name, fchmod, write, rename over, close).

// `act(fd)` on an O_PATH|O_NOFOLLOW descriptor of `name` in `root`.
template <typename Act>
bool OnOpenedName(int root, const char* name, Act act) {
  int fd = openat(root, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = act(fd);
  close(fd);
  return ok;
}

void AddNewCalls(const BenchTree& t) {
  const int root = t.root_fd();
  CheckOrDie(fchdir(root) == 0, "fchdir bench root");
  auto pair = [&](const std::string& op, int calls,
                  std::function<bool(const Dir&)> capfs,
                  std::function<bool()> raw,
                  std::function<bool()> floor = nullptr) {
    for (Resolver r : {Resolver::kKernel, Resolver::kUserspace}) {
      const Dir* dir = t.dir(r);
      if (dir == nullptr) continue;
      std::vector<Variant> v = {{"capfs", [=] { return capfs(*dir); }},
                                {"raw", raw}};
      if (floor) v.push_back({"floor", floor});
      AddPair(op, 1, r, std::move(v), calls);
    }
  };
  static const struct timespec kTimes[2] = {{1000000, 0}, {2000000, 0}};
  pair(
      "Chmod", 1, [](const Dir& d) { return d.Chmod("file", 0644).ok(); },
      [root] { return fchmodat(root, "file", 0644, 0) == 0; });
  pair(
      "Chown", 1, [](const Dir& d) { return d.Chown("file", 0, 0).ok(); },
      [root] { return fchownat(root, "file", 0, 0, 0) == 0; },
      [root] {
        return OnOpenedName(root, "file", [](int fd) {
          return fchownat(fd, "", 0, 0, AT_EMPTY_PATH) == 0;
        });
      });
  pair(
      "Lchown", 1, [](const Dir& d) { return d.Lchown("file", 0, 0).ok(); },
      [root] {
        return fchownat(root, "file", 0, 0, AT_SYMLINK_NOFOLLOW) == 0;
      });
  pair(
      "SetTimes", 1,
      [](const Dir& d) {
        return d
            .SetTimes("file", absl::TimeFromTimespec(kTimes[0]),
                      absl::TimeFromTimespec(kTimes[1]))
            .ok();
      },
      [root] { return utimensat(root, "file", kTimes, 0) == 0; },
      [root] {
        return OnOpenedName(root, "file", [](int fd) {
          return utimensat(fd, "", kTimes, AT_EMPTY_PATH) == 0;
        });
      });
  pair(
      "Truncate", 1, [](const Dir& d) { return d.Truncate("file", 5).ok(); },
      [] { return truncate("file", 5) == 0; },
      [root] {
        return OnOpenedName(root, "file", [](int fd) {
          struct stat st;
          struct statfs fs;
          char proc[64];
          if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
              statfs("/proc/self/fd", &fs) != 0 ||
              fs.f_type != PROC_SUPER_MAGIC) {
            return false;
          }
          snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
          int w = open(proc, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
          if (w < 0) return false;
          struct stat now;
          bool ok = fstat(w, &now) == 0 && now.st_dev == st.st_dev &&
                    now.st_ino == st.st_ino && ftruncate(w, 5) == 0;
          close(w);
          return ok;
        });
      });
  pair(
      "ReadFile", 1, [](const Dir& d) { return d.ReadFile("file").ok(); },
      [root] {
        int fd = openat(root, "file", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
        }
        close(fd);
        return n == 0;
      });
  pair(
      "WriteFile", 1,
      [](const Dir& d) { return d.WriteFile("written", "capfs").ok(); },
      [root] {
        int fd = openat(root, "written",
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return false;
        bool ok = write(fd, "capfs", 5) == 5;
        close(fd);
        return ok;
      },
      [root] {
        struct stat st;
        if (fstatat(root, "written", &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) ||
            syscall(SYS_faccessat2, root, "written", W_OK,
                    AT_SYMLINK_NOFOLLOW) != 0) {
          return false;
        }
        // A name of its own each time, as concurrent writers need.
        static uint64_t counter = 0;
        char temp[32];
        snprintf(
            temp, sizeof(temp), ".floor-%016llx",
            static_cast<unsigned long long>(++counter * 0x9e3779b97f4a7c15ULL));
        int fd =
            openat(root, temp,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return false;
        bool ok = fchmod(fd, st.st_mode & 07777) == 0 &&
                  write(fd, "capfs", 5) == 5 &&
                  renameat(root, temp, root, "written") == 0;
        close(fd);
        return ok;
      });
  pair(
      "MkdirAllExisting", 1,
      [](const Dir& d) { return d.MkdirAll("sub").ok(); },
      [root] {
        struct stat st;
        return mkdirat(root, "sub", 0777) != 0 && errno == EEXIST &&
               fstatat(root, "sub", &st, 0) == 0 && S_ISDIR(st.st_mode);
      });
  pair(
      "LinkUnlink", 2,
      [](const Dir& d) {
        return d.Link("file", d, "hard").ok() && d.Unlink("hard").ok();
      },
      [root] {
        return linkat(root, "file", root, "hard", 0) == 0 &&
               unlinkat(root, "hard", 0) == 0;
      });
  pair(
      "RenameNoReplace", 2,
      [](const Dir& d) {
        return d.Rename("ren_a", d, "ren_b", capfs::RenameMode::kNoReplace)
                   .ok() &&
               d.Rename("ren_b", d, "ren_a", capfs::RenameMode::kNoReplace)
                   .ok();
      },
      [root] {
        return renameat2(root, "ren_a", root, "ren_b", RENAME_NOREPLACE) == 0 &&
               renameat2(root, "ren_b", root, "ren_a", RENAME_NOREPLACE) == 0;
      });
  pair(
      "MkdirRemoveAll", 2,
      [](const Dir& d) { return d.Mkdir("ra").ok() && d.RemoveAll("ra").ok(); },
      [root] {
        return mkdirat(root, "ra", 0755) == 0 &&
               unlinkat(root, "ra", AT_REMOVEDIR) == 0;
      });
}

void RegisterAll(const BenchTree& t) {
  for (int depth : kDepths) {
    AddOpen(t, "OpenAt", depth, DeepCase(depth, "file"));
  }
  // sub/sub/../sub/sub/file: "file" at depth 4, with a ".." on the way.
  {
    PathCase c;
    c.path = "sub/sub/../sub/sub/file";
    c.leaf = "file";
    c.walk.steps = {{Step::kDescend, "sub"},
                    {Step::kDescend, "sub"},
                    {Step::kDotDot, ""},
                    {Step::kDescend, "sub"},
                    {Step::kDescend, "sub"}};
    AddOpen(t, "OpenAtDotDot", 4, c);
  }
  // lnk/lnk/sub/file through lnk -> sub and sub/lnk -> sub: "file" at depth 4.
  {
    PathCase c;
    c.path = "lnk/lnk/sub/file";
    c.leaf = "file";
    c.walk.steps = {{Step::kSymlink, "lnk"},
                    {Step::kDescend, "sub"},
                    {Step::kSymlink, "lnk"},
                    {Step::kDescend, "sub"},
                    {Step::kDescend, "sub"}};
    AddOpen(t, "OpenAtSymlinks", 4, c);
  }
  for (int depth : kDepths) AddStat(t, depth, /*follow=*/true);
  for (int depth : kDepths) AddStat(t, depth, /*follow=*/false);
  for (int depth : kDepths) AddMkdirRmdir(t, depth);
  for (int depth : kDepths) AddRename(t, depth);
  for (int depth : kDepths) AddCreateUnlink(t, depth);
  AddReadDir(t);
  AddNewCalls(t);
}

}  // namespace
}  // namespace capfs_bench

int main(int argc, char** argv) {
  // Our one flag, taken out before Google Benchmark sees the rest.
  constexpr absl::string_view kIterationsFlag = "--fs_bench_iterations=";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg(argv[i]);
    if (absl::StartsWith(arg, kIterationsFlag)) {
      capfs_bench::g_fixed_iterations = atoi(argv[i] + kIterationsFlag.size());
      capfs_bench::g_marker_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  capfs_bench::BenchTree tree;
  capfs_bench::RegisterAll(tree);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

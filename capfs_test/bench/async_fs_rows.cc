// The rows async_fs_rows.h describes.

#include "capfs_test/bench/async_fs_rows.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/testing/temp_tree.h"

namespace capfs {
namespace runtime {
namespace {

using capfs_test::TempDir;

constexpr int kInflight = 1000;

enum class Op { kStat, kOpenAt, kOpenAtPath };

const char* OpName(Op op) {
  switch (op) {
    case Op::kStat:
      return "stat";
    case Op::kOpenAt:
      return "openat";
    case Op::kOpenAtPath:
      return "openat_path";
  }
  return "?";
}

int OpenFlags(Op op) { return op == Op::kOpenAtPath ? O_PATH : O_RDONLY; }

// The tree: at each depth, kInflight files one directory chain down.
class Tree {
 public:
  Tree() {
    for (int depth : {1, 16}) {
      std::string dir;
      for (int i = 1; i < depth; ++i) absl::StrAppend(&dir, "d", i, "/");
      if (!dir.empty()) {
        std::string cmd =
            absl::StrCat("mkdir -p '", temp_.path(), "/", dir, "'");
        capfs_test::CheckOrDie(system(cmd.c_str()) == 0, "mkdir -p");
      }
      std::vector<std::string>& paths = paths_[depth];
      for (int i = 0; i < kInflight; ++i) {
        paths.push_back(absl::StrCat(dir, "f", i));
        int fd = open(absl::StrCat(temp_.path(), "/", paths.back()).c_str(),
                      O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        capfs_test::CheckOrDie(fd >= 0, "create");
        close(fd);
      }
    }
    absl::StatusOr<Dir> dir = Dir::Open(temp_.path());
    capfs_test::CheckOrDie(dir.ok(), "Dir::Open");
    dir_.emplace(*std::move(dir));
  }
  const Dir& dir() const { return *dir_; }
  const std::vector<std::string>& paths(int depth) { return paths_[depth]; }

 private:
  TempDir temp_;
  std::map<int, std::vector<std::string>> paths_;
  std::optional<Dir> dir_;
};

// Made by the first benchmark that needs it; RemoveAsyncFsTree removes it.
Tree* g_tree = nullptr;

Tree& TheTree() {
  if (g_tree == nullptr) g_tree = new Tree();
  return *g_tree;
}

void Fail(benchmark::State& state, const absl::Status& s) {
  state.SkipWithError(s.ToString().c_str());
}

absl::Status SyncCall(const Dir& dir, Op op, const std::string& path) {
  if (op == Op::kStat) return dir.Stat(path).status();
  absl::StatusOr<Fd> fd = dir.OpenAt(path, OpenFlags(op));
  return fd.status();  // closed here
}

void BM_Sync(benchmark::State& state, Op op, int depth, bool inflight) {
  const Dir& dir = TheTree().dir();
  const std::vector<std::string>& paths = TheTree().paths(depth);
  for (auto _ : state) {
    if (inflight) {
      for (const std::string& p : paths) {
        if (absl::Status s = SyncCall(dir, op, p); !s.ok())
          return Fail(state, s);
      }
    } else if (absl::Status s = SyncCall(dir, op, paths[0]); !s.ok()) {
      return Fail(state, s);
    }
  }
  state.SetItemsProcessed(state.iterations() * (inflight ? kInflight : 1));
}

void ReportPaths(benchmark::State& state, const AsyncFsCounts& before,
                 uint64_t calls) {
  const AsyncFsCounts after = AsyncFsCountsNow();
  auto per_call = [&](uint64_t a, uint64_t b) {
    return calls == 0 ? 0.0 : static_cast<double>(a - b) / calls;
  };
  state.counters["on_loop"] = per_call(after.on_loop, before.on_loop);
  state.counters["io_uring"] = per_call(after.io_uring, before.io_uring);
  state.counters["workers"] = per_call(after.workers, before.workers);
}

void BM_Async(benchmark::State& state, Op op, int depth, bool inflight,
              AsyncFsOptions paths_allowed) {
  const Dir& dir = TheTree().dir();
  const std::vector<std::string>& paths = TheTree().paths(depth);
  LoopOptions options;
  options.fs = paths_allowed;
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        for (auto _ : state) {
          // Each call awaited where it is made, as a program would (no
          // helper coroutine around it); an opened descriptor is closed at
          // the end of the statement.
          if (!inflight) {
            absl::Status r;
            if (op == Op::kStat) {
              r = (co_await Stat(dir, paths[0])).status();
            } else {
              r = (co_await OpenAt(dir, paths[0], OpenFlags(op))).status();
            }
            if (!r.ok()) co_return r;
            continue;
          }
          absl::Status r =
              co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
                for (const std::string& p : paths) {
                  scope.Spawn([&dir, op, &p]() -> Task<absl::Status> {
                    if (op == Op::kStat) {
                      co_return (co_await Stat(dir, p)).status();
                    }
                    co_return (co_await OpenAt(dir, p, OpenFlags(op))).status();
                  });
                }
                co_return co_await scope.Join();
              });
          if (!r.ok()) co_return r;
        }
        co_return absl::OkStatus();
      }(),
      options);
  if (!s.ok()) return Fail(state, s);
  const uint64_t calls = state.iterations() * (inflight ? kInflight : 1);
  state.SetItemsProcessed(calls);
  ReportPaths(state, before, calls);
}

// liburing by hand: openat2 with the open_how capfs gives the kernel (the
// Dir's RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), then close.
void BM_Liburing(benchmark::State& state, Op op, int depth, bool inflight) {
  if (op == Op::kStat) return state.SkipWithError("no liburing stat here");
  const Dir& dir = TheTree().dir();
  const std::vector<std::string>& paths = TheTree().paths(depth);
  struct io_uring ring;
  // The ring capfs sets up (capfs/sys/uring.cc): plain before Linux 5.19.
  int r = -EINVAL;
  for (unsigned coop :
       {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0u}) {
    struct io_uring_params params = {};
    params.flags = IORING_SETUP_CQSIZE | coop;
    params.cq_entries = 4096;
    r = io_uring_queue_init_params(256, &ring, &params);
    if (r != -EINVAL) break;
  }
  if (r < 0) return state.SkipWithError("io_uring_queue_init");
  struct open_how how = {};
  how.flags = OpenFlags(op) | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const bool force_async = op == Op::kOpenAt;  // as capfs: see async_dir.cc
  const size_t batch = inflight ? paths.size() : 1;
  for (auto _ : state) {
    size_t submitted = 0, completed = 0;
    while (completed < batch) {
      while (submitted < batch && submitted - completed < 2048) {
        struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        if (sqe == nullptr) break;
        io_uring_prep_openat2(sqe, dir.fd(), paths[submitted].c_str(), &how);
        if (force_async) io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
        ++submitted;
      }
      io_uring_submit_and_wait(&ring, 1);
      struct io_uring_cqe* cqe;
      while (io_uring_peek_cqe(&ring, &cqe) == 0) {
        if (cqe->res >= 0) close(cqe->res);
        io_uring_cqe_seen(&ring, cqe);
        ++completed;
      }
    }
  }
  io_uring_queue_exit(&ring);
  state.SetItemsProcessed(state.iterations() * batch);
}

// A loop of its own (Run) per iteration, making one O_PATH open, as a
// program that starts a loop per request would: with the open on the loop,
// through the ring its thread kept from the last iteration (keep_ring), or
// through a ring set up anew (the default).
enum class RunRing { kNone, kKept, kFresh };

void BM_RunOnce(benchmark::State& state, RunRing ring) {
  const Dir& dir = TheTree().dir();
  const std::string& path = TheTree().paths(1)[0];
  LoopOptions options;
  if (ring != RunRing::kNone) {
    options.fs.on_loop = false;
    options.fs.keep_ring = ring == RunRing::kKept;
  }
  const AsyncFsCounts before = AsyncFsCountsNow();
  for (auto _ : state) {
    absl::Status s = Run(
        [&]() -> Task<absl::Status> {
          co_return (co_await OpenAt(dir, path, O_PATH)).status();
        }(),
        options);
    if (!s.ok()) return Fail(state, s);
  }
  ReleaseThreadRing();
  state.SetItemsProcessed(state.iterations());
  ReportPaths(state, before, state.iterations());
  const AsyncFsCounts after = AsyncFsCountsNow();
  state.counters["rings_set_up"] =
      static_cast<double>(after.rings_set_up - before.rings_set_up) /
      state.iterations();
}

void Repeated(benchmark::internal::Benchmark* b) {
  b->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
}

}  // namespace

void RegisterAsyncFsBenchmarks() {
  using benchmark::RegisterBenchmark;
  Repeated(RegisterBenchmark("async_fs_run/openat_path/loop", BM_RunOnce,
                             RunRing::kNone));
  Repeated(RegisterBenchmark("async_fs_run/openat_path/kept_ring", BM_RunOnce,
                             RunRing::kKept));
  Repeated(RegisterBenchmark("async_fs_run/openat_path/new_ring", BM_RunOnce,
                             RunRing::kFresh));
  for (Op op : {Op::kStat, Op::kOpenAt, Op::kOpenAtPath}) {
    for (int depth : {1, 16}) {
      for (bool inflight : {false, true}) {
        std::string tail = absl::StrCat(OpName(op), "/", depth,
                                        inflight ? "/inflight:1000" : "");
        Repeated(RegisterBenchmark(("sync_fs/" + tail).c_str(), BM_Sync, op,
                                   depth, inflight));
        Repeated(RegisterBenchmark(("async_fs/" + tail).c_str(), BM_Async, op,
                                   depth, inflight, AsyncFsOptions{}));
        Repeated(RegisterBenchmark(("async_fs_uring/" + tail).c_str(), BM_Async,
                                   op, depth, inflight,
                                   AsyncFsOptions{false, true}));
        Repeated(RegisterBenchmark(("async_fs_workers/" + tail).c_str(),
                                   BM_Async, op, depth, inflight,
                                   AsyncFsOptions{false, false}));
        if (op != Op::kStat) {
          Repeated(RegisterBenchmark(("liburing/" + tail).c_str(), BM_Liburing,
                                     op, depth, inflight));
        }
      }
    }
  }
}

void RemoveAsyncFsTree() {
  delete g_tree;
  g_tree = nullptr;
}

void AsyncFsRatios::Record(
    const std::vector<benchmark::BenchmarkReporter::Run>& runs) {
  using Run = benchmark::BenchmarkReporter::Run;
  for (const Run& run : runs) {
    const std::string& name = run.run_name.function_name;
    if (!absl::StartsWith(name, "sync_fs/") &&
        !absl::StartsWith(name, "async_fs") &&
        !absl::StartsWith(name, "liburing/")) {
      continue;  // another binary's row
    }
    if (run.error_occurred) continue;
    if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") {
      continue;
    }
    auto items = run.counters.find("items_per_second");
    if (items == run.counters.end() || items->second.value == 0) continue;
    per_call_ns_[name] = 1e9 / items->second.value;
  }
}

void AsyncFsRatios::Print() const {
  if (per_call_ns_.empty()) return;
  std::printf(
      "\nAwaitable Dir calls, ratios of time per call (medians; lower is "
      "better):\n");
  for (const char* op : {"stat", "openat", "openat_path"}) {
    for (const char* depth : {"1", "16"}) {
      for (const char* inflight : {"", "/inflight:1000"}) {
        std::string tail = absl::StrCat(op, "/", depth, inflight);
        double target = 0;
        if (std::string(inflight).empty()) target = 1.3;
        if (std::string(op) == "stat" && !std::string(inflight).empty()) {
          target = 1.0;
        }
        Ratio("async_fs/" + tail, "sync_fs/" + tail, target);
        Ratio("async_fs_workers/" + tail, "sync_fs/" + tail, 0);
        if (std::string(op) != "stat") {
          Ratio("async_fs_uring/" + tail, "liburing/" + tail, 1.10);
          Ratio("async_fs/" + tail, "liburing/" + tail, 0);
        }
      }
    }
  }
  Ratio("async_fs_run/openat_path/kept_ring", "async_fs_run/openat_path/loop",
        0);
  Ratio("async_fs_run/openat_path/new_ring", "async_fs_run/openat_path/loop",
        0);
  const AsyncFsCounts c = AsyncFsCountsNow();
  std::printf(
      "\nio_uring available: %s. Paths that served the awaitable calls "
      "(AsyncFsCountsNow): on the loop %llu, io_uring %llu, workers %llu; "
      "loop misses %llu, io_uring misses %llu; loop rings set up %llu, "
      "reused %llu\n",
      IoUringAvailable() ? "yes" : "no",
      static_cast<unsigned long long>(c.on_loop),
      static_cast<unsigned long long>(c.io_uring),
      static_cast<unsigned long long>(c.workers),
      static_cast<unsigned long long>(c.loop_misses),
      static_cast<unsigned long long>(c.io_uring_misses),
      static_cast<unsigned long long>(c.rings_set_up),
      static_cast<unsigned long long>(c.rings_reused));
}

void AsyncFsRatios::Ratio(const std::string& num, const std::string& den,
                          double target) const {
  auto a = per_call_ns_.find(num), b = per_call_ns_.find(den);
  if (a == per_call_ns_.end() || b == per_call_ns_.end()) return;
  double r = a->second / b->second;
  std::printf("  %-36s / %-30s %7.3f  (%.2f / %.2f us)", num.c_str(),
              den.c_str(), r, a->second / 1e3, b->second / 1e3);
  if (target > 0) {
    std::printf("  target <= %.2f: %s", target, r <= target ? "met" : "MISSED");
  }
  std::printf("\n");
}

}  // namespace runtime
}  // namespace capfs

// The awaitable Dir call benchmarks (capfs/runtime/async_dir.h): the
// awaitable calls against the sync call on the same thread, against
// RunBlocking of the sync call (the path every awaitable call took before:
// the workers), and against liburing used directly, registered into one
// binary so that every ratio comes from one run. Both runtime_bench (with the
// runtime's other rows) and async_fs_bench (these rows alone) run them:
//
//   bazel run -c opt //capfs_test/bench:runtime_bench    # every row
//   bazel run -c opt //capfs_test/bench:async_fs_bench   # these rows alone
//
// (runtime_bench's --benchmark_filter='_fs|liburing' picks these rows too.)
//
// Names pair up: async_fs/<op>/<depth> beside sync_fs/<op>/<depth>, with
// /inflight:1000 for 1,000 calls at once (1,000 tasks over 1,000 files
// against a sync loop over the same files; time per call). <op> is stat,
// openat (O_RDONLY, then close) or openat_path (O_PATH, then close); depth
// 1 is a file in the Dir, depth 16 a file 15 directories down, all on
// tmpfs (in the dentry cache). Variants:
//   async_fs/...            the defaults: the loop, then io_uring, then workers
//   async_fs_uring/...      the loop's path off: io_uring serves
//   async_fs_workers/...    only the workers: RunBlocking of the sync call
//   liburing/...            liburing by hand, the same submission capfs makes
//                           (openat2 with the Dir's open_how; IOSQE_ASYNC for
//                           a plain open) on a ring set up as capfs's is
//                           (COOP_TASKRUN | TASKRUN_FLAG, which speed up
//                           liburing's own loop too)
// Each async benchmark reports which path served its calls (counters
// on_loop, io_uring, workers per call). AsyncFsRatios prints the ratios the
// issue set, with their targets.
//
// And a loop per call, as a program running one Run per request pays it:
//   async_fs_run/openat_path/loop       one O_PATH open, on the loop
//   async_fs_run/openat_path/new_ring   through a ring each loop sets up
//                                       and closes (the default)
//   async_fs_run/openat_path/kept_ring  through the ring the thread kept
//                                       from the last loop (keep_ring)
// (counter rings_set_up: rings set up per loop), with the two ring rows'
// ratios to the loop row.

#ifndef CAPFS_TEST_BENCH_ASYNC_FS_ROWS_H_
#define CAPFS_TEST_BENCH_ASYNC_FS_ROWS_H_

#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

namespace capfs {
namespace runtime {

// Registers every row above (sync_fs, async_fs, async_fs_uring,
// async_fs_workers, liburing, async_fs_run; 5 repetitions each, wall time). The
// tree of files they use is made by the first of them that runs.
void RegisterAsyncFsBenchmarks();

// Removes the tree of files the rows made, if any (call once the benchmarks
// have run; a later row would make a new one).
void RemoveAsyncFsTree();

// Collects the rows' time per call from a reporter's runs, and prints the
// ratios of the pairs.
class AsyncFsRatios {
 public:
  // Keeps each row's time per call (ns): its median when it was repeated.
  void Record(const std::vector<benchmark::BenchmarkReporter::Run>& runs);
  // Prints the ratios of the pairs that ran (with the targets) and
  // which paths served the awaitable calls. Prints nothing when no row ran.
  void Print() const;

 private:
  void Ratio(const std::string& num, const std::string& den,
             double target) const;

  std::map<std::string, double> per_call_ns_;  // by benchmark name
};

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_TEST_BENCH_ASYNC_FS_ROWS_H_

// Which path serves an awaitable Dir call (async_dir.h), and how to tell.
//
// Each call is tried on the fastest path that can serve it without blocking
// the loop, in this order:
//   1. on the loop thread itself: the Dir call made so that it never blocks
//      (openat2 with RESOLVE_CACHED; see docs/runtime.md for which calls);
//   2. through the loop's io_uring, whose kernel workers may block;
//   3. on the loop's worker pool (RunBlocking), as every call was before.
// A burst of Stats of plain names on tmpfs is shared between 1 and 3: one
// worker of the pool and the loop make the fstatat calls, each counted
// where it was made (docs/runtime.md).
// A call that path 1 cannot finish (a walk not in the dentry cache, an
// answer only the blocking call settles) goes on to 2 or 3; so does one that
// io_uring cannot (then 3). Each path gives exactly the Dir call's result.
//
//   AsyncFsCounts before = AsyncFsCountsNow();
//   ... awaitable calls ...
//   AsyncFsCounts after = AsyncFsCountsNow();
//   // after.on_loop - before.on_loop calls finished on the loop, ...
//
// LoopOptions::fs (loop.h) turns paths 1 and 2 off for one loop, and the
// environment variable CAPFS_IO_URING=0 turns io_uring off for the process.

#ifndef CAPFS_RUNTIME_FS_PATHS_H_
#define CAPFS_RUNTIME_FS_PATHS_H_

#include <stdint.h>

namespace capfs {
namespace runtime {

// Which paths may serve the awaitable Dir calls on a loop (LoopOptions::fs);
// the worker pool always may. For tests and benchmarks that compare the
// paths: the defaults are the fastest.
struct AsyncFsOptions {
  bool on_loop = true;   // path 1
  bool io_uring = true;  // path 2, when IoUringAvailable()
  // When the loop is destroyed, its thread keeps the loop's ring for the
  // thread's next loop, rather than closing it (see IoUringAvailable): for
  // code that runs many short loops on a thread, such as a Run per request.
  bool keep_ring = false;
};

// Calls finished by each path since the process started, over every loop.
// Each count is exact; they are read one at a time.
struct AsyncFsCounts {
  uint64_t on_loop = 0;          // finished on the loop thread
  uint64_t io_uring = 0;         // finished through io_uring
  uint64_t workers = 0;          // finished on the worker pool
  uint64_t loop_misses = 0;      // tried on the loop, then sent on (2 or 3)
  uint64_t io_uring_misses = 0;  // answered by io_uring with what only the
                                 // blocking call settles: sent to 3
  // How loops got their rings (path 2): set up anew, or the one their
  // thread kept from its last loop (see IoUringAvailable).
  uint64_t rings_set_up = 0;
  uint64_t rings_reused = 0;
};
AsyncFsCounts AsyncFsCountsNow();

// True when this process can use io_uring for the Dir calls: probed once
// (a ring is set up and every opcode needed is supported) and cached.
// False when the kernel lacks it or refuses it (ENOSYS; EPERM from a seccomp
// filter or kernel.io_uring_disabled), or CAPFS_IO_URING=0. Also false, but
// not cached, while the kernel has no memory for even a small ring (ENOMEM:
// see docs/runtime.md on RLIMIT_MEMLOCK).
//
// Each loop gets its own ring the first time a call needs it; a loop
// whose ring the kernel refuses serves its calls on its workers (counted in
// AsyncFsCounts::workers) although this says true, and tries again on a
// call 100 ms later or more when memory was what lacked.
//
// Setting a ring up and tearing it down costs far more than a call through
// it (about 150 us against 2 to 5 us: docs/runtime.md). A loop's ring lives
// as long as the loop (a Loop keeps it across its own Run calls). A loop
// whose AsyncFsOptions::keep_ring is set leaves its ring, when the loop is
// destroyed, to its thread: the next loop on the thread that sets a ring up
// takes that one instead (AsyncFsCounts::rings_reused), whatever its own
// options say, and closes it at its end unless it has keep_ring too. A
// thread keeps one ring at most: one descriptor (close-on-exec) and about
// 84 KiB of locked memory, until the thread exits or calls
// ReleaseThreadRing. A forked child never uses a ring its parent kept, nor
// closes its descriptor (the child's copy stays open until exec or exit, as
// any inherited one).
bool IoUringAvailable();

// Closes the ring this thread kept from its last loop (keep_ring), if any;
// the next loop on the thread sets a new one up. For a thread done with
// loops for a while, which should not hold the ring's descriptor and locked
// memory meanwhile. A loop that exists on the thread is not affected: its
// ring is kept only once the loop is destroyed.
void ReleaseThreadRing();

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_FS_PATHS_H_

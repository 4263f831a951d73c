// Scheduler: the engine of one Loop.
//
// It owns the run queue, the timer heap, the I/O backend and the wakeup
// eventfd, and turns them in this order, forever, until the loop's main task
// is done:
//
//   1. run the tasks that were runnable when the turn began (tasks queued
//      meanwhile, a yielding task included, wait for the next turn);
//   2. run completions posted from other threads (worker jobs, Loop::Post);
//   3. fire the timers whose deadline has passed, soonest first;
//   4. ask the backend what is ready: if something is runnable, without
//      blocking and only when some task waits on a descriptor and at least
//      kResumesPerPoll resumes have passed since the last look (so a task
//      waiting on a descriptor gets its turn within that many resumes of
//      others, and a ping-pong that always empties its run queue makes no
//      extra call); else until the next timer, a post, or a descriptor
//      wakes it. When every task waiting on a descriptor waits on the
//      loop's io_uring, that sleep is in the ring's own io_uring_enter,
//      which also hands it the turn's calls, or their last batch (when an
//      earlier batch completed inline, its tasks run first instead:
//      uring_ring.h, Wait). A task
//      whose ring call would lead straight to that sleep makes it itself,
//      without suspending (SleepInRingFromCall). Before any such sleep, while
//      the ring holds calls the loop may make itself that no one has taken
//      (a burst's Stats on tmpfs, shared with a worker: call_share.h,
//      uring_ring.h's MakeQueuedOnLoop), the loop makes up to 8 of them and
//      turns again instead, looking at the backend within
//      kResumesPerPoll resumes as in step 4 when other tasks wait on
//      descriptors. A loop that always has tasks to run makes up to 8 of
//      them each time it looks at descriptors, whether or not the worker is
//      at work, so that they go on even when the pool is too busy to take
//      them.
//
// Other threads reach the loop only through Post, which queues under a mutex
// and writes the eventfd only when the loop is (about to be) asleep, in the
// backend or the ring (the ring polls the eventfd), a call's own sleep
// included, so a busy loop takes posts with no syscall on either side.
//
// Loop-thread only, except Post. Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_SCHEDULER_H_
#define CAPFS_RUNTIME_INTERNAL_SCHEDULER_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <coroutine>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "capfs/fd.h"
#include "capfs/runtime/fs_paths.h"
#include "capfs/runtime/internal/backend.h"
#include "capfs/runtime/internal/run_queue.h"
#include "capfs/runtime/internal/timer_heap.h"
#include "capfs/sys/io.h"

namespace capfs {
namespace runtime {

class WorkerPool;

namespace internal {

class UringRing;

// Work another thread hands to a loop. The node belongs to the poster and
// must stay alive until Complete (or Drop) is called.
class RemoteCompletion {
 public:
  RemoteCompletion() = default;
  // Moved only before it is posted.
  RemoteCompletion(RemoteCompletion&&) noexcept {}
  RemoteCompletion& operator=(const RemoteCompletion&) = delete;

  // Runs on the loop thread.
  virtual void Complete() noexcept = 0;
  // The loop is being destroyed with this still queued.
  virtual void Drop() noexcept {}

 protected:
  ~RemoteCompletion() = default;

 private:
  friend class Scheduler;
  RemoteCompletion* next_ = nullptr;
};

class Scheduler {
 public:
  // A scheduler over `backend`, running blocking jobs on `workers` (which
  // must outlive it).
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      std::unique_ptr<Backend> backend, WorkerPool* workers);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  // Queues `handle` to run on a later turn.
  void Schedule(std::coroutine_handle<> handle) { run_queue_.Push(handle); }
  // Tasks queued to run, now (not counting the one running).
  size_t runnable() const { return run_queue_.size(); }

  TimerHeap& timers() { return timers_; }
  Backend& backend() { return *backend_; }
  WorkerPool& workers() { return *workers_; }

  // Which paths serve the awaitable Dir calls (fs_paths.h).
  const AsyncFsOptions& fs_options() const { return fs_options_; }
  void set_fs_options(const AsyncFsOptions& options) { fs_options_ = options; }
  // The loop's io_uring, set up (or taken from the thread's kept one) on
  // the first call; nullptr when fs_options().io_uring is off or io_uring
  // cannot be used here. When the kernel had no memory or descriptor for it
  // (ENOMEM, EMFILE, ENFILE), it is tried again on a call at least
  // kRingRetryNs later, so a long-lived loop gets its ring once the
  // resource is free.
  UringRing* ring() {
    if (ring_ == nullptr && !ring_tried_) SetUpRing();
    return ring_.get();
  }
  static constexpr int64_t kRingRetryNs = 100'000'000;

  // Tasks waiting on a descriptor, now; while there are none, a busy loop
  // does not ask the backend at all.
  void AddFdWaits(int delta) { fd_waits_ += delta; }

  // True when a task yielding now would be the next to run anyway: nothing
  // else is runnable, posted or due (timers, a look at descriptors). The
  // yield then skips the round through the loop; it counts as a resume.
  bool YieldIsNoOp() {
    if (!run_queue_.empty() || posted_.load(std::memory_order_relaxed)) {
      return false;
    }
    if (fd_waits_ > 0 && resumes_since_poll_ >= kResumesPerPoll) return false;
    if (!timers_.empty() && timers_.next_deadline() <= MonotonicNowNs()) {
      return false;
    }
    ++resumes_since_poll_;
    return true;
  }

  // For a call the running task has just queued on the ring, from its
  // await_suspend: when the loop would go straight to sleeping in the ring
  // once the task suspends (nothing else runnable or posted, no timer due,
  // every descriptor wait on the ring: step 4 above), sleeps there now, in
  // the task's own turn, so that a call that completes needs no suspension,
  // run-queue round or resume. Completions taken queue their tasks as
  // usual. True when it went to the ring's Wait (which slept, or handed a
  // batch of queued calls over whose tasks now run first); false, having
  // done nothing, when the loop has
  // anything else to do first (a timer due now fires in the turn, so a call
  // it cancels is still withdrawn before it reaches the kernel).
  bool SleepInRingFromCall();

  // Thread-safe: queues `completion` to run on the loop thread, waking the
  // loop if it sleeps.
  void Post(RemoteCompletion* completion);

  // Turns the loop until `*done` is true.
  void RunUntil(const bool* done);

 private:
  Scheduler(std::unique_ptr<Backend> backend, WorkerPool* workers, Fd wakeup);
  void RunPosted();
  void FireTimers();
  void PollIo(int64_t timeout_ns);
  // Reads the wakeup eventfd back to zero.
  void DrainWakeup();
  // How long the loop may sleep: until the next timer, or -1.
  int64_t SleepTimeout();
  // Sleeps in the ring rather than the backend when that is the same wait
  // (uring_ring.h: Wait); false when it is not, having done nothing.
  bool SleptInRing();
  // What both sleeps in the ring check first: nothing runnable, every
  // descriptor wait on the ring, and a ring that can wait until the next
  // timer. nullopt when one fails, having done nothing; else the timeout,
  // with sleeping_ set for the post handshake: 0 when a timer is due or a
  // post came, and the caller must then not sleep (and clears sleeping_).
  std::optional<int64_t> ArmRingSleep();
  // The sleep in the ring, for at most `timeout_ns` (not 0).
  void SleepInRing(int64_t timeout_ns);
  // True when some task waits on a descriptor and every such task waits on
  // the ring.
  bool OnlyRingWaits() const;
  // Has the backend watch the ring's descriptor, from the first time the
  // loop looks at the backend while ring calls are in flight: a loop that
  // only ever waits on the ring never registers it, so that its completions
  // wake nobody but the ring's own waiter.
  void WatchRing();
  void SetUpRing();

  RunQueue run_queue_;
  TimerHeap timers_;
  std::unique_ptr<Backend> backend_;
  WorkerPool* workers_;
  std::vector<ReadyEvent> events_;
  int fd_waits_ = 0;
  static constexpr size_t kResumesPerPoll = 64;
  size_t resumes_since_poll_ = 0;

  Fd wakeup_;          // an eventfd, readable when a post woke the loop
  char wakeup_token_;  // its backend token: only the address matters

  AsyncFsOptions fs_options_;
  std::unique_ptr<UringRing> ring_;
  bool ring_tried_ = false;       // true unless a retry may come
  int64_t ring_retry_at_ns_ = 0;  // after a shortage: no retry before this
  bool ring_watched_ = false;     // the backend watches the ring's descriptor
  char ring_token_;               // its backend token

  std::mutex posted_mu_;
  RemoteCompletion* posted_head_ = nullptr;  // guarded by posted_mu_
  RemoteCompletion* posted_tail_ = nullptr;  // guarded by posted_mu_
  std::atomic<bool> posted_{false};    // posted_head_ != nullptr, for peeking
  std::atomic<bool> sleeping_{false};  // in (or entering) a blocking wait
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_SCHEDULER_H_

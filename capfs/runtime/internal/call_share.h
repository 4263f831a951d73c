// CallShare: a burst's calls that the loop and one worker make together.
//
// Some ring calls may be made in user space instead, with the very syscall
// the submission asks of the kernel (UringOp::AllowLoopToMake: a burst's
// STATX of a plain name on tmpfs, made as Dir::Stat's fstatat). Handing
// such a call to io_uring costs the loop's thread about as much as making
// it (copying the name into the kernel, preparing the call, posting its
// completion: 0.7 us of the kernel's time against the fstatat's 1.0), so
// the ring could share a burst with the second core only at the loop's
// expense. Instead such calls wait here, in one list, from the moment a task
// queues one: one thread of the loop's worker pool takes them kBatch at a
// time from the front and hands the results back kBatch at a time (a post
// to the loop, whose tasks then run while the worker goes on); the loop
// takes kBatch at a time from the back whenever it has nothing to run and
// would sleep (UringRing::MakeQueuedOnLoop). A call costs the loop a list
// move under a mutex, and the loop and the worker meet somewhere in the
// list. The job is submitted when the first call comes and ends when the
// list is empty, or after kBatchesPerRun batches, going to the back of the
// pool's queue if calls are left (so that a steady stream of them does not
// keep a pool thread from other jobs); one worker at most works on it at a
// time. A pool that cannot start a thread is not asked again until the
// list has emptied.
//
// The loop also makes up to kBatch calls of the share every
// kResumesPerPoll resumes when it always has tasks to run
// (Scheduler::RunUntil), whether or not the worker is at work, so that a
// burst whose job waits behind other jobs in a busy pool still goes on.
//
// Cancellation: a call no one has taken yet is withdrawn (it is never
// made); one taken is made, and its result stands (the task waits for it,
// a few microseconds on tmpfs).
//
// Loop-thread only, except the worker's job (Run, Finish). Not part of the
// API.

#ifndef CAPFS_RUNTIME_INTERNAL_CALL_SHARE_H_
#define CAPFS_RUNTIME_INTERNAL_CALL_SHARE_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/runtime/worker_pool.h"

namespace capfs {
namespace runtime {
namespace internal {

class CallShare final : public Job, public RemoteCompletion {
 public:
  // Calls one thread takes at once: the worker, or the loop.
  static constexpr size_t kBatch = 8;
  // Batches a worker makes in one run of the job at most.
  static constexpr size_t kBatchesPerRun = 16;

  // For `ring`'s calls, on `scheduler`'s workers.
  CallShare(UringRing* ring, Scheduler* scheduler)
      : ring_(ring), scheduler_(scheduler), pid_(getpid()) {}
  CallShare(const CallShare&) = delete;
  CallShare& operator=(const CallShare&) = delete;
  // Takes the job back from the pool's queue, or waits for it to end (a few
  // microseconds: no call is left by then). Not for a forked child's copy
  // (forked_copy), whose job and mutex are its parent's: leak that one.
  ~CallShare();
  // True in a child forked from the process that made the share.
  bool forked_copy() const { return getpid() != pid_; }

  // Takes `op`, which the loop's thread queued, submitting the job if no
  // worker is at work on the share. When the pool can start no thread, the
  // call waits for the loop (MakeSome).
  void Add(UringOp* op);
  // Takes `op` back if no one has taken it to make it: true, and it is never
  // made.
  bool Withdraw(UringOp* op);
  // True when calls wait for a taker (a hint: the worker may take them
  // first).
  bool has_waiting() const {
    return waiting_count_.load(std::memory_order_relaxed) > 0;
  }
  // Makes up to kBatch of the waiting calls on the loop's thread, the last
  // added first; their tasks are then runnable.
  void MakeSome();

  // For tests: calls the worker made (counted as it makes them, before the
  // loop takes their results).
  uint64_t made_by_worker() const {
    return made_by_worker_.load(std::memory_order_relaxed);
  }

 private:
  // On the worker: takes batches from the front until none is left.
  void Run() noexcept override;
  // On the worker, its last touch: the job ends, or goes on when calls
  // came since Run found none.
  void Finish() noexcept override;
  // On the loop: the worker's results, posted.
  void Complete() noexcept override;
  // Under mu_: waiting_ changed; keeps waiting_count_ and submit_refused_.
  void WaitingChanged();
  // Under mu_: takes up to kBatch waiting calls, from the back (the loop) or
  // the front (the worker), into `batch`; how many.
  size_t Take(UringOp** batch, bool from_back);

  UringRing* const ring_;
  Scheduler* const scheduler_;
  std::mutex mu_;
  std::condition_variable ended_;  // job_active_ became false
  // Calls no one has taken, in the order they came.
  IntrusiveList<UringOp, UringQueueTag> waiting_;  // guarded by mu_
  // Calls the worker made, for the loop to take.
  IntrusiveList<UringOp, UringQueueTag> done_;  // guarded by mu_
  bool posted_ = false;      // guarded by mu_: this is in the loop's posts
  bool job_active_ = false;  // guarded by mu_: submitted, Finish not over
  // Guarded by mu_: the pool could start no thread; not asked again until
  // waiting_ empties.
  bool submit_refused_ = false;
  const pid_t pid_;  // the process that made the share (a fork's copy)
  std::atomic<size_t> waiting_count_{0};  // waiting_.size(), to peek
  std::atomic<uint64_t> made_by_worker_{0};
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_CALL_SHARE_H_

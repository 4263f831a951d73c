// BlockingJob: one call on the worker pool, awaited by one task.
//
// The protocol RunBlocking and descriptor I/O on workers share. The task
// suspends while a worker runs the call; the worker posts the job back to
// the loop, which resumes the task. Cancellation withdraws a job no worker
// has started (it never runs); a started job cannot be interrupted, so the
// task waits for it (kRanCancelled: RunBlocking drops its result, an I/O
// call keeps the count it moved). A job that cannot be
// queued because the pool has no thread and can start none does not suspend
// at all.
//
// The subclass supplies Work (on the worker) and reads the outcome once the
// task resumes. Loop-thread only, except Work. Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_BLOCKING_JOB_H_
#define CAPFS_RUNTIME_INTERNAL_BLOCKING_JOB_H_

#include <coroutine>

#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/worker_pool.h"

namespace capfs {
namespace runtime {
namespace internal {

class BlockingJob : public Waiter, public Job, public RemoteCompletion {
 public:
  // How the wait ended.
  enum class Outcome {
    kPending,       // not over yet
    kRan,           // the call ran and its result stands
    kRanCancelled,  // the call ran to its end, but the task was cancelled
                    // meanwhile: the subclass decides what its result is
    kCancelled,     // withdrawn before it ran
    kNoThread,      // never queued: the pool has no thread and can start none
    kClosed,        // withdrawn before it ran: its descriptor was closed
  };

  Outcome outcome() const { return outcome_; }

  // For FdState::Close: takes the job back if no worker has started it and
  // ends the wait with kClosed. False when it has started (or finished).
  bool WithdrawForClose();

 protected:
  BlockingJob() = default;
  // Moved only before it is awaited.
  BlockingJob(BlockingJob&& other) noexcept
      : Waiter(std::move(other)),
        Job(std::move(other)),
        RemoteCompletion(std::move(other)) {}
  ~BlockingJob() = default;

  // From await_suspend: queues the job for `fiber` (suspending as `self`).
  // False when the task must not suspend: already cancelled, or no thread.
  bool Start(Fiber* fiber, std::coroutine_handle<> self);

  // On the loop: the job is out of the pool for good (it finished, or was
  // withdrawn), just before the task resumes.
  virtual void Settled() noexcept {}

 private:
  // On the worker.
  virtual void Work() noexcept = 0;
  void Run() noexcept final { Work(); }
  // Posting is the worker's last touch of the job.
  void Finish() noexcept final { scheduler_->Post(this); }
  // Back on the loop.
  void Complete() noexcept final;
  void OnCancel() noexcept final;

  Scheduler* scheduler_ = nullptr;
  Outcome outcome_ = Outcome::kPending;
  bool cancelled_while_running_ = false;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_BLOCKING_JOB_H_

// UringRing: a loop's io_uring, and the submissions tasks await on it.
//
// One ring per loop, set up the first time a task needs it (Scheduler::
// ring) when io_uring is available (fs_paths.h). Its completion eventfd
// (io_uring_register_eventfd) is watched by the loop's backend like any
// descriptor, so epoll and poll both wake for completions.
//
// A task awaits a UringCall: the call is queued in user space, and the
// scheduler hands every queued call to the kernel in one io_uring_enter at
// the end of the loop's turn (Flush), so a thousand calls started in one
// turn cost one syscall. Completions the kernel posted inline during that
// submission are taken at once; the rest when the eventfd wakes the loop.
// At most half the completion queue's size is in flight; more calls wait in
// the queue.
//
// Cancellation: a call still queued is withdrawn and never reaches the
// kernel (kCancelled). One in flight gets an IORING_OP_ASYNC_CANCEL, and
// the task waits for the call's own completion, which says whether the
// cancellation won (-ECANCELED, -EINTR: kCancelled) or lost
// (kDoneCancelled: the call's result stands, for its owner to release).
//
// The ring also closes descriptors for the nonblocking Dir calls (an O_PATH
// descriptor a Stat opened on the loop: CloseLater), with the turn's other
// submissions, so that a thousand stats in one turn do not make a thousand
// close(2) calls. At most 64 wait at once; the descriptors are never seen
// by anyone else.
//
// Loop-thread only. Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_URING_RING_H_
#define CAPFS_RUNTIME_INTERNAL_URING_RING_H_

#include <stdint.h>

#include <coroutine>
#include <memory>
#include <utility>

#include "capfs/fd.h"
#include "capfs/internal/resolve.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/sys/uring.h"

namespace capfs {
namespace runtime {
namespace internal {

class Scheduler;
class UringRing;
struct UringQueueTag;

class UringOp : public Waiter, public ListLink<UringQueueTag> {
 public:
  enum class Outcome {
    kPending,
    kDone,           // the call ran; result() is its return value
    kDoneCancelled,  // it ran although the task was cancelled meanwhile
    kCancelled,      // it never ran, or the kernel stopped it
  };

  Outcome outcome() const { return outcome_; }
  int result() const { return result_; }

 protected:
  UringOp() = default;
  UringOp(UringOp&& other) noexcept
      : Waiter(std::move(other)), ListLink<UringQueueTag>(std::move(other)) {}
  ~UringOp() = default;

  // From await_suspend: queues the call on `ring` for `fiber`. False when
  // the task must not suspend (already cancelled: outcome kCancelled).
  bool Start(UringRing* ring, Fiber* fiber, std::coroutine_handle<> self);

 private:
  friend class UringRing;
  // Fills the submission (the ring tags it).
  virtual void Prepare(struct io_uring_sqe* sqe) = 0;
  void OnCancel() noexcept override;
  void Finish(int res);

  UringRing* ring_ = nullptr;
  Outcome outcome_ = Outcome::kPending;
  int result_ = 0;
  bool submitted_ = false;
  bool cancel_requested_ = false;
};

// The awaitable: `fill(sqe)` fills the submission.
template <typename Fill>
class UringCall final : public UringOp {
 public:
  UringCall(UringRing* ring, Fill fill) : ring_(ring), fill_(std::move(fill)) {}

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Start(ring_, self.promise().fiber(), self);
  }
  Outcome await_resume() noexcept { return outcome(); }

 private:
  void Prepare(struct io_uring_sqe* sqe) override { fill_(sqe); }

  UringRing* ring_;
  Fill fill_;
};

class UringRing final : public ::capfs::internal::FdCloser {
 public:
  // A ring for `scheduler`, or nullptr when io_uring cannot be used.
  static std::unique_ptr<UringRing> Create(Scheduler* scheduler);
  UringRing(const UringRing&) = delete;
  UringRing& operator=(const UringRing&) = delete;
  ~UringRing();

  // The completion eventfd, for the backend.
  int eventfd() const { return eventfd_.get(); }

  // True when calls wait to be handed to the kernel.
  bool has_work() const { return !queue_.empty() || unsubmitted_ > 0; }

  // Hands the queued calls to the kernel, then takes the completions
  // already posted.
  void Flush();
  // The eventfd was reported readable: takes the posted completions.
  void OnReady();

  // Closes `fd` with the turn's submissions (FdCloser).
  void CloseLater(Fd fd) override;

  // For UringOp.
  void Queue(UringOp* op);
  void Cancel(UringOp* op);

 private:
  UringRing(Scheduler* scheduler,
            std::unique_ptr<::capfs::internal::SysUring> ring, Fd eventfd);
  struct io_uring_sqe* NextSqe();
  // Hands every prepared submission to the kernel.
  void Enter();
  void Reap();

  Scheduler* scheduler_;
  std::unique_ptr<::capfs::internal::SysUring> ring_;
  Fd eventfd_;
  IntrusiveList<UringOp, UringQueueTag> queue_;  // not handed over yet
  unsigned in_flight_ = 0;
  unsigned max_in_flight_;
  unsigned unsubmitted_ = 0;     // prepared submissions not yet entered
  unsigned pending_closes_ = 0;  // CloseLater's among them
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_URING_RING_H_

// FdState: what a loop knows about one descriptor an AsyncFd owns.
//
// It holds the descriptor, how I/O on it is done (on the loop, nonblocking;
// or on a worker, with or without a readiness wait first), the tasks waiting
// for each direction, and a per-direction readiness hint: false once a call
// said EAGAIN (or, on a stream, transferred less than asked), true again
// when the backend reports the direction. While a hint is false an I/O call
// waits first instead of making a call bound to fail, which saves a syscall
// per wait; both backends report every change after the hint was cleared,
// so the hint is never stale in the direction that would hang.
//
// Closing (AsyncFd::Close, the AsyncFd's destruction, or the end of its
// scope) removes the descriptor from the backend first (so its number is
// never polled again), ends every wait on it with EBADF, and closes it, or,
// while a worker still uses the number, defers close(2) until the worker is
// done, so the number cannot be reused under it (Eio's Fd.use_exn).
//
// Reference-counted: the AsyncFd and each I/O call in progress hold a
// reference. Loop-thread only. Not part of the API.
//
// Why hangups are sticky: with edge-triggered epoll, one event can carry both
// the last data and the hangup. A reader woken by it takes the data with a
// short read, which would clear the hint, and no edge would ever come for
// the end of file that remains. Once a direction has hung up it stays ready.

#ifndef CAPFS_RUNTIME_INTERNAL_FD_STATE_H_
#define CAPFS_RUNTIME_INTERNAL_FD_STATE_H_

#include <stdint.h>

#include <coroutine>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/runtime/internal/scheduler.h"

namespace capfs {
namespace runtime {
namespace internal {

struct ResourceTag;  // an FdState among its scope's resources
struct FdWaitTag;    // a waiter among an FdState's waiters

class FdState;

enum class FdIo {
  kLoop,             // nonblocking and pollable: calls on the loop thread
  kWorkerWhenReady,  // pollable but blocking: wait here, call on a worker
  kWorker,           // never ready-reported (a regular file): call on a worker
};

// The suspension point "until `state` may be ready in `direction`".
class FdReadyAwaiter final : public Waiter, public ListLink<FdWaitTag> {
 public:
  FdReadyAwaiter(FdState* state, uint32_t direction, const char* op)
      : state_(state), direction_(direction), op_(op) {}

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Suspend(self.promise().fiber(), self);
  }
  // OK when the direction may be ready; EBADF when the descriptor was
  // closed; kCancelled.
  absl::Status await_resume();

  uint32_t direction() const { return direction_; }

  // For FdState.
  void Wake(bool closed) {
    closed_ = closed;
    EndWait(this);
  }

 private:
  bool Suspend(Fiber* fiber, std::coroutine_handle<> self);
  void OnCancel() noexcept override;

  FdState* state_;
  uint32_t direction_;
  const char* op_;
  bool closed_ = false;
  bool cancelled_ = false;
};

class FdState : public ListLink<ResourceTag> {
 public:
  // Watches `fd` (if `io` is not kWorker) on `scheduler`'s backend.
  // `stream`: a short transfer means the direction is drained (pipes,
  // stream sockets). `resources`: the owning scope's list, closed at its end.
  static absl::StatusOr<FdState*> Create(
      Scheduler* scheduler, Fd fd, FdIo io, bool stream,
      IntrusiveList<FdState, ResourceTag>* resources);

  FdState(const FdState&) = delete;
  FdState& operator=(const FdState&) = delete;

  void Ref() { ++refs_; }
  void Unref() {
    if (--refs_ == 0) Destroy();
  }

  // The descriptor, or -1 once closed.
  int fd() const { return closed_ ? -1 : fd_.get(); }
  bool closed() const { return closed_; }
  FdIo io() const { return io_; }
  Scheduler* scheduler() const { return scheduler_; }

  bool maybe_ready(uint32_t direction) const {
    return (maybe_ready_ & direction) != 0;
  }
  void SetNotReady(uint32_t direction) {
    maybe_ready_ &= ~(direction & ~hung_up_);
  }
  // After a call in `direction` moved `done` bytes of `requested` (0: size
  // unknown): a short transfer on a stream drained it.
  void AfterTransfer(uint32_t direction, size_t done, size_t requested) {
    if (stream_ && done > 0 && done < requested) SetNotReady(direction);
  }
  // Asks the kernel now (poll with no timeout) whether `direction` is
  // ready; for kWorkerWhenReady, whose hint cannot be trusted alone because
  // another process may drain the descriptor.
  bool PollNow(uint32_t direction);

  // Called by the scheduler when the backend reports `ready`.
  void OnReady(uint32_t ready);

  // See the file comment. Idempotent; the error, if any, is close(2)'s.
  absl::Status Close();

  // A worker is about to use / is done with the raw descriptor.
  void BeginWorkerUse() { ++worker_uses_; }
  void EndWorkerUse();

  // For FdReadyAwaiter.
  void AddWaiter(FdReadyAwaiter* waiter);
  void RemoveWaiter(FdReadyAwaiter* waiter);

 private:
  FdState(Scheduler* scheduler, Fd fd, FdIo io, bool stream);
  ~FdState() = default;
  void Destroy();
  void UpdateInterest();

  Scheduler* scheduler_;
  Fd fd_;
  FdIo io_;
  bool stream_;
  bool closed_ = false;
  bool watched_ = false;      // added to the backend
  bool close_deferred_ = false;
  uint32_t maybe_ready_ = kReadable | kWritable;
  uint32_t hung_up_ = 0;  // directions that stay ready for good
  uint32_t interest_ = 0;
  int refs_ = 1;
  int worker_uses_ = 0;
  IntrusiveList<FdState, ResourceTag>* resources_ = nullptr;
  IntrusiveList<FdReadyAwaiter, FdWaitTag> readers_;
  IntrusiveList<FdReadyAwaiter, FdWaitTag> writers_;
};

// A counted reference to an FdState (nullptr allowed).
class FdRef {
 public:
  FdRef() = default;
  explicit FdRef(FdState* state) : state_(state) {
    if (state_ != nullptr) state_->Ref();
  }
  FdRef(FdRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  FdRef(const FdRef&) = delete;
  FdRef& operator=(const FdRef&) = delete;
  ~FdRef() {
    if (state_ != nullptr) state_->Unref();
  }
  FdState* get() const { return state_; }
  FdState* operator->() const { return state_; }
  explicit operator bool() const { return state_ != nullptr; }

 private:
  FdState* state_ = nullptr;
};

// Brackets a worker's use of the raw descriptor.
class WorkerUse {
 public:
  explicit WorkerUse(FdState* state) : state_(state) {
    state_->BeginWorkerUse();
  }
  WorkerUse(const WorkerUse&) = delete;
  WorkerUse& operator=(const WorkerUse&) = delete;
  ~WorkerUse() { state_->EndWorkerUse(); }

 private:
  FdState* state_;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_FD_STATE_H_

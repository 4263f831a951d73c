// FdState: what a loop knows about one descriptor an AsyncFd owns.
//
// It holds the descriptor, how I/O on it is done (FdIo), the tasks waiting
// for each direction, the worker jobs using it, and, per direction, a
// readiness hint and a count of the backend's readiness reports.
//
// The hint is for descriptors served on the loop thread (kLoop,
// kLoopDontWait), whose calls happen between two reports and never while
// one is processed. It is true until a call says EAGAIN (or moves less than
// asked in a direction where that proves the kernel's buffer drained, or
// full: see Create's `short_drains`), and true again
// when the backend reports the direction. While it is false an I/O call
// waits first instead of making a call bound to fail. Both backends report
// every change after that point, so a false hint always ends with a report.
//
// A descriptor served by workers after a readiness wait (kWorkerWhenReady)
// does not use the hint: its call runs on another thread while reports keep
// arriving, and another process may drain it, so the kernel is asked (a
// poll with no timeout) before each call. After an EAGAIN the task waits
// for a report, unless one came while the call ran.
//
// Hangups: with edge-triggered epoll one report can carry both the last data
// and the hangup. A reader woken by it takes the data with a short read,
// which would clear the hint, and no report would ever come for the end of
// file that remains. So a direction that has hung up stays ready through
// short transfers, until a call says EAGAIN: that proves it is not ready (a
// FIFO whose writer left and a new one came), and the direction then waits
// like any other.
//
// Closing (AsyncFd::Close, the AsyncFd's destruction, or the end of its
// scope) removes the descriptor from the backend first (so its number is
// never polled again), ends every readiness wait on it with EBADF, takes
// back every worker job on it that no worker has started (those end with
// EBADF and never run), and closes it; or, while a started job still uses
// the number, defers close(2) until the last such job is done, so the
// number cannot be reused under it (Eio's Fd.use_exn).
//
// A regular file's I/O through the loop's io_uring (fd_io.cc) counts as a
// started job from the moment it is queued for the ring: closing defers
// close(2) until it completes (a call not yet handed to the kernel by then
// is made on descriptor -1 and says EBADF). Such calls run one at a time
// per FdState (FdRingTurn): io_uring reads and advances the file position
// without read(2)'s f_pos lock, so two at once could read the same bytes.
// For the same reason a file whose I/O once went to the workers (the loop
// had no ring then) stays there, even once the loop has its ring.
//
// Reference-counted: the AsyncFd and each I/O call in progress hold a
// reference. Loop-thread only. Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_FD_STATE_H_
#define CAPFS_RUNTIME_INTERNAL_FD_STATE_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <coroutine>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/backend.h"
#include "capfs/runtime/internal/blocking_job.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/runtime/internal/scheduler.h"

namespace capfs {
namespace runtime {

// What DoIo (async_fd.h) hands the call it makes: where, and within what
// bounds, the call must stay so that it does not block.
struct IoTarget {
  int fd;
  // For send/recv-family calls: MSG_DONTWAIT on a socket (whose O_NONBLOCK
  // flag may be off, and shared with another process), with MSG_NOSIGNAL
  // for writes; else 0. A call on a socket must pass it (and so use
  // send/recv, never write/read: no write ever raises SIGPIPE).
  int msg_flags;
  // The most bytes the call may ask to move: readiness to write a blocking
  // pipe promises room for PIPE_BUF bytes, not more, and a larger write
  // would block its worker until a reader drains it (a tty may promise
  // less: see async_fd.h). SIZE_MAX when there is no such bound.
  size_t max_bytes;
};

namespace internal {

struct ResourceTag;  // an FdState among its scope's resources
struct FdWaitTag;    // a waiter among an FdState's waiters
struct FdJobTag;     // a worker job among an FdState's jobs
struct FdTurnTag;    // a task waiting for its turn at the ring

class FdState;

enum class FdIo {
  kLoop,             // nonblocking and pollable: calls on the loop thread
  kLoopDontWait,     // a blocking socket: calls on the loop, MSG_DONTWAIT
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

// A call on a worker using an FdState's descriptor: the FdState tracks it
// so that closing can withdraw it, or wait for it, as the file comment says.
class FdJob : public BlockingJob, public ListLink<FdJobTag> {
 protected:
  explicit FdJob(FdState* state) : state_(state) {}
  ~FdJob() = default;

  // From await_suspend: queues the job and lets the FdState track it.
  bool StartOn(Fiber* fiber, std::coroutine_handle<> self);

  FdState* state() const { return state_; }

 private:
  void Settled() noexcept override;

  FdState* state_;
};

// Runs `call(target)` (a syscall returning a count or -errno) on a worker.
template <typename Call>
class FdCallJob final : public FdJob {
 public:
  FdCallJob(FdState* state, Call* call, IoTarget target)
      : FdJob(state), call_(call), target_(target) {}

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return StartOn(self.promise().fiber(), self);
  }
  // The outcome; when it is kRan, result() is the call's.
  Outcome await_resume() noexcept { return outcome(); }
  ssize_t result() const { return result_; }

 private:
  void Work() noexcept override { result_ = (*call_)(target_); }

  Call* call_;
  IoTarget target_;
  ssize_t result_ = 0;
};

// The suspension point "until no other ring call on `state` is in
// progress" (the file comment). OK once the turn is this task's, held until
// the awaiter is destroyed; EBADF when the descriptor is closed meanwhile;
// kCancelled.
class FdRingTurn final : public Waiter, public ListLink<FdTurnTag> {
 public:
  FdRingTurn(FdState* state, const char* op) : state_(state), op_(op) {}
  FdRingTurn(const FdRingTurn&) = delete;
  FdRingTurn& operator=(const FdRingTurn&) = delete;
  ~FdRingTurn();

  bool await_ready() noexcept;
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Suspend(self.promise().fiber(), self);
  }
  absl::Status await_resume();

  // For FdState: the turn is handed over, or the descriptor closed.
  void Wake(bool closed) {
    held_ = !closed;
    closed_ = closed;
    EndWait(this);
  }

 private:
  bool Suspend(Fiber* fiber, std::coroutine_handle<> self);
  void OnCancel() noexcept override;

  FdState* state_;
  const char* op_;
  bool held_ = false;
  bool closed_ = false;
  bool cancelled_ = false;
};

class FdState : public ListLink<ResourceTag> {
 public:
  // Watches `fd` (if `io` is not kWorker) on `scheduler`'s backend.
  // `short_drains`: the directions (kReadable, kWritable) in which a short
  // transfer proves the direction is not ready now. `socket`: calls pass
  // MSG_DONTWAIT. `capped_writes`:
  // writes move at most PIPE_BUF bytes (a blocking pipe or tty served by
  // workers). `resources`: the owning scope's list, closed at its end.
  static absl::StatusOr<FdState*> Create(
      Scheduler* scheduler, Fd fd, FdIo io, uint32_t short_drains, bool socket,
      bool capped_writes, IntrusiveList<FdState, ResourceTag>* resources);

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

  // What a call in `direction` is handed.
  IoTarget target(uint32_t direction) const;

  // The readiness hint (loop-served descriptors only; see the file comment).
  bool maybe_ready(uint32_t direction) const {
    return (maybe_ready_ & direction) != 0;
  }
  // A call in `direction` said EAGAIN: not ready, hung up or not.
  void OnEagain(uint32_t direction) {
    maybe_ready_ &= ~direction;
    hung_up_ &= ~direction;
  }
  // Adds `directions` to those in which a short transfer drains.
  void AddShortDrains(uint32_t directions) { short_drains_ |= directions; }
  // After a call in `direction` moved `done` bytes of `requested` (0: size
  // unknown): a short transfer drained it where short_drains says so, unless
  // the direction
  // has hung up.
  void AfterTransfer(uint32_t direction, size_t done, size_t requested) {
    if ((short_drains_ & direction) && done > 0 && done < requested) {
      maybe_ready_ &= ~(direction & ~hung_up_);
    }
  }
  // How many times the backend has reported `direction` ready.
  uint64_t reports(uint32_t direction) const {
    return reports_[direction == kReadable ? 0 : 1];
  }
  // Asks the kernel now (a poll with no timeout) whether `direction` is
  // ready; an error or hangup counts as ready, since the call reports it.
  bool PollNow(uint32_t direction);

  // Called by the scheduler when the backend reports `ready`.
  void OnReady(uint32_t ready);

  // See the file comment. Idempotent; the error, if any, is close(2)'s.
  absl::Status Close();

  // Has the first Close call `hook(arg, fd)` before it does anything else,
  // while the descriptor is still open: for an owner that must act on it
  // before it goes, whoever closes it (a child process is killed and reaped
  // through its pidfd when its scope ends). nullptr removes it.
  void SetCloseHook(void (*hook)(void* arg, int fd), void* arg) {
    close_hook_ = hook;
    close_hook_arg_ = arg;
  }

  // For FdReadyAwaiter.
  void AddWaiter(FdReadyAwaiter* waiter);
  void RemoveWaiter(FdReadyAwaiter* waiter);

  // For FdJob: a job on the descriptor was queued / is out of the pool.
  void AddJob(FdJob* job) { jobs_.PushBack(job); }
  void RemoveJob(FdJob* job);

  // A regular file (set by AsyncFd::Adopt): its I/O may go through the
  // loop's io_uring.
  bool regular_file() const { return regular_file_; }
  void set_regular_file() { regular_file_ = true; }
  // A regular file's I/O keeps the path its first call took: a ring set up
  // later in the loop's life (Scheduler::ring) must not run beside worker
  // jobs on the same file position.
  bool file_io_on_workers() const { return file_io_on_workers_; }
  void set_file_io_on_workers() { file_io_on_workers_ = true; }
  // For the ring calls: one is queued or in flight / has completed.
  void AddRingCall() { ++ring_calls_; }
  void RemoveRingCall();

  // For FdRingTurn.
  bool TakeRingTurn();
  void QueueForRingTurn(FdRingTurn* turn) { ring_turns_.PushBack(turn); }
  void LeaveRingTurnQueue(FdRingTurn* turn) { ring_turns_.Remove(turn); }
  void ReleaseRingTurn();

 private:
  FdState(Scheduler* scheduler, Fd fd, FdIo io, uint32_t short_drains,
          bool socket, bool capped_writes);
  ~FdState() = default;
  void Destroy();
  void UpdateInterest();

  Scheduler* scheduler_;
  Fd fd_;
  FdIo io_;
  uint32_t short_drains_;
  bool socket_;
  bool capped_writes_;
  bool closed_ = false;
  bool watched_ = false;  // added to the backend
  bool close_deferred_ = false;
  bool regular_file_ = false;
  bool file_io_on_workers_ = false;
  bool ring_turn_taken_ = false;
  int ring_calls_ = 0;
  uint32_t maybe_ready_ = kReadable | kWritable;
  uint32_t hung_up_ = 0;  // directions that stay ready through short calls
  uint32_t interest_ = 0;
  uint64_t reports_[2] = {0, 0};  // readable, writable
  int refs_ = 1;
  IntrusiveList<FdState, ResourceTag>* resources_ = nullptr;
  void (*close_hook_)(void* arg, int fd) = nullptr;
  void* close_hook_arg_ = nullptr;
  IntrusiveList<FdReadyAwaiter, FdWaitTag> readers_;
  IntrusiveList<FdReadyAwaiter, FdWaitTag> writers_;
  IntrusiveList<FdJob, FdJobTag> jobs_;  // queued or running on workers
  IntrusiveList<FdRingTurn, FdTurnTag> ring_turns_;  // waiting, in order
};

// A counted reference to an FdState (nullptr allowed).
class FdRef {
 public:
  FdRef() = default;
  explicit FdRef(FdState* state) : state_(state) {
    if (state_ != nullptr) state_->Ref();
  }
  FdRef(FdRef&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)) {}
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

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_FD_STATE_H_

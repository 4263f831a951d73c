// AsyncFd: a descriptor owned by a scope and served by its loop.
//
//   absl::StatusOr<PipeEnds> pipe = Pipe(scope);
//   absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(scope, Fd(dup(0)));
//
// An AsyncFd is move-only and owns its descriptor: it is closed by Close(),
// by the AsyncFd's destruction, or when the scope it was opened under ends,
// whichever comes first. Closing removes it from the backend before close(2),
// so its number is never polled again, and ends every wait on it at once with
// EBADF (errno kept, see capfs/status.h).
//
// How its I/O runs depends on what the descriptor is (IoMode):
//  - nonblocking and pollable (pipes, sockets, eventfds): on the loop thread;
//    EAGAIN waits for readiness and retries;
//  - pollable but blocking (a tty, a stdin shared with a parent, whose
//    O_NONBLOCK flag we must not flip under the other process): the task
//    waits on the loop until the descriptor is ready, then the call runs on a
//    worker, so a racing reader elsewhere can never block the loop;
//  - never ready-reported (regular files, directories, block devices): on a
//    worker.
// While a worker uses the number, closing it is deferred until the worker
// is done, so the number cannot be reused under a call in flight.
//
// DoIo is the primitive the I/O calls (fd_io.h) and the socket layer build
// on. Loop-thread only.

#ifndef CAPFS_RUNTIME_ASYNC_FD_H_
#define CAPFS_RUNTIME_ASYNC_FD_H_

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/backend.h"
#include "capfs/runtime/internal/fd_state.h"
#include "capfs/runtime/run_blocking.h"
#include "capfs/runtime/scope.h"
#include "capfs/runtime/task.h"
#include "capfs/runtime/yield.h"
#include "capfs/status.h"

namespace capfs {
namespace runtime {

enum class IoMode {
  // Pollable descriptors that already have O_NONBLOCK run on the loop;
  // other pollable ones wait on the loop and call on a worker; the rest call
  // on a worker.
  kAuto,
  // Sets O_NONBLOCK (the open file description must be this process's alone)
  // so that pollable descriptors run on the loop.
  kNonblocking,
  // Never calls on the loop thread, even if O_NONBLOCK is set.
  kBlocking,
};

class AsyncFd {
 public:
  // Takes ownership of `fd` under `scope`. Fails (closing `fd`) if `fd` is not
  // open or the backend refuses it.
  static absl::StatusOr<AsyncFd> Adopt(Scope& scope, Fd fd,
                                       IoMode mode = IoMode::kAuto);

  // Owns nothing.
  AsyncFd() = default;
  AsyncFd(AsyncFd&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)) {}
  AsyncFd& operator=(AsyncFd&& other) noexcept;
  AsyncFd(const AsyncFd&) = delete;
  AsyncFd& operator=(const AsyncFd&) = delete;
  ~AsyncFd();

  // The descriptor, or -1 when closed or empty. Ownership stays here.
  int get() const { return state_ == nullptr ? -1 : state_->fd(); }
  bool valid() const { return get() >= 0; }
  // True when calls run on the loop thread (nonblocking and pollable).
  bool on_loop() const {
    return state_ != nullptr && state_->io() == internal::FdIo::kLoop;
  }

  // Closes now; see the file comment. Closing twice, or an empty AsyncFd, is
  // OK.
  absl::Status Close();

  // For the runtime.
  internal::FdState* state() const { return state_; }

 private:
  explicit AsyncFd(internal::FdState* state) : state_(state) {}
  internal::FdState* state_ = nullptr;
};

struct PipeEnds {
  AsyncFd read;
  AsyncFd write;
};

// A pipe whose ends are nonblocking, close-on-exec and owned by `scope`.
absl::StatusOr<PipeEnds> Pipe(Scope& scope);

enum class Direction { kRead, kWrite };

// Performs `call(int fd)` on `fd`: a syscall returning a count or -errno
// (EINTR already retried, as capfs/internal/syscall.h's wrappers do). It
// first yields once, so an always-ready descriptor cannot starve the loop's
// other tasks; then, as the descriptor's IoMode says (see the file comment),
// it calls, waits for readiness after EAGAIN, and calls again. `requested`
// is the byte count asked for (0 if none applies), to tell a short transfer.
// Gives the count; EBADF if `fd` is or gets closed; kCancelled; or the
// call's error as `op: strerror`.
template <typename Call>
Task<absl::StatusOr<size_t>> DoIo(AsyncFd& fd, Direction direction,
                                  const char* op, size_t requested,
                                  Call call) {
  // Holding a reference keeps the state alive even if the AsyncFd goes away
  // while the call waits.
  internal::FdRef state(fd.state());
  if (!state || state->closed()) co_return ErrnoError(EBADF, op, "");
  if (absl::Status s = co_await Yield(); !s.ok()) co_return s;
  const uint32_t ready_bit = direction == Direction::kRead
                                 ? internal::kReadable
                                 : internal::kWritable;
  for (;;) {
    if (state->closed()) co_return ErrnoError(EBADF, op, "");
    bool ready = state->maybe_ready(ready_bit);
    if (ready && state->io() == internal::FdIo::kWorkerWhenReady) {
      ready = state->PollNow(ready_bit);
    }
    if (!ready) {
      state->SetNotReady(ready_bit);
      absl::Status s =
          co_await internal::FdReadyAwaiter(state.get(), ready_bit, op);
      if (!s.ok()) co_return s;
      continue;
    }
    ssize_t r;
    if (state->io() == internal::FdIo::kLoop) {
      r = call(state->fd());
    } else {
      int raw = state->fd();
      internal::WorkerUse use(state.get());
      absl::StatusOr<ssize_t> done = co_await RunBlocking(
          [&call, raw]() -> absl::StatusOr<ssize_t> { return call(raw); });
      if (!done.ok()) co_return done.status();
      r = *done;
    }
    if (r >= 0) {
      state->AfterTransfer(ready_bit, static_cast<size_t>(r), requested);
      co_return static_cast<size_t>(r);
    }
    if (r == -EAGAIN) {
      state->SetNotReady(ready_bit);
      continue;
    }
    co_return ErrnoError(static_cast<int>(-r), op, "");
  }
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_ASYNC_FD_H_

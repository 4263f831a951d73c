// AsyncFd: a descriptor owned by a scope and served by its loop.
//
//   absl::StatusOr<PipeEnds> pipe = Pipe(scope);
//   absl::StatusOr<AsyncFd> in =
//       AsyncFd::Adopt(scope, Fd(fcntl(0, F_DUPFD_CLOEXEC, 0)));
//
// An AsyncFd is move-only and owns its descriptor: it is closed by Close(),
// by the AsyncFd's destruction (or by moving another AsyncFd over it), or
// when the scope it was opened under ends, whichever comes first, even while
// an I/O call on it is in progress. Closing removes it from the backend
// before close(2), so its number is never polled again; every wait for
// readiness on it, and every call queued for a worker but not started, ends
// at once with EBADF (errno kept, see capfs/status.h). A call a worker has
// already started cannot be stopped: it finishes with its own result, and
// close(2) is put off until it has (Close does not block; it then returns
// OK, and close(2)'s own result is not reported), so the number is not
// reused under it.
//
// How its I/O runs depends on what the descriptor is (IoMode):
//  - nonblocking and pollable (pipes, sockets, eventfds): on the loop thread;
//    EAGAIN waits for readiness and retries;
//  - a blocking socket: on the loop thread too, each call with MSG_DONTWAIT,
//    which leaves the file's flags (shared with whoever else has it) alone;
//  - pollable but blocking (a tty, a pipe or stdin shared with a parent,
//    whose O_NONBLOCK flag we must not flip under the other process): the
//    task waits on the loop until the kernel says the descriptor is ready,
//    then the call runs on a worker, so a racing reader elsewhere can never
//    block the loop. A write there moves at most PIPE_BUF bytes, all that a
//    pipe's readiness promises room for (WriteAll loops). Readiness is only
//    a promise about the moment it was seen: another process sharing the
//    descriptor may drain or fill it first, and a tty may report room for
//    fewer bytes (or be stopped by XOFF), so such a call can still block its
//    worker until the other side acts;
//  - never ready-reported (regular files, directories, block devices, and
//    devices the backend refuses): on a worker. Nothing would say when such
//    a descriptor is ready, so if it is nonblocking and its call says
//    EAGAIN, that is the result. A regular file's Read, Write, ReadV and
//    WriteV (fd_io.h) go through the loop's io_uring instead where it may
//    serve them (fs_paths.h), with the same results.
// Adopt sets close-on-exec on the descriptor (a flag of this descriptor
// alone, unlike O_NONBLOCK).
//
// Cancellation (a scope's, WithTimeout's) ends a readiness wait, and a call
// queued for a worker, at once with kCancelled. A call a worker has started
// runs to its end first (a blocked one until the other side acts, see
// above), and then its result stands: the bytes it moved are never lost, and
// the task sees kCancelled at its next wait.
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
#include "absl/strings/str_cat.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/backend.h"
#include "capfs/runtime/internal/blocking_job.h"
#include "capfs/runtime/internal/fd_state.h"
#include "capfs/runtime/scope.h"
#include "capfs/runtime/task.h"
#include "capfs/runtime/yield.h"
#include "capfs/status.h"

namespace capfs {
namespace runtime {

enum class IoMode {
  // Pollable descriptors that already have O_NONBLOCK, and sockets, run on
  // the loop; other pollable ones wait on the loop and call on a worker; the
  // rest call on a worker.
  kAuto,
  // Sets O_NONBLOCK (the open file description must be this process's alone)
  // so that pollable descriptors run on the loop.
  kNonblocking,
  // Never calls on the loop thread, even if O_NONBLOCK is set.
  kBlocking,
};

class AsyncFd {
 public:
  // Takes ownership of `fd` under `scope` and sets its close-on-exec flag.
  // Fails (closing `fd`) if `fd` is not open or the backend refuses it.
  static absl::StatusOr<AsyncFd> Adopt(Scope& scope, Fd fd,
                                       IoMode mode = IoMode::kAuto);

  // For the socket layer (net.h): takes `fd`, a socket of `type`
  // (SOCK_STREAM, ...) that capfs has just made nonblocking and
  // close-on-exec, without asking the kernel again what Adopt asks. `tcp`:
  // an AF_INET or AF_INET6 stream, where a short read also proves the
  // socket drained.
  static absl::StatusOr<AsyncFd> AdoptNewSocket(Scope& scope, Fd fd, int type,
                                                bool tcp);

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
  // True when calls run on the loop thread (nonblocking and pollable, or a
  // socket).
  bool on_loop() const {
    return state_ != nullptr && (state_->io() == internal::FdIo::kLoop ||
                                 state_->io() == internal::FdIo::kLoopDontWait);
  }

  // Closes; see the file comment. Gives close(2)'s result, or OK when
  // close(2) is put off behind a call a worker has started. Closing twice,
  // or an empty AsyncFd, is OK.
  absl::Status Close();

  // For the runtime.
  internal::FdState* state() const { return state_; }

 private:
  explicit AsyncFd(internal::FdState* state) : state_(state) {}
  // Closes the descriptor and drops this AsyncFd's reference.
  void Release();

  internal::FdState* state_ = nullptr;
};

struct PipeEnds {
  AsyncFd read;
  AsyncFd write;
};

// A pipe whose ends are nonblocking, close-on-exec and owned by `scope`.
// Its reads take a short count to mean the pipe is empty (one read fewer
// per wait), so its write end must not be put in packet mode (O_DIRECT).
absl::StatusOr<PipeEnds> Pipe(Scope& scope);

enum class Direction { kRead, kWrite };

// Performs `call(const IoTarget& target)` on `fd`: a syscall on target.fd
// returning a count or -errno (EINTR already retried, as
// capfs/sys/fs.h's wrappers do). The call must keep within
// `target` (see IoTarget): pass target.msg_flags to a send/recv-family call,
// and ask to move no more than target.max_bytes. It first yields once, so an
// always-ready descriptor cannot starve the loop's other tasks; then, as the
// descriptor's IoMode says (see the file comment), it calls, waits for
// readiness after EAGAIN, and calls again. `requested` is the byte count
// asked for (0 if none applies), to tell a short transfer. Gives the count;
// EBADF if `fd` is or gets closed; kCancelled; kResourceExhausted when a
// worker was needed and none could be started; or the call's error as
// `op: strerror`.
template <typename Call>
Task<absl::StatusOr<size_t>> DoIo(AsyncFd& fd, Direction direction,
                                  const char* op, size_t requested, Call call) {
  using internal::FdIo;
  // Holding a reference keeps the state alive even if the AsyncFd goes away
  // while the call waits.
  internal::FdRef state(fd.state());
  if (!state || state->closed()) co_return ErrnoError(EBADF, op, "");
  if (absl::Status s = co_await Yield(); !s.ok()) co_return s;
  const uint32_t bit =
      direction == Direction::kRead ? internal::kReadable : internal::kWritable;
  // A worker-served call said EAGAIN and no report came meanwhile: wait for
  // one rather than ask the kernel again.
  bool wait_for_report = false;
  for (;;) {
    if (state->closed()) co_return ErrnoError(EBADF, op, "");
    const FdIo io = state->io();
    bool wait = false;
    if (io == FdIo::kLoop || io == FdIo::kLoopDontWait) {
      wait = !state->maybe_ready(bit);
    } else if (io == FdIo::kWorkerWhenReady) {
      wait = wait_for_report || !state->PollNow(bit);
      wait_for_report = false;
    }
    if (wait) {
      absl::Status s = co_await internal::FdReadyAwaiter(state.get(), bit, op);
      if (!s.ok()) co_return s;
      continue;
    }
    ssize_t r;
    if (io == FdIo::kLoop || io == FdIo::kLoopDontWait) {
      r = call(state->target(bit));
      if (r == -EAGAIN) {
        // Not ready, even if it had hung up before: wait for a report.
        state->OnEagain(bit);
        continue;
      }
    } else {
      const uint64_t reports = state->reports(bit);
      internal::FdCallJob<Call> job(state.get(), &call, state->target(bit));
      switch (co_await job) {
        case internal::BlockingJob::Outcome::kRan:
        case internal::BlockingJob::Outcome::kRanCancelled:
          // Data it moved must not be lost: its count stands even if the
          // task was cancelled meanwhile, which its next wait reports.
          break;
        case internal::BlockingJob::Outcome::kClosed:
          co_return ErrnoError(EBADF, op, "");
        case internal::BlockingJob::Outcome::kNoThread:
          co_return absl::ResourceExhaustedError(
              absl::StrCat(op, ": no worker thread could be started"));
        default:
          co_return absl::CancelledError(op);
      }
      r = job.result();
      if (r == -EAGAIN && io == FdIo::kWorkerWhenReady) {
        wait_for_report = state->reports(bit) == reports;
        continue;
      }
      // kWorker: nothing would report readiness; EAGAIN is the result.
    }
    if (r >= 0) {
      if (io == FdIo::kLoop || io == FdIo::kLoopDontWait) {
        state->AfterTransfer(bit, static_cast<size_t>(r), requested);
      }
      co_return static_cast<size_t>(r);
    }
    co_return ErrnoError(static_cast<int>(-r), op, "");
  }
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_ASYNC_FD_H_

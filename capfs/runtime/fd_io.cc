#include "capfs/runtime/fd_io.h"

#include <stdint.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "capfs/runtime/internal/fd_state.h"
#include "capfs/runtime/internal/fs_counts.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"
#include "capfs/sys/io.h"
#include "capfs/sys/net.h"
#include "capfs/sys/uring.h"

namespace capfs {
namespace runtime {
namespace {

using ::capfs::internal::SysRead;
using ::capfs::internal::SysReadv;
using ::capfs::internal::SysUring;
using internal::FsPath;
using internal::UringCall;
using internal::UringOp;
using internal::UringRing;

// The loop's ring when `fd` is a regular file whose I/O it may serve (the
// loop's AsyncFsOptions allow io_uring and it is available), else nullptr.
// Counts the path for regular files: the ring, or the workers (DoIo). A
// file whose I/O went to the workers once stays there: the ring's calls
// would not take the file position's lock that worker read(2)s take.
UringRing* RingForFile(const AsyncFd& fd) {
  internal::FdState* state = fd.state();
  if (state == nullptr || state->closed() || !state->regular_file()) {
    return nullptr;
  }
  internal::Scheduler* scheduler = state->scheduler();
  UringRing* ring =
      scheduler->fs_options().io_uring && !state->file_io_on_workers()
          ? scheduler->ring()
          : nullptr;
  if (ring == nullptr) state->set_file_io_on_workers();
  internal::CountFsPath(ring != nullptr ? FsPath::kIoUring : FsPath::kWorkers);
  return ring;
}

// One read or write of a regular file through `ring`: `prepare(sqe, fd)`
// fills the submission for descriptor `fd`, at the file's position. As
// DoIo's worker path behaves: the count, EBADF if `fd` is or gets closed
// before the call reaches the kernel, kCancelled if it never ran or the
// kernel stopped it. A call the cancellation did not stop keeps its result:
// the bytes it moved (and the position it advanced) are not lost, and the
// task meets the cancellation at its next wait.
template <typename Prepare>
Task<absl::StatusOr<size_t>> RingFileIo(AsyncFd& fd, UringRing* ring,
                                        const char* op, Prepare prepare) {
  internal::FdRef state(fd.state());
  if (!state || state->closed()) co_return ErrnoError(EBADF, op, "");
  // One ring call at a time on the file (fd_state.h: the file position).
  internal::FdRingTurn turn(state.get(), op);
  if (absl::Status s = co_await turn; !s.ok()) co_return s;
  if (state->closed()) co_return ErrnoError(EBADF, op, "");
  // Closing now defers close(2) until the completion; a call still queued
  // then is made on -1 (state->fd() of a closed FdState): EBADF.
  state->AddRingCall();
  UringCall call(ring,
                 [&](struct io_uring_sqe* sqe) { prepare(sqe, state->fd()); });
  const UringOp::Outcome outcome = co_await call;
  state->RemoveRingCall();
  if (outcome == UringOp::Outcome::kCancelled) {
    co_return absl::CancelledError(op);
  }
  const int r = call.result();
  if (r < 0) co_return ErrnoError(-r, op, "");
  co_return static_cast<size_t>(r);
}

size_t TotalLength(absl::Span<const struct iovec> iov) {
  size_t total = 0;
  for (const struct iovec& v : iov) total += v.iov_len;
  return total;
}

ssize_t ReadCall(const IoTarget& t, absl::Span<char> buf) {
  if (t.msg_flags != 0) {
    return internal::SysRecv(t.fd, buf.data(), buf.size(), t.msg_flags);
  }
  return SysRead(t.fd, buf.data(), buf.size());
}

ssize_t WriteCall(const IoTarget& t, absl::string_view data) {
  size_t n = std::min(data.size(), t.max_bytes);
  if (t.msg_flags != 0) {
    return internal::SysSend(t.fd, data.data(), n, t.msg_flags);
  }
  // Not a socket: SIGPIPE blocked around the call, EPIPE returned.
  return internal::SysWriteNoSigpipe(t.fd, data.data(), n);
}

ssize_t ReadvCall(const IoTarget& t, absl::Span<const struct iovec> iov) {
  if (t.msg_flags != 0) {
    struct msghdr msg = {};
    msg.msg_iov = const_cast<struct iovec*>(iov.data());
    msg.msg_iovlen = iov.size();
    return internal::SysRecvmsg(t.fd, &msg, t.msg_flags);
  }
  return SysReadv(t.fd, iov.data(), static_cast<int>(iov.size()));
}

ssize_t WritevCall(const IoTarget& t, absl::Span<const struct iovec> iov) {
  // Keep within t.max_bytes: the buffers that fit, the last one cut short.
  absl::InlinedVector<struct iovec, 8> capped;
  if (t.max_bytes != SIZE_MAX && TotalLength(iov) > t.max_bytes) {
    size_t room = t.max_bytes;
    for (const struct iovec& v : iov) {
      if (room == 0) break;
      capped.push_back({v.iov_base, std::min(v.iov_len, room)});
      room -= capped.back().iov_len;
    }
    iov = absl::MakeConstSpan(capped);
  }
  if (t.msg_flags != 0) {
    struct msghdr msg = {};
    msg.msg_iov = const_cast<struct iovec*>(iov.data());
    msg.msg_iovlen = iov.size();
    return internal::SysSendmsg(t.fd, &msg, t.msg_flags);
  }
  return internal::SysWritevNoSigpipe(t.fd, iov.data(),
                                      static_cast<int>(iov.size()));
}

}  // namespace

Task<absl::StatusOr<size_t>> Read(AsyncFd& fd, absl::Span<char> buf) {
  if (UringRing* ring = RingForFile(fd)) {
    return RingFileIo(fd, ring, "read",
                      [buf](struct io_uring_sqe* sqe, int file) {
                        SysUring::PrepRead(sqe, file, buf.data(), buf.size());
                      });
  }
  return DoIo(fd, Direction::kRead, "read", buf.size(),
              [buf](const IoTarget& t) { return ReadCall(t, buf); });
}

Task<absl::StatusOr<size_t>> Write(AsyncFd& fd, absl::string_view data) {
  if (UringRing* ring = RingForFile(fd)) {
    return RingFileIo(
        fd, ring, "write", [data](struct io_uring_sqe* sqe, int file) {
          SysUring::PrepWrite(sqe, file, data.data(), data.size());
        });
  }
  return DoIo(fd, Direction::kWrite, "write", data.size(),
              [data](const IoTarget& t) { return WriteCall(t, data); });
}

Task<absl::StatusOr<size_t>> ReadV(AsyncFd& fd,
                                   absl::Span<const struct iovec> iov) {
  if (UringRing* ring = RingForFile(fd)) {
    return RingFileIo(fd, ring, "readv",
                      [iov](struct io_uring_sqe* sqe, int file) {
                        SysUring::PrepReadv(sqe, file, iov.data(),
                                            static_cast<unsigned>(iov.size()));
                      });
  }
  return DoIo(fd, Direction::kRead, "readv", TotalLength(iov),
              [iov](const IoTarget& t) { return ReadvCall(t, iov); });
}

Task<absl::StatusOr<size_t>> WriteV(AsyncFd& fd,
                                    absl::Span<const struct iovec> iov) {
  if (UringRing* ring = RingForFile(fd)) {
    return RingFileIo(fd, ring, "writev",
                      [iov](struct io_uring_sqe* sqe, int file) {
                        SysUring::PrepWritev(sqe, file, iov.data(),
                                             static_cast<unsigned>(iov.size()));
                      });
  }
  return DoIo(fd, Direction::kWrite, "writev", TotalLength(iov),
              [iov](const IoTarget& t) { return WritevCall(t, iov); });
}

Task<absl::Status> WriteAll(AsyncFd& fd, absl::string_view data) {
  // On the loop thread, one call moves at most kWriteAllPiece bytes (see
  // fd_io.h); a worker's call takes everything at once.
  const size_t piece = fd.on_loop() ? kWriteAllPiece : data.size();
  while (!data.empty()) {
    absl::StatusOr<size_t> n = co_await Write(fd, data.substr(0, piece));
    if (!n.ok()) co_return n.status();
    data.remove_prefix(*n);
  }
  co_return absl::OkStatus();
}

Task<absl::StatusOr<size_t>> Copy(AsyncFd& from, AsyncFd& to) {
  char buf[16 << 10];
  size_t copied = 0;
  for (;;) {
    absl::StatusOr<size_t> n = co_await Read(from, absl::MakeSpan(buf));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return copied;
    absl::Status s = co_await WriteAll(to, absl::string_view(buf, *n));
    if (!s.ok()) co_return s;
    copied += *n;
  }
}

}  // namespace runtime
}  // namespace capfs

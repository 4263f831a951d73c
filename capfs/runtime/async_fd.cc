#include "capfs/runtime/async_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "capfs/sys/fs.h"
#include "capfs/sys/io.h"

namespace capfs {
namespace runtime {
namespace {

using ::capfs::internal::RetryEintr;
using ::capfs::internal::SysFcntl;
using ::capfs::internal::SysFstat;

// The directions in which a short transfer proves the kernel had no more
// data, or room, at the time (so that any more will be reported):
//  - writes to a pipe or a stream socket: a nonblocking write stops short
//    only when the buffer is full;
//  - not reads: a read from a pipe whose writer uses packet mode (O_DIRECT,
//    which the read end cannot see) gives one packet and more may wait, and
//    a stream socket's read also stops at a message that carries
//    descriptors, at a change of sender, at TCP's urgent mark, with data
//    still queued. Pipe() trusts short reads on the pipes it makes.
uint32_t ShortTransferDrains(int fd, const struct stat& st) {
  if (S_ISFIFO(st.st_mode)) return internal::kWritable;
  if (!S_ISSOCK(st.st_mode)) return 0;
  int type = 0;
  socklen_t len = sizeof(type);
  int r = RetryEintr(
      [&] { return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len); });
  return r == 0 && type == SOCK_STREAM ? internal::kWritable : 0;
}

}  // namespace

absl::StatusOr<AsyncFd> AsyncFd::Adopt(Scope& scope, Fd fd, IoMode mode) {
  int fd_flags = SysFcntl(fd.get(), F_GETFD, 0);
  if (fd_flags < 0) return ErrnoError(-fd_flags, "fcntl(F_GETFD)", "");
  if (!(fd_flags & FD_CLOEXEC)) {
    int r = SysFcntl(fd.get(), F_SETFD, fd_flags | FD_CLOEXEC);
    if (r < 0) return ErrnoError(-r, "fcntl(F_SETFD)", "");
  }
  struct stat st;
  int r = SysFstat(fd.get(), &st);
  if (r < 0) return ErrnoError(-r, "fstat", "");
  const bool socket = S_ISSOCK(st.st_mode);
  internal::FdIo io = internal::FdIo::kWorker;
  bool pollable =
      !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode));
  if (pollable) {
    int flags = SysFcntl(fd.get(), F_GETFL, 0);
    if (flags < 0) return ErrnoError(-flags, "fcntl(F_GETFL)", "");
    if (mode == IoMode::kNonblocking && !(flags & O_NONBLOCK)) {
      r = SysFcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
      if (r < 0) return ErrnoError(-r, "fcntl(F_SETFL)", "");
      flags |= O_NONBLOCK;
    }
    if (mode == IoMode::kBlocking) {
      io = internal::FdIo::kWorkerWhenReady;
    } else if (flags & O_NONBLOCK) {
      io = internal::FdIo::kLoop;
    } else if (socket) {
      io = internal::FdIo::kLoopDontWait;
    } else {
      io = internal::FdIo::kWorkerWhenReady;
    }
  }
  const uint32_t short_drains = ShortTransferDrains(fd.get(), st);
  // A blocking pipe that said it is writable has room for PIPE_BUF bytes
  // (a tty usually does); sockets pass MSG_DONTWAIT instead.
  const bool capped_writes = io == internal::FdIo::kWorkerWhenReady && !socket;
  absl::StatusOr<internal::FdState*> state = internal::FdState::Create(
      scope.scheduler(), std::move(fd), io, short_drains, socket, capped_writes,
      scope.resources());
  if (!state.ok()) return state.status();
  if (S_ISREG(st.st_mode)) (*state)->set_regular_file();
  return AsyncFd(*state);
}

absl::StatusOr<AsyncFd> AsyncFd::AdoptNewSocket(Scope& scope, Fd fd, int type,
                                                bool tcp) {
  // A nonblocking stream stops a write short only when its buffer is full.
  // A read stops short at a message carrying descriptors, or a change of
  // sender, with data still queued; on TCP only at the urgent mark, which
  // only the peer that sent it can stall (and more data reports again).
  uint32_t short_drains = 0;
  if (type == SOCK_STREAM) {
    short_drains = internal::kWritable | (tcp ? internal::kReadable : 0);
  }
  absl::StatusOr<internal::FdState*> state = internal::FdState::Create(
      scope.scheduler(), std::move(fd), internal::FdIo::kLoop, short_drains,
      /*socket=*/true, /*capped_writes=*/false, scope.resources());
  if (!state.ok()) return state.status();
  return AsyncFd(*state);
}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

AsyncFd::~AsyncFd() { Release(); }

void AsyncFd::Release() {
  if (state_ == nullptr) return;
  // Closing ends the waits of calls still in progress, which keep the state
  // alive with references of their own until they return.
  state_->Close().IgnoreError();  // nobody is left to tell
  std::exchange(state_, nullptr)->Unref();
}

absl::Status AsyncFd::Close() {
  return state_ == nullptr ? absl::OkStatus() : state_->Close();
}

absl::StatusOr<PipeEnds> Pipe(Scope& scope) {
  int fds[2];
  int r = internal::SysPipe(fds, /*nonblocking=*/true);
  if (r < 0) return ErrnoError(-r, "pipe2", "");
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  absl::StatusOr<AsyncFd> read =
      AsyncFd::Adopt(scope, std::move(read_end), IoMode::kAuto);
  if (!read.ok()) return read.status();
  // Both ends are ours and the pipe is not in packet mode: a short read
  // drained it, which saves a read that would say EAGAIN before each wait.
  read->state()->AddShortDrains(internal::kReadable);
  absl::StatusOr<AsyncFd> write =
      AsyncFd::Adopt(scope, std::move(write_end), IoMode::kAuto);
  if (!write.ok()) return write.status();
  return PipeEnds{*std::move(read), *std::move(write)};
}

}  // namespace runtime
}  // namespace capfs

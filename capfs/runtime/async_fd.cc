#include "capfs/runtime/async_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "capfs/internal/syscall.h"
#include "capfs/runtime/internal/sys.h"

namespace capfs {
namespace runtime {
namespace {

using ::capfs::internal::RetryEintr;
using ::capfs::internal::SysFcntl;
using ::capfs::internal::SysFstat;

// Files a short read or write leaves drained: the kernel had no more at the
// time, and any more will be reported.
bool IsStream(int fd, const struct stat& st) {
  if (S_ISFIFO(st.st_mode)) return true;
  if (!S_ISSOCK(st.st_mode)) return false;
  int type = 0;
  socklen_t len = sizeof(type);
  int r = RetryEintr(
      [&] { return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len); });
  return r == 0 && type == SOCK_STREAM;
}

}  // namespace

absl::StatusOr<AsyncFd> AsyncFd::Adopt(Scope& scope, Fd fd, IoMode mode) {
  struct stat st;
  int r = SysFstat(fd.get(), &st);
  if (r < 0) return ErrnoError(-r, "fstat", "");
  internal::FdIo io = internal::FdIo::kWorker;
  bool pollable = !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
                    S_ISBLK(st.st_mode));
  if (pollable) {
    int flags = SysFcntl(fd.get(), F_GETFL, 0);
    if (flags < 0) return ErrnoError(-flags, "fcntl(F_GETFL)", "");
    if (mode == IoMode::kNonblocking && !(flags & O_NONBLOCK)) {
      r = SysFcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
      if (r < 0) return ErrnoError(-r, "fcntl(F_SETFL)", "");
      flags |= O_NONBLOCK;
    }
    io = (mode != IoMode::kBlocking && (flags & O_NONBLOCK))
             ? internal::FdIo::kLoop
             : internal::FdIo::kWorkerWhenReady;
  }
  bool stream = IsStream(fd.get(), st);
  absl::StatusOr<internal::FdState*> state = internal::FdState::Create(
      scope.scheduler(), std::move(fd), io, stream, scope.resources());
  if (!state.ok()) return state.status();
  return AsyncFd(*state);
}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    if (state_ != nullptr) state_->Unref();
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

AsyncFd::~AsyncFd() {
  if (state_ != nullptr) state_->Unref();
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
  absl::StatusOr<AsyncFd> write =
      AsyncFd::Adopt(scope, std::move(write_end), IoMode::kAuto);
  if (!write.ok()) return write.status();
  return PipeEnds{*std::move(read), *std::move(write)};
}

}  // namespace runtime
}  // namespace capfs

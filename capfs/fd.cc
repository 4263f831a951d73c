#include "capfs/fd.h"

#include <unistd.h>

#include "capfs/status.h"

namespace capfs {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    // A close error on an fd being replaced has no one to report to.
    Close().IgnoreError();
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status Fd::Close() {
  if (fd_ < 0) return absl::OkStatus();
  int fd = release();
  // Linux releases the descriptor even when close fails with EINTR; a retry
  // could close a descriptor another thread has just been given.
  if (::close(fd) != 0 && errno != EINTR) {
    return ErrnoError(errno, "close", "");
  }
  return absl::OkStatus();
}

}  // namespace capfs

#include "capfs/fd.h"

#include <unistd.h>

#include "capfs/status.h"

namespace capfs {

void Fd::CloseQuietly(int fd) noexcept { ::close(fd); }

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

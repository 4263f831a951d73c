#include "capfs/runtime/fd_io.h"

#include "capfs/internal/syscall.h"

namespace capfs {
namespace runtime {
namespace {

size_t TotalLength(absl::Span<const struct iovec> iov) {
  size_t total = 0;
  for (const struct iovec& v : iov) total += v.iov_len;
  return total;
}

}  // namespace

Task<absl::StatusOr<size_t>> Read(AsyncFd& fd, absl::Span<char> buf) {
  return DoIo(fd, Direction::kRead, "read", buf.size(), [buf](int raw) {
    return ::capfs::internal::SysRead(raw, buf.data(), buf.size());
  });
}

Task<absl::StatusOr<size_t>> Write(AsyncFd& fd, absl::string_view data) {
  return DoIo(fd, Direction::kWrite, "write", data.size(), [data](int raw) {
    return ::capfs::internal::SysWrite(raw, data.data(), data.size());
  });
}

Task<absl::StatusOr<size_t>> ReadV(AsyncFd& fd,
                                   absl::Span<const struct iovec> iov) {
  return DoIo(fd, Direction::kRead, "readv", TotalLength(iov), [iov](int raw) {
    return ::capfs::internal::SysReadv(raw, iov.data(),
                                       static_cast<int>(iov.size()));
  });
}

Task<absl::StatusOr<size_t>> WriteV(AsyncFd& fd,
                                    absl::Span<const struct iovec> iov) {
  return DoIo(fd, Direction::kWrite, "writev", TotalLength(iov),
              [iov](int raw) {
                return ::capfs::internal::SysWritev(
                    raw, iov.data(), static_cast<int>(iov.size()));
              });
}

Task<absl::Status> WriteAll(AsyncFd& fd, absl::string_view data) {
  while (!data.empty()) {
    absl::StatusOr<size_t> n = co_await Write(fd, data);
    if (!n.ok()) co_return n.status();
    data.remove_prefix(*n);
  }
  co_return absl::OkStatus();
}

}  // namespace runtime
}  // namespace capfs

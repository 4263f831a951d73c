#include "capfs/file.h"

#include <limits.h>
#include <stdint.h>
#include <unistd.h>

#include <string>

#include "capfs/internal/file_stat.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace {

template <typename T>
absl::StatusOr<T> Result(T r, absl::string_view op) {
  if (r < 0) return ErrnoError(static_cast<int>(-r), op, "");
  return r;
}

// A transfer's byte count, or its error.
absl::StatusOr<size_t> Count(ssize_t r, absl::string_view op) {
  if (r < 0) return ErrnoError(static_cast<int>(-r), op, "");
  return static_cast<size_t>(r);
}

absl::Status Done(int r, absl::string_view op) {
  if (r < 0) return ErrnoError(-r, op, "");
  return absl::OkStatus();
}

}  // namespace

FileKind FileKindFromMode(mode_t mode) {
  return internal::FileKindOfMode(mode);
}

FileStat FileStatFromStat(const struct stat& st) {
  return internal::FileStatOf(st);
}

absl::StatusOr<size_t> Read(const Fd& fd, absl::Span<char> buf) {
  return Count(internal::SysRead(fd.get(), buf.data(), buf.size()), "read");
}

absl::StatusOr<size_t> Write(const Fd& fd, absl::string_view data) {
  return Count(internal::SysWrite(fd.get(), data.data(), data.size()), "write");
}

absl::StatusOr<size_t> PRead(const Fd& fd, absl::Span<char> buf, off_t offset) {
  return Count(internal::SysPread(fd.get(), buf.data(), buf.size(), offset),
               "pread");
}

absl::StatusOr<size_t> PWrite(const Fd& fd, absl::string_view data,
                              off_t offset) {
  return Count(internal::SysPwrite(fd.get(), data.data(), data.size(), offset),
               "pwrite");
}

absl::StatusOr<size_t> ReadV(const Fd& fd, absl::Span<const struct iovec> iov) {
  if (iov.size() > IOV_MAX) return ErrnoError(EINVAL, "readv", "");
  return Count(
      internal::SysReadv(fd.get(), iov.data(), static_cast<int>(iov.size())),
      "readv");
}

absl::StatusOr<size_t> WriteV(const Fd& fd,
                              absl::Span<const struct iovec> iov) {
  if (iov.size() > IOV_MAX) return ErrnoError(EINVAL, "writev", "");
  return Count(
      internal::SysWritev(fd.get(), iov.data(), static_cast<int>(iov.size())),
      "writev");
}

absl::StatusOr<off_t> Seek(const Fd& fd, off_t offset, Whence whence) {
  int w = whence == Whence::kSet       ? SEEK_SET
          : whence == Whence::kCurrent ? SEEK_CUR
                                       : SEEK_END;
  return Result(internal::SysLseek(fd.get(), offset, w), "lseek");
}

absl::Status Fsync(const Fd& fd) {
  return Done(internal::SysFsync(fd.get()), "fsync");
}

absl::Status Ftruncate(const Fd& fd, off_t length) {
  return Done(internal::SysFtruncate(fd.get(), length), "ftruncate");
}

absl::StatusOr<FileStat> Fstat(const Fd& fd) {
  struct stat st;
  if (int r = internal::SysFstat(fd.get(), &st); r < 0) {
    return ErrnoError(-r, "fstat", "");
  }
  return FileStatFromStat(st);
}

absl::Status WriteAll(const Fd& fd, absl::string_view data) {
  while (!data.empty()) {
    absl::StatusOr<size_t> n = Write(fd, data);
    if (!n.ok()) return n.status();
    data.remove_prefix(*n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAll(const Fd& fd, size_t max_bytes) {
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    absl::StatusOr<size_t> n = Read(fd, absl::MakeSpan(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    if (out.size() + *n > max_bytes) return ErrnoError(EFBIG, "read", "");
    out.append(buf, *n);
  }
}

}  // namespace capfs

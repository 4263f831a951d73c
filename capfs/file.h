// File: I/O and metadata on an open descriptor.
//
// Thin, EINTR-safe calls on an Fd, each returning absl::Status(Or) with the
// errno kept (see status.h). They add nothing to the syscall they wrap: a
// short read or write is reported as such, except by ReadAll and WriteAll,
// which loop.
//
// FileStat is also what Dir::Stat and Dir::Lstat return.
//
// Example:
//   absl::StatusOr<capfs::Fd> f = dir.OpenAt("log", O_WRONLY | O_APPEND);
//   if (f.ok()) absl::Status s = capfs::WriteAll(*f, "line\n");

#ifndef CAPFS_FILE_H_
#define CAPFS_FILE_H_

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "capfs/fd.h"

namespace capfs {

enum class FileKind {
  kUnknown,
  kRegular,
  kDirectory,
  kSymlink,
  kBlockDevice,
  kCharDevice,
  kFifo,
  kSocket
};

// The kind of a file from the S_IFMT bits of a mode.
FileKind FileKindFromMode(mode_t mode);

struct FileStat {
  FileKind kind;
  uint64_t size;
  uint32_t perm;  // mode & 07777
  uint64_t ino, dev, nlink;
  uint32_t uid, gid;
  absl::Time atime, mtime, ctime;
};

// FileStat from a struct stat.
FileStat FileStatFromStat(const struct stat& st);

// read(2): up to buf.size() bytes; 0 at end of file.
absl::StatusOr<size_t> Read(const Fd& fd, absl::Span<char> buf);
// write(2): some prefix of `data`, possibly short.
absl::StatusOr<size_t> Write(const Fd& fd, absl::string_view data);
// pread(2) and pwrite(2) at `offset`; the file offset is not changed.
absl::StatusOr<size_t> PRead(const Fd& fd, absl::Span<char> buf, off_t offset);
absl::StatusOr<size_t> PWrite(const Fd& fd, absl::string_view data,
                              off_t offset);
// readv(2) and writev(2): at most IOV_MAX buffers, else EINVAL.
absl::StatusOr<size_t> ReadV(const Fd& fd, absl::Span<const struct iovec> iov);
absl::StatusOr<size_t> WriteV(const Fd& fd, absl::Span<const struct iovec> iov);

enum class Whence { kSet, kCurrent, kEnd };
// lseek(2): the new offset.
absl::StatusOr<off_t> Seek(const Fd& fd, off_t offset, Whence whence);

// fsync(2) and ftruncate(2).
absl::Status Fsync(const Fd& fd);
absl::Status Ftruncate(const Fd& fd, off_t length);
// fstat(2); works on O_PATH descriptors too.
absl::StatusOr<FileStat> Fstat(const Fd& fd);

// Writes all of `data`, looping over short writes.
absl::Status WriteAll(const Fd& fd, absl::string_view data);
// Reads to end of file, failing with errno EFBIG (absl's code for it,
// kOutOfRange) once more than `max_bytes` would be read.
absl::StatusOr<std::string> ReadAll(const Fd& fd,
                                    size_t max_bytes = size_t{1} << 30);

}  // namespace capfs

#endif  // CAPFS_FILE_H_

// FileStatOf: a struct stat as the FileStat that Dir::Stat, Dir::Lstat,
// Fstat and Walk give, defined inline; FileStatOfStatx: the same from the
// struct statx of a statx(2) with AT_STATX_SYNC_AS_STAT (the runtime's
// io_uring path), equal field for field to what stat(2) gives.
//
// Inline so that a one-component Dir::Stat runs as one function around its
// fstatat: every 4 KiB page of code a call touches after a syscall is a TLB
// miss on machines where each syscall flushes the TLB (page-table isolation
// without PCID), and on those the conversion as an out-of-line call, with
// absl::TimeFromTimespec three times, was a measurable share of the call.
// FileStatFromStat (file.h) is this function, out of line.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_FILE_STAT_H_
#define CAPFS_INTERNAL_FILE_STAT_H_

#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/time/time.h"
#include "capfs/file.h"

namespace capfs {
namespace internal {

// absl::TimeFromTimespec for the timestamps a stat gives: timestamps within
// about 290 years of 1970 are whole nanoseconds since the epoch; the rest
// take absl's general (out-of-line) conversion.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Time TimeOfTimespec(
    const struct timespec& ts) {
  constexpr int64_t kNanosPerSecond = 1000 * 1000 * 1000;
  constexpr int64_t kMaxSeconds = INT64_MAX / kNanosPerSecond - 1;
  if (ABSL_PREDICT_TRUE(ts.tv_sec > -kMaxSeconds && ts.tv_sec < kMaxSeconds &&
                        ts.tv_nsec >= 0 && ts.tv_nsec < kNanosPerSecond)) {
    return absl::FromUnixNanos(ts.tv_sec * kNanosPerSecond + ts.tv_nsec);
  }
  return absl::TimeFromTimespec(ts);
}

inline FileKind FileKindOfMode(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return FileKind::kRegular;
    case S_IFDIR:
      return FileKind::kDirectory;
    case S_IFLNK:
      return FileKind::kSymlink;
    case S_IFBLK:
      return FileKind::kBlockDevice;
    case S_IFCHR:
      return FileKind::kCharDevice;
    case S_IFIFO:
      return FileKind::kFifo;
    case S_IFSOCK:
      return FileKind::kSocket;
    default:
      return FileKind::kUnknown;
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline FileStat FileStatOf(const struct stat& st) {
  FileStat s;
  s.kind = FileKindOfMode(st.st_mode);
  s.size = static_cast<uint64_t>(st.st_size);
  s.perm = st.st_mode & 07777;
  s.ino = st.st_ino;
  s.dev = st.st_dev;
  s.nlink = st.st_nlink;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.atime = TimeOfTimespec(st.st_atim);
  s.mtime = TimeOfTimespec(st.st_mtim);
  s.ctime = TimeOfTimespec(st.st_ctim);
  return s;
}

// stat(2) gives st_dev as makedev(major, minor) of the same two numbers.
inline FileStat FileStatOfStatx(const struct statx& stx) {
  auto time_of = [](const struct statx_timestamp& t) {
    struct timespec ts;
    ts.tv_sec = t.tv_sec;
    ts.tv_nsec = t.tv_nsec;
    return TimeOfTimespec(ts);
  };
  FileStat s;
  s.kind = FileKindOfMode(stx.stx_mode);
  s.size = stx.stx_size;
  s.perm = stx.stx_mode & 07777;
  s.ino = stx.stx_ino;
  s.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  s.nlink = stx.stx_nlink;
  s.uid = stx.stx_uid;
  s.gid = stx.stx_gid;
  s.atime = time_of(stx.stx_atime);
  s.mtime = time_of(stx.stx_mtime);
  s.ctime = time_of(stx.stx_ctime);
  return s;
}

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_FILE_STAT_H_

// The rules of open(2)'s flags that capfs applies before any syscall: which
// bits openat(2) honours, which combinations it refuses before reading the
// path, and when a mode applies. Kept out of the syscall layer, whose
// wrappers pass flags through unchanged.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_OPEN_FLAGS_H_
#define CAPFS_INTERNAL_OPEN_FLAGS_H_

#include <errno.h>
#include <fcntl.h>

namespace capfs {
namespace internal {

// open(2)'s flag bits that openat(2) honours (the kernel's
// VALID_OPEN_FLAGS), and the few it keeps beside O_PATH.
inline constexpr int kValidOpenFlags =
    O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
    O_DSYNC | FASYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW |
    O_NOATIME | O_CLOEXEC | O_SYNC | O_PATH | O_TMPFILE;
inline constexpr int kPathOpenFlags =
    O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC;
// What O_TMPFILE adds to O_DIRECTORY's bit.
inline constexpr int kTmpfileBit = O_TMPFILE & ~O_DIRECTORY;

// open(2)'s flags as openat(2) takes them: unknown bits dropped, and with
// O_PATH only the flags that go with it kept; O_CLOEXEC always added.
inline int NormalizeOpenFlags(int flags) {
  flags &= kValidOpenFlags;
  if (flags & O_PATH) flags &= kPathOpenFlags;
  return flags | O_CLOEXEC;
}

// True when an open with `flags` (as a caller gives them, or normalized)
// writes nothing and cannot wait in the open itself: read only, with
// O_PATH, O_DIRECTORY or O_NONBLOCK. A plain open may wait (a FIFO for its
// other end, a device's driver), and O_CREAT, O_TRUNC, O_APPEND and
// O_TMPFILE write. The nonblocking Dir calls (nonblocking.h) make only
// these opens.
inline bool OpenCannotWait(int flags) {
  flags = NormalizeOpenFlags(flags);
  const bool writes = (flags & O_ACCMODE) != O_RDONLY ||
                      (flags & (O_CREAT | O_TRUNC | O_APPEND | kTmpfileBit));
  return !writes && (flags & (O_PATH | O_DIRECTORY | O_NONBLOCK)) != 0;
}

// EINVAL for the open(2) flag combinations the kernel refuses before it reads
// the path (fs/open.c, build_open_flags), else 0: O_CREAT with O_DIRECTORY
// (O_TMPFILE carries O_DIRECTORY, so O_TMPFILE|O_CREAT too), and O_TMPFILE
// without write access. `flags` as openat(2) keeps them (unknown bits
// dropped, O_PATH's companions only).
inline int OpenFlagsError(int flags) {
  if ((flags & (O_DIRECTORY | O_CREAT)) == (O_DIRECTORY | O_CREAT)) {
    return EINVAL;
  }
  if ((flags & kTmpfileBit) &&
      (!(flags & O_DIRECTORY) || (flags & O_ACCMODE) == O_RDONLY)) {
    return EINVAL;
  }
  return 0;
}

// True when `flags` create a file, so that a mode applies.
inline bool CreatesFile(int flags) {
  // O_TMPFILE contains O_DIRECTORY's bit: test for all of it.
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_OPEN_FLAGS_H_

#include "capfs/sys/fs.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

namespace capfs {
namespace internal {

int SysOpenAt(int dirfd, const char* path, int flags, mode_t mode) {
  return RetryEintr(
      [&] { return ::openat(dirfd, path, flags | O_CLOEXEC, mode); });
}

int SysOpenat2(int dirfd, const char* path, const OpenHow& how) {
  OpenHow h = how;
  h.flags |= O_CLOEXEC;
  return static_cast<int>(RetryEintr(
      [&] { return ::syscall(SYS_openat2, dirfd, path, &h, sizeof(h)); }));
}

int SysMkdirAt(int dirfd, const char* path, mode_t mode) {
  return RetryEintr([&] { return ::mkdirat(dirfd, path, mode); });
}

int SysUnlinkAt(int dirfd, const char* path, int flags) {
  return RetryEintr([&] { return ::unlinkat(dirfd, path, flags); });
}

int SysRenameAt(int old_dirfd, const char* old_path, int new_dirfd,
                const char* new_path) {
  return RetryEintr(
      [&] { return ::renameat(old_dirfd, old_path, new_dirfd, new_path); });
}

int SysRenameAt2(int old_dirfd, const char* old_path, int new_dirfd,
                 const char* new_path, unsigned flags) {
  return RetryEintr([&] {
    return ::renameat2(old_dirfd, old_path, new_dirfd, new_path, flags);
  });
}

int SysLinkAt(int old_dirfd, const char* old_path, int new_dirfd,
              const char* new_path, int flags) {
  return RetryEintr([&] {
    return ::linkat(old_dirfd, old_path, new_dirfd, new_path, flags);
  });
}

int SysFchmodat2(int dirfd, const char* path, mode_t mode, int flags) {
  return static_cast<int>(RetryEintr(
      [&] { return ::syscall(SYS_fchmodat2, dirfd, path, mode, flags); }));
}

int SysFchmodAt(int dirfd, const char* path, mode_t mode) {
  return RetryEintr([&] { return ::fchmodat(dirfd, path, mode, 0); });
}

int SysFchmod(int fd, mode_t mode) {
  return RetryEintr([&] { return ::fchmod(fd, mode); });
}

int SysFchownAt(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) {
  return RetryEintr([&] { return ::fchownat(dirfd, path, uid, gid, flags); });
}

int SysUtimensAt(int dirfd, const char* path, const struct timespec times[2],
                 int flags) {
  // The raw call: glibc's wrapper refuses a path of "" with AT_EMPTY_PATH on
  // some versions.
  return static_cast<int>(RetryEintr(
      [&] { return ::syscall(SYS_utimensat, dirfd, path, times, flags); }));
}

int SysTruncate(const char* path, off_t length) {
  return RetryEintr([&] { return ::truncate(path, length); });
}

int SysStatfs(const char* path, struct statfs* st) {
  return RetryEintr([&] { return ::statfs(path, st); });
}

int SysSymlinkAt(const char* target, int dirfd, const char* path) {
  return RetryEintr([&] { return ::symlinkat(target, dirfd, path); });
}

ssize_t SysReadLinkAt(int dirfd, const char* path, char* buf, size_t size) {
  return RetryEintr([&] { return ::readlinkat(dirfd, path, buf, size); });
}

int SysFstat(int fd, struct stat* st) {
  return RetryEintr([&] { return ::fstat(fd, st); });
}

int SysFstatfs(int fd, struct statfs* st) {
  return RetryEintr([&] { return ::fstatfs(fd, st); });
}

int SysFaccessat2(int dirfd, const char* path, int mode, int flags) {
  return static_cast<int>(RetryEintr([&] {
    return ::syscall(SYS_faccessat2, dirfd, path, mode, flags | AT_EACCESS);
  }));
}

ssize_t SysGetdents64(int fd, void* buf, size_t size) {
  return RetryEintr([&] { return ::syscall(SYS_getdents64, fd, buf, size); });
}

ssize_t SysRead(int fd, void* buf, size_t size) {
  return RetryEintr([&] { return ::read(fd, buf, size); });
}

ssize_t SysWrite(int fd, const void* buf, size_t size) {
  return RetryEintr([&] { return ::write(fd, buf, size); });
}

ssize_t SysPread(int fd, void* buf, size_t size, off_t offset) {
  return RetryEintr([&] { return ::pread(fd, buf, size, offset); });
}

ssize_t SysPwrite(int fd, const void* buf, size_t size, off_t offset) {
  return RetryEintr([&] { return ::pwrite(fd, buf, size, offset); });
}

ssize_t SysReadv(int fd, const struct iovec* iov, int count) {
  return RetryEintr([&] { return ::readv(fd, iov, count); });
}

ssize_t SysWritev(int fd, const struct iovec* iov, int count) {
  return RetryEintr([&] { return ::writev(fd, iov, count); });
}

off_t SysLseek(int fd, off_t offset, int whence) {
  return RetryEintr([&] { return ::lseek(fd, offset, whence); });
}

int SysFsync(int fd) {
  return RetryEintr([&] { return ::fsync(fd); });
}

int SysFtruncate(int fd, off_t length) {
  return RetryEintr([&] { return ::ftruncate(fd, length); });
}

int SysFcntl(int fd, int cmd, int arg) {
  return RetryEintr([&] { return ::fcntl(fd, cmd, arg); });
}

}  // namespace internal
}  // namespace capfs

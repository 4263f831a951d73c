// The system calls capfs makes, each behind one wrapper.
//
// Every wrapper retries EINTR and returns the call's result when it succeeds
// or the negated errno when it fails (the kernel's own convention), so the
// hot paths pass plain ints and only the public layer builds absl::Status.
// Every descriptor a wrapper creates is close-on-exec, whatever the caller
// passed.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_SYS_FS_H_
#define CAPFS_SYS_FS_H_

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace capfs {
namespace internal {

// Runs `call` until it does not fail with EINTR; returns its result, or
// -errno when it returns -1.
template <typename Call>
inline auto RetryEintr(Call call) -> decltype(call()) {
  decltype(call()) r;
  do {
    r = call();
  } while (r == -1 && errno == EINTR);
  return r == -1 ? -errno : r;
}

// openat2(2)'s `struct open_how`, spelled here so that capfs builds against
// C libraries whose headers predate it.
struct OpenHow {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
inline constexpr uint64_t kResolveNoXdev = 0x01;
inline constexpr uint64_t kResolveNoMagiclinks = 0x02;
inline constexpr uint64_t kResolveNoSymlinks = 0x04;
inline constexpr uint64_t kResolveBeneath = 0x08;
inline constexpr uint64_t kResolveInRoot = 0x10;
inline constexpr uint64_t kResolveCached = 0x20;  // Linux 5.12+

int SysOpenAt(int dirfd, const char* path, int flags, mode_t mode);
int SysOpenat2(int dirfd, const char* path, const OpenHow& how);
int SysMkdirAt(int dirfd, const char* path, mode_t mode);
int SysUnlinkAt(int dirfd, const char* path, int flags);
int SysRenameAt(int old_dirfd, const char* old_path, int new_dirfd,
                const char* new_path);
// renameat2(2); `flags` 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
int SysRenameAt2(int old_dirfd, const char* old_path, int new_dirfd,
                 const char* new_path, unsigned flags);
int SysLinkAt(int old_dirfd, const char* old_path, int new_dirfd,
              const char* new_path, int flags);
int SysSymlinkAt(const char* target, int dirfd, const char* path);
// fchmodat2(2) (Linux 6.6+), which takes AT_EMPTY_PATH and
// AT_SYMLINK_NOFOLLOW; -ENOSYS before it.
int SysFchmodat2(int dirfd, const char* path, mode_t mode, int flags);
int SysFchmodAt(int dirfd, const char* path, mode_t mode);
// fchmod(2) of a descriptor opened for reading or writing (not O_PATH).
int SysFchmod(int fd, mode_t mode);
int SysFchownAt(int dirfd, const char* path, uid_t uid, gid_t gid, int flags);
int SysUtimensAt(int dirfd, const char* path, const struct timespec times[2],
                 int flags);
int SysTruncate(const char* path, off_t length);
int SysStatfs(const char* path, struct statfs* st);
ssize_t SysReadLinkAt(int dirfd, const char* path, char* buf, size_t size);
// Inline: a one-component Dir::Stat is this call and little else, and one
// more page of code after the syscall is a measurable share of it.
inline int SysFstatAt(int dirfd, const char* path, struct stat* st, int flags) {
  return RetryEintr([&] { return ::fstatat(dirfd, path, st, flags); });
}
int SysFstat(int fd, struct stat* st);
int SysFstatfs(int fd, struct statfs* st);
// faccessat2(2) with AT_EACCESS: the check path lookup itself makes.
int SysFaccessat2(int dirfd, const char* path, int mode, int flags);
ssize_t SysGetdents64(int fd, void* buf, size_t size);
ssize_t SysRead(int fd, void* buf, size_t size);
ssize_t SysWrite(int fd, const void* buf, size_t size);
ssize_t SysPread(int fd, void* buf, size_t size, off_t offset);
ssize_t SysPwrite(int fd, const void* buf, size_t size, off_t offset);
ssize_t SysReadv(int fd, const struct iovec* iov, int count);
ssize_t SysWritev(int fd, const struct iovec* iov, int count);
off_t SysLseek(int fd, off_t offset, int whence);
int SysFsync(int fd);
int SysFtruncate(int fd, off_t length);
int SysFcntl(int fd, int cmd, int arg);

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_SYS_FS_H_

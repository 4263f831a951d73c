// Raw system calls for a child between clone(2) and execve(2).
//
// A child made with CLONE_VM shares the parent's memory, and so its errno
// (thread-local storage) and every lock and cache of the C library; a child
// made without it, by a multi-threaded parent, has copies of locks some other
// thread may hold. Either may only make system calls. These wrappers make
// them with the `syscall` instruction itself: no C library function, no
// errno, no allocation. Each returns the kernel's result (-errno on failure)
// and retries EINTR. They are compiled without sanitizer instrumentation
// (the sanitizers' runtimes keep per-thread state that the child would
// corrupt), and so must be called only from functions marked the same way
// (CAPFS_CHILD_FN).
//
// Not part of the API.

#ifndef CAPFS_SYS_CHILD_SYSCALLS_H_
#define CAPFS_SYS_CHILD_SYSCALLS_H_

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "capfs's child syscalls are written for x86-64 and AArch64"
#endif

// No sanitizer instrumentation, no stack protector calls into the runtime.
#define CAPFS_CHILD_NO_INSTRUMENT \
  __attribute__((no_sanitize("address", "thread", "undefined")))
// A child-side helper: always inlined into its (uninstrumented) caller.
#define CAPFS_CHILD_INLINE \
  CAPFS_CHILD_NO_INSTRUMENT __attribute__((always_inline)) inline
// The child's entry point.
#define CAPFS_CHILD_FN CAPFS_CHILD_NO_INSTRUMENT __attribute__((noinline))

namespace capfs {
namespace internal {
namespace child {

CAPFS_CHILD_INLINE long RawSyscall6(long n, long a, long b, long c, long d,
                                    long e, long f) {
  long ret;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  ret = x0;
#endif
  return ret;
}

// Retries EINTR (the child blocks every signal until just before execve, so
// it is not expected, but a stop/continue can still interrupt some calls).
CAPFS_CHILD_INLINE long Call(long n, long a = 0, long b = 0, long c = 0,
                             long d = 0, long e = 0, long f = 0) {
  long r;
  do {
    r = RawSyscall6(n, a, b, c, d, e, f);
  } while (r == -EINTR);
  return r;
}

// The kernel's struct sigaction (not the C library's): handler, flags,
// restorer, then a 64-bit mask.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

CAPFS_CHILD_INLINE long RtSigaction(int sig, const KernelSigaction* act,
                                    KernelSigaction* old) {
  return Call(SYS_rt_sigaction, sig, reinterpret_cast<long>(act),
              reinterpret_cast<long>(old), sizeof(uint64_t));
}
CAPFS_CHILD_INLINE long RtSigprocmask(int how, const uint64_t* set,
                                      uint64_t* old) {
  return Call(SYS_rt_sigprocmask, how, reinterpret_cast<long>(set),
              reinterpret_cast<long>(old), sizeof(uint64_t));
}
CAPFS_CHILD_INLINE long Fchdir(int fd) { return Call(SYS_fchdir, fd); }
CAPFS_CHILD_INLINE long Fcntl(int fd, int cmd, long arg) {
  return Call(SYS_fcntl, fd, cmd, arg);
}
CAPFS_CHILD_INLINE long Dup3(int from, int to, int flags) {
  return Call(SYS_dup3, from, to, flags);
}
CAPFS_CHILD_INLINE long Close(int fd) {
  // close(2) is not retried: the descriptor is gone even on EINTR.
  return RawSyscall6(SYS_close, fd, 0, 0, 0, 0, 0);
}
CAPFS_CHILD_INLINE long CloseRange(unsigned first, unsigned last) {
  return Call(436 /* SYS_close_range */, first, last, 0);
}
CAPFS_CHILD_INLINE long OpenDirectory(const char* path) {
  return Call(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path),
              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}
CAPFS_CHILD_INLINE long Getdents64(int fd, void* buf, size_t size) {
  return Call(SYS_getdents64, fd, reinterpret_cast<long>(buf),
              static_cast<long>(size));
}
CAPFS_CHILD_INLINE long Setsid() { return Call(SYS_setsid); }
CAPFS_CHILD_INLINE long Setpgid(int pid, int pgid) {
  return Call(SYS_setpgid, pid, pgid);
}
CAPFS_CHILD_INLINE long Setgroups(size_t count, const uint32_t* groups) {
  return Call(SYS_setgroups, static_cast<long>(count),
              reinterpret_cast<long>(groups));
}
CAPFS_CHILD_INLINE long Setresgid(uint32_t gid) {
  return Call(SYS_setresgid, gid, gid, gid);
}
CAPFS_CHILD_INLINE long Setresuid(uint32_t uid) {
  return Call(SYS_setresuid, uid, uid, uid);
}
// prlimit64(0, resource, new, NULL): the calling process.
CAPFS_CHILD_INLINE long Prlimit(int resource, const uint64_t limits[2]) {
  return Call(SYS_prlimit64, 0, resource, reinterpret_cast<long>(limits), 0);
}
CAPFS_CHILD_INLINE long Prctl(int option, long arg) {
  return Call(SYS_prctl, option, arg, 0, 0, 0);
}
CAPFS_CHILD_INLINE long LandlockRestrictSelf(int ruleset_fd, uint32_t flags) {
  return Call(446 /* SYS_landlock_restrict_self */, ruleset_fd, flags);
}
CAPFS_CHILD_INLINE long Execve(const char* path, char* const* argv,
                               char* const* envp) {
  return Call(SYS_execve, reinterpret_cast<long>(path),
              reinterpret_cast<long>(argv), reinterpret_cast<long>(envp));
}
CAPFS_CHILD_INLINE long Write(int fd, const void* buf, size_t size) {
  return Call(SYS_write, fd, reinterpret_cast<long>(buf),
              static_cast<long>(size));
}
[[noreturn]] CAPFS_CHILD_INLINE void ExitGroup(int code) {
  for (;;) RawSyscall6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

}  // namespace child
}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_SYS_CHILD_SYSCALLS_H_

#include "capfs/sys/process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>

#include "capfs/sys/child_syscalls.h"
#include "capfs/sys/fs.h"
#include "capfs/sys/net.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

// clone3(2) with a function to run on the new stack: the child must not
// return from the system call into the caller's frame (that stack is the
// parent's), so it calls fn(arg) at once and exits with its result. A
// function of its own, in assembly, because no C code can run between the
// system call and the switch to the new stack.
extern "C" long capfs_clone3_run(void* args, size_t size, int (*fn)(void*),
                                 void* arg);
// The same with clone(2), for kernels and seccomp profiles without clone3.
// Not the C library's clone(): sanitizers intercept that one and run their
// after-fork hooks in the child, which under CLONE_VM writes the parent's
// state (ThreadSanitizer then believes the parent forked while threaded).
extern "C" long capfs_clone_run(unsigned long flags, void* stack_top,
                                int* parent_tid, int (*fn)(void*), void* arg);

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl capfs_clone3_run\n"
    ".hidden capfs_clone3_run\n"
    ".type capfs_clone3_run,@function\n"
    "capfs_clone3_run:\n"
    "  endbr64\n"
    // fn and arg into registers the system call preserves (the child starts
    // with the parent's registers, on its own stack).
    "  movq %rdx, %r8\n"
    "  movq %rcx, %r9\n"
    "  movl $435, %eax\n"  // SYS_clone3
    "  syscall\n"
    "  testq %rax, %rax\n"
    "  jnz 1f\n"
    "  xorl %ebp, %ebp\n"
    "  movq %r9, %rdi\n"
    "  callq *%r8\n"
    "  movl %eax, %edi\n"
    "  movl $231, %eax\n"  // SYS_exit_group
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size capfs_clone3_run, .-capfs_clone3_run\n"
    ".globl capfs_clone_run\n"
    ".hidden capfs_clone_run\n"
    ".type capfs_clone_run,@function\n"
    "capfs_clone_run:\n"
    "  endbr64\n"
    // flags, stack and parent_tid are clone's first three arguments; fn to
    // r9, arg stays in r8 (clone's tls, unused without CLONE_SETTLS).
    "  movq %rcx, %r9\n"
    "  xorl %r10d, %r10d\n"  // child_tid
    "  movl $56, %eax\n"     // SYS_clone
    "  syscall\n"
    "  testq %rax, %rax\n"
    "  jnz 1f\n"
    "  xorl %ebp, %ebp\n"
    "  movq %r8, %rdi\n"
    "  callq *%r9\n"
    "  movl %eax, %edi\n"
    "  movl $231, %eax\n"  // SYS_exit_group
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size capfs_clone_run, .-capfs_clone_run\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl capfs_clone3_run\n"
    ".hidden capfs_clone3_run\n"
    ".type capfs_clone3_run,%function\n"
    "capfs_clone3_run:\n"
    "  mov x9, x2\n"
    "  mov x10, x3\n"
    "  mov x8, #435\n"  // SYS_clone3
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, x10\n"
    "  blr x9\n"
    "  mov x8, #94\n"  // SYS_exit_group
    "  svc #0\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n"
    ".size capfs_clone3_run, .-capfs_clone3_run\n"
    ".globl capfs_clone_run\n"
    ".hidden capfs_clone_run\n"
    ".type capfs_clone_run,%function\n"
    "capfs_clone_run:\n"
    "  mov x9, x3\n"
    "  mov x10, x4\n"
    "  mov x3, #0\n"    // tls
    "  mov x4, #0\n"    // child_tid
    "  mov x8, #220\n"  // SYS_clone
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, x10\n"
    "  blr x9\n"
    "  mov x8, #94\n"  // SYS_exit_group
    "  svc #0\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n"
    ".size capfs_clone_run, .-capfs_clone_run\n");
#endif

namespace capfs {
namespace internal {
namespace {

namespace child = ::capfs::internal::child;

// clone3's struct clone_args, as far as the cgroup field
// (CLONE_ARGS_SIZE_VER2).
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};
constexpr uint64_t kCloneClearSighand = 0x100000000ULL;

// The child makes only system calls with small frames; a generous stack.
constexpr size_t kChildStackSize = 64 * 1024;

std::atomic<bool> no_clone3{false};
std::atomic<bool> force_fallback{false};

// The report a child without shared memory writes to its pipe.
struct Report {
  int step;
  int err;
  int index;
};

[[noreturn]] CAPFS_CHILD_INLINE void Fail(SpawnPlan* plan, int report_fd,
                                          ChildStep step, long err, int index) {
  if (report_fd >= 0) {
    Report report;
    report.step = static_cast<int>(step);
    report.err = static_cast<int>(-err);
    report.index = index;
    child::Write(report_fd, &report, sizeof(report));
  } else {
    plan->failed_step = step;
    plan->failed_errno = static_cast<int>(-err);
    plan->failed_index = index;
  }
  child::ExitGroup(127);
}

CAPFS_CHILD_INLINE bool IsKept(const int* keep, size_t count, long fd) {
  for (size_t i = 0; i < count; ++i) {
    if (keep[i] == fd) return true;
  }
  return false;
}

// Without close_range (before 5.9, or refused by a seccomp profile): close
// what /proc/self/fd lists, or, without /proc, every number up to
// RLIMIT_NOFILE.
CAPFS_CHILD_INLINE long CloseOthersSlowly(const int* keep, size_t count) {
  long dir = child::OpenDirectory("/proc/self/fd");
  if (dir < 0) {
    uint64_t limits[2] = {0, 0};
    long r = child::Call(SYS_prlimit64, 0, RLIMIT_NOFILE, 0,
                         reinterpret_cast<long>(limits));
    if (r < 0) return r;
    uint64_t top = limits[0] > (1u << 20) ? (1u << 20) : limits[0];
    for (uint64_t fd = 3; fd < top; ++fd) {
      if (!IsKept(keep, count, static_cast<long>(fd))) {
        child::Close(static_cast<int>(fd));
      }
    }
    return 0;
  }
  alignas(8) char buf[2048];
  for (;;) {
    long n = child::Getdents64(static_cast<int>(dir), buf, sizeof(buf));
    if (n < 0) {
      child::Close(static_cast<int>(dir));
      return n;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
      unsigned short reclen;
      __builtin_memcpy(&reclen, buf + off + 16, sizeof(reclen));
      const char* name = buf + off + 19;
      off += reclen;
      if (name[0] < '0' || name[0] > '9') continue;
      long fd = 0;
      for (const char* c = name; *c >= '0' && *c <= '9'; ++c) {
        fd = fd * 10 + (*c - '0');
      }
      if (fd >= 3 && fd != dir && !IsKept(keep, count, fd)) {
        child::Close(static_cast<int>(fd));
      }
    }
  }
  child::Close(static_cast<int>(dir));
  return 0;
}

// Closes every descriptor from 3 up that `keep` (sorted) does not list.
CAPFS_CHILD_INLINE long CloseOthers(const int* keep, size_t count) {
  unsigned lo = 3;
  for (size_t i = 0; i < count; ++i) {
    if (keep[i] < 0 || static_cast<unsigned>(keep[i]) < lo) continue;
    const unsigned k = static_cast<unsigned>(keep[i]);
    if (k > lo) {
      long r = child::CloseRange(lo, k - 1);
      if (r == -ENOSYS || r == -EPERM) return CloseOthersSlowly(keep, count);
      if (r < 0) return r;
    }
    lo = k + 1;
  }
  long r = child::CloseRange(lo, ~0u);
  if (r == -ENOSYS || r == -EPERM) return CloseOthersSlowly(keep, count);
  return r;
}

// The child: the steps SysSpawn's comment lists, each a raw system call.
CAPFS_CHILD_FN int ChildMain(void* arg) {
  SpawnPlan* plan = static_cast<SpawnPlan*>(arg);
  int report_fd = plan->report_fd;
  long r;

  // Dispositions: a handler of the parent's must never run in the child
  // (it would run on the parent's memory). Ignored signals stay ignored,
  // as execve would keep them.
  if (!plan->signals_cleared) {
    for (int sig = 1; sig <= 64; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      child::KernelSigaction old;
      if (child::RtSigaction(sig, nullptr, &old) < 0) continue;
      if (old.handler == reinterpret_cast<void*>(SIG_DFL) ||
          old.handler == reinterpret_cast<void*>(SIG_IGN)) {
        continue;
      }
      child::KernelSigaction dfl;
      dfl.handler = reinterpret_cast<void*>(SIG_DFL);
      dfl.flags = 0;
      dfl.restorer = nullptr;
      dfl.mask = 0;
      r = child::RtSigaction(sig, &dfl, nullptr);
      if (r < 0) Fail(plan, report_fd, ChildStep::kSignals, r, sig);
    }
  }

  if (plan->cwd_fd >= 0) {
    r = child::Fchdir(plan->cwd_fd);
    if (r < 0) Fail(plan, report_fd, ChildStep::kFchdir, r, 0);
  }

  // Mappings, first phase: every source copied above every number the plan
  // names, so that the second phase overwrites no source (swaps, chains).
  // Our own descriptors go up there too, out of the targets' way.
  for (size_t i = 0; i < plan->fd_count; ++i) {
    const FdMove& m = plan->fds[i];
    if (m.child_fd == m.parent_fd) {
      plan->high_copies[i] = -1;
      continue;
    }
    r = child::Fcntl(m.parent_fd, F_DUPFD_CLOEXEC, plan->high_base);
    if (r < 0) Fail(plan, report_fd, ChildStep::kDupHigh, r, int(i));
    plan->high_copies[i] = static_cast<int>(r);
  }
  int landlock_fd = plan->landlock_fd;
  if (landlock_fd >= 0) {
    r = child::Fcntl(landlock_fd, F_DUPFD_CLOEXEC, plan->high_base);
    if (r < 0) Fail(plan, report_fd, ChildStep::kLandlock, r, 0);
    landlock_fd = static_cast<int>(r);
  }
  if (report_fd >= 0) {
    r = child::Fcntl(report_fd, F_DUPFD_CLOEXEC, plan->high_base);
    if (r < 0) Fail(plan, report_fd, ChildStep::kDupHigh, r, -1);
    report_fd = static_cast<int>(r);
  }
  // Second phase: each copy onto its target (dup3 leaves the target without
  // close-on-exec); a mapping onto itself keeps its descriptor and loses the
  // flag explicitly, since dup2(fd, fd) would leave it set.
  for (size_t i = 0; i < plan->fd_count; ++i) {
    const FdMove& m = plan->fds[i];
    if (plan->high_copies[i] < 0) {
      r = child::Fcntl(m.child_fd, F_SETFD, 0);
      if (r < 0) Fail(plan, report_fd, ChildStep::kClearCloexec, r, int(i));
    } else {
      r = child::Dup3(plan->high_copies[i], m.child_fd, 0);
      if (r < 0) Fail(plan, report_fd, ChildStep::kDup2, r, int(i));
    }
  }
  // Everything else from 3 up goes; our own two (close-on-exec, above every
  // target) stay until execve.
  size_t keep_count = plan->keep_count;
  int a = landlock_fd, b = report_fd;
  if (a > b) {
    int t = a;
    a = b;
    b = t;
  }
  if (a >= 0) plan->keep[keep_count++] = a;
  if (b >= 0) plan->keep[keep_count++] = b;
  r = CloseOthers(plan->keep, keep_count);
  if (r < 0) Fail(plan, report_fd, ChildStep::kCloseOthers, r, 0);

  if (plan->new_session) {
    r = child::Setsid();
    if (r < 0) Fail(plan, report_fd, ChildStep::kSetsid, r, 0);
  }
  if (plan->set_process_group) {
    r = child::Setpgid(0, plan->process_group);
    if (r < 0) Fail(plan, report_fd, ChildStep::kSetpgid, r, 0);
  }
  if (plan->set_groups) {
    r = child::Setgroups(plan->group_count, plan->groups);
    if (r < 0) Fail(plan, report_fd, ChildStep::kSetgroups, r, 0);
  }
  if (plan->set_gid) {
    r = child::Setresgid(plan->gid);
    if (r < 0) Fail(plan, report_fd, ChildStep::kSetgid, r, 0);
  }
  if (plan->set_uid) {
    r = child::Setresuid(plan->uid);
    if (r < 0) Fail(plan, report_fd, ChildStep::kSetuid, r, 0);
  }
  for (size_t i = 0; i < plan->rlimit_count; ++i) {
    r = child::Prlimit(plan->rlimits[i].resource, plan->rlimits[i].limits);
    if (r < 0) Fail(plan, report_fd, ChildStep::kSetrlimit, r, int(i));
  }
  if (plan->no_new_privs || landlock_fd >= 0) {
    r = child::Prctl(PR_SET_NO_NEW_PRIVS, 1);
    if (r < 0) Fail(plan, report_fd, ChildStep::kNoNewPrivs, r, 0);
  }
  if (landlock_fd >= 0) {
    r = child::LandlockRestrictSelf(landlock_fd, plan->landlock_flags);
    if (r < 0) Fail(plan, report_fd, ChildStep::kLandlock, r, 0);
  }
  r = child::RtSigprocmask(SIG_SETMASK, &plan->parent_mask, nullptr);
  if (r < 0) Fail(plan, report_fd, ChildStep::kSigmask, r, 0);
  r = child::Execve(plan->path, plan->argv, plan->envp);
  Fail(plan, report_fd, ChildStep::kExecve, r, 0);
}

}  // namespace

void ForceCloneFallbackForTesting(bool force) { force_fallback = force; }

pid_t SysSpawn(SpawnPlan* plan, int* pidfd_out) {
  const bool credentials = plan->set_groups || plan->set_gid || plan->set_uid;
  plan->shared_memory = !credentials;
  plan->used_clone3 = false;
  plan->failed_step = ChildStep::kNone;
  int report[2] = {-1, -1};
  if (credentials) {
    // Nonblocking: the parent reads only once the child has exec'd or
    // exited (CLONE_VFORK), so an empty pipe means it exec'd.
    if (::pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
    plan->report_fd = report[1];
    if (plan->high_base <= report[1]) plan->high_base = report[1] + 1;
  } else {
    plan->report_fd = -1;
  }
  std::unique_ptr<char[]> stack(new char[kChildStackSize]);

  // Every signal blocked across the clone (the C library's internal ones
  // too, which pthread_sigmask would leave open): no handler may run in the
  // child before it has reset them.
  uint64_t all = ~uint64_t{0};
  uint64_t old = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(uint64_t));
  plan->parent_mask = old;
  // SIGPIPE blocked by capfs's own hold on this loop thread (net.h) is not
  // the parent's mask: the child gets it as the thread's owner left it.
  if (::capfs::runtime::internal::SigpipeHeldOnlyByCapfs()) {
    plan->parent_mask &= ~(uint64_t{1} << (SIGPIPE - 1));
  }

  int pidfd = -1;
  long pid = -ENOSYS;
  const uint64_t vm = credentials ? 0 : CLONE_VM;
  if (!no_clone3.load(std::memory_order_relaxed) &&
      !force_fallback.load(std::memory_order_relaxed)) {
    CloneArgs args = {};
    args.flags = vm | CLONE_VFORK | CLONE_PIDFD | kCloneClearSighand;
    args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
    args.exit_signal = 0;
    args.stack = reinterpret_cast<uintptr_t>(stack.get());
    args.stack_size = kChildStackSize;
    plan->signals_cleared = true;
    pid = capfs_clone3_run(&args, sizeof(args), ChildMain, plan);
    if (pid == -ENOSYS || pid == -EPERM || pid == -EINVAL) {
      no_clone3.store(true, std::memory_order_relaxed);
      pid = -ENOSYS;
    } else {
      plan->used_clone3 = true;
    }
  }
  if (!plan->used_clone3) {
    plan->signals_cleared = false;
    // Exit signal 0 (the low byte of the flags) until execve.
    const unsigned long flags = vm | CLONE_VFORK | CLONE_PIDFD;
    pid = capfs_clone_run(flags, stack.get() + kChildStackSize, &pidfd,
                          ChildMain, plan);
  }
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof(uint64_t));

  if (credentials) {
    ::close(report[1]);
    Report r;
    ssize_t n =
        pid > 0 ? RetryEintr([&] { return ::read(report[0], &r, sizeof(r)); })
                : 0;
    ::close(report[0]);
    if (n == static_cast<ssize_t>(sizeof(r))) {
      plan->failed_step = static_cast<ChildStep>(r.step);
      plan->failed_errno = r.err;
      plan->failed_index = r.index;
    }
  }
  if (pid < 0) return static_cast<pid_t>(pid);
  if (plan->failed_step != ChildStep::kNone) {
    // It has exited already (CLONE_VFORK resumed us): reap it now.
    siginfo_t info;
    SysWaitidPidfd(pidfd, &info, WEXITED);
    ::close(pidfd);
    return 0;
  }
  *pidfd_out = pidfd;
  return static_cast<pid_t>(pid);
}

int SysWaitidPidfd(int pidfd, siginfo_t* info, int options) {
  info->si_pid = 0;
  return RetryEintr([&] {
    return ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd),
                    info, options | __WALL);
  });
}

int SysPidfdSendSignal(int pidfd, int signo) {
  return RetryEintr([&] {
    return static_cast<int>(
        ::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
  });
}

int SysPollPidfd(int pidfd, int timeout_ms) {
  struct pollfd p = {pidfd, POLLIN, 0};
  return RetryEintr([&] { return ::poll(&p, 1, timeout_ms); });
}

int SysPidfdGetInfo(int pidfd, PidfdInfo* info) {
  constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
  return RetryEintr([&] { return ::ioctl(pidfd, kPidfdGetInfo, info); });
}

int SysMapWipeOnFork(size_t size, void** out) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  if (::madvise(p, size, MADV_WIPEONFORK) != 0) {
    const int saved = errno;
    ::munmap(p, size);
    return -saved;
  }
  *out = p;
  return 0;
}

void SysUnmap(void* addr, size_t size) { ::munmap(addr, size); }

}  // namespace internal
}  // namespace capfs

// The system calls of processes: starting a child that runs a prepared plan
// of actions before execve(2), reaping it through its pidfd, signalling it.
//
// Same conventions as capfs/sys/fs.h: EINTR is retried, results are the
// call's own or -errno, and every descriptor created is close-on-exec.
//
// Not part of the API.

#ifndef CAPFS_SYS_PROCESS_H_
#define CAPFS_SYS_PROCESS_H_

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

namespace capfs {
namespace internal {

// The steps a child takes between clone and execve, in this order (see
// SysSpawn). A failing step is reported to the parent with its errno.
enum class ChildStep : int {
  kNone = 0,
  kSignals,       // resetting caught signals to their default action
  kFchdir,        // fchdir(cwd_fd)
  kDupHigh,       // fcntl(F_DUPFD_CLOEXEC): a mapping's source moved high
  kDup2,          // dup3(high copy, child_fd): a mapping put in place
  kClearCloexec,  // fcntl(F_SETFD, 0): a mapping with child_fd == parent_fd
  kCloseOthers,   // close_range (or, without it, close each open one)
  kSetsid,
  kSetpgid,
  kSetgroups,
  kSetgid,      // setresgid(gid, gid, gid)
  kSetuid,      // setresuid(uid, uid, uid)
  kSetrlimit,   // prlimit64(0, ...)
  kNoNewPrivs,  // prctl(PR_SET_NO_NEW_PRIVS)
  kLandlock,    // landlock_restrict_self
  kSigmask,     // restoring the parent's signal mask
  kExecve,
};

// One descriptor of the child: `child_fd` gets what `parent_fd` is.
struct FdMove {
  int child_fd;
  int parent_fd;
};

// One rlimit, as prlimit64(2) takes it.
struct RlimitSetting {
  int resource;
  uint64_t limits[2];  // soft, hard
};

// Everything the child needs, prepared by the parent: the child reads it
// and makes system calls, nothing else. Pointers stay valid for the call.
struct SpawnPlan {
  const char* path = nullptr;  // the resolved program
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int cwd_fd = -1;  // fchdir into it; -1: none
  const FdMove* fds = nullptr;
  size_t fd_count = 0;
  // The targets (child_fd) that are 3 or more, sorted, with room after them
  // for two more entries (the child adds its own descriptors): every
  // descriptor from 3 up not in this list is closed.
  int* keep = nullptr;
  size_t keep_count = 0;
  // Above every descriptor the plan names (fds, cwd_fd, landlock_fd): the
  // first phase of the mapping copies every source at or above it.
  int high_base = 3;
  // Scratch, fd_count entries: the first phase's copies.
  int* high_copies = nullptr;
  bool new_session = false;
  bool set_process_group = false;
  pid_t process_group = 0;
  bool set_groups = false;
  const uint32_t* groups = nullptr;
  size_t group_count = 0;
  bool set_gid = false;
  uint32_t gid = 0;
  bool set_uid = false;
  uint32_t uid = 0;
  const RlimitSetting* rlimits = nullptr;
  size_t rlimit_count = 0;
  bool no_new_privs = false;
  int landlock_fd = -1;  // -1: no Landlock step
  uint32_t landlock_flags = 0;

  // Filled by SysSpawn: how the child was made.
  bool used_clone3 = false;
  bool shared_memory = false;  // CLONE_VM (no credential change)
  // Filled by the child when a step fails.
  ChildStep failed_step = ChildStep::kNone;
  int failed_errno = 0;
  int failed_index = 0;  // the mapping or rlimit that failed, where one did

  // Internal to SysSpawn and the child.
  uint64_t parent_mask = 0;
  bool signals_cleared = false;  // CLONE_CLEAR_SIGHAND did it
  int report_fd = -1;            // the error pipe's write end (no CLONE_VM)
};

// Starts a child that runs `plan` and then execs. The child shares the
// parent's memory and the parent is suspended until it execs or exits
// (clone with CLONE_VM|CLONE_VFORK on a stack of its own, as glibc's
// posix_spawn), unless the plan changes credentials (set_groups, set_gid,
// set_uid): then it gets a copy of the memory (no CLONE_VM; still
// CLONE_VFORK) and reports through a close-on-exec pipe, since sharing
// memory with a process running under other credentials is unsafe. Every
// signal is blocked across the clone; the child resets caught signals to
// their default action (CLONE_CLEAR_SIGHAND where clone3 is used) and
// restores the caller's mask just before execve. The pidfd comes atomically
// (CLONE_PIDFD). clone3 is tried first; ENOSYS, EPERM (container seccomp
// profiles) and EINVAL (kernels without CLONE_CLEAR_SIGHAND) fall back to
// clone, and the fallback is remembered. The child's exit signal is 0 until
// execve (which makes it SIGCHLD), so that a host's waitpid(-1) cannot take
// a child that failed before execve.
//
// The child's steps, in order: reset caught signals; fchdir(cwd_fd); copy
// every mapping's source at or above high_base (close-on-exec), then dup3
// each copy onto its target (a mapping onto itself has its close-on-exec
// flag cleared instead); close every descriptor from 3 up but the targets
// (close_range, or /proc/self/fd without it); setsid; setpgid; setgroups;
// setresgid; setresuid; each rlimit; PR_SET_NO_NEW_PRIVS;
// landlock_restrict_self; restore the signal mask; execve.
//
// Returns the child's pid with `*pidfd` set when it exec'd. When a step
// failed: plan->failed_step, failed_errno and failed_index say which and
// why, the child has already been reaped (no zombie) and no descriptor
// remains, and the result is 0. When clone itself failed: -errno.
pid_t SysSpawn(SpawnPlan* plan, int* pidfd);

// For tests: make SysSpawn skip clone3 (as on a kernel without it), or not.
void ForceCloneFallbackForTesting(bool force);

// waitid(P_PIDFD, pidfd, info, options). `options` gets __WALL.
int SysWaitidPidfd(int pidfd, siginfo_t* info, int options);
// pidfd_send_signal(pidfd, signo, NULL, 0).
int SysPidfdSendSignal(int pidfd, int signo);
// poll(2) of `pidfd` for POLLIN up to `timeout_ms`: 1 when it became
// readable (the process ended), 0 on timeout.
int SysPollPidfd(int pidfd, int timeout_ms);

// PIDFD_GET_INFO (Linux 6.13+) with PIDFD_INFO_EXIT (6.15+): the kernel's
// struct pidfd_info (include/uapi/linux/pidfd.h), as far as exit_code.
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid;
  uint32_t tgid;
  uint32_t ppid;
  uint32_t ruid;
  uint32_t rgid;
  uint32_t euid;
  uint32_t egid;
  uint32_t suid;
  uint32_t sgid;
  uint32_t fsuid;
  uint32_t fsgid;
  int32_t exit_code;  // a wait status, as waitpid(2) gives
};
static_assert(sizeof(PidfdInfo) == 64, "PIDFD_INFO_SIZE_VER0");
inline constexpr uint64_t kPidfdInfoPid = 1u << 0;
inline constexpr uint64_t kPidfdInfoExit = 1u << 3;
// Asks for `info->mask` (set it before); the kernel sets the mask of what it
// gave. -ENOTTY or -EINVAL on kernels without PIDFD_GET_INFO.
int SysPidfdGetInfo(int pidfd, PidfdInfo* info);

// `size` bytes of fresh memory (private, anonymous, zeroed) that every child
// made by fork(2), or by clone(2) without CLONE_VM, sees zeroed again
// (madvise MADV_WIPEONFORK, Linux 4.14): into `*out`, 0, or -errno (EINVAL
// on a kernel without MADV_WIPEONFORK; nothing stays mapped then).
int SysMapWipeOnFork(size_t size, void** out);
// munmap(2) of what SysMapWipeOnFork gave.
void SysUnmap(void* addr, size_t size);

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_SYS_PROCESS_H_

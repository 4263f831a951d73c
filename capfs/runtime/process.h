// Processes: start a program with a fixed list of actions, optionally
// confined by Landlock to a set of Dirs, and reap it through its pidfd.
//
//   absl::StatusOr<Child> child = Spawn(scope, {
//       .program = "plugin",                 // looked up in PATH
//       .argv = {"plugin", "--once"},
//       .cwd = &work_dir,
//       .fds = {{0, in.get()}, {1, out.get()}},
//       .new_session = true,
//       .landlock = &sandbox,                // a capfs::Landlock, built once
//   });
//   if (!child.ok()) return child.status();   // names the step that failed
//   absl::StatusOr<ExitStatus> status = co_await child->Wait();
//
// The child shares the caller's memory and the caller waits until it execs
// (clone with CLONE_VM|CLONE_VFORK on a stack of its own, as glibc's
// posix_spawn), so starting it costs the same whatever the caller's size;
// when credentials change (uid, gid or groups) it gets a copy instead (no
// shared memory across a change of privilege). Between clone and execve it
// makes only system calls, everything prepared beforehand.
//
// The child's actions, always in this order:
//   1. signals the caller catches are reset to their default action (ignored
//      ones stay ignored, as execve keeps them); the caller's signal mask is
//      kept (restored just before execve: every signal is blocked across the
//      clone);
//   2. fchdir into `cwd` (none when null, or a Dir without a descriptor of
//      its own: Dir::Cwd(), Dir::Unconfined());
//   3. the fd mapping, in two phases so that swaps ({0, 1}, {1, 0}), chains
//      and collisions work: every source is first copied above every number
//      the mapping names, then each copy is put on its target; a mapping
//      onto itself ({3, 3}) just loses close-on-exec. Descriptors 0, 1 and 2
//      are inherited unless mapped; every other one is closed (close_range),
//      whatever its close-on-exec flag;
//   4. setsid (new_session), then setpgid(0, process_group);
//   5. setgroups, then setresgid(gid), then setresuid(uid);
//   6. each rlimit, in the order given (prlimit64);
//   7. PR_SET_NO_NEW_PRIVS (no_new_privs, and always with landlock);
//   8. landlock_restrict_self with the Landlock's ruleset (nothing when its
//      abi() is 0);
//   9. execve.
// The program is looked up in this process's PATH before the clone, as
// execvp(3) would (unset PATH: "/bin:/usr/bin"; an empty entry: the current
// directory): the first candidate that is an executable regular file;
// EACCES when candidates exist but none may be executed, else ENOENT. A
// program containing '/' is used as it is. There is no fallback to /bin/sh
// for a file without a known executable format (ENOEXEC is an error).
//
// Errors: Spawn itself reports a failing step, named in the message with its
// errno kept (capfs/status.h's ErrnoOf): `fchdir`, `dup2(parent fd 7 -> child
// fd 1)`, `close_range`, `setsid`, `setpgid`, `setgroups`, `setresgid`,
// `setresuid`, `prlimit(RLIMIT_NOFILE)`, `prctl(PR_SET_NO_NEW_PRIVS)`,
// `landlock_restrict_self`, and `execve("path")` with the kind spelled out:
// not found, permission denied, not an executable format, argument list too
// long. An EACCES from execve under a Landlock ruleset says that the program,
// its dynamic loader or a library it loads may be outside every rule that
// grants execution. Invalid options (a negative or repeated child_fd, a NUL
// in a string, both new_session and process_group) are kInvalidArgument
// before anything starts. After a failed Spawn no child and no descriptor
// remain.
//
// Reaping: through the pidfd, never a SIGCHLD handler (the child is a direct
// child of the caller). Wait waits on the loop until the pidfd is readable,
// then reaps with waitid(P_PIDFD). A host that reaps everything with
// waitpid(-1) may take the child first; Wait then gives the status the
// kernel kept on the pidfd (PIDFD_GET_INFO, Linux 6.15+; before it, such a
// Wait fails with ECHILD).
//
// When the scope ends, or the Child is destroyed or moved over, a child still
// running is sent SIGKILL and reaped: the loop waits for it at most one
// second; one that has not ended by then (stuck in the kernel) is left to a
// thread of its own that reaps it when it ends, and its Wait says so.
// Loop-thread only.

#ifndef CAPFS_RUNTIME_PROCESS_H_
#define CAPFS_RUNTIME_PROCESS_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/dir.h"
#include "capfs/landlock.h"
#include "capfs/runtime/scope.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

// The child's descriptor `child_fd` is what this process's `parent_fd` is.
struct FdMapping {
  int child_fd;
  int parent_fd;
};

struct SpawnOptions {
  // A path, or a name looked up in this process's PATH.
  std::string program;
  // argv[0] included.
  std::vector<std::string> argv;
  // nullopt: this process's environment.
  std::optional<std::vector<std::string>> env;
  // fchdir into it; nullptr: this process's cwd.
  const Dir* cwd = nullptr;
  // 0, 1, 2 are this process's unless mapped; every other one is closed.
  std::vector<FdMapping> fds;
  // setsid.
  bool new_session = false;
  // setpgid(0, it); 0 makes a new group.
  std::optional<pid_t> process_group;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<std::vector<gid_t>> groups;
  // (RLIMIT_*, value)
  std::vector<std::pair<int, struct rlimit>> rlimits;
  // Always on when landlock is set.
  bool no_new_privs = false;
  // Applied in the child, just before execve.
  const Landlock* landlock = nullptr;
};

// How a child ended.
struct ExitStatus {
  int code = 0;    // the exit code, when it exited; 0 when a signal ended it
  int signal = 0;  // the signal that ended it, or 0
  bool success() const { return signal == 0 && code == 0; }
  // "exited with 3", "killed by SIGKILL" (a signal without a name: "killed
  // by signal 70").
  std::string ToString() const;
};

namespace internal {
class ChildState;
// For tests: clone as on a kernel (or under a seccomp profile) without
// clone3, or not.
void ForceCloneFallbackForTesting(bool force);
}  // namespace internal

// A started child. Move-only; dropped (or moved over) while running: killed
// and reaped, as at its scope's end.
class Child {
 public:
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const;
  // The pidfd (close-on-exec), or -1 once its scope has ended. Ownership
  // stays here.
  int pidfd() const;

  // Waits until the child ends and reaps it; later calls give the same
  // status at once. kCancelled when the waiting task is cancelled (the child
  // runs on). After the scope's end killed it: the status it ended with.
  Task<absl::StatusOr<ExitStatus>> Wait();

  // Sends `signo` through the pidfd (pidfd_send_signal): no other process
  // can be hit, even after the pid is reused. ESRCH once reaped.
  absl::Status Signal(int signo);

 private:
  friend absl::StatusOr<Child> Spawn(Scope& scope, SpawnOptions options);
  explicit Child(std::unique_ptr<internal::ChildState> state);
  void Reset();

  std::unique_ptr<internal::ChildState> state_;
};

// Starts `options.program` owned by `scope`: when the scope ends, a child
// still running is killed and reaped. A failing step (fchdir, dup2, setsid,
// credentials, rlimit, Landlock, execve) is reported by Spawn itself, naming
// the step, with its errno. See the file comment for the order of the steps.
absl::StatusOr<Child> Spawn(Scope& scope, SpawnOptions options);

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_PROCESS_H_

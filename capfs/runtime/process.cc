#include "capfs/runtime/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/fd_state.h"
#include "capfs/runtime/timer.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"
#include "capfs/sys/process.h"

extern char** environ;

namespace capfs {
namespace runtime {
namespace internal {

// What a Child owns: its pid, its pidfd (registered with the loop like an
// AsyncFd's descriptor, and closed with the scope), and, once known, how it
// ended.
class ChildState {
 public:
  ChildState(pid_t pid, FdState* pidfd) : pid_(pid), pidfd_(pidfd) {}
  ChildState(const ChildState&) = delete;
  ChildState& operator=(const ChildState&) = delete;

  pid_t pid() const { return pid_; }
  FdState* pidfd() const { return pidfd_; }
  const std::optional<absl::StatusOr<ExitStatus>>& result() const {
    return result_;
  }
  void set_result(absl::StatusOr<ExitStatus> result) {
    if (!result_.has_value()) result_ = std::move(result);
  }

 private:
  pid_t pid_;
  FdState* pidfd_;  // one reference of ours
  std::optional<absl::StatusOr<ExitStatus>> result_;
};

void ForceCloneFallbackForTesting(bool force) {
  ::capfs::internal::ForceCloneFallbackForTesting(force);
}

}  // namespace internal

namespace {

using ::capfs::internal::ChildStep;
using ::capfs::internal::FdMove;
using ::capfs::internal::PidfdInfo;
using ::capfs::internal::RlimitSetting;
using ::capfs::internal::SpawnPlan;

// How long the end of a scope waits for a killed child before leaving it to
// a thread of its own.
constexpr int kKillGraceMs = 1000;

// A status like `s` (code and payloads: the errno stays) with `message`.
absl::Status WithMessage(const absl::Status& s, absl::string_view message) {
  absl::Status out(s.code(), message);
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

absl::Status SpawnError(absl::string_view program, int err,
                        absl::string_view op, absl::string_view detail = "") {
  absl::Status s = ErrnoError(err, op, "");
  return WithMessage(s, absl::StrCat("spawn ", program, ": ", s.message(),
                                     detail.empty() ? "" : " ", detail));
}

// Quoted and escaped, so that a hostile name cannot forge a message.
std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

std::string SignalName(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  if (abbrev == nullptr) return absl::StrCat("signal ", signo);
  return absl::StrCat("SIG", abbrev);
}

const char* RlimitName(int resource) {
  switch (resource) {
    case RLIMIT_AS:
      return "RLIMIT_AS";
    case RLIMIT_CORE:
      return "RLIMIT_CORE";
    case RLIMIT_CPU:
      return "RLIMIT_CPU";
    case RLIMIT_DATA:
      return "RLIMIT_DATA";
    case RLIMIT_FSIZE:
      return "RLIMIT_FSIZE";
    case RLIMIT_LOCKS:
      return "RLIMIT_LOCKS";
    case RLIMIT_MEMLOCK:
      return "RLIMIT_MEMLOCK";
    case RLIMIT_MSGQUEUE:
      return "RLIMIT_MSGQUEUE";
    case RLIMIT_NICE:
      return "RLIMIT_NICE";
    case RLIMIT_NOFILE:
      return "RLIMIT_NOFILE";
    case RLIMIT_NPROC:
      return "RLIMIT_NPROC";
    case RLIMIT_RSS:
      return "RLIMIT_RSS";
    case RLIMIT_RTPRIO:
      return "RLIMIT_RTPRIO";
    case RLIMIT_RTTIME:
      return "RLIMIT_RTTIME";
    case RLIMIT_SIGPENDING:
      return "RLIMIT_SIGPENDING";
    case RLIMIT_STACK:
      return "RLIMIT_STACK";
    default:
      return "RLIMIT_?";
  }
}

// execve's errors, each kind spelled out.
absl::Status ExecError(absl::string_view program, absl::string_view path,
                       int err, bool landlock) {
  const std::string op = absl::StrCat("execve(", Quote(path), ")");
  switch (err) {
    case ENOENT:
      return SpawnError(program, err, op,
                        "(not found: the program, or the interpreter its "
                        "#! line or ELF header names, does not exist)");
    case EACCES:
      if (landlock) {
        return SpawnError(
            program, err, op,
            "(permission denied under the Landlock ruleset: the program, "
            "its dynamic loader or a library it needs may lie outside every "
            "rule that grants execution, kReadExec or kReadWriteExec)");
      }
      return SpawnError(program, err, op,
                        "(permission denied: not executable, not a regular "
                        "file, on a noexec mount, or a directory on the way "
                        "is not searchable)");
    case ENOEXEC:
      return SpawnError(program, err, op, "(not an executable format)");
    case E2BIG:
      return SpawnError(program, err, op,
                        "(argument list and environment too long)");
    default:
      return SpawnError(program, err, op);
  }
}

// The path execvp(3) would run for `program`, looked up in this process's
// PATH: 0 and `*path`, or ENOENT / EACCES / the error that stopped it.
int ResolveProgram(const std::string& program, std::string* path) {
  if (program.empty()) return ENOENT;
  if (program.find('/') != std::string::npos) {
    *path = program;
    return 0;
  }
  const char* env_path = ::getenv("PATH");
  if (env_path == nullptr) env_path = "/bin:/usr/bin";
  std::string cwd;
  bool seen_eacces = false;
  for (absl::string_view dir : absl::StrSplit(env_path, ':')) {
    std::string candidate;
    if (dir.empty() || dir[0] != '/') {
      // Relative to this process's cwd, not the child's (which fchdir may
      // change): the lookup is this process's.
      if (cwd.empty()) {
        char buf[PATH_MAX];
        if (::getcwd(buf, sizeof(buf)) == nullptr) continue;
        cwd = buf;
      }
      candidate = dir.empty() ? absl::StrCat(cwd, "/", program)
                              : absl::StrCat(cwd, "/", dir, "/", program);
    } else {
      candidate = absl::StrCat(dir, "/", program);
    }
    struct stat st;
    int r = ::capfs::internal::SysFstatAt(AT_FDCWD, candidate.c_str(), &st, 0);
    if (r == 0 && !S_ISREG(st.st_mode)) r = -EACCES;  // what execve says
    if (r == 0) {
      r = ::capfs::internal::SysFaccessat2(AT_FDCWD, candidate.c_str(), X_OK,
                                           AT_EACCESS);
    }
    if (r == 0) {
      *path = std::move(candidate);
      return 0;
    }
    switch (-r) {
      case EACCES:
        seen_eacces = true;
        break;
      case ENOENT:
      case ENOTDIR:
      case ESTALE:
      case ENODEV:
      case ETIMEDOUT:
        break;
      default:
        return -r;
    }
  }
  return seen_eacces ? EACCES : ENOENT;
}

// The status Spawn returns for a failed step of the child.
absl::Status StepError(const SpawnOptions& options, const SpawnPlan& plan) {
  const std::string& program = options.program;
  const int err = plan.failed_errno;
  const int i = plan.failed_index;
  switch (plan.failed_step) {
    case ChildStep::kSignals:
      return SpawnError(program, err,
                        absl::StrCat("rt_sigaction(", SignalName(i), ")"));
    case ChildStep::kFchdir:
      return SpawnError(program, err, "fchdir", "(into the cwd Dir)");
    case ChildStep::kDupHigh:
    case ChildStep::kDup2:
      if (i < 0 || static_cast<size_t>(i) >= plan.fd_count) {
        return SpawnError(program, err, "fcntl(F_DUPFD_CLOEXEC)");
      }
      return SpawnError(
          program, err,
          absl::StrCat("dup2(parent fd ", plan.fds[i].parent_fd,
                       " -> child fd ", plan.fds[i].child_fd, ")"));
    case ChildStep::kClearCloexec:
      return SpawnError(
          program, err,
          absl::StrCat("fcntl(F_SETFD) clearing close-on-exec on fd ",
                       plan.fds[i].child_fd),
          "(mapped onto itself)");
    case ChildStep::kCloseOthers:
      return SpawnError(program, err, "close_range");
    case ChildStep::kSetsid:
      return SpawnError(program, err, "setsid");
    case ChildStep::kSetpgid:
      return SpawnError(program, err,
                        absl::StrCat("setpgid(0, ", plan.process_group, ")"));
    case ChildStep::kSetgroups:
      return SpawnError(program, err, "setgroups");
    case ChildStep::kSetgid:
      return SpawnError(program, err,
                        absl::StrCat("setresgid(", plan.gid, ")"));
    case ChildStep::kSetuid:
      return SpawnError(program, err,
                        absl::StrCat("setresuid(", plan.uid, ")"));
    case ChildStep::kSetrlimit:
      return SpawnError(
          program, err,
          absl::StrCat("prlimit(", RlimitName(plan.rlimits[i].resource), ")"));
    case ChildStep::kNoNewPrivs:
      return SpawnError(program, err, "prctl(PR_SET_NO_NEW_PRIVS)");
    case ChildStep::kLandlock:
      return SpawnError(program, err, "landlock_restrict_self");
    case ChildStep::kSigmask:
      return SpawnError(program, err, "rt_sigprocmask");
    case ChildStep::kExecve:
      return ExecError(program, plan.path, err, plan.landlock_fd >= 0);
    case ChildStep::kNone:
      break;
  }
  return absl::InternalError(absl::StrCat("spawn ", program, ": step ",
                                          static_cast<int>(plan.failed_step),
                                          " failed, errno ", err));
}

ExitStatus FromSiginfo(const siginfo_t& info) {
  ExitStatus status;
  if (info.si_code == CLD_EXITED) {
    status.code = info.si_status;
  } else {
    status.signal = info.si_status;  // CLD_KILLED, CLD_DUMPED
  }
  return status;
}

ExitStatus FromWaitStatus(int wstatus) {
  ExitStatus status;
  if (WIFEXITED(wstatus)) {
    status.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    status.signal = WTERMSIG(wstatus);
  }
  return status;
}

// waitid(P_PIDFD, WNOHANG): 1 when reaped (result set), 0 while it runs,
// or -errno (ECHILD: someone else reaped it).
int TryReap(internal::ChildState* state, int pidfd) {
  siginfo_t info;
  int r = ::capfs::internal::SysWaitidPidfd(pidfd, &info, WEXITED | WNOHANG);
  if (r < 0) return r;
  if (info.si_pid == 0) return 0;
  state->set_result(FromSiginfo(info));
  return 1;
}

// After ECHILD: the exit status the kernel keeps on the pidfd. 1 when it
// was there (result set), 0 when it is not there yet, -errno when the
// kernel cannot say (no PIDFD_GET_INFO or PIDFD_INFO_EXIT: result set to
// the error).
int ExitFromPidfd(internal::ChildState* state, int pidfd) {
  PidfdInfo info = {};
  info.mask = ::capfs::internal::kPidfdInfoExit;
  int r = ::capfs::internal::SysPidfdGetInfo(pidfd, &info);
  if (r == 0 && (info.mask & ::capfs::internal::kPidfdInfoExit)) {
    state->set_result(FromWaitStatus(info.exit_code));
    return 1;
  }
  if (r == 0 || r == -ESRCH) return 0;
  absl::Status s = ErrnoError(ECHILD, "waitid(P_PIDFD)", "");
  state->set_result(WithMessage(
      s, absl::StrCat(s.message(),
                      " (another waiter in this process reaped the child, "
                      "and this kernel keeps no exit status on pidfds: "
                      "PIDFD_INFO_EXIT needs Linux 6.15)")));
  return r;
}

// The close hook of a child's pidfd: runs when its scope ends or the Child
// goes, with the pidfd still open. Kills a child still running and reaps
// it, waiting at most kKillGraceMs on the calling (loop) thread.
void KillAndReap(void* arg, int pidfd) {
  auto* state = static_cast<internal::ChildState*>(arg);
  if (state->result().has_value()) return;
  int r = TryReap(state, pidfd);
  if (r == 0) {
    ::capfs::internal::SysPidfdSendSignal(pidfd, SIGKILL);
    const absl::Time deadline = absl::Now() + absl::Milliseconds(kKillGraceMs);
    for (;;) {
      const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) break;
      ::capfs::internal::SysPollPidfd(pidfd, static_cast<int>(left));
      r = TryReap(state, pidfd);
      if (r != 0) break;
    }
  }
  if (r == -ECHILD) {
    // Taken by a host's waitpid(-1): its status is on the pidfd, or is
    // about to be.
    for (int i = 0; i < 100 && ExitFromPidfd(state, pidfd) == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    if (!state->result().has_value()) {
      state->set_result(ErrnoError(ECHILD, "waitid(P_PIDFD)", ""));
    }
    return;
  }
  if (r < 0) {
    state->set_result(ErrnoError(-r, "waitid(P_PIDFD)", ""));
    return;
  }
  if (r > 0) return;
  // Still not ended a second after SIGKILL (stuck in the kernel): a thread
  // of its own reaps it whenever it ends, so that no zombie stays.
  int copy = ::capfs::internal::SysFcntl(pidfd, F_DUPFD_CLOEXEC, 0);
  if (copy >= 0) {
    std::thread([copy] {
      siginfo_t info;
      ::capfs::internal::SysWaitidPidfd(copy, &info, WEXITED);
      Fd(copy).Close().IgnoreError();
    }).detach();
  }
  state->set_result(absl::DeadlineExceededError(absl::StrCat(
      "child ", state->pid(), " did not end within ", kKillGraceMs,
      " ms of SIGKILL; it is reaped in the background when it does")));
}

bool HasNul(absl::string_view s) {
  return s.find('\0') != absl::string_view::npos;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signal != 0) return absl::StrCat("killed by ", SignalName(signal));
  return absl::StrCat("exited with ", code);
}

Child::Child(std::unique_ptr<internal::ChildState> state)
    : state_(std::move(state)) {}

Child::Child(Child&& other) noexcept : state_(std::move(other.state_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    Reset();
    state_ = std::move(other.state_);
  }
  return *this;
}

Child::~Child() { Reset(); }

void Child::Reset() {
  if (state_ == nullptr) return;
  internal::FdState* pidfd = state_->pidfd();
  // Closing runs the close hook: kill and reap, unless it ended.
  pidfd->Close().IgnoreError();
  pidfd->Unref();
  state_.reset();
}

pid_t Child::pid() const { return state_ == nullptr ? -1 : state_->pid(); }

int Child::pidfd() const {
  return state_ == nullptr ? -1 : state_->pidfd()->fd();
}

Task<absl::StatusOr<ExitStatus>> Child::Wait() {
  if (state_ == nullptr) {
    co_return absl::FailedPreconditionError("Wait on an empty Child");
  }
  internal::ChildState* state = state_.get();
  // Keeps the descriptor's state alive while this task waits on it.
  internal::FdRef pidfd(state->pidfd());
  for (int info_tries = 0;;) {
    if (state->result().has_value()) co_return *state->result();
    if (pidfd->closed()) co_return ErrnoError(EBADF, "waitid(P_PIDFD)", "");
    const int r = TryReap(state, pidfd->fd());
    if (r > 0) continue;
    if (r == -ECHILD) {
      // A host's waitpid(-1) took it; the kernel keeps its status on the
      // pidfd, set as the reaper finishes: look again shortly if not yet.
      if (ExitFromPidfd(state, pidfd->fd()) != 0) continue;
      if (++info_tries > 1000) {
        state->set_result(ErrnoError(ECHILD, "waitid(P_PIDFD)", ""));
        continue;
      }
      if (absl::Status s = co_await Sleep(absl::Milliseconds(1)); !s.ok()) {
        co_return s;
      }
      continue;
    }
    if (r < 0) co_return ErrnoError(-r, "waitid(P_PIDFD)", "");
    absl::Status s = co_await internal::FdReadyAwaiter(
        pidfd.get(), internal::kReadable, "waitid(P_PIDFD)");
    if (!s.ok()) {
      // Closed by the scope's end: the close hook killed and reaped it.
      if (state->result().has_value()) co_return *state->result();
      co_return s;
    }
  }
}

absl::Status Child::Signal(int signo) {
  if (state_ == nullptr) {
    return absl::FailedPreconditionError("Signal on an empty Child");
  }
  const int fd = state_->pidfd()->fd();
  if (state_->result().has_value() || fd < 0) {
    return ErrnoError(ESRCH, "pidfd_send_signal", "");
  }
  int r = ::capfs::internal::SysPidfdSendSignal(fd, signo);
  if (r < 0) return ErrnoError(-r, "pidfd_send_signal", "");
  return absl::OkStatus();
}

absl::StatusOr<Child> Spawn(Scope& scope, SpawnOptions options) {
  const std::string& program = options.program;
  // Options that cannot work are refused before anything starts.
  if (options.new_session && options.process_group.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spawn ", program,
        ": new_session and process_group together (a session leader "
        "cannot change its process group)"));
  }
  if (HasNul(program)) {
    return absl::InvalidArgumentError("spawn: a NUL byte in the program");
  }
  for (const std::string& arg : options.argv) {
    if (HasNul(arg)) {
      return absl::InvalidArgumentError(
          absl::StrCat("spawn ", program, ": a NUL byte in an argument"));
    }
  }
  if (options.env.has_value()) {
    for (const std::string& var : *options.env) {
      if (HasNul(var)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "spawn ", program, ": a NUL byte in an environment variable"));
      }
    }
  }
  std::vector<FdMove> moves;
  moves.reserve(options.fds.size());
  std::vector<int> keep;
  int highest = 2;
  for (const FdMapping& m : options.fds) {
    if (m.child_fd < 0 || m.parent_fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("spawn ", program, ": a negative descriptor in fds {",
                       m.child_fd, ", ", m.parent_fd, "}"));
    }
    for (const FdMove& other : moves) {
      if (other.child_fd == m.child_fd) {
        return absl::InvalidArgumentError(absl::StrCat(
            "spawn ", program, ": child fd ", m.child_fd, " mapped twice"));
      }
    }
    moves.push_back({m.child_fd, m.parent_fd});
    if (m.child_fd >= 3) keep.push_back(m.child_fd);
    highest = std::max({highest, m.child_fd, m.parent_fd});
  }
  std::sort(keep.begin(), keep.end());
  const size_t keep_count = keep.size();
  keep.resize(keep_count + 2, -1);  // room for the child's own two
  std::vector<int> high_copies(moves.size(), -1);

  int cwd_fd = -1;
  if (options.cwd != nullptr) {
    const int fd = options.cwd->fd();
    if (fd >= 0) {
      cwd_fd = fd;
      highest = std::max(highest, fd);
    } else if (fd != AT_FDCWD) {
      return absl::InvalidArgumentError(
          absl::StrCat("spawn ", program, ": cwd is a moved-from Dir"));
    }
  }
  int landlock_fd = -1;
  uint32_t landlock_flags = 0;
  if (options.landlock != nullptr && options.landlock->ruleset_fd() >= 0) {
    landlock_fd = options.landlock->ruleset_fd();
    landlock_flags = options.landlock->child_restrict_flags();
    highest = std::max(highest, landlock_fd);
  }

  std::string path;
  if (int err = ResolveProgram(program, &path); err != 0) {
    if (err == ENOENT || err == EACCES) {
      absl::Status s = ErrnoError(err, "execve", "");
      return WithMessage(
          s, absl::StrCat("spawn ", program, ": ", Quote(program),
                          err == ENOENT ? " not found in PATH"
                                        : " found in PATH but not executable",
                          " (", ReasonOf(s), ")"));
    }
    return SpawnError(program, err, "PATH lookup");
  }

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (std::string& arg : options.argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  char* const* env = environ;
  if (options.env.has_value()) {
    envp.reserve(options.env->size() + 1);
    for (std::string& var : *options.env) envp.push_back(var.data());
    envp.push_back(nullptr);
    env = envp.data();
  }
  std::vector<RlimitSetting> rlimits;
  rlimits.reserve(options.rlimits.size());
  for (const auto& [resource, value] : options.rlimits) {
    rlimits.push_back({resource, {value.rlim_cur, value.rlim_max}});
  }
  std::vector<uint32_t> groups;
  if (options.groups.has_value()) {
    groups.assign(options.groups->begin(), options.groups->end());
  }

  SpawnPlan plan;
  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = env;
  plan.cwd_fd = cwd_fd;
  plan.fds = moves.data();
  plan.fd_count = moves.size();
  plan.keep = keep.data();
  plan.keep_count = keep_count;
  plan.high_base = highest + 1;
  plan.high_copies = high_copies.data();
  plan.new_session = options.new_session;
  plan.set_process_group = options.process_group.has_value();
  plan.process_group = options.process_group.value_or(0);
  plan.set_groups = options.groups.has_value();
  plan.groups = groups.data();
  plan.group_count = groups.size();
  plan.set_gid = options.gid.has_value();
  plan.gid = options.gid.value_or(0);
  plan.set_uid = options.uid.has_value();
  plan.uid = options.uid.value_or(0);
  plan.rlimits = rlimits.data();
  plan.rlimit_count = rlimits.size();
  plan.no_new_privs = options.no_new_privs || options.landlock != nullptr;
  plan.landlock_fd = landlock_fd;
  plan.landlock_flags = landlock_flags;

  int raw_pidfd = -1;
  const pid_t pid = ::capfs::internal::SysSpawn(&plan, &raw_pidfd);
  if (pid < 0) {
    return SpawnError(program, -pid, plan.used_clone3 ? "clone3" : "clone");
  }
  if (pid == 0) return StepError(options, plan);

  // A second descriptor, so that the child can still be killed and reaped
  // if registering the first with the loop fails (which closes it).
  Fd pidfd(raw_pidfd);
  Fd spare(::capfs::internal::SysFcntl(pidfd.get(), F_DUPFD_CLOEXEC, 0));
  absl::StatusOr<internal::FdState*> registered = internal::FdState::Create(
      scope.scheduler(), std::move(pidfd), internal::FdIo::kLoop,
      /*short_drains=*/0, /*socket=*/false, /*capped_writes=*/false,
      scope.resources());
  if (!registered.ok()) {
    const int fd = spare.valid() ? spare.get() : -1;
    if (fd >= 0) {
      internal::ChildState doomed(pid, nullptr);
      KillAndReap(&doomed, fd);
    }
    return registered.status();
  }
  spare.Close().IgnoreError();
  auto state = std::make_unique<internal::ChildState>(pid, *registered);
  (*registered)->SetCloseHook(&KillAndReap, state.get());
  return Child(std::move(state));
}

}  // namespace runtime
}  // namespace capfs

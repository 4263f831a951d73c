#include "tools/run_command.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "capfs/capfs.h"
#include "capfs/landlock.h"
#include "capfs/runtime/runtime.h"
#include "tools/exec_check.h"

extern char** environ;

namespace capfs_tool {

const char kRunUsage[] = R"(run a program confined to some directory trees.

Usage: capfs run [--ro=DIR]... [--rw=DIR]... [--rox=DIR]... [--rwx=DIR]...
                 [--cwd=DIR] [--env=K=V]... [--clear-env] [--no-tcp]
                 [--no-ipc] [--strict] [--bare] -- CMD [ARGS...]

CMD runs confined by the kernel (Landlock): it can open, create, change or
execute files only in the trees granted below, whatever paths, "..",
symlinks or descriptors it uses. Everything else is refused with EACCES:
/etc, /home, /proc, /tmp... are out of reach unless granted.

Trees (each DIR opened once, the grant anchored on that directory, not on
its name; repeat a flag for more trees):
  --ro=DIR       read files and list directories beneath DIR
  --rw=DIR       that, and create, write, rename, remove beneath DIR
  --rox=DIR      read and execute beneath DIR
  --rwx=DIR      read, write and execute beneath DIR
  --bare         grant nothing that was not asked for. Without it, /usr and
                 (where they exist) /bin, /lib, /lib64, /sbin are granted
                 read and execute, so that ordinary programs start.

The program:
  --cwd=DIR      start CMD in DIR, which must be inside a granted tree
                 (default: the current directory, reachable only if granted)
  --env=K=V      set K to V in CMD's environment (repeatable)
  --clear-env    start from an empty environment instead of this one
                 (then --env gives all of it; PATH lookup of CMD still uses
                 this process's PATH)

More confinement (each needs a recent enough kernel, see --strict):
  --no-tcp       no TCP connect or bind at all (Landlock ABI 4, Linux 6.7)
  --no-ipc       no connecting to abstract Unix sockets and no signals to
                 processes outside the sandbox (ABI 6, Linux 6.12)
  --strict       refuse to run unless the kernel enforces everything asked
                 (without it, what this kernel cannot enforce is named in
                 one line on stderr, and CMD runs with the rest)

CMD always runs in a session of its own (setsid), so it cannot push
keystrokes into this terminal (TIOCSTI), and with no_new_privs, so setuid
programs do not gain privileges. SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to
capfs are passed on to CMD.

Exit codes: CMD's own; 128+N when signal N ended it; 2 usage error; 125
capfs could not set up the sandbox (or --strict refused); 126 CMD could not
be executed; 127 CMD was not found. When CMD cannot start, one line says why,
and which grant is missing when Landlock is the likely cause.

Examples:
  capfs run --ro=/srv/data -- /usr/bin/wc -l /srv/data/input.txt
  capfs run --ro=/srv/data -- /bin/cat /srv/data/../secret.txt   # refused
  capfs run --ro=/srv/data --rw=/tmp/out --cwd=/tmp/out --no-tcp --strict \
      -- /usr/bin/sort -o sorted.txt /srv/data/input.txt
  capfs run --bare --rox=/opt/tool -- /opt/tool/static-binary
  capfs run --rwx=/tmp/build --clear-env --env=PATH=/usr/bin --no-ipc \
      -- /usr/bin/make -C /tmp/build
)";

namespace {

constexpr int kUsageError = 2;
constexpr int kSetupFailed = 125;
constexpr int kCannotExecute = 126;
constexpr int kNotFound = 127;

// System directories granted read and execute unless --bare.
constexpr const char* kDefaultTrees[] = {"/usr", "/bin", "/lib", "/lib64",
                                         "/sbin"};

// Signals passed on to the program.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

std::string Quote(absl::string_view s) { return absl::CHexEscape(s); }

int UsageError(absl::string_view message) {
  absl::FPrintF(stderr, "capfs: run: %s\nTry 'capfs run --help'.\n", message);
  return kUsageError;
}

int Fail(int code, absl::string_view message) {
  absl::FPrintF(stderr, "capfs: run: %s\n", message);
  return code;
}

struct TreeFlag {
  std::string flag;  // "--ro", ...
  std::string path;
  capfs::Access access;
};

struct RunFlags {
  std::vector<TreeFlag> trees;
  std::optional<std::string> cwd;
  std::vector<std::string> env;  // K=V, in order
  bool clear_env = false;
  bool no_tcp = false;
  bool no_ipc = false;
  bool strict = false;
  bool bare = false;
  int max_abi = 0;  // hidden: pretend the kernel stops at this ABI
  std::vector<std::string> command;
};

// Parses the flags after "run". Returns an exit code when parsing ends the
// run (help, or a usage error), nullopt to go on.
std::optional<int> ParseFlags(int count, char** args, RunFlags* flags) {
  struct TreeKind {
    const char* flag;
    capfs::Access access;
  };
  static constexpr TreeKind kTreeKinds[] = {
      {"--ro", capfs::Access::kRead},
      {"--rw", capfs::Access::kReadWrite},
      {"--rox", capfs::Access::kReadExec},
      {"--rwx", capfs::Access::kReadWriteExec},
  };
  int i = 1;
  // A flag's value: after '=', or the next argument.
  auto value_of = [&](absl::string_view arg,
                      absl::string_view name) -> std::optional<std::string> {
    if (arg.size() > name.size() && arg[name.size()] == '=') {
      return std::string(arg.substr(name.size() + 1));
    }
    if (arg == name && i + 1 < count) return std::string(args[++i]);
    return std::nullopt;
  };
  auto name_of = [](absl::string_view arg) {
    return arg.substr(0, arg.find('='));
  };
  for (; i < count; ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (!absl::StartsWith(arg, "-")) break;  // CMD
    absl::string_view name = name_of(arg);
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      absl::PrintF("capfs run: %s", kRunUsage);
      return 0;
    }
    bool matched = false;
    for (const TreeKind& kind : kTreeKinds) {
      if (name != kind.flag) continue;
      std::optional<std::string> dir = value_of(arg, kind.flag);
      if (!dir.has_value() || dir->empty()) {
        return UsageError(absl::StrCat(kind.flag, " needs a DIR"));
      }
      flags->trees.push_back({kind.flag, *std::move(dir), kind.access});
      matched = true;
    }
    if (matched) continue;
    if (name == "--cwd") {
      flags->cwd = value_of(arg, "--cwd");
      if (!flags->cwd.has_value() || flags->cwd->empty()) {
        return UsageError("--cwd needs a DIR");
      }
    } else if (name == "--env") {
      std::optional<std::string> kv = value_of(arg, "--env");
      if (!kv.has_value() || kv->find('=') == 0 ||
          kv->find('=') == std::string::npos) {
        return UsageError("--env needs K=V, with a non-empty K");
      }
      flags->env.push_back(*std::move(kv));
    } else if (name == "--max-abi") {
      std::optional<std::string> n = value_of(arg, "--max-abi");
      if (!n.has_value() || !absl::SimpleAtoi(*n, &flags->max_abi) ||
          flags->max_abi < 1) {
        return UsageError("--max-abi needs a number of 1 or more");
      }
    } else if (arg == "--clear-env") {
      flags->clear_env = true;
    } else if (arg == "--no-tcp") {
      flags->no_tcp = true;
    } else if (arg == "--no-ipc") {
      flags->no_ipc = true;
    } else if (arg == "--strict") {
      flags->strict = true;
    } else if (arg == "--bare") {
      flags->bare = true;
    } else {
      return UsageError(absl::StrCat("unknown flag '", Quote(arg), "'"));
    }
  }
  flags->command.assign(args + i, args + count);
  if (flags->command.empty()) return UsageError("no CMD given");
  return std::nullopt;
}

// The program's environment: this process's (unless --clear-env) with every
// --env K=V replacing K or added.
std::vector<std::string> BuildEnv(const RunFlags& flags) {
  std::vector<std::string> env;
  if (!flags.clear_env) {
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  }
  for (const std::string& kv : flags.env) {
    absl::string_view key(kv.data(), kv.find('=') + 1);  // "K="
    bool replaced = false;
    for (std::string& existing : env) {
      if (absl::StartsWith(existing, key)) {
        existing = kv;
        replaced = true;
      }
    }
    if (!replaced) env.push_back(kv);
  }
  return env;
}

// Signals for the program arrive here; the handler queues their numbers on
// a pipe the loop reads, and the loop passes them on with Child::Signal.
std::atomic<int> signal_pipe{-1};

extern "C" void QueueSignal(int signo) {
  const int saved_errno = errno;
  const int fd = signal_pipe.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(signo);
    // A full pipe already holds signals to pass on; this one may be dropped,
    // as the kernel merges pending signals too.
    [[maybe_unused]] ssize_t n = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

// Catches the forwarded signals, except those this process was started with
// ignored (under nohup, SIGHUP stays ignored, as for the program).
void StartForwarding(int pipe_fd) {
  signal_pipe.store(pipe_fd, std::memory_order_relaxed);
  for (int signo : kForwarded) {
    struct sigaction old = {};
    if (sigaction(signo, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) {
      continue;
    }
    struct sigaction sa = {};
    sa.sa_handler = QueueSignal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, nullptr);
  }
}

// Blocks the forwarded signals before the pipe closes: one arriving from
// now on stays pending, and the program's exit status is what capfs gives.
void StopForwarding() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : kForwarded) sigaddset(&set, signo);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal_pipe.store(-1, std::memory_order_relaxed);
}

using capfs::runtime::Child;
using capfs::runtime::ExitStatus;
using capfs::runtime::Task;

// Spawns the program, passes signals on until it ends, and gives its exit
// status. A failed Spawn is stored in `spawn_error` (and returned).
Task<absl::StatusOr<ExitStatus>> Supervise(capfs::runtime::SpawnOptions options,
                                           absl::Status* spawn_error) {
  co_return co_await capfs::runtime::WithScope(
      [&](capfs::runtime::Scope& scope) -> Task<absl::StatusOr<ExitStatus>> {
        absl::StatusOr<capfs::runtime::PipeEnds> pipe =
            capfs::runtime::Pipe(scope);
        if (!pipe.ok()) co_return pipe.status();
        StartForwarding(pipe->write.get());
        absl::StatusOr<Child> child =
            capfs::runtime::Spawn(scope, std::move(options));
        if (!child.ok()) {
          StopForwarding();
          *spawn_error = child.status();
          co_return child.status();
        }
        bool exited = false;
        scope.Spawn([&]() -> Task<absl::Status> {
          char signals[64];
          for (;;) {
            absl::StatusOr<size_t> n = co_await capfs::runtime::Read(
                pipe->read, absl::MakeSpan(signals));
            if (exited) co_return absl::OkStatus();
            if (!n.ok()) co_return n.status();
            for (size_t i = 0; i < *n; ++i) {
              // ESRCH: it has just ended; its status says the rest.
              child->Signal(static_cast<unsigned char>(signals[i]))
                  .IgnoreError();
            }
          }
        });
        absl::StatusOr<ExitStatus> status = co_await child->Wait();
        exited = true;
        StopForwarding();
        pipe->read.Close().IgnoreError();  // ends the forwarding task's read
        if (absl::Status s = co_await scope.Join(); !s.ok()) co_return s;
        co_return status;
      });
}

}  // namespace

int RunCommand(int count, char** args) {
  RunFlags flags;
  if (std::optional<int> done = ParseFlags(count, args, &flags);
      done.has_value()) {
    return *done;
  }

  // The trees, each opened once: the grants are anchored on these
  // descriptors, so renaming a path afterwards changes nothing.
  std::vector<TreeFlag> trees = flags.trees;
  std::vector<GrantedTree> granted;
  if (!flags.bare) {
    for (const char* path : kDefaultTrees) {
      std::optional<std::string> real = RealPath(path);
      if (!real.has_value()) continue;  // absent here
      // /bin -> usr/bin on a merged-/usr system: /usr already grants it.
      if (TreeGranting(granted, *real, /*need_exec=*/true) != nullptr) continue;
      trees.push_back({"default", path, capfs::Access::kReadExec});
      granted.push_back({"default", path, *real, /*exec=*/true});
    }
  }
  std::vector<capfs::Dir> dirs;
  dirs.reserve(trees.size());
  for (const TreeFlag& t : trees) {
    absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(t.path);
    if (!dir.ok()) {
      return Fail(kSetupFailed, absl::StrCat(t.flag, "=", Quote(t.path), ": ",
                                             capfs::ReasonOf(dir.status())));
    }
    dirs.push_back(*std::move(dir));
  }
  for (const TreeFlag& t : flags.trees) {
    const bool exec = t.access == capfs::Access::kReadExec ||
                      t.access == capfs::Access::kReadWriteExec;
    granted.push_back({t.flag, t.path, RealPath(t.path).value_or(""), exec});
  }
  std::vector<capfs::LandlockRule> rules;
  for (size_t i = 0; i < trees.size(); ++i) {
    rules.push_back({&dirs[i], trees[i].access});
  }

  capfs::LandlockOptions options;
  options.strict = flags.strict;
  options.max_abi = flags.max_abi;
  options.deny_tcp = flags.no_tcp;
  options.scope_ipc = flags.no_ipc;
  absl::StatusOr<capfs::Landlock> landlock =
      capfs::Landlock::Build(rules, options);
  if (!landlock.ok()) {
    return Fail(kSetupFailed,
                absl::StrCat(flags.strict ? "refused (--strict): " : "",
                             landlock.status().message()));
  }
  if (!landlock->fully_enforced()) {
    absl::FPrintF(stderr, "capfs: run: %s\n", landlock->Describe());
  }

  std::optional<capfs::Dir> cwd;
  if (flags.cwd.has_value()) {
    absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(*flags.cwd);
    if (!dir.ok()) {
      return Fail(kSetupFailed, absl::StrCat("--cwd=", Quote(*flags.cwd), ": ",
                                             capfs::ReasonOf(dir.status())));
    }
    std::optional<std::string> real = RealPath(*flags.cwd);
    if (!real.has_value() ||
        TreeGranting(granted, *real, /*need_exec=*/false) == nullptr) {
      return UsageError(absl::StrCat(
          "--cwd=", Quote(*flags.cwd),
          " is outside every granted tree: the program could not use it "
          "(grant it, or a tree containing it, with --ro or --rw)"));
    }
    cwd = *std::move(dir);
  }

  capfs::runtime::SpawnOptions spawn;
  spawn.program = flags.command[0];
  spawn.argv = flags.command;
  spawn.env = BuildEnv(flags);
  spawn.cwd = cwd.has_value() ? &*cwd : nullptr;
  spawn.new_session = true;  // no controlling terminal: no TIOCSTI into ours
  spawn.no_new_privs = true;
  spawn.landlock = &*landlock;

  absl::Status spawn_error;
  absl::StatusOr<ExitStatus> status =
      capfs::runtime::Run(Supervise(std::move(spawn), &spawn_error));
  if (!spawn_error.ok()) {
    const int err = capfs::ErrnoOf(spawn_error);
    const bool exec_step = err == ENOENT || err == EACCES || err == EPERM ||
                           err == ENOEXEC || err == E2BIG || err == ETXTBSY ||
                           err == ENOTDIR || err == ELOOP || err == EISDIR ||
                           err == ENAMETOOLONG;
    return Fail(err == ENOENT ? kNotFound
                : exec_step   ? kCannotExecute
                              : kSetupFailed,
                absl::StrCat("cannot start ",
                             ExplainExecFailure(flags.command[0], spawn_error,
                                                granted, landlock->abi() > 0)));
  }
  if (!status.ok()) return Fail(kSetupFailed, status.status().message());
  if (status->signal != 0) return 128 + status->signal;
  if (status->code == 127 && landlock->abi() > 0) {
    if (std::optional<std::string> hint =
            LibraryHint(flags.command[0], granted);
        hint.has_value()) {
      absl::FPrintF(stderr, "capfs: run: %s\n", *hint);
    }
  }
  return status->code;
}

}  // namespace capfs_tool

// Spawn, Wait, Signal and the end of a scope: exit codes and signals, every
// action alone and together, fd mapping, the errors of each step, reaping
// (no zombie after any case), many children, and a host that reaps with
// waitpid(-1). Both backends; both ways of cloning (clone3, and clone as
// under a seccomp profile that refuses clone3).

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/process_test_util.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using ::capfs::runtime::testing::BackendTest;
using ::capfs::runtime::testing::ChildrenOfThisProcess;
using ::capfs::runtime::testing::HelperOptions;
using ::capfs::runtime::testing::Outcome;
using ::capfs::runtime::testing::SpawnAndCollect;

// How the child is cloned: the parameter besides the backend.
enum class CloneWay { kClone3, kCloneFallback };

struct Param {
  IoBackend backend;
  CloneWay clone;
};

class ProcessTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    internal::ForceCloneFallbackForTesting(GetParam().clone ==
                                           CloneWay::kCloneFallback);
  }
  void TearDown() override {
    internal::ForceCloneFallbackForTesting(false);
    // Every case reaps what it started, at once: no zombie, no child left.
    EXPECT_EQ(ChildrenOfThisProcess(), std::vector<pid_t>{});
  }
  template <typename Main>
  auto RunMain(Main main) {
    LoopOptions options;
    options.backend = GetParam().backend;
    return ::capfs::runtime::Run(main(), options);
  }
  // Runs the helper with `options` and gives its outcome.
  absl::StatusOr<Outcome> Collect(SpawnOptions options) {
    return RunMain([&]() -> Task<absl::StatusOr<Outcome>> {
      co_return co_await SpawnAndCollect(std::move(options));
    });
  }
};

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return absl::StrCat(
      IoBackendName(info.param.backend),
      info.param.clone == CloneWay::kClone3 ? "_clone3" : "_clone");
}

INSTANTIATE_TEST_SUITE_P(
    Backends, ProcessTest,
    ::testing::Values(Param{IoBackend::kEpoll, CloneWay::kClone3},
                      Param{IoBackend::kPoll, CloneWay::kClone3},
                      Param{IoBackend::kEpoll, CloneWay::kCloneFallback},
                      Param{IoBackend::kPoll, CloneWay::kCloneFallback}),
    ParamName);

// --- exit codes and signals

struct EndCase {
  std::vector<std::string> commands;
  ExitStatus expected;
  std::string text;
};

TEST_P(ProcessTest, ExitCodesAndSignals) {
  const std::vector<EndCase> cases = {
      {{"exit", "0"}, {0, 0}, "exited with 0"},
      {{"exit", "3"}, {3, 0}, "exited with 3"},
      {{"exit", "255"}, {255, 0}, "exited with 255"},
      {{"kill", "9"}, {0, SIGKILL}, "killed by SIGKILL"},
      {{"kill", "15"}, {0, SIGTERM}, "killed by SIGTERM"},
      {{"kill", "10"}, {0, SIGUSR1}, "killed by SIGUSR1"},
      {{"kill", "13"}, {0, SIGPIPE}, "killed by SIGPIPE"},
  };
  for (const EndCase& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.commands, " "));
    absl::StatusOr<Outcome> got = Collect(HelperOptions(c.commands));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->status.code, c.expected.code);
    EXPECT_EQ(got->status.signal, c.expected.signal);
    EXPECT_EQ(got->status.success(),
              c.expected.code == 0 && c.expected.signal == 0);
    EXPECT_EQ(got->status.ToString(), c.text);
  }
}

TEST(ExitStatusTest, ToString) {
  struct Case {
    ExitStatus status;
    std::string text;
  };
  const std::vector<Case> cases = {
      {{0, 0}, "exited with 0"},           {{3, 0}, "exited with 3"},
      {{0, SIGKILL}, "killed by SIGKILL"}, {{0, SIGSEGV}, "killed by SIGSEGV"},
      {{0, 70}, "killed by signal 70"},
  };
  for (const Case& c : cases) EXPECT_EQ(c.status.ToString(), c.text);
}

// --- actions, one at a time and together

TEST_P(ProcessTest, ArgvAndEnvironment) {
  SpawnOptions options = HelperOptions({"argv", "env", "CAPFS_X"});
  options.argv[0] = "renamed";
  options.env = std::vector<std::string>{"CAPFS_X=value", "OTHER=1"};
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->out, "renamed\nargv\nenv\nCAPFS_X\nvalue\n");

  // nullopt: this process's environment.
  ASSERT_EQ(::setenv("CAPFS_INHERITED", "yes", 1), 0);
  got = Collect(HelperOptions({"env", "CAPFS_INHERITED"}));
  ::unsetenv("CAPFS_INHERITED");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->out, "yes\n");
}

TEST_P(ProcessTest, PathLookup) {
  // A name without '/' is looked up in PATH: `true` is in /bin or /usr/bin.
  SpawnOptions options;
  options.program = "true";
  options.argv = {"true"};
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->status.success());
}

TEST_P(ProcessTest, Cwd) {
  ::capfs_test::TempDir tmp;
  absl::StatusOr<Dir> dir = Dir::Open(tmp.path());
  ASSERT_TRUE(dir.ok()) << dir.status();
  SpawnOptions options = HelperOptions({"cwd"});
  options.cwd = &*dir;
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  char real[4096];
  ASSERT_NE(::realpath(tmp.path().c_str(), real), nullptr);
  EXPECT_EQ(got->out, absl::StrCat(real, "\n"));

  // Dir::Cwd() has no descriptor: the child keeps this process's cwd.
  Dir cwd = Dir::Cwd();
  options = HelperOptions({"cwd"});
  options.cwd = &cwd;
  got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  char here[4096];
  ASSERT_NE(::getcwd(here, sizeof(here)), nullptr);
  EXPECT_EQ(got->out, absl::StrCat(here, "\n"));
}

TEST_P(ProcessTest, NewSessionAndProcessGroup) {
  struct Case {
    bool new_session;
    std::optional<pid_t> group;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {false, std::nullopt, "sid=0 pgid=0\n"},
      {true, std::nullopt, "sid=1 pgid=1\n"},
      {false, 0, "sid=0 pgid=1\n"},
  };
  for (const Case& c : cases) {
    SpawnOptions options = HelperOptions({"session"});
    options.new_session = c.new_session;
    options.process_group = c.group;
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->out, c.expected);
  }
}

TEST_P(ProcessTest, RlimitAndNoNewPrivs) {
  SpawnOptions options =
      HelperOptions({"rlimit", "NOFILE", "rlimit", "CORE", "nnp"});
  options.rlimits = {{RLIMIT_NOFILE, {64, 128}}, {RLIMIT_CORE, {0, 0}}};
  options.no_new_privs = true;
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->out, "64 128\n0 0\n1\n");

  got = Collect(HelperOptions({"nnp"}));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->out, "0\n");
}

// Handlers are reset, ignored signals stay ignored, the mask is kept.
TEST_P(ProcessTest, SignalDispositionsAndMask) {
  struct sigaction handler = {}, ignore = {}, old_usr1, old_usr2;
  handler.sa_handler = [](int) {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGUSR1, &handler, &old_usr1), 0);
  ASSERT_EQ(::sigaction(SIGUSR2, &ignore, &old_usr2), 0);
  sigset_t winch, old_mask;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &winch, &old_mask), 0);
  absl::StatusOr<Outcome> got = Collect(HelperOptions({"sigs"}));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ::sigaction(SIGUSR2, &old_usr2, nullptr);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->out, "usr1=dfl usr2=ign winch_blocked=1 pipe_blocked=0\n");
}

bool SigpipeBlockedHere() {
  sigset_t mask;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE);
}

// A pipe write leaves SIGPIPE blocked on the loop's thread until the run ends
// (sigpipe_test); a child spawned meanwhile still gets the host's mask.
TEST_P(ProcessTest, AChildSpawnedWhileTheLoopHoldsSigpipeGetsTheHostsMask) {
  bool held = false;
  SpawnOptions options = HelperOptions({"sigs"});
  absl::StatusOr<Outcome> got = RunMain([&]() -> Task<absl::StatusOr<Outcome>> {
    absl::StatusOr<Outcome> outcome;
    absl::Status s =
        co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<PipeEnds> pipe = Pipe(scope);
          if (!pipe.ok()) co_return pipe.status();
          absl::StatusOr<size_t> n = co_await Write(pipe->write, "x");
          if (!n.ok()) co_return n.status();
          held = SigpipeBlockedHere();
          outcome = co_await SpawnAndCollect(std::move(options));
          co_return absl::OkStatus();
        });
    if (!s.ok()) co_return s;
    co_return outcome;
  });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(held) << "the loop's thread did not hold SIGPIPE";
  EXPECT_EQ(got->out, "usr1=dfl usr2=dfl winch_blocked=0 pipe_blocked=0\n");
}

// --- fd mapping

// An open pipe whose ends are plain Fds (not on a loop).
struct RawPipe {
  Fd read;
  Fd write;
};
RawPipe MakePipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {Fd(fds[0]), Fd(fds[1])};
}
std::string Drain(const Fd& fd) {
  std::string out;
  char buf[256];
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

// A mapping's target: a literal number, or the number pipe `pipe` has here.
struct Target {
  int literal;
  int pipe = -1;
};
struct MapCase {
  std::string name;
  std::vector<std::pair<Target, int>> map;  // (child fd, source pipe)
};

TEST_P(ProcessTest, FdMapping) {
  const std::vector<MapCase> cases = {
      {"one", {{{5}, 0}}},
      {"swap", {{{0, 1}, 0}, {{0, 0}, 1}}},
      {"chain", {{{0, 1}, 0}, {{0, 2}, 1}}},
      {"rotate", {{{0, 1}, 0}, {{0, 2}, 1}, {{0, 0}, 2}}},
      {"onto itself", {{{0, 0}, 0}}},
      {"itself and elsewhere", {{{0, 0}, 0}, {{9}, 0}}},
      {"one source twice", {{{7}, 1}, {{8}, 1}}},
      {"high target", {{{200}, 2}}},
      {"target collides with another pipe", {{{0, 2}, 0}}},
  };
  for (const MapCase& c : cases) {
    SCOPED_TRACE(c.name);
    RawPipe pipes[3] = {MakePipe(), MakePipe(), MakePipe()};
    SpawnOptions options = HelperOptions({});
    std::vector<std::string> expected(3);
    std::set<int> targets = {0, 1, 2};
    for (const auto& [target, source] : c.map) {
      const int child_fd =
          target.pipe >= 0 ? pipes[target.pipe].write.get() : target.literal;
      options.fds.push_back({child_fd, pipes[source].write.get()});
      options.argv.insert(
          options.argv.end(),
          {"write", absl::StrCat(child_fd), absl::StrCat("<", child_fd, ">")});
      expected[source] += absl::StrCat("<", child_fd, ">");
      targets.insert(child_fd);
    }
    options.argv.push_back("fds");
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_TRUE(got.ok()) << got.status();
    std::string oks;
    for (size_t i = 0; i < c.map.size(); ++i) oks += "ok\n";
    EXPECT_EQ(got->out, absl::StrCat(oks, absl::StrJoin(targets, " "), "\n"));
    for (int p = 0; p < 3; ++p) {
      // Closing our write end leaves only what the child wrote.
      pipes[p].write = Fd();
      EXPECT_EQ(Drain(pipes[p].read), expected[p]) << "pipe " << p;
    }
  }
}

// Swapping this process's own 0 and 1 (saved and restored around Spawn).
TEST_P(ProcessTest, FdMappingSwapsZeroAndOne) {
  RawPipe a = MakePipe(), b = MakePipe();
  const int saved0 = ::fcntl(0, F_DUPFD_CLOEXEC, 10);
  const int saved1 = ::fcntl(1, F_DUPFD_CLOEXEC, 10);
  ASSERT_GE(saved0, 0);
  ASSERT_GE(saved1, 0);
  ::dup2(a.write.get(), 0);
  ::dup2(b.write.get(), 1);
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      SpawnOptions options = HelperOptions(
          {"write", "0", "zero>", "write", "1", "one>", "exit", "0"});
      options.fds = {{0, 1}, {1, 0}};
      absl::StatusOr<Child> child = Spawn(scope, std::move(options));
      if (!child.ok()) co_return child.status();
      absl::StatusOr<ExitStatus> st = co_await child->Wait();
      if (!st.ok()) co_return st.status();
      EXPECT_TRUE(st->success()) << st->ToString();
      co_return absl::OkStatus();
    });
  });
  ::dup2(saved0, 0);
  ::dup2(saved1, 1);
  ::close(saved0);
  ::close(saved1);
  ASSERT_TRUE(s.ok()) << s;
  a.write = Fd();
  b.write = Fd();
  // Child fd 0 was our 1 (pipe b), child fd 1 our 0 (pipe a); the helper's
  // "ok" lines went to its stdout, pipe a.
  EXPECT_EQ(Drain(b.read), "zero>");
  EXPECT_EQ(Drain(a.read), "one>ok\nok\n");
}

// Every descriptor but 0, 1, 2 and the targets is closed, close-on-exec or
// not, low or high.
TEST_P(ProcessTest, InheritedDescriptorsClosed) {
  std::vector<Fd> open;
  for (int i = 0; i < 3; ++i) open.emplace_back(::fcntl(2, F_DUPFD, 3));
  open.emplace_back(::fcntl(2, F_DUPFD, 300));
  open.emplace_back(::fcntl(2, F_DUPFD_CLOEXEC, 301));
  for (const Fd& fd : open) ASSERT_TRUE(fd.valid());
  SpawnOptions options = HelperOptions({"fds"});
  options.fds = {{4, open[0].get()}};
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->out, "0 1 2 4\n");
}

// --- errors

class ErrorFiles {
 public:
  ErrorFiles() {
    Write("plain.txt", "not a program\n", 0644);
    Write("garbage", "\x01\x02\x03 not ELF, no #!\n", 0755);
    Write("bad_interp.sh", "#!/nonexistent/interpreter\n", 0755);
    ::mkdir(tmp_.Join("dir").c_str(), 0755);
  }
  std::string Path(const std::string& name) const { return tmp_.Join(name); }

 private:
  void Write(const std::string& name, const std::string& content, int mode) {
    std::ofstream(tmp_.Join(name)) << content;
    ::chmod(tmp_.Join(name).c_str(), mode);
  }
  ::capfs_test::TempDir tmp_;
};

TEST_P(ProcessTest, ExecErrors) {
  ErrorFiles files;
  struct Case {
    std::string program;
    std::vector<std::string> argv;
    int err;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/nonexistent/program", {}, ENOENT, "not found"},
      {"capfs-no-such-program", {}, ENOENT, "not found in PATH"},
      {files.Path("plain.txt"), {}, EACCES, "permission denied"},
      {files.Path("dir"), {}, EACCES, "permission denied"},
      {files.Path("garbage"), {}, ENOEXEC, "not an executable format"},
      {files.Path("bad_interp.sh"), {}, ENOENT, "interpreter"},
      {"", {}, ENOENT, "not found"},
      {"/bin/true",
       {std::string(200000, 'x')},
       E2BIG,
       "argument list and environment too long"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.program);
    SpawnOptions options;
    options.program = c.program;
    options.argv = {"x"};
    options.argv.insert(options.argv.end(), c.argv.begin(), c.argv.end());
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(ErrnoOf(got.status()), c.err) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.message))
        << got.status();
  }
}

TEST_P(ProcessTest, StepErrors) {
  const int closed = [] {
    int fd = ::fcntl(2, F_DUPFD_CLOEXEC, 400);
    ::close(fd);
    return fd;
  }();
  struct Case {
    std::string name;
    std::function<void(SpawnOptions&)> setup;
    absl::StatusCode code;
    int err;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"dup2 of a closed descriptor",
       [&](SpawnOptions& o) {
         o.fds = {{5, closed}};
       },
       absl::StatusCode::kFailedPrecondition, EBADF,
       absl::StrCat("dup2(parent fd ", closed, " -> child fd 5)")},
      {"a closed descriptor onto itself",
       [&](SpawnOptions& o) {
         o.fds = {{closed, closed}};
       },
       absl::StatusCode::kFailedPrecondition, EBADF, "fcntl(F_SETFD)"},
      {"setpgid into a group that does not exist",
       [](SpawnOptions& o) { o.process_group = 2147483647; },
       absl::StatusCode::kPermissionDenied, EPERM, "setpgid(0, 2147483647)"},
      {"an rlimit with soft above hard",
       [](SpawnOptions& o) {
         o.rlimits = {{RLIMIT_NOFILE, {100, 50}}};
       },
       absl::StatusCode::kInvalidArgument, EINVAL, "prlimit(RLIMIT_NOFILE)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SpawnOptions options = HelperOptions({"exit", "0"});
    c.setup(options);
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), c.code) << got.status();
    EXPECT_EQ(ErrnoOf(got.status()), c.err) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.message))
        << got.status();
  }
}

TEST_P(ProcessTest, InvalidOptions) {
  struct Case {
    std::string name;
    std::function<void(SpawnOptions&)> setup;
  };
  const std::vector<Case> cases = {
      {"a child fd twice",
       [](SpawnOptions& o) {
         o.fds = {{5, 2}, {5, 1}};
       }},
      {"a negative child fd",
       [](SpawnOptions& o) {
         o.fds = {{-1, 2}};
       }},
      {"a negative parent fd",
       [](SpawnOptions& o) {
         o.fds = {{3, -2}};
       }},
      {"a NUL in argv",
       [](SpawnOptions& o) { o.argv.push_back(std::string("a\0b", 3)); }},
      {"a NUL in env",
       [](SpawnOptions& o) {
         o.env = std::vector<std::string>{std::string("A=\0", 3)};
       }},
      {"new_session and process_group",
       [](SpawnOptions& o) {
         o.new_session = true;
         o.process_group = 0;
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SpawnOptions options = HelperOptions({"exit", "0"});
    c.setup(options);
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
        << got.status();
  }
}

// --- the child handle

TEST_P(ProcessTest, WaitTwiceSignalAfterReap) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<Child> child =
          Spawn(scope, HelperOptions({"sleep", "30"}));
      if (!child.ok()) co_return child.status();
      EXPECT_GT(child->pid(), 0);
      EXPECT_GE(child->pidfd(), 0);
      // A wait cut short leaves it running.
      absl::StatusOr<ExitStatus> early =
          co_await WithTimeout(absl::Milliseconds(20), child->Wait());
      EXPECT_EQ(early.status().code(), absl::StatusCode::kDeadlineExceeded);
      EXPECT_TRUE(child->Signal(SIGTERM).ok());
      absl::StatusOr<ExitStatus> first = co_await child->Wait();
      absl::StatusOr<ExitStatus> second = co_await child->Wait();
      if (!first.ok()) co_return first.status();
      EXPECT_EQ(first->ToString(), "killed by SIGTERM");
      EXPECT_TRUE(second.ok());
      EXPECT_EQ(second->ToString(), "killed by SIGTERM");
      absl::Status after = child->Signal(SIGTERM);
      EXPECT_EQ(ErrnoOf(after), ESRCH) << after;
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
}

// Two tasks waiting on one child both get its status.
TEST_P(ProcessTest, TwoWaiters) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<Child> child =
          Spawn(scope, HelperOptions({"sleep", "0.05", "exit", "7"}));
      if (!child.ok()) co_return child.status();
      std::string a, b;
      scope.Spawn([&]() -> Task<absl::Status> {
        absl::StatusOr<ExitStatus> st = co_await child->Wait();
        a = st.ok() ? st->ToString() : st.status().ToString();
        co_return absl::OkStatus();
      });
      absl::StatusOr<ExitStatus> st = co_await child->Wait();
      b = st.ok() ? st->ToString() : st.status().ToString();
      absl::Status j = co_await scope.Join();
      EXPECT_EQ(a, "exited with 7");
      EXPECT_EQ(b, "exited with 7");
      co_return j;
    });
  });
  ASSERT_TRUE(s.ok()) << s;
}

// The scope's end kills and reaps; the handle then tells how it ended.
TEST_P(ProcessTest, ScopeEndKillsAndReaps) {
  std::optional<Child> kept;
  pid_t pid = -1;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    absl::Status inner =
        co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<Child> child =
              Spawn(scope, HelperOptions({"sleep", "30"}));
          if (!child.ok()) co_return child.status();
          pid = child->pid();
          kept.emplace(*std::move(child));
          co_return absl::OkStatus();
        });
    if (!inner.ok()) co_return inner;
    EXPECT_EQ(kept->pidfd(), -1);
    EXPECT_EQ(ChildrenOfThisProcess(), std::vector<pid_t>{});
    absl::StatusOr<ExitStatus> st = co_await kept->Wait();
    if (!st.ok()) co_return st.status();
    EXPECT_EQ(st->ToString(), "killed by SIGKILL");
    EXPECT_EQ(ErrnoOf(kept->Signal(SIGTERM)), ESRCH);
    co_return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GT(pid, 0);
  kept.reset();
}

// A Child dropped (or moved over) while running is killed and reaped at
// once.
TEST_P(ProcessTest, DroppedChildKilledAndReaped) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      const absl::Time start = absl::Now();
      {
        absl::StatusOr<Child> child =
            Spawn(scope, HelperOptions({"sleep", "30"}));
        if (!child.ok()) co_return child.status();
        absl::StatusOr<Child> other =
            Spawn(scope, HelperOptions({"sleep", "30"}));
        if (!other.ok()) co_return other.status();
        *child = *std::move(other);  // the first is killed here
        EXPECT_EQ(ChildrenOfThisProcess().size(), 1u);
      }
      EXPECT_EQ(ChildrenOfThisProcess(), std::vector<pid_t>{});
      EXPECT_LT(absl::Now() - start, absl::Seconds(10));
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
}

TEST_P(ProcessTest, ManyConcurrentChildren) {
  constexpr int kChildren = 200;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      std::vector<Child> children;
      children.reserve(kChildren);
      for (int i = 0; i < kChildren; ++i) {
        absl::StatusOr<Child> child = Spawn(
            scope,
            HelperOptions({"sleep", "0.01", "exit", absl::StrCat(i % 256)}));
        if (!child.ok()) co_return child.status();
        children.push_back(*std::move(child));
      }
      std::vector<int> codes(kChildren, -1);
      for (int i = 0; i < kChildren; ++i) {
        scope.Spawn([&, i]() -> Task<absl::Status> {
          absl::StatusOr<ExitStatus> st =
              co_await WithTimeout(absl::Seconds(60), children[i].Wait());
          if (!st.ok()) co_return st.status();
          codes[i] = st->code;
          co_return absl::OkStatus();
        });
      }
      absl::Status j = co_await scope.Join();
      for (int i = 0; i < kChildren; ++i) EXPECT_EQ(codes[i], i % 256);
      co_return j;
    });
  });
  ASSERT_TRUE(s.ok()) << s;
}

// A host thread reaping everything with waitpid(-1) takes the children
// first; Wait still gives each one's status (from the pidfd).
TEST_P(ProcessTest, HostReaperDoesNotBreakWait) {
  constexpr int kChildren = 12;
  std::atomic<int> host_reaped{0};
  std::thread reaper;
  Event all_reaped;  // outlives the loop: the reaper's Post may come last
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      std::vector<Child> children;
      for (int i = 0; i < kChildren; ++i) {
        std::vector<std::string> commands =
            i % 3 == 2 ? std::vector<std::string>{"kill", "9"}
                       : std::vector<std::string>{"exit", absl::StrCat(i + 1)};
        absl::StatusOr<Child> child = Spawn(scope, HelperOptions(commands));
        if (!child.ok()) co_return child.status();
        children.push_back(*std::move(child));
      }
      // The host takes them all before anyone waits: its thread blocks in
      // waitpid(-1) once a child (each exits at once), then tells the loop.
      Loop* loop = Loop::Current();
      reaper = std::thread([&, loop] {
        for (int i = 0; i < kChildren; ++i) {
          int status;
          pid_t pid;
          do {
            pid = ::waitpid(-1, &status, 0);
          } while (pid < 0 && errno == EINTR);
          if (pid <= 0) break;  // ECHILD: none left to reap
          ++host_reaped;
        }
        loop->Post([&] { all_reaped.Set(); });
      });
      if (absl::Status z = co_await all_reaped.Wait(); !z.ok()) {
        reaper.join();  // soon: the children exit by themselves
        co_return z;
      }
      EXPECT_EQ(host_reaped.load(), kChildren);
      for (int i = 0; i < kChildren; ++i) {
        absl::StatusOr<ExitStatus> st = co_await children[i].Wait();
        if (!st.ok()) co_return st.status();
        EXPECT_EQ(st->ToString(), i % 3 == 2
                                      ? std::string("killed by SIGKILL")
                                      : absl::StrCat("exited with ", i + 1));
        EXPECT_EQ(ErrnoOf(children[i].Signal(SIGTERM)), ESRCH);
      }
      co_return absl::OkStatus();
    });
  });
  if (reaper.joinable()) reaper.join();
  ASSERT_TRUE(s.ok()) << s;
}

// Everything at once, in the documented order.
TEST_P(ProcessTest, AllActionsTogether) {
  ::capfs_test::TempDir tmp;
  absl::StatusOr<Dir> dir = Dir::Open(tmp.path());
  ASSERT_TRUE(dir.ok()) << dir.status();
  RawPipe extra = MakePipe();
  SpawnOptions options =
      HelperOptions({"cwd", "session", "rlimit", "NOFILE", "nnp", "write", "6",
                     "x", "fds", "env", "A"});
  options.cwd = &*dir;
  options.fds = {{6, extra.write.get()}};
  options.new_session = true;
  options.rlimits = {{RLIMIT_NOFILE, {32, 32}}};
  options.no_new_privs = true;
  options.env = std::vector<std::string>{"A=b"};
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  char real[4096];
  ASSERT_NE(::realpath(tmp.path().c_str(), real), nullptr);
  EXPECT_EQ(got->out, absl::StrCat(real, "\nsid=1 pgid=1\n32 32\n1\nok\n",
                                   "0 1 2 6\nb\n"));
  extra.write = Fd();
  EXPECT_EQ(Drain(extra.read), "x");
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

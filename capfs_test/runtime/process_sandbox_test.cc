// Spawn with credentials and with Landlock: a child dropped to 65534, and a
// child confined to a set of Dirs (reads and writes exactly there, refused
// everywhere else, through symlinks and ".." too), TCP and abstract sockets
// refused when asked, max_abi lowering what is enforced, strict refusing.
// What Landlock leaves open (stat, descriptors opened before) is shown too.
// Runs outside Bazel's sandbox (tags "no-sandbox"): dropping privileges
// fails in its user namespace.

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/process_test_util.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using ::capfs::runtime::testing::ChildrenOfThisProcess;
using ::capfs::runtime::testing::HelperOptions;
using ::capfs::runtime::testing::HelperPath;
using ::capfs::runtime::testing::Outcome;
using ::capfs::runtime::testing::SpawnAndCollect;

class SandboxTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  void TearDown() override {
    EXPECT_EQ(ChildrenOfThisProcess(), std::vector<pid_t>{});
  }
  absl::StatusOr<Outcome> Collect(SpawnOptions options) {
    LoopOptions loop;
    loop.backend = GetParam();
    return ::capfs::runtime::Run(
        [&]() -> Task<absl::StatusOr<Outcome>> {
          co_return co_await SpawnAndCollect(std::move(options));
        }(),
        loop);
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, SandboxTest,
                         ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                         [](const ::testing::TestParamInfo<IoBackend>& info) {
                           return std::string(IoBackendName(info.param));
                         });

TEST_P(SandboxTest, DropToNobody) {
  ASSERT_EQ(::geteuid(), 0u) << "the test runs as root in CI";
  ::capfs_test::TempDir tmp;  // root's, mode 0755
  SpawnOptions options;
  options.program = "/bin/sh";
  options.argv = {"sh", "-c",
                  absl::StrCat("id -u; id -g; id -G; ulimit -n; ", "echo x > ",
                               tmp.Join("x"), " 2>/dev/null || echo refused")};
  options.uid = 65534;
  options.gid = 65534;
  options.groups = std::vector<gid_t>{65534};
  options.rlimits = {{RLIMIT_NOFILE, {48, 48}}};
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->status.success()) << got->status.ToString();
  EXPECT_EQ(got->out, "65534\n65534\n65534\n48\nrefused\n");
}

// Failures after a credential change come back through the error pipe.
TEST_P(SandboxTest, ErrorsUnderCredentials) {
  ::capfs_test::TempDir tmp;
  struct Case {
    std::string name;
    std::string program;
    std::vector<std::pair<int, struct rlimit>> rlimits;
    int err;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"exec of a directory", tmp.path(), {}, EACCES, "permission denied"},
      {"exec of a missing file", tmp.Join("none"), {}, ENOENT, "not found"},
      {"a bad rlimit",
       "/bin/true",
       {{RLIMIT_NOFILE, {100, 50}}},
       EINVAL,
       "prlimit(RLIMIT_NOFILE)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SpawnOptions options;
    options.program = c.program;
    options.argv = {"x"};
    options.uid = 65534;
    options.gid = 65534;
    options.rlimits = c.rlimits;
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(ErrnoOf(got.status()), c.err) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.message))
        << got.status();
  }
}

// The Dirs of a confined child: `ro` (kRead), `rw` (kReadWrite), and what
// it needs to run (kReadExec on the system's program directories and the
// helper's own). Beside them, outside every rule, `secret.txt`.
class Confinement {
 public:
  Confinement() {
    ::mkdir(tmp_.Join("ro").c_str(), 0755);
    ::mkdir(tmp_.Join("rw").c_str(), 0755);
    std::ofstream(tmp_.Join("ro/r.txt")) << "ro-data";
    std::ofstream(tmp_.Join("secret.txt")) << "secret";
    ::symlink("../secret.txt", tmp_.Join("ro/escape").c_str());
    ro_ = Open(tmp_.path() + "/ro");
    rw_ = Open(tmp_.path() + "/rw");
    char real[4096];
    if (::realpath(HelperPath().c_str(), real) != nullptr) {
      std::string dir(real);
      helper_dir_ = Open(dir.substr(0, dir.rfind('/')));
    }
    for (const char* path : {"/usr", "/bin", "/lib", "/lib64"}) {
      struct stat st;
      if (::stat(path, &st) == 0) system_.push_back(Open(path));
    }
#ifdef CAPFS_SANITIZER
    // The sanitizers' runtimes read /proc/self/maps at startup.
    proc_ = Open("/proc");
#endif
  }

  // Rules for ro, rw and the programs, plus `extra`.
  std::vector<LandlockRule> Rules(bool with_exec = true) const {
    std::vector<LandlockRule> rules = {{&ro_, Access::kRead},
                                       {&rw_, Access::kReadWrite}};
    if (with_exec) {
      rules.push_back({&helper_dir_, Access::kReadExec});
      for (const Dir& d : system_) rules.push_back({&d, Access::kReadExec});
    }
    if (proc_.fd() >= 0) rules.push_back({&proc_, Access::kRead});
    return rules;
  }
  std::string Join(const std::string& rel) const { return tmp_.Join(rel); }

 private:
  static Dir Open(const std::string& path) {
    absl::StatusOr<Dir> d = Dir::Open(path);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : Dir::Cwd();
  }

  ::capfs_test::TempDir tmp_;
  Dir ro_ = Dir::Cwd();
  Dir rw_ = Dir::Cwd();
  Dir helper_dir_ = Dir::Cwd();
  Dir proc_ = Dir::Cwd();
  std::vector<Dir> system_;
};

TEST_P(SandboxTest, ConfinedToItsDirs) {
  ASSERT_GE(LandlockAbi(), 3) << "this kernel has Landlock ABI 7";
  Confinement c;
  std::vector<LandlockRule> rules = c.Rules();
  absl::StatusOr<Landlock> sandbox = Landlock::Build(rules, {.strict = true});
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  Fd before(::open(c.Join("secret.txt").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(before.valid());
  struct Step {
    std::vector<std::string> command;
    std::string expected;
  };
  const std::vector<Step> steps = {
      {{"read", c.Join("ro/r.txt")}, "ok ro-data"},
      {{"writefile", c.Join("ro/new"), "x"}, "error EACCES"},
      {{"writefile", c.Join("rw/new"), "y"}, "ok"},
      {{"read", c.Join("rw/new")}, "ok y"},
      {{"read", "/etc/passwd"}, "error EACCES"},
      {{"writefile", "/etc/capfs-should-not-exist", "x"}, "error EACCES"},
      {{"read", c.Join("secret.txt")}, "error EACCES"},
      {{"writefile", c.Join("new"), "x"}, "error EACCES"},
      {{"read", c.Join("ro/escape")}, "error EACCES"},
      {{"read", c.Join("ro/../secret.txt")}, "error EACCES"},
      {{"read", c.Join("rw/../secret.txt")}, "error EACCES"},
      // What Landlock leaves open: stat, and descriptors opened before.
      {{"stat", "/etc/passwd"}, "ok"},
      {{"readfd", "5"}, "ok secret"},
  };
  SpawnOptions options = HelperOptions({});
  std::string expected;
  for (const Step& s : steps) {
    options.argv.insert(options.argv.end(), s.command.begin(), s.command.end());
    expected += s.expected + "\n";
  }
  options.fds = {{5, before.get()}};
  options.landlock = &*sandbox;
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->status.success()) << got->status.ToString();
  EXPECT_EQ(got->out, expected);
  struct stat st;
  EXPECT_NE(::stat("/etc/capfs-should-not-exist", &st), 0);
  EXPECT_NE(::stat(c.Join("ro/new").c_str(), &st), 0);
}

// A listening TCP socket on 127.0.0.1 and an abstract Unix socket.
class Listeners {
 public:
  Listeners() {
    tcp_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(tcp_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)),
              0);
    EXPECT_EQ(::listen(tcp_.get(), 16), 0);
    socklen_t len = sizeof(a);
    ::getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);

    name_ = absl::StrCat("capfs-process-test-", ::getpid());
    unix_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un u = {};
    u.sun_family = AF_UNIX;
    ::memcpy(u.sun_path + 1, name_.data(), name_.size());
    EXPECT_EQ(::bind(unix_.get(), reinterpret_cast<sockaddr*>(&u),
                     offsetof(sockaddr_un, sun_path) + 1 + name_.size()),
              0);
    EXPECT_EQ(::listen(unix_.get(), 16), 0);
  }
  std::string port() const { return absl::StrCat(port_); }
  const std::string& name() const { return name_; }

 private:
  Fd tcp_;
  Fd unix_;
  int port_ = 0;
  std::string name_;
};

TEST_P(SandboxTest, NetworkAndIpcScopes) {
  ASSERT_GE(LandlockAbi(), 6) << "this kernel has Landlock ABI 7";
  Confinement c;
  Listeners listeners;
  struct Case {
    std::string name;
    LandlockOptions options;
    bool fully_enforced;
    std::string expected;  // connect, abstract, read /etc/passwd
  };
  const std::vector<Case> cases = {
      {"nothing asked", {}, true, "ok\nok\nerror EACCES\n"},
      {"deny_tcp",
       {.deny_tcp = true},
       true,
       "error EACCES\nok\nerror EACCES\n"},
      {"scope_ipc",
       {.scope_ipc = true},
       true,
       "ok\nerror EPERM\nerror EACCES\n"},
      {"both",
       {.deny_tcp = true, .scope_ipc = true},
       true,
       "error EACCES\nerror EPERM\nerror EACCES\n"},
      // max_abi lowers what is enforced: ABI 3 has no TCP rights and no
      // scopes, so both stay open; the filesystem rules still hold.
      {"both at ABI 3",
       {.max_abi = 3, .deny_tcp = true, .scope_ipc = true},
       false,
       "ok\nok\nerror EACCES\n"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    std::vector<LandlockRule> rules = c.Rules();
    absl::StatusOr<Landlock> sandbox = Landlock::Build(rules, k.options);
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    EXPECT_EQ(sandbox->fully_enforced(), k.fully_enforced)
        << sandbox->Describe();
    SpawnOptions options =
        HelperOptions({"connect", listeners.port(), "abstract",
                       listeners.name(), "read", "/etc/passwd"});
    options.landlock = &*sandbox;
    absl::StatusOr<Outcome> got = Collect(std::move(options));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->out, k.expected);
  }
  // strict refuses what the ABI cannot enforce.
  std::vector<LandlockRule> rules = c.Rules();
  absl::StatusOr<Landlock> strict =
      Landlock::Build(rules, {.strict = true, .max_abi = 3, .deny_tcp = true});
  EXPECT_EQ(strict.status().code(), absl::StatusCode::kFailedPrecondition)
      << strict.status();
}

// An exec the ruleset denies is reported by Spawn, saying Landlock did it.
TEST_P(SandboxTest, DeniedExecNamesLandlock) {
  ASSERT_GE(LandlockAbi(), 1);
  Confinement c;
  std::vector<LandlockRule> rules = c.Rules(/*with_exec=*/false);
  absl::StatusOr<Landlock> sandbox = Landlock::Build(rules);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  SpawnOptions options = HelperOptions({"exit", "0"});
  options.landlock = &*sandbox;
  absl::StatusOr<Outcome> got = Collect(std::move(options));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(ErrnoOf(got.status()), EACCES) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "Landlock"))
      << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "execve"))
      << got.status();
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

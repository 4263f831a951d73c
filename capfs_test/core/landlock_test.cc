// Landlock: what Build makes of rules and options (in this process), and what
// a restricted process can and cannot do (each case in a forked child, since
// a restriction cannot be undone). The children make the raw calls on the
// Dirs' descriptors, so that it is Landlock, not capfs's resolver, that
// refuses an escape.

#include "capfs/landlock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace {

using capfs_test::MakeDir;
using capfs_test::MakeFile;
using capfs_test::MakeSymlink;
using capfs_test::RunInChild;
using capfs_test::TempDir;

// The kernel's answer, asked directly (not through capfs).
int RawAbi() {
  long r = syscall(SYS_landlock_create_ruleset, nullptr, 0, 1u);
  return r > 0 ? static_cast<int>(r) : 0;
}

// "ok" or the errno's name ("EACCES").
std::string Outcome(int err) {
  if (err == 0) return "ok";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : absl::StrCat("errno ", err);
}

// 0, or the errno of a call that returned -1.
int ErrOf(long r) { return r < 0 ? errno : 0; }

// Opens and closes at once: 0 or the errno.
int TryOpen(int dirfd, const std::string& path, int flags, mode_t mode = 0) {
  int fd = openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// One thing a restricted process tries, and what it should get.
struct Try {
  std::string name;
  std::function<int()> call;  // 0 or an errno
  int want;
};

// Runs `tries` in a child restricted by `landlock` and returns, one line
// each, "name: outcome"; the same text as Expected(tries) when every call
// got what it should.
std::string RunRestricted(const Landlock& landlock,
                          const std::vector<Try>& tries) {
  absl::StatusOr<std::string> out = RunInChild({}, [&]() -> std::string {
    if (absl::Status s = landlock.RestrictSelf(); !s.ok()) {
      return absl::StrCat("RestrictSelf: ", s.ToString());
    }
    std::string lines;
    for (const Try& t : tries) {
      absl::StrAppend(&lines, t.name, ": ", Outcome(t.call()), "\n");
    }
    return lines;
  });
  return out.ok() ? *out : out.status().ToString();
}

std::string Expected(const std::vector<Try>& tries) {
  std::string lines;
  for (const Try& t : tries) {
    absl::StrAppend(&lines, t.name, ": ", Outcome(t.want), "\n");
  }
  return lines;
}

Dir OpenDirOrDie(const std::string& path, DirOptions options = {}) {
  absl::StatusOr<Dir> d = Dir::Open(path, options);
  capfs_test::CheckOrDie(d.ok(), absl::StrCat("Dir::Open ", path));
  return *std::move(d);
}

TEST(LandlockAbiTest, IsTheKernelsAnswerAndLandlockIsHere) {
  // FACTS: Landlock is enabled on the machines this runs on; a kernel
  // without it would make every enforcement test below meaningless.
  EXPECT_EQ(LandlockAbi(), RawAbi());
  EXPECT_GE(LandlockAbi(), 1);
  EXPECT_EQ(LandlockAbi(), LandlockAbi());
}

// ---------------------------------------------------------------------------
// Build

class LandlockBuildTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<Dir>(OpenDirOrDie(temp_.path()));
    DirOptions ro;
    ro.read_only = true;
    read_only_ = std::make_unique<Dir>(OpenDirOrDie(temp_.path(), ro));
  }
  TempDir temp_;
  std::unique_ptr<Dir> dir_;
  std::unique_ptr<Dir> read_only_;
};

TEST_F(LandlockBuildTest, RefusesBadRules) {
  Dir moved = OpenDirOrDie(temp_.path());
  Dir taker = std::move(moved);
  struct Case {
    std::string name;
    std::vector<LandlockRule> rules;
    LandlockOptions options;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"null dir",
       {{nullptr, Access::kRead}},
       {},
       absl::StatusCode::kInvalidArgument},
      {"null dir after a good one",
       {{dir_.get(), Access::kRead}, {nullptr, Access::kRead}},
       {},
       absl::StatusCode::kInvalidArgument},
      {"moved-from dir",
       {{&moved, Access::kRead}},
       {},
       absl::StatusCode::kInvalidArgument},
      {"negative max_abi",
       {{dir_.get(), Access::kRead}},
       {.max_abi = -1},
       absl::StatusCode::kInvalidArgument},
      {"read-write on a read-only dir",
       {{read_only_.get(), Access::kReadWrite}},
       {},
       absl::StatusCode::kPermissionDenied},
      {"read-write-exec on a read-only dir",
       {{read_only_.get(), Access::kReadWriteExec}},
       {},
       absl::StatusCode::kPermissionDenied},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Landlock> l = Landlock::Build(c.rules, c.options);
    EXPECT_EQ(l.status().code(), c.code) << c.name << ": " << l.status();
  }
  absl::StatusOr<Landlock> l =
      Landlock::Build({{read_only_.get(), Access::kReadWrite}});
  EXPECT_EQ(ViolationOf(l.status()), Violation::kReadOnly);
}

TEST_F(LandlockBuildTest, EveryAccessOnEveryKindOfDir) {
  Dir cwd = Dir::Cwd();
  Dir unconfined = Dir::Unconfined();
  const std::pair<const char*, const Dir*> dirs[] = {
      {"opened", dir_.get()}, {"cwd", &cwd}, {"unconfined", &unconfined}};
  const Access accesses[] = {Access::kRead, Access::kReadExec,
                             Access::kReadWrite, Access::kReadWriteExec};
  for (const auto& [name, dir] : dirs) {
    for (Access a : accesses) {
      absl::StatusOr<Landlock> l = Landlock::Build({{dir, a}});
      ASSERT_TRUE(l.ok()) << name << ": " << l.status();
      EXPECT_EQ(l->abi(), std::min(LandlockAbi(), 9));
      EXPECT_TRUE(l->fully_enforced());
      ASSERT_GE(l->ruleset_fd(), 0);
      EXPECT_EQ(fcntl(l->ruleset_fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
      EXPECT_EQ(l->child_restrict_flags(), 0u);
    }
  }
  // A read-only Dir may still be granted what it holds.
  EXPECT_TRUE(Landlock::Build({{read_only_.get(), Access::kReadExec}}).ok());
  // No rule at all: everything the ABI knows is denied.
  EXPECT_TRUE(Landlock::Build({}).ok());
  // Several rules on one directory add up.
  EXPECT_TRUE(Landlock::Build({{dir_.get(), Access::kRead},
                               {dir_.get(), Access::kReadWrite}})
                  .ok());
}

TEST_F(LandlockBuildTest, MaxAbiLowersTheAbiAndWhatIsEnforced) {
  const int kernel = LandlockAbi();
  for (int max_abi = 0; max_abi <= 11; ++max_abi) {
    for (bool deny_tcp : {false, true}) {
      for (bool scope_ipc : {false, true}) {
        LandlockOptions o{
            .max_abi = max_abi, .deny_tcp = deny_tcp, .scope_ipc = scope_ipc};
        std::string name = absl::StrCat("max_abi ", max_abi, " deny_tcp ",
                                        deny_tcp, " scope_ipc ", scope_ipc);
        absl::StatusOr<Landlock> l =
            Landlock::Build({{dir_.get(), Access::kReadWrite}}, o);
        ASSERT_TRUE(l.ok()) << name << ": " << l.status();
        int want_abi = std::min(kernel, 9);
        if (max_abi > 0) want_abi = std::min(want_abi, max_abi);
        EXPECT_EQ(l->abi(), want_abi) << name;
        bool want_full = want_abi >= 3 && (!deny_tcp || want_abi >= 4) &&
                         (!scope_ipc || want_abi >= 6);
        EXPECT_EQ(l->fully_enforced(), want_full) << name;

        o.strict = true;
        absl::StatusOr<Landlock> strict =
            Landlock::Build({{dir_.get(), Access::kReadWrite}}, o);
        if (want_full) {
          EXPECT_TRUE(strict.ok()) << name << ": " << strict.status();
        } else {
          EXPECT_EQ(strict.status().code(),
                    absl::StatusCode::kFailedPrecondition)
              << name << ": " << strict.status();
        }
      }
    }
  }
}

TEST_F(LandlockBuildTest, StrictSaysWhatIsMissing) {
  ASSERT_GE(LandlockAbi(), 6) << "the cases below lower a kernel of ABI 6+";
  const std::string kernel = absl::StrCat(LandlockAbi());
  struct Case {
    LandlockOptions options;
    std::string message;
  };
  const Case cases[] = {
      {{.strict = true, .max_abi = 2},
       "Landlock::Build (strict): Landlock ABI 2 (lowered by max_abi; the "
       "kernel has " +
           kernel + ") cannot enforce truncation (needs ABI 3)"},
      {{.strict = true, .max_abi = 1, .deny_tcp = true, .scope_ipc = true},
       "Landlock::Build (strict): Landlock ABI 1 (lowered by max_abi; the "
       "kernel has " +
           kernel +
           ") cannot enforce truncation (needs ABI 3), TCP (needs ABI 4), "
           "abstract Unix sockets and signals (needs ABI 6)"},
      {{.strict = true, .max_abi = 3, .deny_tcp = true},
       "Landlock::Build (strict): Landlock ABI 3 (lowered by max_abi; the "
       "kernel has " +
           kernel + ") cannot enforce TCP (needs ABI 4)"},
      {{.strict = true, .max_abi = 5, .scope_ipc = true},
       "Landlock::Build (strict): Landlock ABI 5 (lowered by max_abi; the "
       "kernel has " +
           kernel +
           ") cannot enforce abstract Unix sockets and signals (needs ABI 6)"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Landlock> l =
        Landlock::Build({{dir_.get(), Access::kRead}}, c.options);
    EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(l.status().message(), c.message);
  }
}

TEST_F(LandlockBuildTest, DescribeSaysWhatIsAndIsNotEnforced) {
  ASSERT_GE(LandlockAbi(), 7) << "the cases below lower a kernel of ABI 7+";
  const std::string lowered =
      absl::StrCat(" (lowered by max_abi; the kernel has ", LandlockAbi(), ")");
  const std::string thread_only =
      "; RestrictSelf confines the calling thread only (all threads need ABI "
      "8)";
  struct Case {
    LandlockOptions options;
    std::string text;
  };
  const Case cases[] = {
      {{.max_abi = 1},
       "Landlock ABI 1" + lowered +
           ": filesystem rules enforced; renames and links between "
           "directories always refused (needs ABI 2); truncation not "
           "restricted (needs ABI 3); device ioctls not restricted (needs ABI "
           "5); pathname Unix sockets not restricted (needs ABI 9); TCP not "
           "restricted (not asked); abstract sockets and signals not scoped "
           "(not asked)" +
           thread_only},
      {{.max_abi = 2, .deny_tcp = true},
       "Landlock ABI 2" + lowered +
           ": filesystem rules enforced; truncation not restricted (needs ABI "
           "3); device ioctls not restricted (needs ABI 5); pathname Unix "
           "sockets not restricted (needs ABI 9); TCP not restricted (needs "
           "ABI 4); abstract sockets and signals not scoped (not asked)" +
           thread_only},
      {{.max_abi = 5, .deny_tcp = true, .scope_ipc = true},
       "Landlock ABI 5" + lowered +
           ": filesystem rules enforced; pathname Unix sockets not restricted "
           "(needs ABI 9); TCP bind and connect denied; abstract sockets and "
           "signals not scoped (needs ABI 6)" +
           thread_only},
      {{.max_abi = 7, .scope_ipc = true},
       "Landlock ABI 7" + std::string(LandlockAbi() > 7 ? lowered : "") +
           ": filesystem rules enforced; pathname Unix sockets not restricted "
           "(needs ABI 9); TCP not restricted (not asked); abstract sockets "
           "and signals scoped" +
           thread_only},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Landlock> l =
        Landlock::Build({{dir_.get(), Access::kRead}}, c.options);
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(l->Describe(), c.text);
  }
}

// ---------------------------------------------------------------------------
// Enforcement, each in a child

class LandlockEnforceTest : public testing::Test {
 protected:
  // temp/
  //   outside          a file beside the Dirs
  //   ro/              granted kRead
  //     file, trunc, sub/inner
  //     abs_link -> /etc/passwd, up_link -> ../outside
  //   rw/              granted kReadWrite
  //     file, sub/
  //   rw2/             granted kReadWrite
  void SetUp() override {
    int fd = open(temp_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    MakeFile(fd, "outside", "outside");
    MakeDir(fd, "ro");
    MakeFile(fd, "ro/file", "ro");
    MakeFile(fd, "ro/trunc", "to be truncated");
    MakeDir(fd, "ro/sub");
    MakeFile(fd, "ro/sub/inner", "inner");
    MakeSymlink(fd, "/etc/passwd", "ro/abs_link");
    MakeSymlink(fd, "../outside", "ro/up_link");
    MakeDir(fd, "rw");
    MakeFile(fd, "rw/file", "rw");
    MakeDir(fd, "rw/sub");
    MakeDir(fd, "rw2");
    close(fd);
    ro_ = std::make_unique<Dir>(OpenDirOrDie(temp_.Join("ro")));
    rw_ = std::make_unique<Dir>(OpenDirOrDie(temp_.Join("rw")));
    rw2_ = std::make_unique<Dir>(OpenDirOrDie(temp_.Join("rw2")));
  }

  Landlock BuildOrDie(LandlockOptions options = {}) {
    absl::StatusOr<Landlock> l =
        Landlock::Build({{ro_.get(), Access::kRead},
                         {rw_.get(), Access::kReadWrite},
                         {rw2_.get(), Access::kReadWrite}},
                        options);
    capfs_test::CheckOrDie(l.ok(), l.status().ToString());
    return *std::move(l);
  }

  TempDir temp_;
  std::unique_ptr<Dir> ro_;
  std::unique_ptr<Dir> rw_;
  std::unique_ptr<Dir> rw2_;
};

TEST_F(LandlockEnforceTest, ReadDirReadableNotWritable) {
  Landlock l = BuildOrDie();
  int ro = ro_->fd();
  const std::vector<Try> tries = {
      {"read file", [=] { return TryOpen(ro, "file", O_RDONLY); }, 0},
      {"read beneath", [=] { return TryOpen(ro, "sub/inner", O_RDONLY); }, 0},
      {"list", [=] { return TryOpen(ro, ".", O_RDONLY | O_DIRECTORY); }, 0},
      {"list beneath",
       [=] { return TryOpen(ro, "sub", O_RDONLY | O_DIRECTORY); }, 0},
      {"open for writing", [=] { return TryOpen(ro, "file", O_WRONLY); },
       EACCES},
      {"create", [=] { return TryOpen(ro, "new", O_WRONLY | O_CREAT, 0644); },
       EACCES},
      {"mkdir", [=] { return ErrOf(mkdirat(ro, "d", 0755)); }, EACCES},
      {"unlink", [=] { return ErrOf(unlinkat(ro, "file", 0)); }, EACCES},
      {"rmdir", [=] { return ErrOf(unlinkat(ro, "sub", AT_REMOVEDIR)); },
       EACCES},
      {"rename", [=] { return ErrOf(renameat(ro, "file", ro, "sub/f")); },
       EACCES},
      {"symlink", [=] { return ErrOf(symlinkat("file", ro, "l")); }, EACCES},
      {"mkfifo", [=] { return ErrOf(mkfifoat(ro, "fifo", 0644)); }, EACCES},
  };
  EXPECT_EQ(RunRestricted(l, tries), Expected(tries));
}

TEST_F(LandlockEnforceTest, ReadWriteDirWritable) {
  Landlock l = BuildOrDie();
  int rw = rw_->fd();
  int rw2 = rw2_->fd();
  const std::vector<Try> tries = {
      {"read", [=] { return TryOpen(rw, "file", O_RDONLY); }, 0},
      {"write", [=] { return TryOpen(rw, "file", O_WRONLY | O_APPEND); }, 0},
      {"truncate on open",
       [=] { return TryOpen(rw, "file", O_WRONLY | O_TRUNC); }, 0},
      {"create", [=] { return TryOpen(rw, "new", O_WRONLY | O_CREAT, 0644); },
       0},
      {"mkdir", [=] { return ErrOf(mkdirat(rw, "d", 0755)); }, 0},
      // Between two directories: needs REFER, which kReadWrite grants.
      {"rename into a subdirectory",
       [=] { return ErrOf(renameat(rw, "new", rw, "sub/moved")); }, 0},
      {"link into a subdirectory",
       [=] { return ErrOf(linkat(rw, "file", rw, "d/hard", 0)); }, 0},
      // Between two read-write Dirs: the same rights on both sides.
      {"rename into another read-write Dir",
       [=] { return ErrOf(renameat(rw, "d/hard", rw2, "moved")); }, 0},
      {"symlink", [=] { return ErrOf(symlinkat("file", rw, "l")); }, 0},
      {"mkfifo", [=] { return ErrOf(mkfifoat(rw, "fifo", 0644)); }, 0},
      {"unlink", [=] { return ErrOf(unlinkat(rw, "sub/moved", 0)); }, 0},
      {"rmdir", [=] { return ErrOf(unlinkat(rw, "sub", AT_REMOVEDIR)); }, 0},
      // Never granted: making devices (root could, were it not for Landlock).
      {"mknod char device",
       [=] {
         return ErrOf(mknodat(rw, "null", S_IFCHR | 0600, makedev(1, 3)));
       },
       EACCES},
  };
  EXPECT_EQ(RunRestricted(l, tries), Expected(tries));
}

TEST_F(LandlockEnforceTest, EverythingElseIsRefused) {
  Landlock l = BuildOrDie();
  int ro = ro_->fd();
  int rw = rw_->fd();
  const std::string outside = temp_.Join("outside");
  const std::string parent = temp_.path();
  const std::vector<Try> tries = {
      {"/etc/passwd", [] { return TryOpen(AT_FDCWD, "/etc/passwd", O_RDONLY); },
       EACCES},
      {"a file beside the Dirs",
       [=] { return TryOpen(AT_FDCWD, outside, O_RDONLY); }, EACCES},
      {"the parent of the Dirs",
       [=] { return TryOpen(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY); },
       EACCES},
      {"/proc/self/status",
       [] { return TryOpen(AT_FDCWD, "/proc/self/status", O_RDONLY); }, EACCES},
      {"absolute symlink out",
       [=] { return TryOpen(ro, "abs_link", O_RDONLY); }, EACCES},
      {"relative symlink out", [=] { return TryOpen(ro, "up_link", O_RDONLY); },
       EACCES},
      {"dot-dot out", [=] { return TryOpen(ro, "../outside", O_RDONLY); },
       EACCES},
      {"dot-dot out and back",
       [=] { return TryOpen(ro, "../ro/../outside", O_RDONLY); }, EACCES},
      {"dot-dot from the read-write Dir",
       [=] { return TryOpen(rw, "../outside", O_RDONLY); }, EACCES},
      {"create beside the Dirs",
       [=] { return TryOpen(rw, "../created", O_WRONLY | O_CREAT, 0644); },
       EACCES},
      // Reparenting out of the read-write Dir into one with fewer rights.
      {"rename out of the read-write Dir",
       [=] { return ErrOf(renameat(rw, "file", ro, "stolen")); }, EACCES},
  };
  EXPECT_EQ(RunRestricted(l, tries), Expected(tries));
}

TEST_F(LandlockEnforceTest, TruncateNeedsAbi3) {
  ASSERT_GE(LandlockAbi(), 3);
  const std::string trunc = temp_.Join("ro/trunc");
  for (int max_abi : {2, 3, 0}) {
    Landlock l = BuildOrDie({.max_abi = max_abi});
    const std::vector<Try> tries = {
        {"truncate(2) in the read-only Dir",
         [&] { return ErrOf(truncate(trunc.c_str(), 1)); },
         max_abi == 2 ? 0 : EACCES},
    };
    EXPECT_EQ(RunRestricted(l, tries), Expected(tries))
        << "max_abi " << max_abi;
  }
  struct stat st;
  ASSERT_EQ(stat(trunc.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1) << "only the ABI 2 child could truncate";
}

TEST_F(LandlockEnforceTest, ExecNeedsAnExecRight) {
  Dir unconfined = Dir::Unconfined();
  // Runs /bin/true in a grandchild: 0 when it ran and exited 0, else the
  // errno execve gave.
  auto run_true = [] {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return errno;
    pid_t pid = fork();
    if (pid == 0) {
      char* const argv[] = {const_cast<char*>("true"), nullptr};
      execve("/bin/true", argv, environ);
      int err = errno;
      (void)!write(pipefd[1], &err, sizeof(err));
      _exit(127);
    }
    close(pipefd[1]);
    int err = 0;
    if (read(pipefd[0], &err, sizeof(err)) != sizeof(err)) err = 0;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (err == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      err = ECHILD;
    }
    return err;
  };
  struct Case {
    Access access;
    int want;
  };
  for (const Case& c :
       {Case{Access::kRead, EACCES}, Case{Access::kReadWrite, EACCES},
        Case{Access::kReadExec, 0}, Case{Access::kReadWriteExec, 0}}) {
    absl::StatusOr<Landlock> l = Landlock::Build({{&unconfined, c.access}});
    ASSERT_TRUE(l.ok()) << l.status();
    const std::vector<Try> tries = {{"execve /bin/true", run_true, c.want}};
    EXPECT_EQ(RunRestricted(*l, tries), Expected(tries))
        << "access " << static_cast<int>(c.access);
  }
}

// What Landlock does not cover, shown rather than hidden: metadata calls
// on paths outside every rule, and descriptors opened before restricting.
TEST_F(LandlockEnforceTest, WhatLandlockLeavesOpen) {
  Landlock l = BuildOrDie();
  const std::string outside = temp_.Join("outside");
  int before = open(outside.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(before, 0);
  const std::vector<Try> tries = {
      {"stat /etc/passwd",
       [] {
         struct stat st;
         return ErrOf(stat("/etc/passwd", &st));
       },
       0},
      {"access() of a file outside",
       [=] { return ErrOf(access(outside.c_str(), R_OK | W_OK)); }, 0},
      {"chmod of a file outside",
       [=] { return ErrOf(chmod(outside.c_str(), 0600)); }, 0},
      {"chown of a file outside (to its owner)",
       [=] { return ErrOf(chown(outside.c_str(), getuid(), getgid())); }, 0},
      {"utimes of a file outside",
       [=] { return ErrOf(utimensat(AT_FDCWD, outside.c_str(), nullptr, 0)); },
       0},
      {"chdir outside",
       [parent = temp_.path()] { return ErrOf(chdir(parent.c_str())); }, 0},
      {"write through a descriptor opened before",
       [=] { return ErrOf(pwrite(before, "X", 1, 0)); }, 0},
      {"read through a descriptor opened before",
       [=] {
         char c;
         return ErrOf(pread(before, &c, 1, 0));
       },
       0},
      {"but not reopening it",
       [=] { return TryOpen(AT_FDCWD, outside, O_RDONLY); }, EACCES},
  };
  EXPECT_EQ(RunRestricted(l, tries), Expected(tries));
  close(before);
  struct stat st;
  ASSERT_EQ(stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "the child's chmod took effect";
}

// A listener on 127.0.0.1, port chosen by the kernel.
struct Listener {
  int fd = -1;
  sockaddr_in addr = {};
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    capfs_test::CheckOrDie(
        fd >= 0 &&
            bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            listen(fd, 8) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
        "loopback listener");
  }
  ~Listener() { close(fd); }
};

int TryConnect(int domain, int type, const sockaddr* addr, socklen_t len) {
  int s = socket(domain, type | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  int err = ErrOf(connect(s, addr, len));
  close(s);
  return err;
}

int TryBindLoopback(int type) {
  int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int err = ErrOf(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)));
  close(s);
  return err;
}

TEST_F(LandlockEnforceTest, DenyTcp) {
  ASSERT_GE(LandlockAbi(), 4);
  Listener listener;
  const sockaddr_in addr = listener.addr;
  for (bool deny : {false, true}) {
    Landlock l = BuildOrDie({.deny_tcp = deny});
    const std::vector<Try> tries = {
        {"TCP connect to a loopback listener",
         [&] {
           return TryConnect(AF_INET, SOCK_STREAM,
                             reinterpret_cast<const sockaddr*>(&addr),
                             sizeof(addr));
         },
         deny ? EACCES : 0},
        {"TCP bind", [] { return TryBindLoopback(SOCK_STREAM); },
         deny ? EACCES : 0},
        // Landlock never covers UDP.
        {"UDP bind", [] { return TryBindLoopback(SOCK_DGRAM); }, 0},
        {"UDP connect",
         [&] {
           return TryConnect(AF_INET, SOCK_DGRAM,
                             reinterpret_cast<const sockaddr*>(&addr),
                             sizeof(addr));
         },
         0},
    };
    EXPECT_EQ(RunRestricted(l, tries), Expected(tries)) << "deny_tcp " << deny;
  }
}

TEST_F(LandlockEnforceTest, ScopeIpc) {
  ASSERT_GE(LandlockAbi(), 6);
  // An abstract socket made outside the sandbox.
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string name = absl::StrCat("capfs-landlock-test-", getpid());
  memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(server, 8), 0);
  const pid_t parent = getpid();
  for (bool scope : {false, true}) {
    Landlock l = BuildOrDie({.scope_ipc = scope});
    const std::vector<Try> tries = {
        {"connect to an abstract socket made outside",
         [&] {
           return TryConnect(AF_UNIX, SOCK_STREAM,
                             reinterpret_cast<const sockaddr*>(&addr), len);
         },
         scope ? EPERM : 0},
        {"signal a process outside", [&] { return ErrOf(kill(parent, 0)); },
         scope ? EPERM : 0},
        {"signal itself", [] { return ErrOf(kill(getpid(), 0)); }, 0},
    };
    EXPECT_EQ(RunRestricted(l, tries), Expected(tries))
        << "scope_ipc " << scope;
  }
  close(server);
}

TEST_F(LandlockEnforceTest, RulesetIsReusableForManyChildren) {
  Landlock l = BuildOrDie();
  int ro = ro_->fd();
  const std::vector<Try> tries = {
      {"read", [=] { return TryOpen(ro, "file", O_RDONLY); }, 0},
      {"/etc/passwd", [] { return TryOpen(AT_FDCWD, "/etc/passwd", O_RDONLY); },
       EACCES},
  };
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(RunRestricted(l, tries), Expected(tries)) << "child " << i;
  }
}

TEST_F(LandlockEnforceTest, CwdRuleIsTheDirectoryAtBuildTime) {
  // The child moves into ro/, builds a rule on Dir::Cwd(), then moves away:
  // the rule stays on ro/.
  const std::string ro = temp_.Join("ro");
  const std::string rw = temp_.Join("rw");
  absl::StatusOr<std::string> out = RunInChild({}, [&]() -> std::string {
    if (chdir(ro.c_str()) != 0) return "chdir";
    Dir cwd = Dir::Cwd();
    absl::StatusOr<Landlock> l = Landlock::Build({{&cwd, Access::kRead}});
    if (!l.ok()) return l.status().ToString();
    if (chdir(rw.c_str()) != 0) return "chdir";
    if (absl::Status s = l->RestrictSelf(); !s.ok()) return s.ToString();
    return absl::StrCat(
        "ro/file: ", Outcome(TryOpen(AT_FDCWD, ro + "/file", O_RDONLY)),
        "; ./file: ", Outcome(TryOpen(AT_FDCWD, "file", O_RDONLY)));
  });
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "ro/file: ok; ./file: EACCES");
}

// The README's example, with the two directories as parameters.
absl::Status ReadmeExample(const std::string& data_path,
                           const std::string& out_path) {
  absl::StatusOr<capfs::Dir> data = capfs::Dir::Open(data_path);
  absl::StatusOr<capfs::Dir> out = capfs::Dir::Open(out_path);
  if (!data.ok()) return data.status();
  if (!out.ok()) return out.status();
  absl::StatusOr<capfs::Landlock> sandbox = capfs::Landlock::Build(
      {{&*data, capfs::Access::kRead}, {&*out, capfs::Access::kReadWrite}},
      {.strict = true, .deny_tcp = true});
  if (!sandbox.ok()) return sandbox.status();  // says what this kernel lacks
  std::cerr << sandbox->Describe() << "\n";
  if (absl::Status s = sandbox->RestrictSelf(); !s.ok()) return s;
  // This thread, and whatever it starts, now opens files only beneath
  // /srv/data (read) and /srv/out (read-write), and makes no TCP connection.
  return absl::OkStatus();
}

TEST_F(LandlockEnforceTest, ReadmeExample) {
  ASSERT_GE(LandlockAbi(), 4);
  const std::string ro = temp_.Join("ro");
  const std::string rw = temp_.Join("rw");
  absl::StatusOr<std::string> out = RunInChild({}, [&]() -> std::string {
    if (absl::Status s = ReadmeExample(ro, rw); !s.ok()) return s.ToString();
    return absl::StrCat(
        "read data: ", Outcome(TryOpen(AT_FDCWD, ro + "/file", O_RDONLY)),
        "; write data: ", Outcome(TryOpen(AT_FDCWD, ro + "/file", O_WRONLY)),
        "; write out: ", Outcome(TryOpen(AT_FDCWD, rw + "/file", O_WRONLY)),
        "; /etc/passwd: ", Outcome(TryOpen(AT_FDCWD, "/etc/passwd", O_RDONLY)),
        "; TCP bind: ", Outcome(TryBindLoopback(SOCK_STREAM)));
  });
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "read data: ok; write data: EACCES; write out: ok; /etc/passwd: "
            "EACCES; TCP bind: EACCES");
}

}  // namespace
}  // namespace capfs

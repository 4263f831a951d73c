// Every descriptor capfs creates is close-on-exec: after a burst of
// operations (every resolver and scope, every kind of open, Dirs opened by
// path, by OpenDir and from a descriptor without the flag), every new
// descriptor has FD_CLOEXEC, and a spawned child inherits exactly what it
// would have inherited before the burst. The same holds for the descriptors
// a walk holds for a moment: children spawned while another thread walks
// deep paths inherit none of them.

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "capfs/capfs.h"
#include "capfs_test/conformance/operations.h"
#include "capfs_test/conformance/standard_tree.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "capfs_test/testing/runfiles.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

extern char** environ;

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;
using capfs::Scope;

bool CloseOnExec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// The descriptors open here without FD_CLOEXEC: what a child inherits.
std::set<int> Inheritable() {
  std::set<int> out;
  for (int fd : OpenFdNumbers()) {
    if (!CloseOnExec(fd)) out.insert(fd);
  }
  return out;
}

// Spawns the lister (posix_spawn, as a runtime would) and returns the
// descriptors it started with, or {-1} if it could not be run.
std::set<int> ChildInherits() {
  int pipefd[2];
  CheckOrDie(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
  const std::string lister = RunfilePath("capfs_test/fd_lister");
  char* argv[] = {const_cast<char*>(lister.c_str()), nullptr};
  pid_t pid;
  int r = posix_spawn(&pid, lister.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  close(pipefd[0]);
  if (r != 0) return {-1};
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {-1};
  std::set<int> fds;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    int fd;
    if (absl::SimpleAtoi(line, &fd)) fds.insert(fd);
  }
  return fds;
}

std::string Show(const std::set<int>& fds) { return absl::StrJoin(fds, ","); }

class CloexecTest : public testing::Test {
 protected:
  void SetUp() override {
    case_dir_ = temp_.Join("case");
    CheckOrDie(mkdir(case_dir_.c_str(), 0755) == 0, "mkdir case");
    BuildStandardTree(case_dir_);
    MakeDeep();
    deep_path_ =
        "deep/" + absl::StrJoin(std::vector<std::string>(63, "d"), "/");
  }

  // A chain 64 levels deep for the userspace walks.
  void MakeDeep() {
    std::string deep = case_dir_ + "/root/deep";
    for (int i = 0; i < 64; ++i) {
      CheckOrDie(mkdir(deep.c_str(), 0755) == 0, "mkdir deep");
      deep += "/d";
    }
  }
  std::string root_path() const { return case_dir_ + "/root"; }

  TempDir temp_;
  std::string case_dir_;
  std::string deep_path_;
};

TEST_F(CloexecTest, EveryDescriptorCapfsCreatesIsCloseOnExec) {
  const std::set<int> before = OpenFdNumbers();
  const std::set<int> inheritable = Inheritable();
  ASSERT_EQ(ChildInherits(), inheritable) << "the lister does not run";
  {
    std::vector<Dir> dirs;
    std::vector<capfs::Fd> fds;
    for (Resolver r :
         {Resolver::kKernel, Resolver::kUserspace, Resolver::kAuto}) {
      for (Scope s : {Scope::kBeneath, Scope::kInRoot}) {
        DirOptions options;
        options.resolver = r;
        options.scope = s;
        absl::StatusOr<Dir> root = Dir::Open(root_path(), options);
        ASSERT_TRUE(root.ok()) << root.status();
        // A descriptor given without the flag gets it.
        int raw = open(root_path().c_str(), O_PATH | O_DIRECTORY);
        ASSERT_FALSE(CloseOnExec(raw));
        absl::StatusOr<Dir> from_fd = Dir::FromFd(capfs::Fd(raw), options);
        ASSERT_TRUE(from_fd.ok()) << from_fd.status();
        for (const char* p : {"dir", "link_dir", "dir/sub/..", "."}) {
          absl::StatusOr<Dir> d = root->OpenDir(p);
          ASSERT_TRUE(d.ok()) << p << ": " << d.status();
          dirs.push_back(*std::move(d));
        }
        // Every kind of open, none asking for O_CLOEXEC.
        struct Open {
          const char* path;
          int flags;
        };
        for (const Open& o :
             std::vector<Open>{{"file", O_RDONLY},
                               {"dir/inner", O_RDWR},
                               {"link_file", O_PATH},
                               {"link_file", O_PATH | O_NOFOLLOW},
                               {"dir/sub/../inner", O_WRONLY | O_APPEND},
                               {"dir", O_RDONLY | O_DIRECTORY},
                               {"dir/new_file", O_WRONLY | O_CREAT},
                               {"dir", O_TMPFILE | O_RDWR},
                               {deep_path_.c_str(), O_RDONLY | O_DIRECTORY}}) {
          absl::StatusOr<capfs::Fd> fd = root->OpenAt(o.path, o.flags, 0600);
          ASSERT_TRUE(fd.ok()) << o.path << ": " << fd.status();
          fds.push_back(*std::move(fd));
        }
        // Every operation on a path that needs a resolution, for the
        // descriptors they hold for a moment.
        absl::StatusOr<Dir> sub = root->OpenDir("dir/sub");
        ASSERT_TRUE(sub.ok());
        for (const Op& op : AllOps()) {
          RunCapfs(op, *root, *sub, "link_dir/sub/../inner");
          RebuildStandardTree(case_dir_);
          MakeDeep();
        }
        dirs.push_back(*std::move(root));
        dirs.push_back(*std::move(from_fd));
      }
    }
    std::set<int> created;
    for (int fd : OpenFdNumbers()) {
      if (before.count(fd) == 0) created.insert(fd);
    }
    EXPECT_EQ(created.size(), dirs.size() + fds.size());
    for (int fd : created) EXPECT_TRUE(CloseOnExec(fd)) << "fd " << fd;
    EXPECT_EQ(ChildInherits(), inheritable)
        << "while " << created.size() << " capfs descriptors are open ("
        << Show(created) << ")";
  }
}

// Descriptors a walk holds for a moment (the userspace resolver's stack,
// the kernel resolver's parent) are close-on-exec from their first
// instant: children spawned while another thread walks inherit none.
TEST_F(CloexecTest, ChildrenSpawnedMidWalkInheritNothing) {
  const std::set<int> inheritable = Inheritable();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> walks{0};
  std::thread walker([&] {
    DirOptions user;
    user.resolver = Resolver::kUserspace;
    absl::StatusOr<Dir> u = Dir::Open(root_path(), user);
    absl::StatusOr<Dir> k = Dir::Open(root_path(), DirOptions());
    if (!u.ok() || !k.ok()) return;
    const std::string leaf = deep_path_ + "/new";
    while (!stop.load()) {
      for (const Dir* d : {&*u, &*k}) {
        (void)d->Stat(deep_path_ + "/../d");
        (void)d->Mkdir(leaf);
        (void)d->Rmdir(leaf);
      }
      walks.fetch_add(1);
    }
  });
  std::string failures;
  int spawned = 0;
  for (; spawned < 200; ++spawned) {
    std::set<int> got = ChildInherits();
    if (got != inheritable) {
      absl::StrAppend(&failures, "child inherited ", Show(got), "\n");
    }
  }
  stop.store(true);
  walker.join();
  EXPECT_EQ(failures, "") << "inheritable: " << Show(inheritable);
  EXPECT_GT(walks.load(), 0u);
  std::cout << "[cloexec] " << spawned << " children spawned during "
            << walks.load() << " rounds of 64-level walks" << std::endl;
}

}  // namespace
}  // namespace capfs_test

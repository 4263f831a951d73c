// The Dir API around the resolvers: construction, Cwd and Unconfined,
// read-only refusals, bad input, messages, close-on-exec, magic links.
// The resolution semantics themselves are the conformance table's job.

#include "capfs/dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace {

using capfs_test::MakeDir;
using capfs_test::MakeFile;
using capfs_test::MakeSymlink;
using capfs_test::SnapshotTree;
using capfs_test::TempDir;

class DirTest : public testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    int fd = ::open(temp_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    MakeFile(fd, "file", "content");
    MakeDir(fd, "dir");
    MakeFile(fd, "dir/inner", "inner");
    MakeSymlink(fd, "file", "link");
    ::close(fd);
  }

  DirOptions Options(Scope scope = Scope::kBeneath, bool read_only = false) {
    DirOptions o;
    o.resolver = GetParam();
    o.scope = scope;
    o.read_only = read_only;
    return o;
  }

  Dir OpenRoot(DirOptions options) {
    absl::StatusOr<Dir> d = Dir::Open(temp_.path(), options);
    EXPECT_TRUE(d.ok()) << d.status();
    return *std::move(d);
  }

  TempDir temp_;
};

TEST_P(DirTest, OpenRejectsWhatIsNotADirectory) {
  EXPECT_EQ(ErrnoOf(Dir::Open(temp_.Join("missing"), Options()).status()),
            ENOENT);
  EXPECT_EQ(ErrnoOf(Dir::Open(temp_.Join("file"), Options()).status()),
            ENOTDIR);
  EXPECT_EQ(ErrnoOf(Dir::Open("", Options()).status()), ENOENT);
  EXPECT_EQ(Dir::Open(std::string("a\0b", 3), Options()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(DirTest, FromFdTakesADirectoryAndSetsCloseOnExec) {
  Fd file(::open(temp_.Join("file").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(ErrnoOf(Dir::FromFd(std::move(file), Options()).status()), ENOTDIR);
  Fd dir(::open(temp_.path().c_str(), O_RDONLY | O_DIRECTORY));  // no CLOEXEC
  ASSERT_TRUE(dir.valid());
  int raw = dir.get();
  absl::StatusOr<Dir> d = Dir::FromFd(std::move(dir), Options());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->fd(), raw);
  EXPECT_TRUE(::fcntl(raw, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(d->Stat("dir/inner").ok());
  EXPECT_EQ(ViolationOf(d->Stat("../x").status()), Violation::kEscape);
}

// fd() is what dir.h says: O_PATH from Open and OpenDir, the descriptor as
// given (here O_RDONLY, which can list) from FromFd.
TEST_P(DirTest, FdIsOpathOrWhatFromFdWasGiven) {
  Dir opened = OpenRoot(Options());
  EXPECT_EQ(::fcntl(opened.fd(), F_GETFL) & O_PATH, O_PATH);
  absl::StatusOr<Dir> sub = opened.OpenDir("dir");
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(::fcntl(sub->fd(), F_GETFL) & O_PATH, O_PATH);
  Fd rdonly(::open(temp_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(rdonly.valid());
  absl::StatusOr<Dir> given = Dir::FromFd(std::move(rdonly), Options());
  ASSERT_TRUE(given.ok()) << given.status();
  const int flags = ::fcntl(given->fd(), F_GETFL);
  EXPECT_EQ(flags & O_PATH, 0);
  EXPECT_EQ(flags & O_ACCMODE, O_RDONLY);
}

// read_only guards against untrusted paths, not against code holding the
// Dir (dir.h): its descriptor carries no such flag, and a Dir made from it
// writes.
TEST_P(DirTest, ReadOnlyDoesNotTravelWithTheDescriptor) {
  Dir ro = OpenRoot(Options(Scope::kBeneath, /*read_only=*/true));
  EXPECT_EQ(ViolationOf(ro.Mkdir("made")), Violation::kReadOnly);
  Fd copy(::fcntl(ro.fd(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(copy.valid());
  absl::StatusOr<Dir> rw = Dir::FromFd(std::move(copy), Options());
  ASSERT_TRUE(rw.ok()) << rw.status();
  EXPECT_TRUE(rw->Mkdir("made").ok());
  struct stat st;
  EXPECT_EQ(::stat(temp_.Join("made").c_str(), &st), 0);
}

TEST_P(DirTest, CwdIsConfinedBeneathTheCurrentDirectory) {
  int saved = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(::chdir(temp_.Join("dir").c_str()), 0);
  Dir cwd = Dir::Cwd(Options());
  EXPECT_EQ(cwd.fd(), AT_FDCWD);
  EXPECT_TRUE(cwd.confined());
  absl::StatusOr<FileStat> inner = cwd.Stat("inner");
  absl::Status up = cwd.Stat("../file").status();
  absl::Status abs = cwd.Stat("/").status();
  absl::StatusOr<Fd> opened = cwd.OpenAt("./inner", O_RDONLY);
  ASSERT_EQ(::fchdir(saved), 0);
  ::close(saved);
  EXPECT_TRUE(inner.ok()) << inner.status();
  EXPECT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(ViolationOf(up), Violation::kEscape);
  EXPECT_EQ(ViolationOf(abs), Violation::kAbsolutePath);
}

TEST_P(DirTest, UnconfinedIsThePlainCall) {
  Dir host = Dir::Unconfined();
  EXPECT_FALSE(host.confined());
  EXPECT_EQ(host.fd(), AT_FDCWD);
  EXPECT_TRUE(host.Stat(temp_.Join("dir/../file")).ok());
  EXPECT_TRUE(host.OpenAt(temp_.Join("link"), O_RDONLY).ok());
  absl::StatusOr<Dir> child = host.OpenDir(temp_.Join("dir"));
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(child->confined());
  EXPECT_EQ(child->options().scope, Scope::kBeneath);
  EXPECT_EQ(ViolationOf(child->Stat("../file").status()), Violation::kEscape);
}

TEST_P(DirTest, MovedFromDirFailsCleanly) {
  Dir a = OpenRoot(Options());
  Dir b(std::move(a));
  EXPECT_EQ(a.fd(), -1);      // NOLINT(bugprone-use-after-move): the contract
  EXPECT_TRUE(a.confined());  // never falls back to the host filesystem
  EXPECT_EQ(ErrnoOf(a.Stat("file").status()), EBADF);
  EXPECT_EQ(ErrnoOf(a.OpenAt("dir/inner", O_RDONLY).status()), EBADF);
  EXPECT_EQ(ErrnoOf(a.Mkdir("x")), EBADF);
  EXPECT_EQ(ErrnoOf(a.RemoveAll(".")), EBADF);
  EXPECT_TRUE(b.Stat("file").ok());
}

// "/" in InRoot scope names the root with no syscall to fail: a moved-from
// Dir must still say EBADF, not the root's own answer (EEXIST for Mkdir).
TEST_P(DirTest, MovedFromInRootDirFailsOnTheRootItself) {
  Dir a = OpenRoot(Options(Scope::kInRoot));
  Dir b(std::move(a));
  EXPECT_EQ(ErrnoOf(a.Mkdir("/")), EBADF);    // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ErrnoOf(a.Rmdir("/")), EBADF);    // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ErrnoOf(a.Unlink("//")), EBADF);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ErrnoOf(a.Stat("/").status()), EBADF);  // NOLINT
  EXPECT_EQ(ErrnoOf(b.Mkdir("/")), EEXIST);
}

TEST_P(DirTest, OpenDirInheritsOptions) {
  Dir root = OpenRoot(Options(Scope::kInRoot, /*read_only=*/true));
  absl::StatusOr<Dir> sub = root.OpenDir("dir");
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(sub->options().resolver, GetParam());
  EXPECT_EQ(sub->options().scope, Scope::kInRoot);
  EXPECT_TRUE(sub->options().read_only);
  // InRoot: the sub-Dir is a root of its own.
  absl::StatusOr<FileStat> up = sub->Stat("../inner");
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->size, 5u);
}

TEST_P(DirTest, ReadOnlyRefusesEveryWriteBeforeAnySyscall) {
  Dir ro = OpenRoot(Options(Scope::kBeneath, /*read_only=*/true));
  Dir rw = OpenRoot(Options());
  std::string before = SnapshotTree(temp_.path());
  std::vector<std::pair<std::string, absl::Status>> refused = {
      {"O_WRONLY", ro.OpenAt("file", O_WRONLY).status()},
      {"O_RDWR", ro.OpenAt("file", O_RDWR).status()},
      {"O_CREAT", ro.OpenAt("new", O_RDONLY | O_CREAT, 0600).status()},
      {"O_TRUNC", ro.OpenAt("file", O_RDONLY | O_TRUNC).status()},
      {"O_APPEND", ro.OpenAt("file", O_RDONLY | O_APPEND).status()},
      {"O_TMPFILE", ro.OpenAt("dir", O_TMPFILE | O_RDWR, 0600).status()},
      {"Mkdir", ro.Mkdir("new")},
      {"Unlink", ro.Unlink("file")},
      {"Rmdir", ro.Rmdir("dir")},
      {"Symlink", ro.Symlink("file", "new")},
      {"Rename from read-only", ro.Rename("file", rw, "moved")},
      {"Rename into read-only", rw.Rename("file", ro, "moved")},
      {"Link from read-only", ro.Link("file", rw, "linked")},
      {"Link into read-only", rw.Link("file", ro, "linked")},
      {"Rename kNoReplace", ro.Rename("file", ro, "x", RenameMode::kNoReplace)},
      {"Rename kExchange", rw.Rename("file", ro, "dir", RenameMode::kExchange)},
      {"Chmod", ro.Chmod("file", 0600)},
      {"Chown", ro.Chown("file", 0, 0)},
      {"Lchown", ro.Lchown("link", 0, 0)},
      {"SetTimes", ro.SetTimes("file", absl::UnixEpoch(), absl::UnixEpoch())},
      {"Truncate", ro.Truncate("file", 0)},
      {"MkdirAll", ro.MkdirAll("a/b/c")},
      {"MkdirAll existing", ro.MkdirAll("dir")},
      {"RemoveAll", ro.RemoveAll("dir")},
      {"RemoveAll missing", ro.RemoveAll("missing")},
      {"WriteFile", ro.WriteFile("file", "new")},
      // Refused even when the path itself would fail or escape.
      {"Mkdir escaping", ro.Mkdir("../x")},
      {"Unlink missing", ro.Unlink("missing")},
  };
  for (const auto& [what, status] : refused) {
    EXPECT_EQ(ViolationOf(status), Violation::kReadOnly) << what << status;
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << what;
    EXPECT_EQ(ErrnoOf(status), 0) << what;
  }
  EXPECT_EQ(SnapshotTree(temp_.path()), before);
  // Reading stays possible.
  EXPECT_TRUE(ro.OpenAt("link", O_RDONLY).ok());
  EXPECT_TRUE(ro.Stat("dir/inner").ok());
  EXPECT_TRUE(ro.ReadDir(".").ok());
  EXPECT_TRUE(ro.ReadLink("link").ok());
}

TEST_P(DirTest, NulBytesAreInvalidArgumentEverywhere) {
  Dir root = OpenRoot(Options());
  std::string before = SnapshotTree(temp_.path());
  const std::string nul("fi\0le", 5);
  std::vector<std::pair<std::string, absl::Status>> statuses = {
      {"OpenAt", root.OpenAt(nul, O_RDONLY).status()},
      {"OpenAt O_CREAT", root.OpenAt(nul, O_WRONLY | O_CREAT, 0600).status()},
      {"OpenDir", root.OpenDir(nul).status()},
      {"Mkdir", root.Mkdir(nul)},
      {"Unlink", root.Unlink(nul)},
      {"Rmdir", root.Rmdir(nul)},
      {"Rename from", root.Rename(nul, root, "x")},
      {"Rename to", root.Rename("file", root, nul)},
      {"Symlink path", root.Symlink("file", nul)},
      {"Symlink target", root.Symlink(nul, "new")},
      {"ReadLink", root.ReadLink(nul).status()},
      {"Stat", root.Stat(nul).status()},
      {"Lstat", root.Lstat(nul).status()},
      {"ReadDir", root.ReadDir(nul).status()},
      {"Link", root.Link(nul, root, "x")},
      {"Chmod", root.Chmod(nul, 0600)},
      {"Chown", root.Chown(nul, 0, 0)},
      {"Lchown", root.Lchown(nul, 0, 0)},
      {"SetTimes", root.SetTimes(nul, absl::UnixEpoch(), absl::UnixEpoch())},
      {"Truncate", root.Truncate(nul, 0)},
      {"MkdirAll", root.MkdirAll(nul)},
      {"RemoveAll", root.RemoveAll(nul)},
      {"ReadFile", root.ReadFile(nul).status()},
      {"WriteFile", root.WriteFile(nul, "x")},
      {"Walk", root.Walk(nul,
                         [](absl::string_view, const FileStat&)
                             -> absl::StatusOr<bool> { return true; })},
  };
  for (const auto& [what, status] : statuses) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_EQ(ViolationOf(status), Violation::kNone) << what;
  }
  EXPECT_EQ(SnapshotTree(temp_.path()), before);
}

TEST_P(DirTest, ErrorsSayWhatFailed) {
  Dir root = OpenRoot(Options());
  absl::Status escape = root.OpenAt("dir/../../x", O_RDONLY).status();
  EXPECT_EQ(escape.message(),
            "openat(\"dir/../../x\"): path escapes the directory");
  EXPECT_EQ(ErrnoOf(escape), EXDEV);
  absl::Status absolute = root.Stat("/etc/passwd").status();
  EXPECT_EQ(absolute.message(),
            "stat(\"/etc/passwd\"): absolute path not allowed in a confined "
            "directory");
  absl::Status missing = root.Mkdir("missing/x");
  EXPECT_EQ(missing.message(),
            "mkdir(\"missing/x\"): No such file or directory");
  EXPECT_EQ(ErrnoOf(root.Stat("").status()), ENOENT);
  // Over-long names are refused before any lookup, wherever they are.
  std::string long_name(kNameMax + 1, 'n');
  EXPECT_EQ(ErrnoOf(root.Stat("missing/" + long_name).status()), ENAMETOOLONG);
  EXPECT_EQ(ErrnoOf(root.Mkdir(long_name)), ENAMETOOLONG);
}

TEST_P(DirTest, SymlinkStoresAnyTargetVerbatim) {
  Dir root = OpenRoot(Options());
  const std::vector<std::string> targets = {
      "/etc/passwd", "../../..", "a b\nc",
      "\xff\xfe",    "x/",       std::string(4000, 'x'),
  };
  for (size_t i = 0; i < targets.size(); ++i) {
    std::string name = absl::StrCat("l", i);
    ASSERT_TRUE(root.Symlink(targets[i], name).ok()) << i;
    absl::StatusOr<std::string> back = root.ReadLink(name);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, targets[i]);
    absl::StatusOr<FileStat> st = root.Lstat(name);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->kind, FileKind::kSymlink);
  }
  // Following them stays confined.
  EXPECT_EQ(ViolationOf(root.Stat("l0").status()), Violation::kEscape);
  EXPECT_EQ(ViolationOf(root.Stat("l1").status()), Violation::kEscape);
}

TEST_P(DirTest, EveryDescriptorIsCloseOnExec) {
  Dir root = OpenRoot(Options());
  EXPECT_TRUE(::fcntl(root.fd(), F_GETFD) & FD_CLOEXEC);
  for (int flags :
       {O_RDONLY, O_PATH, O_RDONLY | O_DIRECTORY, O_WRONLY | O_CREAT}) {
    for (const char* path : {"file", "dir/inner", "link", "dir/../file"}) {
      int f = flags;
      if ((f & O_DIRECTORY) && std::string(path) != "dir") continue;
      absl::StatusOr<Fd> fd = root.OpenAt(path, f, 0600);
      ASSERT_TRUE(fd.ok()) << path << fd.status();
      EXPECT_TRUE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) << path;
    }
  }
  absl::StatusOr<Dir> sub = root.OpenDir("dir");
  ASSERT_TRUE(sub.ok());
  EXPECT_TRUE(::fcntl(sub->fd(), F_GETFD) & FD_CLOEXEC);
}

TEST_P(DirTest, ReadDirListsEveryEntryWithItsKind) {
  Dir root = OpenRoot(Options());
  ASSERT_TRUE(root.Mkdir("many").ok());
  // Enough entries for several getdents64 batches.
  for (int i = 0; i < 5000; ++i) {
    absl::StatusOr<Fd> f =
        root.OpenAt(absl::StrCat("many/f", i), O_WRONLY | O_CREAT, 0600);
    ASSERT_TRUE(f.ok());
  }
  absl::StatusOr<std::vector<DirEntry>> many = root.ReadDir("many");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->size(), 5000u);
  absl::StatusOr<std::vector<DirEntry>> top = root.ReadDir(".");
  ASSERT_TRUE(top.ok());
  std::vector<std::string> names;
  for (const DirEntry& e : *top) {
    names.push_back(absl::StrCat(e.name, ":", static_cast<int>(e.kind)));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{
                absl::StrCat("dir:", static_cast<int>(FileKind::kDirectory)),
                absl::StrCat("file:", static_cast<int>(FileKind::kRegular)),
                absl::StrCat("link:", static_cast<int>(FileKind::kSymlink)),
                absl::StrCat("many:", static_cast<int>(FileKind::kDirectory)),
            }));
}

TEST_P(DirTest, RenameAcrossDirsOfDifferentScopes) {
  Dir beneath = OpenRoot(Options());
  absl::StatusOr<Dir> in_root =
      Dir::Open(temp_.Join("dir"), Options(Scope::kInRoot));
  ASSERT_TRUE(in_root.ok());
  // "/moved" is the InRoot Dir's own root, not the host's.
  ASSERT_TRUE(beneath.Rename("file", *in_root, "/moved").ok());
  EXPECT_TRUE(beneath.Stat("dir/moved").ok());
  EXPECT_EQ(ErrnoOf(beneath.Stat("file").status()), ENOENT);
  EXPECT_EQ(ViolationOf(in_root->Rename("moved", beneath, "/x")),
            Violation::kAbsolutePath);
}

TEST_P(DirTest, SafeToShareBetweenThreads) {
  Dir root = OpenRoot(Options());
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (!root.OpenAt("dir/../link", O_RDONLY).ok()) ++failures[t];
        if (!root.Stat("dir/inner").ok()) ++failures[t];
        if (ViolationOf(root.Stat("dir/../..").status()) !=
            Violation::kEscape) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// Magic links (procfs links to open files, the executable, the root...) are
// never followed by either resolver, in either scope; ordinary procfs links
// such as /proc/self are.
TEST_P(DirTest, MagicLinksAreNeverFollowed) {
  for (Scope scope : {Scope::kBeneath, Scope::kInRoot}) {
    absl::StatusOr<Dir> self = Dir::Open("/proc/self", Options(scope));
    ASSERT_TRUE(self.ok()) << self.status();
    Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    std::string fd_path = absl::StrCat("fd/", devnull.get());
    EXPECT_EQ(ErrnoOf(self->OpenAt(fd_path, O_RDONLY).status()), ELOOP);
    EXPECT_EQ(ErrnoOf(self->Stat(fd_path).status()), ELOOP);
    EXPECT_EQ(ErrnoOf(self->Stat("exe").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(self->OpenDir("cwd").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(self->OpenAt("root/etc/passwd", O_RDONLY).status()),
              ELOOP);
    EXPECT_EQ(ErrnoOf(self->Stat("ns/net").status()), ELOOP);
    // The links themselves can be looked at.
    absl::StatusOr<FileStat> exe = self->Lstat("exe");
    ASSERT_TRUE(exe.ok()) << exe.status();
    EXPECT_EQ(exe->kind, FileKind::kSymlink);
    EXPECT_TRUE(self->ReadLink(fd_path).ok());
    EXPECT_TRUE(self->OpenAt("status", O_RDONLY).ok());

    absl::StatusOr<Dir> proc = Dir::Open("/proc", Options(scope));
    ASSERT_TRUE(proc.ok());
    EXPECT_TRUE(proc->OpenAt("self/status", O_RDONLY).ok());
    EXPECT_TRUE(proc->OpenAt("thread-self/status", O_RDONLY).ok());
    EXPECT_EQ(ErrnoOf(proc->OpenAt("self/fd/" + std::to_string(devnull.get()),
                                   O_RDONLY)
                          .status()),
              ELOOP);
  }
}

INSTANTIATE_TEST_SUITE_P(Resolvers, DirTest,
                         testing::Values(Resolver::kAuto, Resolver::kKernel,
                                         Resolver::kUserspace),
                         [](const testing::TestParamInfo<Resolver>& info) {
                           switch (info.param) {
                             case Resolver::kAuto:
                               return "Auto";
                             case Resolver::kKernel:
                               return "Kernel";
                             case Resolver::kUserspace:
                               return "Userspace";
                           }
                           return "";
                         });

}  // namespace
}  // namespace capfs

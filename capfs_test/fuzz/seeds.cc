#include "capfs_test/fuzz/seeds.h"

#include <fcntl.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace capfs_fuzz {
namespace {

// Builds a Program from text paths ("@ROOT", "@OUT", "@CASE" components for
// host paths).
class Builder {
 public:
  explicit Builder(std::string name) : name_(std::move(name)) {}

  Builder& ReadOnly() {
    prog_.read_only = true;
    return *this;
  }
  Builder& Dir(const std::string& path, mode_t mode = 0755) {
    return Entry(TreeEntry::kDir, path, mode, "");
  }
  Builder& File(const std::string& path, mode_t mode = 0644) {
    return Entry(TreeEntry::kFile, path, mode, "");
  }
  Builder& Link(const std::string& path, const std::string& target) {
    return Entry(TreeEntry::kSymlink, path, 0, target);
  }

  // Operations; `slot` picks the Dir (0: the root, then OpenDir's results).
  Builder& Open(const std::string& path, int flags, int slot = 0) {
    Operation op = Op(OpKind::kOpenAt, path, slot);
    op.flags = flags;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) op.mode = 0640;
    return Add(std::move(op));
  }
  Builder& OpenDir(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kOpenDir, path, slot));
  }
  Builder& Mkdir(const std::string& path, int slot = 0, mode_t mode = 0755) {
    Operation op = Op(OpKind::kMkdir, path, slot);
    op.mode = mode;
    return Add(std::move(op));
  }
  Builder& Unlink(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kUnlink, path, slot));
  }
  Builder& Rmdir(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kRmdir, path, slot));
  }
  Builder& Rename(const std::string& from, const std::string& to, int slot = 0,
                  int to_slot = 0) {
    return AddTwoPaths(OpKind::kRename, from, to, slot, to_slot);
  }
  Builder& RenameNoReplace(const std::string& from, const std::string& to) {
    return AddTwoPaths(OpKind::kRenameNoReplace, from, to);
  }
  Builder& Exchange(const std::string& from, const std::string& to) {
    return AddTwoPaths(OpKind::kRenameExchange, from, to);
  }
  Builder& Symlink(const std::string& target, const std::string& link,
                   int slot = 0) {
    Operation op = Op(OpKind::kSymlink, link, slot);
    op.path2 = ParsePathSpec(target);
    return Add(std::move(op));
  }
  Builder& ReadLink(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kReadLink, path, slot));
  }
  Builder& Stat(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kStat, path, slot));
  }
  Builder& Lstat(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kLstat, path, slot));
  }
  Builder& ReadDir(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kReadDir, path, slot));
  }
  Builder& MkdirAll(const std::string& path, int slot = 0) {
    Operation op = Op(OpKind::kMkdirAll, path, slot);
    op.mode = 0755;
    return Add(std::move(op));
  }
  Builder& RemoveAll(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kRemoveAll, path, slot));
  }
  Builder& Walk(const std::string& path, int slot = 0) {
    return Add(Op(OpKind::kWalk, path, slot));
  }

  // The program in both scopes.
  void AddTo(std::vector<Seed>* seeds) const {
    Program beneath = prog_;
    beneath.scope = capfs::Scope::kBeneath;
    seeds->push_back(Seed{name_ + "-beneath", beneath});
    Program in_root = prog_;
    in_root.scope = capfs::Scope::kInRoot;
    seeds->push_back(Seed{name_ + "-inroot", in_root});
  }

 private:
  Builder& Entry(TreeEntry::Kind kind, const std::string& path, mode_t mode,
                 const std::string& target) {
    TreeEntry e;
    e.kind = kind;
    e.path = path;
    e.mode = mode;
    if (kind == TreeEntry::kSymlink) e.target = ParsePathSpec(target);
    prog_.tree.push_back(std::move(e));
    return *this;
  }
  static Operation Op(OpKind kind, const std::string& path, int slot) {
    Operation op;
    op.kind = kind;
    op.slot = slot;
    op.path = ParsePathSpec(path);
    return op;
  }
  // A call of two paths with a destination Dir (HasDestination).
  Builder& AddTwoPaths(OpKind kind, const std::string& from,
                       const std::string& to, int slot = 0, int to_slot = 0) {
    Operation op = Op(kind, from, slot);
    op.to_slot = to_slot;
    op.path2 = ParsePathSpec(to);
    return Add(std::move(op));
  }
  Builder& Add(Operation op) {
    prog_.ops.push_back(std::move(op));
    return *this;
  }

  std::string name_;
  Program prog_;
};

std::string Repeat(const std::string& s, int n, const std::string& sep) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, i ? sep : "", s);
  return out;
}

}  // namespace

std::vector<Seed> SeedPrograms() {
  constexpr int kRead = O_RDONLY;
  constexpr int kCreate = O_WRONLY | O_CREAT;
  const std::string long255(255, 'n');
  const std::string long256(256, 'n');
  // 2047 bytes; two joined by '/' are 4095, the longest path there is.
  const std::string dots = "." + Repeat("/.", 1023, "");
  std::vector<Seed> seeds;

  Builder("escape-dotdot")
      .Dir("a")
      .File("a/b")
      .Stat("..")
      .Open("../outside/secret", kRead)
      .Open("a/../../outside/secret", kRead)
      .ReadDir("..")
      .Stat("a/../..")
      .OpenDir("../root")
      .Stat("../root/a")
      .Stat("a/..")
      .Stat("a/../a/b")
      .Open("a/..//../outside/a/b", kRead)
      .AddTo(&seeds);

  Builder("absolute-links")
      .Link("a", "@ROOT/b")
      .File("b")
      .Link("c", "/")
      .Link("d", "@OUT/secret")
      .Link("e", "@CASE")
      .Link("f", "/b")
      .Link("g", "/..")
      .Open("a", kRead)
      .Stat("c/b")
      .Open("d", kRead)
      .ReadDir("e/")
      .Lstat("a")
      .ReadLink("d")
      .Stat("/b")
      .Open("/", kRead | O_DIRECTORY)
      .Stat("f")
      .Stat("g/b")
      .ReadDir("c")
      .Open("e/outside/secret", kRead)
      .AddTo(&seeds);

  Builder("links-with-dotdot")
      .Dir("a")
      .Dir("a/b")
      .Link("a/b/c", "../../d")
      .File("d")
      .Link("e", "a/..")
      .Link("f", "a/b/../../..")
      .Link("g", "a/b/c/..")
      .Open("a/b/c", kRead)
      .Stat("e/d")
      .Stat("f")
      .Open("f/root/d", kRead)
      .Lstat("e/")
      .ReadDir("e/")
      .Stat("g")
      .Stat("g/outside")
      .Open("a/b/c", O_PATH | O_NOFOLLOW)
      .ReadLink("a/b/c")
      .AddTo(&seeds);

  Builder("trailing-slashes")
      .File("a")
      .Dir("b")
      .Link("c", "a")
      .Link("d", "b")
      .Link("e", "b/")
      .Link("f", "x/")
      .Open("a/", kRead)
      .Open("c/", kRead | O_NOFOLLOW)
      .Open("d/", kRead | O_NOFOLLOW)
      .Open("d/", O_PATH | O_NOFOLLOW)
      .Stat("c/")
      .Lstat("d/")
      .ReadLink("d/")
      .Unlink("c/")
      .Rmdir("d/")
      .Mkdir("d/")
      .Open("x/", kCreate)
      .Open("e", O_PATH | O_NOFOLLOW)
      .Lstat("e/")
      .Rename("d/", "x")
      .Rename("b/", "g/")
      .Open("f", kCreate)
      .Mkdir("f/")
      .Stat("b//")
      .Open("e/", O_PATH)
      .AddTo(&seeds);

  // The renames that keep or swap the destination: onto an existing name, a
  // directory swapped with a symlink to outside (the link moves as itself;
  // following it afterwards is refused), climbs out through ".." and
  // through a symlink to "..", a directory swapped with its own child.
  Builder("rename-modes")
      .Dir("d")
      .File("d/f")
      .File("g")
      .Link("e", "@OUT/secret")
      .Link("c", "..")
      .RenameNoReplace("g", "d/f")
      .RenameNoReplace("g", "h")
      .Exchange("d", "e")
      .Stat("d")
      .Lstat("e/f")
      .Exchange("d", "../outside/secret")
      .Exchange("c/outside/secret", "h")
      .RenameNoReplace("h", "c/x")
      .Exchange("e", "e/f")
      .AddTo(&seeds);

  Builder("loops")
      .Link("a", "b")
      .Link("b", "a")
      .Link("c", "c")
      .Link("d", "d/x")
      .Link("e", "./e/")
      .Open("a", kRead)
      .Stat("c/")
      .Open("d", kCreate)
      .Lstat("a/")
      .ReadDir("b")
      .Mkdir("a/x")
      .Open("a", O_PATH | O_NOFOLLOW)
      .Open("e", kCreate)
      .Unlink("a")
      .Stat("b")
      .Rename("c", "a")
      .Stat("b")
      .AddTo(&seeds);

  // a -> b/b/.../b (13), b -> c/c, c -> ".": following a costs 1 + 13 * 3
  // = 40 symlinks, the most one resolution may follow; one more is ELOOP.
  Builder("chain-40")
      .Link("a", Repeat("b", 13, "/"))
      .Link("b", "c/c")
      .Link("c", ".")
      .Link("d", Repeat("b", 12, "/"))
      .File("e")
      .Stat("a")
      .Stat("a/c")
      .Stat("c/a")
      .Stat("a/e")
      .Stat("d/c/e")
      .Open("a/", kRead | O_DIRECTORY)
      .Open("a", O_PATH)
      .OpenDir("a")
      .Stat("a", 1)
      .Stat("d/c/c/e")
      .Open("d/c/c/c/e", kRead)
      .Open("a/x", kCreate)
      .Open("d/x", kCreate)
      .ReadDir("a")
      .AddTo(&seeds);

  // An escape after more than 20 links: openat2 may count them twice and
  // say ELOOP (see kernel_resolver.cc); it is an escape.
  Builder("escape-after-20-links")
      .Link("a", Repeat("b", 11, "/") + "/..")
      .Link("b", "c/c")
      .Link("c", ".")
      .Link("d", Repeat("b", 7, "/") + "/../root")
      .File("e")
      .Stat("a")
      .Stat("a/c/e")
      .Open("a", kRead)
      .OpenDir("a")
      .Mkdir("a/x")
      .Stat("d/e")
      .Rename("a/e", "x")
      .Stat("a")
      .Lstat("a/")
      .AddTo(&seeds);

  Builder("dangling-create")
      .Link("a", "x")
      .Link("b", "../outside/new")
      .Link("c", "d/x")
      .Link("e", "@ROOT/new")
      .Dir("f")
      .Link("g", "f/new")
      .Link("h", "/new")
      .Open("a", kCreate)
      .Open("g", kCreate | O_EXCL)
      .Open("b", kCreate)
      .Open("c", kCreate)
      .Open("e", kCreate)
      .Open("g", kCreate)
      .Stat("f/new")
      .Open("a", kCreate | O_NOFOLLOW)
      .Open("h", kCreate)
      .Stat("new")
      .Open("h", kCreate | O_EXCL)
      .AddTo(&seeds);

  Builder("rename-across")
      .Dir("a")
      .Dir("b")
      .File("a/c")
      .Dir("a/d")
      .OpenDir("a")
      .OpenDir("b")
      .Rename("c", "c", 1, 2)
      .Rename("c", "x", 2, 0)
      .Rename("..", "y", 1, 2)
      .Rename("d", "../z", 1, 2)
      .Rename("a", "e", 0, 0)
      .Stat("d", 1)
      .Stat("..", 1)
      .Open("../b", kRead, 1)
      .Rmdir(".", 2)
      .Rename("d", "d", 1, 2)
      .Rename("d/", "/q", 2, 1)
      .ReadDir(".", 1)
      .ReadDir("/", 2)
      .AddTo(&seeds);

  Builder("moved-dir")
      .Dir("a")
      .Dir("a/b")
      .File("a/b/c")
      .OpenDir("a/b")
      .Rename("a/b", "x")
      .Stat("..", 1)
      .Stat("c", 1)
      .Open("../b/c", kRead, 1)
      .Stat("/c", 1)
      .Rmdir("a")
      .Rename("x", "a")
      .Stat("../..", 1)
      .Rename("a", "@ROOT/../outside/a", 0, 0)
      .AddTo(&seeds);

  Builder("create-truncate-tmpfile")
      .Dir("a")
      .File("b")
      .Open("a", O_TMPFILE | O_RDWR)
      .Open(".", O_TMPFILE | O_RDWR)
      .Open("b", O_WRONLY | O_TRUNC)
      .Open("b", kCreate | O_EXCL)
      .Open("c", kCreate | O_EXCL)
      .Open("c", kRead | O_DIRECTORY)
      .Open("a", O_PATH)
      .Open("a", O_WRONLY)
      .Open("b", O_RDWR | O_TRUNC)
      .Open("b", O_PATH | O_DIRECTORY)
      .Open("x", O_TMPFILE | O_RDWR)
      .Open("a/", O_TMPFILE | O_RDWR)
      .Open("b", kRead | O_TRUNC)
      // Flags the kernel refuses before it looks the path up: EINVAL
      // whatever the path.
      .Open("x/a", O_TMPFILE | O_RDWR | O_CREAT | O_EXCL)
      .Open("x/a", kRead | O_CREAT | O_DIRECTORY)
      .Open("x/a", O_TMPFILE)
      .Open("../x", kCreate | O_DIRECTORY)
      .AddTo(&seeds);

  Builder("symlink-op")
      .File("b")
      .Dir("d")
      .Symlink("../outside/secret", "a")
      .Symlink("@ROOT/b", "c")
      .Open("a", kRead)
      .ReadLink("a")
      .Stat("c")
      .Symlink("x", "d/")
      .Symlink("..", "e")
      .Stat("e/root")
      .Lstat("e")
      .Symlink("b", "b")
      .Symlink("d/", "f")
      .Stat("f/")
      .Symlink("", "g")
      .Symlink("x", "/h")
      .Symlink("", "b/x")
      .Symlink("", "../x")
      .ReadDir(".")
      .AddTo(&seeds);

  Builder("permissions")
      .Dir("a", 0000)
      .File("a/b")
      .Dir("c", 0300)
      .File("c/d")
      .Dir("e", 0600)
      .Dir("e/f")
      .Dir("g", 0500)
      .File("h", 0000)
      .Stat("a/b")
      .Open("c/d", kRead)
      .ReadDir("c")
      .ReadDir("e")
      .Stat("e/f")
      .Stat("e/..")
      .Stat("e/f/..")
      .Mkdir("g/x")
      .Stat("a/..")
      .Open("a/../c/d", kRead)
      .Open("h", kRead)
      .Open("h", O_PATH)
      .Lstat("a")
      .Unlink("c/d")
      .Rename("g", "a/x")
      .OpenDir("a")
      .Stat(".", 1)
      .Stat("..", 1)
      .AddTo(&seeds);

  // renameat2 looks up the old name (search permission on its parent)
  // before it walks the new path.
  Builder("rename-order")
      .Dir("a", 0600)
      .File("a/b")
      .File("c")
      .Dir("e", 0300)
      .Dir("e/f")
      .Rename("a/..", "d/x")
      .Rename("a/b", "d/x")
      .Rename("a/.", "x")
      .Rename("c", "a/x")
      .Rename("x", "a/x")
      .Rename("/", "a/x")
      .Rename("e/f", "d/x")
      .Rename("e/..", "a/..")
      .Mkdir("a/..")
      .Unlink("a/..")
      .Rmdir("a/.")
      .Rename("c", "e/..")
      .Rename("e/f/..", "g")
      .AddTo(&seeds);

  Builder("long-names")
      .Dir("a")
      .Link("b", long256)
      .Link("c", long255)
      .Stat(dots + "/" + dots)
      .Stat(dots + "/" + dots + "/")
      .Open(long255, kCreate)
      .Mkdir(long256)
      .Stat("b")
      .Stat("c")
      .Open("c", kCreate)
      .Stat("a/" + long255)
      .Open("a/" + long256, kCreate)
      .Stat(dots + "/a")
      .Rename(long255, "a/" + long255)
      .Symlink(long256, "d")
      .Stat("d")
      .AddTo(&seeds);

  Builder("dot-and-empty")
      .Dir("a")
      .Stat("")
      .Stat(".")
      .Stat("./")
      .Stat("//")
      .Stat("/")
      .Stat("/..")
      .Open(".", kRead | O_DIRECTORY)
      .Rmdir(".")
      .Unlink("..")
      .Mkdir(".")
      .Rename(".", "x")
      .Rename("a", ".")
      .Mkdir("/")
      .Symlink("x", "/")
      .Rmdir("a/.")
      .Rmdir("a/..")
      .Unlink("a/")
      .Rename("a/.", "b")
      .Mkdir("a/./b/")
      .ReadDir("")
      .OpenDir("//")
      .AddTo(&seeds);

  Builder("raw-bytes")
      .File("a")
      .Stat(std::string("a\0b", 3))
      .Open(std::string("a\0", 2), kRead)
      .Symlink(std::string("x\0y", 3), "b")
      .Symlink("\n\x01\xff", "c")
      .ReadLink("c")
      .Mkdir("\xc3\x28")
      .Stat("\xc3\x28")
      .Open("a\n", kCreate)
      .AddTo(&seeds);

  Builder("read-only")
      .ReadOnly()
      .File("a")
      .Dir("d")
      .Link("e", "x")
      .Open("a", O_WRONLY)
      .Open("x", kCreate)
      .Mkdir("y")
      .Open("a", kRead)
      .OpenDir("d")
      .Mkdir("z", 1)
      .Open("a", O_RDONLY | O_TRUNC)
      .Open("e", kCreate)
      .Unlink("a")
      .Rename("a", "b")
      .Symlink("a", "s")
      .Open("a", O_RDWR)
      .Open(".", O_TMPFILE | O_RDWR)
      .Rmdir("d")
      .AddTo(&seeds);

  Builder("in-root-absolute")
      .Link("a", "/b/../../..")
      .File("b")
      .Link("c", "@ROOT")
      .Link("d", "/")
      .Dir("e")
      .Link("e/f", "/../b")
      .Stat("a")
      .Stat("/../../b")
      .Stat("c")
      .ReadDir("/")
      .Rename("/", "x")
      .Unlink("/")
      .Stat("d/../b")
      .Open("e/f", kRead)
      .OpenDir("e")
      .Stat("f", 1)
      .Stat("/f", 1)
      .Stat("..", 1)
      .Open("f", kCreate, 1)
      .AddTo(&seeds);

  // A Dir on a directory that may not be searched: "/" (InRoot) names it
  // with no lookup, so it opens; "." is a lookup, so it does not.
  Builder("unsearchable-root")
      .Dir("a", 0600)
      .Dir("a/b")
      .Link("a/c", "/")
      .Link("a/d", "//")
      .Dir("e", 0300)
      .OpenDir("a")
      .OpenDir("e")
      .Open("/", kRead | O_DIRECTORY, 1)
      .Open("//", kRead | O_NOFOLLOW, 1)
      .Open("/", O_PATH, 1)
      .Open(".", kRead, 1)
      .Stat("/", 1)
      .Stat(".", 1)
      .ReadDir("/", 1)
      .OpenDir("/", 1)
      .Open("/", kCreate, 1)
      .Open("/", kCreate | O_EXCL, 1)
      .Lstat("//", 1)
      .Open("/", kRead, 2)
      .ReadDir("/", 2)
      .Stat("/", 2)
      .Open("/", O_PATH | O_NOFOLLOW, 2)
      .Open("/", O_TMPFILE | O_RDWR, 2)
      .Stat("..", 1)
      .Open("/..", kRead, 2)
      .AddTo(&seeds);

  Builder("sub-dir-escapes")
      .Dir("a")
      .Dir("a/b")
      .Link("a/b/c", "../..")
      .File("d")
      .Link("a/e", "/d")
      .OpenDir("a")
      .Stat("..", 1)
      .Stat("b/c", 1)
      .Stat("b/c/d", 1)
      .Open("/d", kRead, 1)
      .Stat("b/../..", 1)
      .Mkdir("../x", 1)
      .Unlink("../d", 1)
      .Stat("e", 1)
      .Open("e", kCreate, 1)
      .Rename("b", "../y", 1, 0)
      .Rename("d", "../z", 0, 1)
      .AddTo(&seeds);

  Builder("docker-cp")
      .Dir("a")
      .Link("a/b", "../../../../outside")
      .Link("c", "../../../..")
      .Open("a/b/secret", kRead)
      .Mkdir("a/b/x")
      .Rename("a/b", "a/c")
      .Stat("c/outside")
      .Open("c/outside/secret", kRead)
      .ReadDir("a/b/")
      .Rename("a/b/a", "y")
      .Rename("a/b/", "y")
      .AddTo(&seeds);

  Builder("deep")
      .Dir("a")
      .Dir("a/b")
      .Dir("a/b/c")
      .Dir("a/b/c/d")
      .Dir("a/b/c/d/e")
      .Link("a/b/c/d/e/f", "../../../../../../outside")
      .Link("a/b/c/d/e/g", "../../../../../a")
      .Stat("a/b/c/d/e/../../../../../..")
      .Stat("a/b/c/d/e/../../../../../../root/a")
      .Stat("a/b/c/d/e/f")
      .Stat("a/b/c/d/e/g/b/c/d/e/g/b")
      .Open("a/b/c/d/e/g/b/c/d/e/f", kRead)
      .OpenDir("a/b/c/d/e")
      .Stat("g/b/c", 1)
      .Stat("../../../../..", 1)
      .AddTo(&seeds);

  // Deeper than the userspace resolver's window of 64 descriptors: a ".."
  // past the window reopens an ancestor and checks it is the one recorded.
  // The component table has these runs (70 and 130 levels down, 70 up; one
  // run down a path).
  const std::string down70 = Repeat("a", 70, "/");
  const std::string down130 = Repeat("a", 130, "/");
  const std::string up70 = Repeat("..", 70, "/");
  Builder("past-the-window")
      .File("b")
      .MkdirAll(down130)
      .Stat(down130)
      .Stat(down130 + "/" + up70)
      .Stat(down70 + "/" + up70 + "/b")
      .Stat(down70 + "/" + up70 + "/..")
      .Open(down70 + "/" + up70 + "/../outside/secret", kRead)
      .Symlink(up70, down70 + "/x")
      .Stat(down70 + "/x/b")
      .Open(down70 + "/x/../outside/secret", kRead)
      .Symlink("@ROOT/" + down70, "y")
      .Stat("y/" + up70 + "/b")
      .OpenDir(down70)
      .MkdirAll(down70, 1)
      .Stat(up70 + "/b", 1)
      .Stat(down70 + "/" + up70 + "/" + up70 + "/b", 1)
      .Walk(down130)
      .Rename(down70, "c")
      .Stat("c/" + down70 + "/" + up70 + "/../b")
      .RemoveAll("c")
      .RemoveAll("a")
      .Stat("b")
      .AddTo(&seeds);

  return seeds;
}

}  // namespace capfs_fuzz

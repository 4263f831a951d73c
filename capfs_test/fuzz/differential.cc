#include "capfs_test/fuzz/differential.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/names.h"
#include "capfs_test/testing/temp_tree.h"

namespace capfs_fuzz {

using capfs_test::CheckOrDie;
using capfs_test::KindName;

namespace {

// A name in the sentinel and in the case directory that nothing beneath
// root/ has: a listing or link target read with it in is an escape.
constexpr char kMarker[] = "ESCAPE-MARKER";

// The twins' case directories: same length, so that host paths rendered in
// each (link targets, PATH_MAX boundaries) have the same length too. A is
// driven through the kernel resolver, B through the userspace one, and C
// (Beneath scope only) with the plain *at calls, the oracle of DESIGN.md
// section 3 for every path that stays beneath.
constexpr int kTwins = 3;
constexpr int kKernelTwin = 0;
constexpr int kUserspaceTwin = 1;
constexpr int kPlainTwin = 2;
constexpr const char* kTwinNames[kTwins] = {"A", "B", "C"};
constexpr capfs::Resolver kTwinResolvers[2] = {capfs::Resolver::kKernel,
                                               capfs::Resolver::kUserspace};
constexpr const char* kTwinResolverNames[kTwins] = {"kernel", "userspace",
                                                    "plain call"};

// fcntl(F_GETFL) bits that tell how a descriptor was opened (O_NOFOLLOW and
// O_DIRECTORY, which a resolver may add on the way, say nothing about it).
constexpr int kReportedFlags = O_ACCMODE | O_APPEND | O_PATH | O_NONBLOCK;

int OpenPath(int dirfd, const char* name) {
  return openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

// The names in the directory `dirfd` (opened for reading), "." and ".."
// left out, with their d_type; sorted. getdents64's errno (ENOENT for a
// removed directory) goes to `*err` when it is not null.
std::vector<std::pair<std::string, unsigned char>> ListDir(int dirfd,
                                                           int* err = nullptr) {
  std::vector<std::pair<std::string, unsigned char>> names;
  alignas(8) char buf[4096];
  if (err != nullptr) *err = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
    if (n < 0 && err != nullptr) *err = errno;
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct Dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[1];
      };
      const auto* d = reinterpret_cast<const Dirent64*>(buf + off);
      off += d->d_reclen;
      std::string name = d->d_name;
      if (name != "." && name != "..") names.emplace_back(name, d->d_type);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Details(mode_t mode, uint64_t size, uint64_t nlink) {
  return absl::StrFormat("%s %04o size=%d links=%d", KindName(mode),
                         mode & 07777, size, nlink);
}

// The case directories of all twins (absolute paths). A host path in a link
// target or a message is shown as "<CASE>" whichever twin's it is: a
// program's raw bytes may spell another twin's path (the fuzzer learns it
// from comparisons), which is text to capfs like any other.
using CaseDirs = std::vector<std::string>;

// `s` with every case directory hidden: "<CASE>" in its absolute spelling,
// "<CASE-REL>" in its relative one (without the leading "/"; told apart, so
// that a result that gains or loses the slash still differs). The relative
// spelling is how a host path made inside the tree reads from the tree's
// top: MkdirAll of "/dev/shm/capfs.X/A/..." in InRoot scope makes
// "dev/shm/capfs.X/A/...", and a Walk from there names its entries so.
std::string HideCaseDirs(absl::string_view s, const CaseDirs& dirs) {
  std::string out(s);
  for (const std::string& d : dirs) {
    out = absl::StrReplaceAll(out, {{d, "<CASE>"}});
  }
  for (const std::string& d : dirs) {
    absl::string_view relative = absl::StripPrefix(d, "/");
    if (relative.empty()) continue;
    out = absl::StrReplaceAll(out, {{relative, "<CASE-REL>"}});
  }
  return out;
}

// What a tree is now: a listing to compare between twins (one line per
// entry: path, kind, mode, size, links, link target with the case directory
// hidden) and the path of every inode in it.
struct TreeScan {
  std::string listing;
  std::map<ino_t, std::string> inodes;
};

// Walks the directory `dirfd` (opened for reading), whose path within the
// case directory is `rel`: each directory's entries in sorted order, a
// directory's own entries right after its line. Directories that deny
// listing or search are unlocked for the walk beneath them, then locked
// again. One descriptor at a time, going back up through "..": a program
// can make a tree thousands of levels deep (MkdirAll of deep runs, from a
// Dir that is deep already), more than the stack or the descriptor limit
// would take one level at a time.
void Scan(int dirfd, const std::string& rel, const CaseDirs& case_dirs,
          TreeScan* out) {
  struct Level {
    std::vector<std::pair<std::string, unsigned char>> names;
    size_t next = 0;
    std::string rel;      // this directory's path within the case directory
    std::string name;     // its name in its parent
    bool locked = false;  // unlocked for the walk: lock again when left
    mode_t mode = 0;      // its mode, to lock it again
  };
  int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  CheckOrDie(cur >= 0, "dup");
  std::vector<Level> stack;
  stack.push_back(Level{ListDir(cur), 0, rel, "", false, 0});
  while (!stack.empty()) {
    if (stack.back().next == stack.back().names.size()) {
      Level done = std::move(stack.back());
      stack.pop_back();
      if (stack.empty()) break;
      int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      CheckOrDie(up >= 0, "open " + done.rel + "/..");
      close(cur);
      cur = up;
      if (done.locked) {
        CheckOrDie(fchmodat(cur, done.name.c_str(), done.mode & 07777, 0) == 0,
                   "lock " + done.rel);
      }
      continue;
    }
    Level& level = stack.back();
    const std::string name = level.names[level.next++].first;
    const std::string path = absl::StrCat(level.rel, "/", name);
    struct stat st;
    if (fstatat(cur, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      absl::StrAppend(&out->listing, path, " <gone>\n");
      continue;
    }
    out->inodes.emplace(st.st_ino, path);
    // A path with the twin's case directory in it (MkdirAll of a host path
    // in InRoot scope makes the whole chain inside the root) reads the same
    // in every twin.
    absl::StrAppend(&out->listing, HideCaseDirs(path, case_dirs), " ",
                    Details(st.st_mode, st.st_size, st.st_nlink));
    // What Chown, Lchown and SetTimes change, as they set it: an owner
    // other than root, a modification time before 2001.
    if (st.st_uid != 0 || st.st_gid != 0) {
      absl::StrAppend(&out->listing, " owner=", st.st_uid, ":", st.st_gid);
    }
    if (st.st_mtim.tv_sec < 1000000000) {
      absl::StrAppend(&out->listing, " mtime=", st.st_mtim.tv_sec);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(PATH_MAX, '\0');
      ssize_t n = readlinkat(cur, name.c_str(), target.data(), target.size());
      target.resize(n < 0 ? 0 : static_cast<size_t>(n));
      absl::StrAppend(&out->listing, " -> ", HideCaseDirs(target, case_dirs));
    }
    absl::StrAppend(&out->listing, "\n");
    if (!S_ISDIR(st.st_mode)) continue;
    const bool locked = (st.st_mode & 0500) != 0500;
    if (locked) {
      CheckOrDie(fchmodat(cur, name.c_str(), st.st_mode | 0700, 0) == 0,
                 "unlock " + path);
    }
    int sub = openat(cur, name.c_str(),
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CheckOrDie(sub >= 0, "open " + path);
    close(cur);
    cur = sub;
    stack.push_back(Level{ListDir(cur), 0, path, name, locked, st.st_mode});
  }
  close(cur);
}

int CountOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  CheckOrDie(d != nullptr, "opendir /proc/self/fd");
  int n = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the listing's own descriptor
}

// What one operation returned on one twin, before inode numbers are named.
struct Raw {
  absl::Status status;
  bool has_object = false;  // something was opened or stat'ed
  ino_t ino = 0;
  dev_t dev = 0;
  std::string details;   // kind, mode, size, links, open flags
  bool tmpfile = false;  // an unnamed file (O_TMPFILE): no path to check
  std::string text;      // a link target or a listing
  bool cloexec = true;   // every descriptor capfs returns must be
};

Raw FromFd(int fd) {
  Raw r;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    r.status = absl::InternalError(absl::StrCat("fstat: ", strerror(errno)));
    return r;
  }
  r.has_object = true;
  r.ino = st.st_ino;
  r.dev = st.st_dev;
  r.tmpfile = S_ISREG(st.st_mode) && st.st_nlink == 0;
  r.details = absl::StrFormat("%s flags=%#o",
                              Details(st.st_mode, st.st_size, st.st_nlink),
                              fcntl(fd, F_GETFL) & kReportedFlags);
  r.cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
  return r;
}

}  // namespace

// The sentinel of one twin: outside/ (a file, a directory with a file, a
// link with the marker name) and the case directory itself (root/, outside/
// and a marker file). Kept open by O_PATH descriptors, so that a change is a
// few fstat calls away: any change to an inode moves its ctime.
class Differential::Sentinel {
 public:
  explicit Sentinel(std::string case_dir) : case_dir_(std::move(case_dir)) {
    Build();
  }

  const std::string& case_dir() const { return case_dir_; }

  // Every sentinel inode by its path within the case directory.
  const std::map<ino_t, std::string>& inodes() const { return inodes_; }

  // "" when nothing changed since Build; else the sentinel as it is now.
  std::string Changes() const {
    if (Fingerprint() == baseline_) return "";
    return absl::StrCat(
        "case dir: ",
        absl::StrJoin(ListNames(), ",",
                      [](std::string* out, const auto& e) {
                        absl::StrAppend(out, e.first);
                      }),
        "\n", capfs_test::SnapshotTree(case_dir_ + "/outside", case_dir_));
  }

  // Makes the sentinel again (after a change), root/ included, empty.
  void Rebuild() {
    fds_.clear();
    capfs_test::RemoveContents(case_dir_);
    Build();
  }

 private:
  void Build() {
    using capfs_test::MakeDir;
    using capfs_test::MakeFile;
    using capfs_test::MakeSymlink;
    int c = open(case_dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(c >= 0, "open " + case_dir_);
    MakeDir(c, "root");
    MakeDir(c, "outside");
    MakeFile(c, kMarker, "marker");
    MakeFile(c, "outside/secret", "secret");
    MakeDir(c, "outside/a");
    MakeFile(c, "outside/a/b", "outside b");
    MakeSymlink(c, absl::StrCat(kMarker, "-target"),
                absl::StrCat("outside/", kMarker, "-link"));
    inodes_.clear();
    for (std::string rel :
         {std::string("."), std::string(kMarker), std::string("outside"),
          std::string("outside/secret"), std::string("outside/a"),
          std::string("outside/a/b"),
          absl::StrCat("outside/", kMarker, "-link")}) {
      int fd = OpenPath(c, rel.c_str());
      CheckOrDie(fd >= 0, "open " + rel);
      struct stat st;
      CheckOrDie(fstat(fd, &st) == 0, "fstat " + rel);
      inodes_.emplace(st.st_ino, rel);
      fds_.emplace_back(rel, capfs::Fd(fd));
    }
    close(c);
    baseline_ = Fingerprint();
  }

  std::vector<std::pair<std::string, unsigned char>> ListNames() const {
    int c = open(case_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c < 0) return {};
    auto names = ListDir(c);
    close(c);
    return names;
  }

  std::string Fingerprint() const {
    std::string out;
    for (const auto& [rel, fd] : fds_) {
      struct stat st;
      if (fstat(fd.get(), &st) != 0) {
        absl::StrAppend(&out, rel, " <fstat failed>\n");
        continue;
      }
      absl::StrAppendFormat(&out, "%s %d %o %d %d %d.%d %d.%d\n", rel,
                            st.st_ino, st.st_mode, st.st_size, st.st_nlink,
                            st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                            st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    }
    return out;
  }

  std::string case_dir_;
  std::vector<std::pair<std::string, capfs::Fd>> fds_;
  std::map<ino_t, std::string> inodes_;
  std::string baseline_;
};

namespace {

// One twin during a run: its case directory, the resolver it is driven
// with, the Dirs a program has open on it, and its tree as last scanned.
struct Twin {
  std::string case_dir;
  std::string root;
  const char* resolver_name = "";
  const std::map<ino_t, std::string>* sentinel_inodes = nullptr;
  const CaseDirs* case_dirs = nullptr;  // of all twins
  std::vector<capfs::Dir> slots;        // the capfs twins' Dirs
  std::vector<capfs::Fd> plain_slots;   // the plain twin's directories
  dev_t dev = 0;
  TreeScan scan;

  // Scans root/ again (after an operation that may have changed it).
  void Rescan() {
    scan = TreeScan();
    int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(fd >= 0, "open " + root);
    struct stat st;
    CheckOrDie(fstat(fd, &st) == 0, "fstat " + root);
    dev = st.st_dev;
    scan.inodes.emplace(st.st_ino, "root");
    Scan(fd, "root", *case_dirs, &scan);
    close(fd);
  }

  // The path of `ino` within the case directory, or "<unnamed>". A sentinel
  // inode is named as such even when a hard link to it is in root/.
  std::string NameOf(ino_t ino) const {
    auto it = sentinel_inodes->find(ino);
    if (it != sentinel_inodes->end()) return it->second;
    it = scan.inodes.find(ino);
    if (it != scan.inodes.end()) return it->second;
    return "<unnamed>";
  }
};

// Builds the program's tree beneath `root_fd` with plain calls. Directories
// get their modes last, deepest first, so a locked directory does not stop
// its own entries from being made. A call that fails (a link target the
// kernel refuses) leaves the entry out, the same way in both twins.
void BuildTree(const Program& prog, int root_fd, const std::string& case_dir) {
  std::vector<std::pair<std::string, mode_t>> chmods;
  for (const TreeEntry& e : prog.tree) {
    const char* p = e.path.c_str();
    switch (e.kind) {
      case TreeEntry::kDir:
        if (mkdirat(root_fd, p, 0700) == 0) chmods.emplace_back(e.path, e.mode);
        break;
      case TreeEntry::kFile: {
        int fd =
            openat(root_fd, p,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) break;
        // Distinct sizes per path: a scan tells files apart.
        std::string content = absl::StrCat("content of ", e.path);
        CheckOrDie(write(fd, content.data(), content.size()) ==
                       static_cast<ssize_t>(content.size()),
                   "write " + e.path);
        close(fd);
        chmods.emplace_back(e.path, e.mode);
        break;
      }
      case TreeEntry::kSymlink: {
        std::string target = Render(e.target, case_dir);
        if (target.find('\0') != std::string::npos) break;
        symlinkat(target.c_str(), root_fd, p);
        break;
      }
    }
  }
  for (auto it = chmods.rbegin(); it != chmods.rend(); ++it) {
    CheckOrDie(fchmodat(root_fd, it->first.c_str(), it->second, 0) == 0,
               "chmod " + it->first);
  }
}

bool MayChangeTree(const Operation& op) {
  switch (op.kind) {
    case OpKind::kOpenAt:
      return (op.flags & (O_CREAT | O_TRUNC)) != 0;
    case OpKind::kMkdir:
    case OpKind::kUnlink:
    case OpKind::kRmdir:
    case OpKind::kRename:
    case OpKind::kSymlink:
    case OpKind::kMkdirAll:
    case OpKind::kRemoveAll:
    case OpKind::kWriteFile:
    case OpKind::kTruncate:
    case OpKind::kChmod:
    case OpKind::kLink:
    case OpKind::kSetTimes:
    case OpKind::kChown:
    case OpKind::kLchown:
    case OpKind::kRenameNoReplace:
    case OpKind::kRenameExchange:
      return true;
    default:
      return false;
  }
}

// Runs `op` on `twin` through capfs, on the Dir in `slot`.
Raw Execute(const Operation& op, size_t slot, Twin& twin) {
  const capfs::Dir& dir = twin.slots[slot];
  const std::string path = Render(op.path, twin.case_dir);
  Raw r;
  switch (op.kind) {
    case OpKind::kOpenAt: {
      absl::StatusOr<capfs::Fd> fd = dir.OpenAt(path, op.flags, op.mode);
      if (!fd.ok()) {
        r.status = fd.status();
        return r;
      }
      r = FromFd(fd->get());
      if (dir.options().read_only &&
          (fcntl(fd->get(), F_GETFL) & O_ACCMODE) != O_RDONLY) {
        r.status = absl::InternalError("read-only Dir opened for writing");
      }
      return r;
    }
    case OpKind::kOpenDir: {
      absl::StatusOr<capfs::Dir> d = dir.OpenDir(path);
      if (!d.ok()) {
        r.status = d.status();
        return r;
      }
      r = FromFd(d->fd());
      if (d->options().scope != dir.options().scope ||
          d->options().resolver != dir.options().resolver ||
          d->options().read_only != dir.options().read_only) {
        r.status = absl::InternalError("OpenDir did not keep the options");
      }
      if (twin.slots.size() < static_cast<size_t>(kMaxSlots)) {
        twin.slots.push_back(*std::move(d));
      }
      return r;
    }
    case OpKind::kMkdir:
      r.status = dir.Mkdir(path, op.mode);
      return r;
    case OpKind::kUnlink:
      r.status = dir.Unlink(path);
      return r;
    case OpKind::kRmdir:
      r.status = dir.Rmdir(path);
      return r;
    case OpKind::kRename: {
      const capfs::Dir& to = twin.slots[op.to_slot % twin.slots.size()];
      r.status = dir.Rename(path, to, Render(op.path2, twin.case_dir));
      return r;
    }
    case OpKind::kRenameNoReplace:
    case OpKind::kRenameExchange: {
      const capfs::Dir& to = twin.slots[op.to_slot % twin.slots.size()];
      r.status = dir.Rename(path, to, Render(op.path2, twin.case_dir),
                            op.kind == OpKind::kRenameExchange
                                ? capfs::RenameMode::kExchange
                                : capfs::RenameMode::kNoReplace);
      return r;
    }
    case OpKind::kSymlink:
      r.status = dir.Symlink(Render(op.path2, twin.case_dir), path);
      return r;
    case OpKind::kReadLink: {
      absl::StatusOr<std::string> t = dir.ReadLink(path);
      if (!t.ok()) {
        r.status = t.status();
        return r;
      }
      r.text = *t;
      return r;
    }
    case OpKind::kStat:
    case OpKind::kLstat: {
      absl::StatusOr<capfs::FileStat> st =
          op.kind == OpKind::kStat ? dir.Stat(path) : dir.Lstat(path);
      if (!st.ok()) {
        r.status = st.status();
        return r;
      }
      r.has_object = true;
      r.ino = st->ino;
      r.dev = st->dev;
      r.details =
          absl::StrFormat("%s %04o size=%d links=%d", KindName(st->kind),
                          st->perm, st->size, st->nlink);
      return r;
    }
    case OpKind::kReadDir: {
      absl::StatusOr<std::vector<capfs::DirEntry>> entries = dir.ReadDir(path);
      if (!entries.ok()) {
        r.status = entries.status();
        return r;
      }
      std::vector<std::string> names;
      for (const capfs::DirEntry& e : *entries) {
        names.push_back(absl::StrCat(e.name, ":", KindName(e.kind)));
      }
      std::sort(names.begin(), names.end());
      r.text = absl::StrJoin(names, ",");
      return r;
    }
    case OpKind::kMkdirAll:
      r.status = dir.MkdirAll(path, op.mode);
      return r;
    case OpKind::kRemoveAll:
      r.status = dir.RemoveAll(path);
      return r;
    case OpKind::kWriteFile:
      r.status = dir.WriteFile(path, "written", op.mode);
      return r;
    case OpKind::kTruncate:
      r.status = dir.Truncate(path, 1);
      return r;
    case OpKind::kChmod:
      r.status = dir.Chmod(path, op.mode);
      return r;
    // Times and an owner the tree scan shows (a time before 2001, an owner
    // other than root); without CAP_CHOWN, EPERM from every twin alike.
    case OpKind::kSetTimes:
      r.status = dir.SetTimes(path, absl::FromUnixSeconds(1000000),
                              absl::FromUnixSeconds(2000000));
      return r;
    case OpKind::kChown:
      r.status = dir.Chown(path, 1234, 1234);
      return r;
    case OpKind::kLchown:
      r.status = dir.Lchown(path, 1234, 1234);
      return r;
    case OpKind::kLink: {
      const capfs::Dir& to = twin.slots[op.to_slot % twin.slots.size()];
      r.status = dir.Link(path, to, Render(op.path2, twin.case_dir));
      return r;
    }
    case OpKind::kReadFile: {
      absl::StatusOr<std::string> content = dir.ReadFile(path);
      if (!content.ok()) {
        r.status = content.status();
        return r;
      }
      r.text = *content;
      return r;
    }
    case OpKind::kWalk: {
      std::vector<std::string> seen;
      r.status =
          dir.Walk(path,
                   [&](absl::string_view rel,
                       const capfs::FileStat& st) -> absl::StatusOr<bool> {
                     seen.push_back(absl::StrFormat(
                         "%s:%s:%04o", rel, KindName(st.kind), st.perm));
                     return true;
                   });
      r.text = absl::StrJoin(seen, ",");
      return r;
    }
  }
  r.status = absl::InternalError("unknown op");
  return r;
}

std::string Listing(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return absl::StrJoin(names, ",");
}

Raw PlainError() {
  Raw r;
  r.status = capfs::ErrnoError(errno, "plain", "");
  return r;
}

Raw PlainResult(int ret) { return ret < 0 ? PlainError() : Raw(); }

// Runs `op` on the plain twin with the plain *at call, on the directory in
// `slot`.
Raw ExecutePlain(const Operation& op, size_t slot, Twin& twin) {
  const int dirfd = twin.plain_slots[slot].get();
  const std::string path = Render(op.path, twin.case_dir);
  const char* p = path.c_str();
  switch (op.kind) {
    case OpKind::kOpenAt: {
      int fd = openat(dirfd, p, op.flags | O_CLOEXEC, op.mode);
      if (fd < 0) return PlainError();
      capfs::Fd closer(fd);
      return FromFd(fd);
    }
    case OpKind::kOpenDir: {
      int fd = openat(dirfd, p, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return PlainError();
      Raw r = FromFd(fd);
      if (twin.plain_slots.size() < static_cast<size_t>(kMaxSlots)) {
        twin.plain_slots.emplace_back(fd);
      } else {
        close(fd);
      }
      return r;
    }
    case OpKind::kMkdir:
      return PlainResult(mkdirat(dirfd, p, op.mode));
    case OpKind::kUnlink:
      return PlainResult(unlinkat(dirfd, p, 0));
    case OpKind::kRmdir:
      return PlainResult(unlinkat(dirfd, p, AT_REMOVEDIR));
    case OpKind::kRename: {
      int to = twin.plain_slots[op.to_slot % twin.plain_slots.size()].get();
      std::string to_path = Render(op.path2, twin.case_dir);
      return PlainResult(renameat(dirfd, p, to, to_path.c_str()));
    }
    case OpKind::kSymlink: {
      std::string target = Render(op.path2, twin.case_dir);
      return PlainResult(symlinkat(target.c_str(), dirfd, p));
    }
    case OpKind::kReadLink: {
      char buf[PATH_MAX];
      ssize_t n = readlinkat(dirfd, p, buf, sizeof(buf));
      if (n < 0) return PlainError();
      Raw r;
      r.text = std::string(buf, static_cast<size_t>(n));
      return r;
    }
    case OpKind::kStat:
    case OpKind::kLstat: {
      struct stat st;
      int flags = op.kind == OpKind::kStat ? 0 : AT_SYMLINK_NOFOLLOW;
      if (fstatat(dirfd, p, &st, flags) != 0) return PlainError();
      Raw r;
      r.has_object = true;
      r.ino = st.st_ino;
      r.dev = st.st_dev;
      r.details = Details(st.st_mode, st.st_size, st.st_nlink);
      return r;
    }
    case OpKind::kReadDir: {
      int fd = openat(dirfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return PlainError();
      capfs::Fd closer(fd);
      std::vector<std::string> names;
      int err;
      auto entries = ListDir(fd, &err);
      if (err != 0) {
        errno = err;
        return PlainError();
      }
      for (const auto& [name, type] : entries) {
        const char* kind = type == DT_REG   ? "file"
                           : type == DT_DIR ? "dir"
                           : type == DT_LNK ? "symlink"
                                            : "other";
        names.push_back(absl::StrCat(name, ":", kind));
      }
      Raw r;
      r.text = Listing(names);
      return r;
    }
    default:
      break;  // no plain oracle (PlainIsOracle)
  }
  Raw r;
  r.status = absl::InternalError("unknown op");
  return r;
}

// Whether the plain call is the oracle for `op`, whose outcome through
// capfs was `capfs_outcome`: in Beneath scope, for every path capfs did not
// refuse (an escape, an absolute path, a read-only Dir) nor reject before
// any syscall (CheckPath's errors, a NUL in a link target): those are capfs's
// own rules, not the kernel's.
bool PlainIsOracle(const Program& prog, const Operation& op,
                   const Raw& capfs_outcome, const std::string& case_dir) {
  if (prog.scope != capfs::Scope::kBeneath) return false;
  // The recursive and whole-file calls have no single plain call: the two
  // resolvers and the sentinels are their oracle here, the conformance
  // table's plain-call versions of their contracts the other one.
  if (op.kind > OpKind::kReadDir) return false;
  if (capfs::ViolationOf(capfs_outcome.status) != capfs::Violation::kNone) {
    return false;
  }
  if (capfs::CheckPath(Render(op.path, case_dir)) != 0) return false;
  if (op.kind == OpKind::kRename &&
      capfs::CheckPath(Render(op.path2, case_dir)) != 0) {
    return false;
  }
  if (op.kind == OpKind::kSymlink &&
      Render(op.path2, case_dir).find('\0') != std::string::npos) {
    return false;
  }
  return true;
}

// `r` in words that do not depend on the twin: the inode as its path in the
// twin, the twin's case directory hidden in texts and messages.
std::string Describe(const Raw& r, const Twin& twin) {
  auto hide = [&](absl::string_view s) {
    return HideCaseDirs(s, *twin.case_dirs);
  };
  if (!r.status.ok()) {
    switch (capfs::ViolationOf(r.status)) {
      case capfs::Violation::kEscape:
        return "refused: escape";
      case capfs::Violation::kAbsolutePath:
        return "refused: absolute path";
      case capfs::Violation::kReadOnly:
        return "refused: read-only";
      case capfs::Violation::kNone:
        break;
    }
    if (int err = capfs::ErrnoOf(r.status); err != 0) {
      const char* name = strerrorname_np(err);
      return absl::StrCat("errno ", name ? name : absl::StrCat(err));
    }
    return absl::StrCat("error ", hide(r.status.ToString()));
  }
  std::string out = "ok";
  if (r.has_object) {
    std::string name = r.tmpfile ? "<tmpfile>" : twin.NameOf(r.ino);
    if (r.dev != twin.dev) name = "<another filesystem>";
    // A path made of a host path (MkdirAll of one in InRoot scope) has the
    // twin's case directory in it: hidden, so that twins compare.
    absl::StrAppend(&out, " ", hide(name), " (", r.details, ")");
  }
  if (!r.text.empty()) absl::StrAppend(&out, " [", hide(r.text), "]");
  return out;
}

// "" when `r` stayed within the directory `dir_fd` of `twin` it was asked
// of; otherwise what it reached.
std::string CheckConfined(const Raw& r, const Twin& twin, int dir_fd) {
  // (Unless the program made such a name or target beneath root/ itself:
  // the fuzzer learns strings from the comparisons it sees.)
  if (absl::StrContains(r.text, kMarker) &&
      !absl::StrContains(twin.scan.listing, kMarker)) {
    return absl::StrCat("read from outside: [", r.text, "]");
  }
  if (!r.status.ok() || !r.has_object || r.tmpfile) return "";
  if (r.dev != twin.dev) return "reached another filesystem";
  struct stat st;
  CheckOrDie(fstat(dir_fd, &st) == 0, "fstat Dir");
  // The Dir's own directory, even removed (renamed over) and so nameless.
  if (st.st_ino == r.ino) return "";
  std::string name = twin.NameOf(r.ino);
  if (name == "<unnamed>") return "reached an inode outside the case directory";
  std::string within = twin.NameOf(st.st_ino);
  if (within == "<unnamed>") {
    return absl::StrCat("reached ", name, " from a removed Dir");
  }
  if (name == within || absl::StartsWith(name, within + "/")) return "";
  return absl::StrCat("reached ", name, ", outside the Dir on ", within);
}

}  // namespace

Differential::Differential() {
  // Permission bits must apply (locked directories are part of the game):
  // drop root's capabilities for good, before any tree is made.
  umask(022);
  CheckOrDie(capfs_test::DropAllCapabilities(), "capset");
  for (int i = 0; i < kTwins; ++i) {
    std::string case_dir = top_.Join(kTwinNames[i]);
    CheckOrDie(mkdir(case_dir.c_str(), 0755) == 0, "mkdir " + case_dir);
    sentinels_[i] = std::make_unique<Sentinel>(case_dir);
  }
  capfs::DirOptions kernel;
  kernel.resolver = capfs::Resolver::kKernel;
  absl::StatusOr<capfs::Dir> probe = capfs::Dir::Open(top_.path(), kernel);
  if (!probe.ok()) {
    fprintf(stderr,
            "the differential fuzzer needs the kernel resolver (openat2): "
            "%s\n",
            probe.status().ToString().c_str());
    abort();
  }
}

Differential::~Differential() = default;

std::string Differential::Run(const Program& prog, std::string* log) {
  if (log != nullptr) absl::StrAppend(log, ShowProgram(prog));
  const int fds_before = CountOpenFds();
  // The plain twin is the oracle in Beneath scope only (InRoot's would be a
  // chroot per Dir).
  const bool with_plain = prog.scope == capfs::Scope::kBeneath;
  const int twin_count = with_plain ? 3 : 2;
  CaseDirs case_dirs;
  for (const auto& sentinel : sentinels_) {
    case_dirs.push_back(sentinel->case_dir());
  }
  Twin twins[kTwins];
  for (int i = 0; i < twin_count; ++i) {
    Twin& t = twins[i];
    t.case_dir = sentinels_[i]->case_dir();
    t.case_dirs = &case_dirs;
    t.root = t.case_dir + "/root";
    t.resolver_name = kTwinResolverNames[i];
    t.sentinel_inodes = &sentinels_[i]->inodes();
    // What an earlier program left, whatever its depth and modes; root/
    // itself back to 0755 (a Chmod of "." changes it).
    capfs_test::RemoveContents(t.root);
    int root_fd = open(t.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(root_fd >= 0, "open " + t.root);
    CheckOrDie(ListDir(root_fd).empty(), "not emptied: " + t.root);
    BuildTree(prog, root_fd, t.case_dir);
    close(root_fd);
    t.Rescan();
    if (t.scan.listing != twins[0].scan.listing) {
      return absl::StrCat("fuzzer bug: the twins differ once built:\n",
                          twins[0].scan.listing, "---\n", t.scan.listing);
    }
  }
  const std::string built = twins[0].scan.listing;
  if (tamper_) {
    for (int i = 0; i < twin_count; ++i) {
      tamper_(i, twins[i].case_dir);
      twins[i].Rescan();
    }
  }

  for (int i : {kKernelTwin, kUserspaceTwin}) {
    capfs::DirOptions options;
    options.resolver = kTwinResolvers[i];
    options.scope = prog.scope;
    options.read_only = prog.read_only;
    absl::StatusOr<capfs::Dir> root = capfs::Dir::Open(twins[i].root, options);
    CheckOrDie(root.ok(), "Dir::Open " + twins[i].root);
    twins[i].slots.reserve(kMaxSlots);
    twins[i].slots.push_back(*std::move(root));
  }
  if (with_plain) {
    Twin& c = twins[kPlainTwin];
    int fd = open(c.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CheckOrDie(fd >= 0, "open " + c.root);
    c.plain_slots.emplace_back(fd);
  }

  std::string failure;
  bool plain_in_step = true;
  for (size_t i = 0; i < prog.ops.size() && failure.empty(); ++i) {
    const Operation& op = prog.ops[i];
    const std::string what = absl::StrCat("op #", i, " ", ShowOp(op));
    std::string described[kTwins];
    Raw kernel_raw;
    for (int k : {kKernelTwin, kUserspaceTwin}) {
      Twin& t = twins[k];
      const size_t slot = op.slot % t.slots.size();
      Raw r = Execute(op, slot, t);
      if (MayChangeTree(op)) t.Rescan();
      described[k] = Describe(r, t);
      std::string escaped = CheckConfined(r, t, t.slots[slot].fd());
      if (!escaped.empty()) {
        failure =
            absl::StrCat("ESCAPE (", t.resolver_name, " resolver) at ", what,
                         ": ", escaped, "; outcome: ", described[k]);
      } else if (!r.cloexec) {
        failure = absl::StrCat("descriptor without close-on-exec (",
                               t.resolver_name, " resolver) at ", what);
      }
      if (k == kKernelTwin) kernel_raw = std::move(r);
      if (!failure.empty()) break;
    }
    if (log != nullptr) {
      absl::StrAppend(log, what, "\n  kernel:    ", described[0],
                      "\n  userspace: ", described[1], "\n");
    }
    if (!failure.empty()) break;
    if (described[0] != described[1]) {
      failure =
          absl::StrCat("DIVERGENCE at ", what, "\n  kernel:    ", described[0],
                       "\n  userspace: ", described[1]);
      break;
    }
    if (twins[0].slots.size() != twins[1].slots.size()) {
      failure = absl::StrCat("fuzzer bug: Dir slots differ after ", what);
      break;
    }
    if (MayChangeTree(op)) {
      if (twins[0].scan.listing != twins[1].scan.listing) {
        failure = absl::StrCat("TREES DIFFER after ", what, "\nkernel:\n",
                               twins[0].scan.listing, "userspace:\n",
                               twins[1].scan.listing);
        break;
      }
      if (prog.read_only && twins[0].scan.listing != built) {
        failure = absl::StrCat("read-only Dir changed the tree at ", what);
        break;
      }
    }
    if (with_plain && plain_in_step && op.kind > OpKind::kReadDir &&
        MayChangeTree(op)) {
      // A call with no single plain peer (MkdirAll, RemoveAll, WriteFile,
      // ...): the plain twin gets the same change through capfs's kernel
      // resolver (which the userspace one just agreed with), so that it
      // stays the oracle of the operations that follow.
      Twin& c = twins[kPlainTwin];
      for (const capfs::Fd& fd : c.plain_slots) {
        capfs::DirOptions options;
        options.resolver = capfs::Resolver::kKernel;
        options.scope = prog.scope;
        options.read_only = prog.read_only;
        absl::StatusOr<capfs::Dir> d = capfs::Dir::FromFd(
            capfs::Fd(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)), options);
        CheckOrDie(d.ok(), "Dir::FromFd of the plain twin");
        c.slots.push_back(*std::move(d));
      }
      (void)Execute(op, op.slot % c.slots.size(), c);
      c.slots.clear();
      c.Rescan();
      // Out of step all the same (a race with nothing? a bug of the
      // fuzzer's): the plain twin is no oracle for the rest of the program.
      plain_in_step = c.scan.listing == twins[0].scan.listing;
      continue;
    }
    if (!with_plain || !plain_in_step ||
        !PlainIsOracle(prog, op, kernel_raw, twins[kPlainTwin].case_dir)) {
      continue;
    }
    // Both resolvers agree, and the path stays beneath (or capfs is wrong
    // about that, which the sentinel and the inode reached then tell): the
    // plain call must say the same and leave the same tree.
    Twin& c = twins[kPlainTwin];
    const size_t slot = op.slot % c.plain_slots.size();
    Raw r = ExecutePlain(op, slot, c);
    // The kernel's own walk says ELOOP now and then for a path within the
    // 40-symlink budget: an RCU walk aborted by a mount or rename anywhere
    // on the system restarts with the links it followed still counted
    // (kernel_resolver.cc). A failed call changed nothing: ask again, a
    // millisecond apart, for 20 ms at most. Mounts come in bursts (Bazel's
    // sandbox sets up a namespace for each test it starts): four calls in
    // a row said ELOOP during a run of the whole suite.
    for (int retry = 0; retry < 20 && capfs::ErrnoOf(r.status) == ELOOP &&
                        capfs::ErrnoOf(kernel_raw.status) != ELOOP;
         ++retry) {
      absl::SleepFor(absl::Milliseconds(1));
      r = ExecutePlain(op, slot, c);
    }
    if (MayChangeTree(op)) c.Rescan();
    described[kPlainTwin] = Describe(r, c);
    if (log != nullptr) {
      absl::StrAppend(log, "  plain:     ", described[kPlainTwin], "\n");
    }
    std::string escaped = CheckConfined(r, c, c.plain_slots[slot].get());
    if (!escaped.empty()) {
      failure =
          absl::StrCat("ESCAPE MISSED at ", what, ": capfs said ", described[0],
                       ", but the plain call on the same path ", escaped);
    } else if (described[kPlainTwin] != described[0]) {
      failure =
          absl::StrCat("NOT THE KERNEL'S ANSWER at ", what,
                       "\n  capfs (both resolvers): ", described[0],
                       "\n  plain call:             ", described[kPlainTwin]);
    } else if (c.plain_slots.size() != twins[0].slots.size()) {
      failure = absl::StrCat("fuzzer bug: plain slots differ after ", what);
    } else if (MayChangeTree(op) && c.scan.listing != twins[0].scan.listing) {
      failure =
          absl::StrCat("TREES DIFFER after ", what, "\ncapfs:\n",
                       twins[0].scan.listing, "plain call:\n", c.scan.listing);
    }
  }

  for (Twin& t : twins) {
    t.slots.clear();
    t.plain_slots.clear();
  }
  for (int i = 0; i < twin_count; ++i) {
    std::string changes = sentinels_[i]->Changes();
    if (changes.empty()) continue;
    if (failure.empty()) {
      failure = absl::StrCat("OUTSIDE CHANGED (", twins[i].resolver_name,
                             "): ", changes);
    }
    // Put the sentinel back for the next program.
    sentinels_[i]->Rebuild();
  }
  const int fds_after = CountOpenFds();
  if (fds_after != fds_before && failure.empty()) {
    failure = absl::StrCat("FD LEAK: ", fds_before,
                           " descriptors open before, ", fds_after, " after");
  }
  if (log != nullptr && !failure.empty()) absl::StrAppend(log, failure, "\n");
  return failure;
}

}  // namespace capfs_fuzz

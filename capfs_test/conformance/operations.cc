#include "capfs_test/conformance/operations.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "capfs_test/testing/names.h"

namespace capfs_test {
namespace {

constexpr char kSymlinkTarget[] = "t/../x";

RawResult FromStatus(const absl::Status& s) {
  RawResult r;
  r.violation = capfs::ViolationOf(s);
  r.err = r.violation == capfs::Violation::kNone ? capfs::ErrnoOf(s) : 0;
  if (!s.ok() && r.err == 0 && r.violation == capfs::Violation::kNone) {
    r.err = -1;  // a failure with no errno: shown as such
    r.text = std::string(s.message());
  }
  return r;
}

// A result that is only an errno (or -1 for an operation with no case).
RawResult ErrorResult(int err) {
  RawResult r;
  r.err = err;
  return r;
}

RawResult FromStat(const struct stat& st) {
  RawResult r;
  r.ino = st.st_ino;
  r.kind = KindName(st.st_mode);
  return r;
}

RawResult FromFd(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrorResult(errno);
  return FromStat(st);
}

RawResult FromErrno(int ret) {
  RawResult r;
  if (ret < 0) r.err = errno;
  return r;
}

// `path` with its last component replaced by "renamed": a name in the same
// directory, written with the same parent text.
std::string Sibling(const std::string& path) {
  return absl::StrCat(capfs::SplitLast(path).parent, "renamed");
}

std::string Listing(std::vector<std::string> entries) {
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, ",");
}

constexpr uid_t kOwner = 1234;
constexpr off_t kTruncateLength = 2;
constexpr char kWriteData[] = "new data";

const struct timespec* TestTimes() {
  static const struct timespec times[2] = {{1000000, 500}, {2000000, 700}};
  return times;
}

// The path without its trailing slashes, and where its last name ends.
absl::string_view LastName(const std::string& path) {
  capfs::PathSplit split = capfs::SplitLast(path);
  return split.last.substr(0, split.last.find('/'));
}

// MkdirAll's contract in plain calls: mkdir, and on ENOENT each directory
// on the way first to last; EEXIST is fine on a directory (followed).
int PlainMkdirAll(int dirfd, const std::string& path, mode_t mode) {
  auto settle = [&](int ret) {
    if (ret == 0) return 0;
    int err = errno;
    if (err != EEXIST) return err;
    struct stat st;
    return fstatat(dirfd, path.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)
               ? 0
               : EEXIST;
  };
  int ret = mkdirat(dirfd, path.c_str(), mode);
  if (ret == 0 || errno != ENOENT) return settle(ret);
  capfs::ComponentReader reader(path);
  capfs::Component c;
  while (reader.Next(&c)) {
    if (reader.Done()) break;
    std::string prefix = path.substr(
        0, static_cast<size_t>(c.name.data() + c.name.size() - path.data()));
    if (mkdirat(dirfd, prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return errno;
    }
  }
  return settle(mkdirat(dirfd, path.c_str(), mode));
}

std::vector<std::string> PlainNames(int fd) {
  std::vector<std::string> names;
  int copy = dup(fd);
  DIR* d = fdopendir(copy);
  if (d == nullptr) {
    close(copy);
    return names;
  }
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

// Removes everything in the directory `fd`, in listing order; 0 or errno.
int PlainEmpty(int fd) {
  for (const std::string& n : PlainNames(fd)) {
    struct stat st;
    if (fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return errno;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (unlinkat(fd, n.c_str(), 0) != 0) return errno;
      continue;
    }
    int child =
        openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) return errno;
    int err = PlainEmpty(child);
    close(child);
    if (err != 0) return err;
    if (unlinkat(fd, n.c_str(), AT_REMOVEDIR) != 0) return errno;
  }
  return 0;
}

// RemoveAll's contract in plain calls.
int PlainRemoveAll(int dirfd, const std::string& path) {
  absl::string_view last = LastName(path);
  if (last.empty() || last == "." || last == "..") {
    int fd = openat(dirfd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : errno;
    int err = PlainEmpty(fd);
    close(fd);
    return err;
  }
  const bool trailing = capfs::HasTrailingSlash(path);
  std::string name = path.substr(
      0, static_cast<size_t>(last.data() + last.size() - path.data()));
  struct stat st;
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? 0 : errno;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (trailing) return ENOTDIR;
    return unlinkat(dirfd, name.c_str(), 0) == 0 ? 0 : errno;
  }
  int fd = openat(dirfd, name.c_str(),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = PlainEmpty(fd);
  close(fd);
  if (err != 0) return err;
  return unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0 ? 0 : errno;
}

// Walk's contract in plain calls: "rel:kind" of every entry visited.
int PlainWalkBelow(int fd, const std::string& rel,
                   std::vector<std::string>* out) {
  for (const std::string& n : PlainNames(fd)) {
    struct stat st;
    if (fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return errno;
    }
    std::string r = rel.empty() ? n : absl::StrCat(rel, "/", n);
    out->push_back(absl::StrCat(r, ":", KindName(st.st_mode)));
    if (!S_ISDIR(st.st_mode)) continue;
    int child =
        openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) return errno;
    int err = PlainWalkBelow(child, r, out);
    close(child);
    if (err != 0) return err;
  }
  return 0;
}

RawResult PlainWalk(int dirfd, const std::string& path) {
  int fd = openat(dirfd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int open_err = fd < 0 ? errno : 0;
  struct stat st;
  if (fd >= 0) {
    fstat(fd, &st);
  } else if (open_err == ENOTDIR || open_err == EACCES) {
    if (fstatat(dirfd, path.c_str(), &st, 0) != 0) return ErrorResult(errno);
  } else {
    return ErrorResult(open_err);
  }
  std::vector<std::string> visited = {absl::StrCat(".:", KindName(st.st_mode))};
  int err = 0;
  if (S_ISDIR(st.st_mode)) {
    err = fd < 0 ? open_err : PlainWalkBelow(fd, "", &visited);
  }
  if (fd >= 0) close(fd);
  if (err != 0) return ErrorResult(err);
  RawResult r;
  r.text = absl::StrJoin(visited, ",");
  return r;
}

}  // namespace

const std::vector<Op>& AllOps() {
  static const std::vector<Op>* ops = new std::vector<Op>{
      {"OpenRdonly", OpKind::kOpen, O_RDONLY},
      {"OpenNofollow", OpKind::kOpen, O_RDONLY | O_NOFOLLOW},
      {"OpenDirectoryFlag", OpKind::kOpen, O_RDONLY | O_DIRECTORY},
      {"OpenPath", OpKind::kOpen, O_PATH},
      {"OpenPathNofollow", OpKind::kOpen, O_PATH | O_NOFOLLOW},
      {"OpenCreate", OpKind::kOpen, O_WRONLY | O_CREAT, 0640},
      {"OpenCreateExcl", OpKind::kOpen, O_WRONLY | O_CREAT | O_EXCL, 0600},
      {"OpenCreateNofollow", OpKind::kOpen, O_WRONLY | O_CREAT | O_NOFOLLOW,
       0600},
      {"OpenTruncate", OpKind::kOpen, O_WRONLY | O_TRUNC},
      {"OpenAppend", OpKind::kOpen, O_RDWR | O_APPEND},
      {"OpenTmpfile", OpKind::kOpen, O_TMPFILE | O_RDWR, 0600},
      // Flags the kernel refuses (EINVAL) before it looks the path up.
      {"OpenCreateDirectory", OpKind::kOpen, O_RDONLY | O_CREAT | O_DIRECTORY,
       0640},
      {"OpenTmpfileReadOnly", OpKind::kOpen, O_TMPFILE | O_RDONLY, 0600},
      {"OpenDir", OpKind::kOpenDir},
      {"Stat", OpKind::kStat},
      {"Lstat", OpKind::kLstat},
      {"ReadLink", OpKind::kReadLink},
      {"ReadDir", OpKind::kReadDir},
      {"Mkdir", OpKind::kMkdir, 0, 0750},
      {"Unlink", OpKind::kUnlink},
      {"Rmdir", OpKind::kRmdir},
      {"Symlink", OpKind::kSymlink},
      {"RenameFrom", OpKind::kRenameFrom},
      {"RenameTo", OpKind::kRenameTo},
      {"RenameAcross", OpKind::kRenameAcross},
      {"RenameWithin", OpKind::kRenameWithin},
      {"RenameToMissing", OpKind::kRenameToMissing},
      {"SymlinkEmptyTarget", OpKind::kSymlinkEmptyTarget},
      {"LinkFrom", OpKind::kLinkFrom},
      {"LinkTo", OpKind::kLinkTo},
      {"RenameNoReplace", OpKind::kRenameNoReplace},
      {"RenameExchange", OpKind::kRenameExchange},
      {"Chmod", OpKind::kChmod, 0, 0700},
      {"Chown", OpKind::kChown},
      {"Lchown", OpKind::kLchown},
      {"SetTimes", OpKind::kSetTimes},
      {"Truncate", OpKind::kTruncate},
      {"MkdirAll", OpKind::kMkdirAll, 0, 0750},
      {"RemoveAll", OpKind::kRemoveAll},
      {"ReadFile", OpKind::kReadFile},
      {"WriteFile", OpKind::kWriteFile, 0, 0640},
      {"Walk", OpKind::kWalk},
  };
  return *ops;
}

bool Mutates(const Op& op) {
  switch (op.kind) {
    case OpKind::kOpen:
      return (op.flags & (O_CREAT | O_TRUNC)) != 0;
    case OpKind::kMkdir:
    case OpKind::kUnlink:
    case OpKind::kRmdir:
    case OpKind::kSymlink:
    case OpKind::kRenameFrom:
    case OpKind::kRenameTo:
    case OpKind::kRenameAcross:
    case OpKind::kRenameWithin:
    case OpKind::kRenameToMissing:
    case OpKind::kSymlinkEmptyTarget:
    case OpKind::kLinkFrom:
    case OpKind::kLinkTo:
    case OpKind::kRenameNoReplace:
    case OpKind::kRenameExchange:
    case OpKind::kChmod:
    case OpKind::kChown:
    case OpKind::kLchown:
    case OpKind::kSetTimes:
    case OpKind::kTruncate:
    case OpKind::kMkdirAll:
    case OpKind::kRemoveAll:
    case OpKind::kWriteFile:
      return true;
    default:
      return false;
  }
}

bool FailsBeforeLookup(const Op& op) {
  if (op.kind == OpKind::kSymlinkEmptyTarget) return true;
  if (op.kind != OpKind::kOpen) return false;
  // fs/open.c, build_open_flags: O_CREAT with O_DIRECTORY (O_TMPFILE
  // carries O_DIRECTORY), and O_TMPFILE without write access.
  if ((op.flags & (O_CREAT | O_DIRECTORY)) == (O_CREAT | O_DIRECTORY)) {
    return true;
  }
  return (op.flags & O_TMPFILE) == O_TMPFILE &&
         (op.flags & O_ACCMODE) == O_RDONLY;
}

bool FollowsLast(const Op& op, const std::string& path) {
  bool trailing = capfs::HasTrailingSlash(path);
  switch (op.kind) {
    case OpKind::kOpen:
      // O_CREAT with a trailing slash is EISDIR before the link is looked
      // at; O_CREAT|O_EXCL and O_NOFOLLOW act on the link itself.
      if ((op.flags & O_CREAT) && trailing) return false;
      if ((op.flags & O_CREAT) && (op.flags & O_EXCL)) return false;
      if ((op.flags & O_NOFOLLOW) && !trailing) return false;
      return true;
    case OpKind::kOpenDir:
    case OpKind::kStat:
    case OpKind::kReadDir:
    case OpKind::kChmod:
    case OpKind::kChown:
    case OpKind::kSetTimes:
    case OpKind::kTruncate:
    case OpKind::kMkdirAll:
    case OpKind::kReadFile:
    case OpKind::kWalk:
      return true;
    case OpKind::kWriteFile:
      return !trailing;  // as O_CREAT: "name/" is EISDIR first
    case OpKind::kLstat:
    case OpKind::kReadLink:
    case OpKind::kLchown:
    case OpKind::kLinkFrom:
      return trailing;  // a trailing slash follows, as in the kernel
    default:
      return false;  // the *at calls on a name never follow it
  }
}

std::string RawResult::Serialize() const {
  return absl::StrCat(err, " ", static_cast<int>(violation), " ", ino, " ",
                      kind.empty() ? "-" : kind, " ", text);
}

RawResult RawResult::Parse(const std::string& s) {
  std::vector<std::string> parts = absl::StrSplit(s, absl::MaxSplits(' ', 4));
  RawResult r;
  if (parts.size() != 5) {
    r.err = -1;
    r.text = "unparsable child result: " + s;
    return r;
  }
  int v = 0;
  uint64_t ino = 0;
  (void)absl::SimpleAtoi(parts[0], &r.err);
  (void)absl::SimpleAtoi(parts[1], &v);
  (void)absl::SimpleAtoi(parts[2], &ino);
  r.violation = static_cast<capfs::Violation>(v);
  r.ino = ino;
  r.kind = parts[3] == "-" ? "" : parts[3];
  r.text = parts[4];
  return r;
}

RawResult RunCapfs(const Op& op, const capfs::Dir& root, const capfs::Dir& sub,
                   const std::string& path) {
  switch (op.kind) {
    case OpKind::kOpen: {
      absl::StatusOr<capfs::Fd> fd = root.OpenAt(path, op.flags, op.mode);
      if (!fd.ok()) return FromStatus(fd.status());
      return FromFd(fd->get());
    }
    case OpKind::kOpenDir: {
      absl::StatusOr<capfs::Dir> d = root.OpenDir(path);
      if (!d.ok()) return FromStatus(d.status());
      RawResult r = FromFd(d->fd());
      if (d->options().scope != root.options().scope ||
          d->options().resolver != root.options().resolver) {
        r.text = "options not inherited";
      }
      return r;
    }
    case OpKind::kStat:
    case OpKind::kLstat: {
      absl::StatusOr<capfs::FileStat> st =
          op.kind == OpKind::kStat ? root.Stat(path) : root.Lstat(path);
      if (!st.ok()) return FromStatus(st.status());
      RawResult r;
      r.ino = st->ino;
      r.kind = KindName(st->kind);
      return r;
    }
    case OpKind::kReadLink: {
      absl::StatusOr<std::string> t = root.ReadLink(path);
      if (!t.ok()) return FromStatus(t.status());
      RawResult r;
      r.text = *t;
      return r;
    }
    case OpKind::kReadDir: {
      absl::StatusOr<std::vector<capfs::DirEntry>> entries = root.ReadDir(path);
      if (!entries.ok()) return FromStatus(entries.status());
      std::vector<std::string> names;
      for (const capfs::DirEntry& e : *entries) {
        names.push_back(absl::StrCat(e.name, ":", KindName(e.kind)));
      }
      RawResult r;
      r.text = Listing(names);
      return r;
    }
    case OpKind::kMkdir:
      return FromStatus(root.Mkdir(path, op.mode));
    case OpKind::kUnlink:
      return FromStatus(root.Unlink(path));
    case OpKind::kRmdir:
      return FromStatus(root.Rmdir(path));
    case OpKind::kSymlink:
      return FromStatus(root.Symlink(kSymlinkTarget, path));
    case OpKind::kRenameFrom:
      return FromStatus(root.Rename(path, root, "renamed"));
    case OpKind::kRenameTo:
      return FromStatus(root.Rename("empty_file", root, path));
    case OpKind::kRenameAcross:
      return FromStatus(root.Rename(path, sub, "moved"));
    case OpKind::kRenameWithin:
      return FromStatus(root.Rename(path, root, Sibling(path)));
    case OpKind::kRenameToMissing:
      return FromStatus(root.Rename(path, root, "missing_dir/x"));
    case OpKind::kSymlinkEmptyTarget:
      return FromStatus(root.Symlink("", path));
    case OpKind::kLinkFrom:
      return FromStatus(root.Link(path, root, "linked"));
    case OpKind::kLinkTo:
      return FromStatus(root.Link("file", root, path));
    case OpKind::kRenameNoReplace:
      return FromStatus(
          root.Rename(path, root, "file", capfs::RenameMode::kNoReplace));
    case OpKind::kRenameExchange:
      return FromStatus(
          root.Rename(path, root, "file", capfs::RenameMode::kExchange));
    case OpKind::kChmod:
      return FromStatus(root.Chmod(path, op.mode));
    case OpKind::kChown:
      return FromStatus(root.Chown(path, kOwner, kOwner));
    case OpKind::kLchown:
      return FromStatus(root.Lchown(path, kOwner, kOwner));
    case OpKind::kSetTimes:
      return FromStatus(root.SetTimes(path,
                                      absl::TimeFromTimespec(TestTimes()[0]),
                                      absl::TimeFromTimespec(TestTimes()[1])));
    case OpKind::kTruncate:
      return FromStatus(root.Truncate(path, kTruncateLength));
    case OpKind::kMkdirAll:
      return FromStatus(root.MkdirAll(path, op.mode));
    case OpKind::kRemoveAll:
      return FromStatus(root.RemoveAll(path));
    case OpKind::kReadFile: {
      absl::StatusOr<std::string> content = root.ReadFile(path);
      if (!content.ok()) return FromStatus(content.status());
      RawResult r;
      r.text = *content;
      return r;
    }
    case OpKind::kWriteFile:
      return FromStatus(root.WriteFile(path, kWriteData, op.mode));
    case OpKind::kWalk: {
      std::vector<std::string> visited;
      absl::Status s =
          root.Walk(path,
                    [&](absl::string_view rel,
                        const capfs::FileStat& st) -> absl::StatusOr<bool> {
                      visited.push_back(absl::StrCat(rel.empty() ? "." : rel,
                                                     ":", KindName(st.kind)));
                      return true;
                    });
      if (!s.ok()) return FromStatus(s);
      RawResult r;
      r.text = absl::StrJoin(visited, ",");
      return r;
    }
  }
  return ErrorResult(-1);
}

RawResult RunPlain(const Op& op, int dirfd, int subfd,
                   const std::string& path) {
  const char* p = path.c_str();
  switch (op.kind) {
    case OpKind::kOpen: {
      int fd = openat(dirfd, p, op.flags | O_CLOEXEC, op.mode);
      if (fd < 0) return ErrorResult(errno);
      RawResult r = FromFd(fd);
      close(fd);
      return r;
    }
    case OpKind::kOpenDir: {
      int fd = openat(dirfd, p, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return ErrorResult(errno);
      RawResult r = FromFd(fd);
      close(fd);
      return r;
    }
    case OpKind::kStat:
    case OpKind::kLstat: {
      struct stat st;
      int flags = op.kind == OpKind::kStat ? 0 : AT_SYMLINK_NOFOLLOW;
      if (fstatat(dirfd, p, &st, flags) != 0) return ErrorResult(errno);
      return FromStat(st);
    }
    case OpKind::kReadLink: {
      char buf[PATH_MAX];
      ssize_t n = readlinkat(dirfd, p, buf, sizeof(buf));
      if (n < 0) return ErrorResult(errno);
      RawResult r;
      r.text = std::string(buf, static_cast<size_t>(n));
      return r;
    }
    case OpKind::kReadDir: {
      int fd = openat(dirfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return ErrorResult(errno);
      DIR* d = fdopendir(fd);
      if (d == nullptr) {
        int err = errno;
        close(fd);
        return ErrorResult(err);
      }
      std::vector<std::string> names;
      errno = 0;
      while (struct dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        const char* kind = e->d_type == DT_REG   ? "file"
                           : e->d_type == DT_DIR ? "dir"
                           : e->d_type == DT_LNK ? "symlink"
                                                 : "other";
        names.push_back(absl::StrCat(n, ":", kind));
      }
      int err = errno;
      closedir(d);
      if (err != 0) return ErrorResult(err);
      RawResult r;
      r.text = Listing(names);
      return r;
    }
    case OpKind::kMkdir:
      return FromErrno(mkdirat(dirfd, p, op.mode));
    case OpKind::kUnlink:
      return FromErrno(unlinkat(dirfd, p, 0));
    case OpKind::kRmdir:
      return FromErrno(unlinkat(dirfd, p, AT_REMOVEDIR));
    case OpKind::kSymlink:
      return FromErrno(symlinkat(kSymlinkTarget, dirfd, p));
    case OpKind::kRenameFrom:
      return FromErrno(renameat(dirfd, p, dirfd, "renamed"));
    case OpKind::kRenameTo:
      return FromErrno(renameat(dirfd, "empty_file", dirfd, p));
    case OpKind::kRenameAcross:
      return FromErrno(renameat(dirfd, p, subfd, "moved"));
    case OpKind::kRenameWithin:
      return FromErrno(renameat(dirfd, p, dirfd, Sibling(path).c_str()));
    case OpKind::kRenameToMissing:
      return FromErrno(renameat(dirfd, p, dirfd, "missing_dir/x"));
    case OpKind::kSymlinkEmptyTarget:
      return FromErrno(symlinkat("", dirfd, p));
    case OpKind::kLinkFrom:
      return FromErrno(linkat(dirfd, p, dirfd, "linked", 0));
    case OpKind::kLinkTo:
      return FromErrno(linkat(dirfd, "file", dirfd, p, 0));
    case OpKind::kRenameNoReplace:
      return FromErrno(renameat2(dirfd, p, dirfd, "file", RENAME_NOREPLACE));
    case OpKind::kRenameExchange:
      return FromErrno(renameat2(dirfd, p, dirfd, "file", RENAME_EXCHANGE));
    case OpKind::kChmod:
      return FromErrno(fchmodat(dirfd, p, op.mode, 0));
    case OpKind::kChown:
      return FromErrno(fchownat(dirfd, p, kOwner, kOwner, 0));
    case OpKind::kLchown:
      return FromErrno(fchownat(dirfd, p, kOwner, kOwner, AT_SYMLINK_NOFOLLOW));
    case OpKind::kSetTimes:
      return FromErrno(utimensat(dirfd, p, TestTimes(), 0));
    case OpKind::kTruncate: {
      // truncate(2) has no *at form: from the directory, made the current
      // one for the call (a procfs path to it would count one more link).
      if (dirfd == AT_FDCWD) return FromErrno(truncate(p, kTruncateLength));
      int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (cwd < 0 || fchdir(dirfd) != 0) return ErrorResult(-1);
      RawResult r = FromErrno(truncate(p, kTruncateLength));
      if (fchdir(cwd) != 0) r = ErrorResult(-1);
      close(cwd);
      return r;
    }
    case OpKind::kMkdirAll:
      return ErrorResult(PlainMkdirAll(dirfd, path, op.mode));
    case OpKind::kRemoveAll:
      return ErrorResult(PlainRemoveAll(dirfd, path));
    case OpKind::kReadFile: {
      int fd = openat(dirfd, p, O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrorResult(errno);
      RawResult r;
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) r.text.append(buf, n);
      if (n < 0) r = ErrorResult(errno);
      close(fd);
      return r;
    }
    case OpKind::kWriteFile: {
      int fd = openat(
          dirfd, p,
          O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
          op.mode);
      if (fd < 0) return ErrorResult(errno);
      ssize_t n = write(fd, kWriteData, strlen(kWriteData));
      int err = n < 0 ? errno : 0;
      close(fd);
      return ErrorResult(err);
    }
    case OpKind::kWalk:
      return PlainWalk(dirfd, path);
  }
  return ErrorResult(-1);
}

std::string Describe(const RawResult& r,
                     const std::map<ino_t, std::string>& inodes,
                     const std::string& hide) {
  switch (r.violation) {
    case capfs::Violation::kEscape:
      return "escape";
    case capfs::Violation::kAbsolutePath:
      return "absolute path refused";
    case capfs::Violation::kReadOnly:
      return "read-only refused";
    case capfs::Violation::kNone:
      break;
  }
  if (r.err != 0) {
    if (r.err < 0) return absl::StrCat("error without errno: ", r.text);
    const char* name = strerrorname_np(r.err);
    return absl::StrCat("errno ", name ? name : absl::StrCat(r.err));
  }
  std::string out = "ok";
  if (r.ino != 0) {
    auto it = inodes.find(r.ino);
    absl::StrAppend(&out, " ", it == inodes.end() ? "<unnamed>" : it->second,
                    " (", r.kind, ")");
  }
  if (!r.text.empty()) {
    absl::StrAppend(&out, " [", absl::StrReplaceAll(r.text, {{hide, "<TREE>"}}),
                    "]");
  }
  return out;
}

}  // namespace capfs_test

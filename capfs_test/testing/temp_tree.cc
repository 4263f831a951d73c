#include "capfs_test/testing/temp_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace capfs_test {
namespace {

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void Snapshot(const std::string& root, const std::string& rel,
              absl::string_view hide, std::string* out) {
  std::string full = rel.empty() ? root : absl::StrCat(root, "/", rel);
  struct stat st;
  if (lstat(full.c_str(), &st) != 0) {
    absl::StrAppend(out, rel, " <gone>\n");
    return;
  }
  std::string line = absl::StrCat(rel.empty() ? "." : rel, " ");
  // What chown, utimensat and link change, shown only when a test changed
  // it: an owner other than root, a modification time before 2001 (the
  // twins' own times differ), a second hard link.
  std::string extra;
  if (st.st_uid != 0 || st.st_gid != 0) {
    absl::StrAppend(&extra, " owner=", st.st_uid, ":", st.st_gid);
  }
  if (st.st_mtim.tv_sec < 1000000000) {
    absl::StrAppend(&extra, " mtime=", st.st_mtim.tv_sec, ".",
                    st.st_mtim.tv_nsec);
  }
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    absl::StrAppend(&extra, " links=", st.st_nlink);
  }
  char perm[8];
  snprintf(perm, sizeof(perm), "%04o", st.st_mode & 07777);
  if (!extra.empty()) absl::StrAppend(&line, extra.substr(1), " ");
  if (S_ISDIR(st.st_mode)) {
    absl::StrAppend(out, line, "dir ", perm, "\n");
    // Reading a locked directory needs its permissions lifted for a moment.
    bool locked = (st.st_mode & 0500) != 0500;
    if (locked) chmod(full.c_str(), st.st_mode | 0700);
    std::vector<std::string> names = ListDir(full);
    if (locked) chmod(full.c_str(), st.st_mode & 07777);
    for (const std::string& n : names) {
      Snapshot(root, rel.empty() ? n : absl::StrCat(rel, "/", n), hide, out);
    }
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(full.c_str(), target, sizeof(target));
    std::string t(target, n < 0 ? 0 : static_cast<size_t>(n));
    if (!hide.empty()) t = absl::StrReplaceAll(t, {{hide, "<TREE>"}});
    absl::StrAppend(out, line, "symlink -> ", t, "\n");
  } else if (S_ISREG(st.st_mode)) {
    std::string content;
    int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) content.append(buf, n);
      close(fd);
    } else {
      content = "<unreadable>";
    }
    absl::StrAppend(out, line, "file ", perm, " \"", content, "\"\n");
  } else {
    absl::StrAppend(out, line, "other ", perm, "\n");
  }
}

void Inodes(const std::string& root, const std::string& rel,
            std::map<ino_t, std::string>* out) {
  std::string full = rel.empty() ? root : absl::StrCat(root, "/", rel);
  struct stat st;
  if (lstat(full.c_str(), &st) != 0) return;
  out->emplace(st.st_ino, rel.empty() ? "." : rel);
  if (!S_ISDIR(st.st_mode)) return;
  bool locked = (st.st_mode & 0500) != 0500;
  if (locked) chmod(full.c_str(), st.st_mode | 0700);
  std::vector<std::string> names = ListDir(full);
  if (locked) chmod(full.c_str(), st.st_mode & 07777);
  for (const std::string& n : names) {
    Inodes(root, rel.empty() ? n : absl::StrCat(rel, "/", n), out);
  }
}

}  // namespace

void CheckOrDie(bool ok, absl::string_view what) {
  if (ok) return;
  // errno tells the cause when `ok` came from a syscall; otherwise it is
  // only whatever the last call left there.
  fprintf(stderr, "test setup failed: %.*s (errno: %s)\n",
          static_cast<int>(what.size()), what.data(), strerror(errno));
  abort();
}

// Where temporary trees go: a tmpfs when there is a writable one, since the
// tests create and remove thousands of entries (on this project's ext4 test
// machines a symlink creation costs about 0.7 ms; on tmpfs, microseconds).
std::string TempBase() {
  struct statfs st;
  if (statfs("/dev/shm", &st) == 0 && st.f_type == TMPFS_MAGIC &&
      access("/dev/shm", W_OK | X_OK) == 0) {
    return "/dev/shm";
  }
  const char* base = getenv("TEST_TMPDIR");
  return base ? base : "/tmp";
}

TempDir::TempDir() {
  std::string tmpl = absl::StrCat(TempBase(), "/capfs.XXXXXX");
  CheckOrDie(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  CheckOrDie(chmod(tmpl.c_str(), 0755) == 0, "chmod temp dir");
  path_ = tmpl;
}

TempDir::~TempDir() { RemoveTree(path_); }

std::string TempDir::Join(absl::string_view rel) const {
  return absl::StrCat(path_, "/", rel);
}

// The entries of the directory `dirfd`, without "." and "..".
std::vector<std::string> ListDirAt(int dirfd) {
  std::vector<std::string> names;
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return names;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return names;
  }
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path.c_str());
    return;
  }
  // Depth first, relative to one descriptor at a time, so that trees deeper
  // than PATH_MAX (or than the descriptor limit) go too.
  chmod(path.c_str(), 0700);
  int cur = open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (cur < 0) return;
  std::vector<std::string> entered;  // the directories below `path`
  std::set<ino_t> stuck;  // directories that would not go: not entered again
  for (;;) {
    std::string subdir;
    for (const std::string& n : ListDirAt(cur)) {
      if (fstatat(cur, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!S_ISDIR(st.st_mode)) {
        unlinkat(cur, n.c_str(), 0);
      } else if (unlinkat(cur, n.c_str(), AT_REMOVEDIR) != 0 &&
                 stuck.count(st.st_ino) == 0) {
        subdir = n;
      }
    }
    if (!subdir.empty()) {
      fchmodat(cur, subdir.c_str(), 0700, 0);
      int next = openat(cur, subdir.c_str(),
                        O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next >= 0) {
        close(cur);
        cur = next;
        entered.push_back(subdir);
      } else if (fstatat(cur, subdir.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        stuck.insert(st.st_ino);
      }
      continue;
    }
    if (entered.empty()) break;
    // Empty, or all that is left would not go.
    if (fstat(cur, &st) == 0) stuck.insert(st.st_ino);
    int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    close(cur);
    if (up < 0) return;
    cur = up;
    unlinkat(cur, entered.back().c_str(), AT_REMOVEDIR);
    entered.pop_back();
  }
  close(cur);
  rmdir(path.c_str());
}

void RemoveContents(const std::string& path) {
  CheckOrDie(chmod(path.c_str(), 0755) == 0, "chmod " + path);
  for (const std::string& n : ListDir(path)) {
    RemoveTree(absl::StrCat(path, "/", n));
  }
}

void MakeDir(int dirfd, const std::string& rel, mode_t mode) {
  CheckOrDie(mkdirat(dirfd, rel.c_str(), 0700) == 0, "mkdir " + rel);
  ChmodAt(dirfd, rel, mode);
}

void MakeFile(int dirfd, const std::string& rel, absl::string_view content,
              mode_t mode) {
  int fd = openat(dirfd, rel.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  CheckOrDie(fd >= 0, "create " + rel);
  CheckOrDie(write(fd, content.data(), content.size()) ==
                 static_cast<ssize_t>(content.size()),
             "write " + rel);
  close(fd);
  ChmodAt(dirfd, rel, mode);
}

void MakeSymlink(int dirfd, const std::string& target, const std::string& rel) {
  CheckOrDie(symlinkat(target.c_str(), dirfd, rel.c_str()) == 0,
             "symlink " + rel);
}

void ChmodAt(int dirfd, const std::string& rel, mode_t mode) {
  CheckOrDie(fchmodat(dirfd, rel.c_str(), mode, 0) == 0, "chmod " + rel);
}

std::string SnapshotTree(const std::string& path, absl::string_view hide) {
  std::string out;
  Snapshot(path, "", hide, &out);
  return out;
}

std::map<ino_t, std::string> InodePaths(const std::string& path) {
  std::map<ino_t, std::string> out;
  Inodes(path, "", &out);
  return out;
}

}  // namespace capfs_test

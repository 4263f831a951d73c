#include "capfs/internal/userspace_resolver.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>

#include <atomic>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "capfs/internal/syscall.h"
#include "capfs/path.h"

namespace capfs {
namespace internal {
namespace {

// faccessat2 may be missing (before Linux 5.8) or refused by a seccomp
// filter; then search permission is checked by looking "." up instead.
std::atomic<bool> g_faccessat2_works{true};

}  // namespace

int CheckSearch(int dirfd) {
  if (g_faccessat2_works.load(std::memory_order_relaxed)) {
    int r = SysFaccessat2(dirfd, "", X_OK, AT_EMPTY_PATH);
    if (r != -ENOSYS && r != -EPERM) return -r;
    g_faccessat2_works.store(false, std::memory_order_relaxed);
  }
  int fd = SysOpenAt(dirfd, ".", O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return -fd;
  Fd closer(fd);
  return 0;
}

namespace {

// True when `dirfd` is a directory on procfs, where symlinks may be magic.
bool OnProcfs(int dirfd) {
  struct statfs st;
  int r = dirfd == AT_FDCWD
              ? RetryEintr([&] { return ::statfs(".", &st); })
              : SysFstatfs(dirfd, &st);
  return r == 0 && st.f_type == PROC_SUPER_MAGIC;
}

// One resolution: the state Eio's Resolve module keeps, made explicit.
class Walk {
 public:
  Walk(Root root, const char* path) : root_(root) {
    segments_.emplace_back();
    segments_.back().borrowed = absl::string_view(path);
  }
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;

  int Open(int flags, mode_t mode, Fd* out);
  int Stat(bool follow, struct stat* st);
  int ResolveParent(ParentDir* out);

 private:
  // A stretch of path still to walk: the caller's path, or a symlink target.
  struct Segment {
    absl::string_view borrowed;
    std::string owned;
    bool is_owned = false;
    size_t pos = 0;
    absl::string_view text() const {
      return is_owned ? absl::string_view(owned) : borrowed;
    }
    absl::string_view rest() const { return text().substr(pos); }
  };

  // The last component, found by ToLast.
  struct Leaf {
    absl::string_view name;  // empty: the path had no component at all
    bool trailing_slash = false;
  };

  int cur() const { return stack_.empty() ? root_.fd : stack_.back().get(); }

  bool NextComponent(Component* c, bool* last);
  int ToLast();
  int Pop();
  int Descend(absl::string_view name);
  int Follow(int dirfd, const char* name, int not_a_link_err);
  int PushTarget(absl::string_view target, int dirfd);
  const char* LeafName();
  int RefuseHere(int err);
  int OpenSelf(int flags, mode_t mode, Fd* out);
  int OpenWithoutLookup(int flags, mode_t mode, Fd* out);

  Root root_;
  // Inline room for a 256-byte path's worth of levels: no allocation there.
  absl::InlinedVector<Fd, 128> stack_;
  absl::InlinedVector<Segment, 2> segments_;
  int follows_left_ = kMaxSymlinkFollows;
  Leaf leaf_;
  char name_buf_[kNameMax + 1];
};

bool Walk::NextComponent(Component* c, bool* last) {
  while (!segments_.empty()) {
    Segment& s = segments_.back();
    ComponentReader reader(s.rest());
    if (!reader.Next(c)) {
      segments_.pop_back();
      continue;
    }
    s.pos = s.text().size() - reader.rest().size();
    if (!reader.Done()) {
      *last = false;
      return true;
    }
    // The rest of this segment is slashes at most: the component is last
    // unless a segment below still has one. Slashes left below (the
    // trailing slash of a followed link's own name) make a trailing slash.
    *last = true;
    for (size_t i = segments_.size() - 1; i-- > 0;) {
      absl::string_view below = segments_[i].rest();
      if (below.find_first_not_of('/') != absl::string_view::npos) {
        *last = false;
        break;
      }
      if (!below.empty()) c->slash_follows = true;
    }
    return true;
  }
  return false;
}

// Walks every component but the last, which it leaves in leaf_.
int Walk::ToLast() {
  Component c;
  bool last = false;
  while (NextComponent(&c, &last)) {
    if (last) {
      leaf_ = Leaf{c.name, c.slash_follows};
      return 0;
    }
    int r = 0;
    switch (KindOf(c.name)) {
      case ComponentKind::kDot:
        break;
      case ComponentKind::kDotDot:
        r = Pop();
        break;
      case ComponentKind::kName:
        r = Descend(c.name);
        break;
    }
    if (r != 0) return r;
  }
  leaf_ = Leaf{};
  return 0;
}

int Walk::Pop() {
  // The kernel needs search permission on a directory to look ".." up in it.
  if (int r = CheckSearch(cur()); r != 0) return r;
  if (stack_.empty()) {
    return root_.scope == Scope::kBeneath ? kEscape : 0;
  }
  stack_.pop_back();
  return 0;
}

int Walk::Descend(absl::string_view name) {
  if (name.size() > kNameMax) return RefuseHere(ENAMETOOLONG);
  memcpy(name_buf_, name.data(), name.size());
  name_buf_[name.size()] = '\0';
  int fd = SysOpenAt(cur(), name_buf_, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
  if (fd >= 0) {
    stack_.emplace_back(fd);
    return 0;
  }
  if (fd == -ENOTDIR || fd == -ELOOP) return Follow(cur(), name_buf_, -fd);
  return -fd;
}

// `name` in `dirfd` looked like a symlink (the open said `not_a_link_err`):
// continues the walk from its target, or returns `not_a_link_err` when it is
// not a symlink after all.
int Walk::Follow(int dirfd, const char* name, int not_a_link_err) {
  char target[kPathMax];
  ssize_t n = SysReadLinkAt(dirfd, name, target, sizeof(target));
  if (n < 0) return not_a_link_err;
  if (static_cast<size_t>(n) >= sizeof(target)) return ENAMETOOLONG;
  return PushTarget(absl::string_view(target, static_cast<size_t>(n)), dirfd);
}

int Walk::PushTarget(absl::string_view target, int dirfd) {
  if (follows_left_ == 0) return ELOOP;
  --follows_left_;
  if (target.empty()) return ENOENT;
  // A procfs link to a file, pipe or namespace ("/dev/pts/0",
  // "pipe:[1234]") is a magic link: the kernel would jump to the object, not
  // walk the text. openat2 with RESOLVE_NO_MAGICLINKS says ELOOP.
  if ((IsAbsolute(target) || target.find(':') != absl::string_view::npos) &&
      OnProcfs(dirfd)) {
    return ELOOP;
  }
  if (IsAbsolute(target)) {
    if (root_.scope == Scope::kBeneath) return kEscape;
    stack_.clear();
  }
  Segment s;
  s.owned = std::string(target);
  s.is_owned = true;
  segments_.push_back(std::move(s));
  return 0;
}

// `err`, for a component of the current directory that the walk refuses
// without a syscall (a name longer than NAME_MAX, O_CREAT with a trailing
// slash): the kernel first checks search permission on the directory, as it
// does before every component, so EACCES comes first.
int Walk::RefuseHere(int err) {
  if (int r = CheckSearch(cur()); r != 0) return r;
  return err;
}

// The leaf's name without its slashes, NUL-terminated; nullptr when too long.
const char* Walk::LeafName() {
  if (leaf_.name.size() > kNameMax) return nullptr;
  memcpy(name_buf_, leaf_.name.data(), leaf_.name.size());
  name_buf_[leaf_.name.size()] = '\0';
  return name_buf_;
}

int Walk::OpenSelf(int flags, mode_t mode, Fd* out) {
  int fd = SysOpenAt(cur(), ".", flags, mode);
  if (fd < 0) return -fd;
  *out = Fd(fd);
  return 0;
}

// The directory the walk is at, for a path that names it with no component
// at all ("/" in InRoot scope, or a link to "/"): the kernel opens it with
// no lookup, so without the search permission on it that openat(fd, ".")
// needs. When that is what fails, the directory is reopened through
// /proc/self/fd: a magic link, but to the very directory the walk holds,
// not one a path named. O_NOFOLLOW would stop at that link; the path it
// stands in for has no last component not to follow.
int Walk::OpenWithoutLookup(int flags, mode_t mode, Fd* out) {
  int fd = SysOpenAt(cur(), ".", flags, mode);
  if (fd == -EACCES) {
    char proc[64];
    if (cur() == AT_FDCWD) {
      snprintf(proc, sizeof(proc), "/proc/self/cwd");
    } else {
      snprintf(proc, sizeof(proc), "/proc/self/fd/%d", cur());
    }
    int again = SysOpenAt(AT_FDCWD, proc, flags & ~O_NOFOLLOW, mode);
    if (again != -ENOENT) fd = again;  // no /proc: EACCES it is
  }
  if (fd < 0) return -fd;
  *out = Fd(fd);
  return 0;
}

int Walk::Open(int flags, mode_t mode, Fd* out) {
  const bool nofollow = (flags & O_NOFOLLOW) != 0;
  for (;;) {
    if (int r = ToLast(); r != 0) return r;
    if (leaf_.name.empty()) return OpenWithoutLookup(flags, mode, out);
    switch (KindOf(leaf_.name)) {
      case ComponentKind::kDotDot:
        if (int r = Pop(); r != 0) return r;
        return OpenSelf(flags, mode, out);
      case ComponentKind::kDot:
        return OpenSelf(flags, mode, out);
      case ComponentKind::kName:
        break;
    }
    // O_CREAT with a trailing slash is EISDIR before the name is looked up
    // (so before its length matters).
    if (leaf_.trailing_slash && (flags & O_CREAT)) return RefuseHere(EISDIR);
    const char* name = LeafName();
    if (name == nullptr) return RefuseHere(ENAMETOOLONG);
    int fd;
    if (leaf_.trailing_slash) {
      // A trailing slash asks for a directory and follows a symlink, even
      // under O_NOFOLLOW. openat(fd, "x/", O_NOFOLLOW) would follow x in the
      // kernel, unconfined: open "x" itself as a directory instead.
      fd = SysOpenAt(cur(), name, flags | O_NOFOLLOW | O_DIRECTORY, mode);
      if (fd >= 0) {
        *out = Fd(fd);
        return 0;
      }
      if (fd != -ENOTDIR && fd != -ELOOP) return -fd;
    } else {
      fd = SysOpenAt(cur(), name, flags | O_NOFOLLOW, mode);
      if (fd >= 0) {
        if ((flags & O_PATH) && !nofollow && !(flags & O_DIRECTORY)) {
          // O_PATH|O_NOFOLLOW opens a symlink itself instead of failing.
          struct stat st;
          int r = SysFstat(fd, &st);
          if (r < 0) {
            Fd closer(fd);
            return -r;
          }
          if (S_ISLNK(st.st_mode)) {
            Fd closer(fd);
            if (int r = Follow(cur(), name, ELOOP); r != 0) return r;
            continue;
          }
        }
        *out = Fd(fd);
        return 0;
      }
      if (nofollow) return -fd;
      // A symlink opened with O_NOFOLLOW is ELOOP, or ENOTDIR if O_DIRECTORY
      // was asked for too.
      bool maybe_link =
          fd == -ELOOP || (fd == -ENOTDIR && (flags & O_DIRECTORY));
      if (!maybe_link) return -fd;
    }
    if (int r = Follow(cur(), name, -fd); r != 0) return r;
  }
}

int Walk::Stat(bool follow, struct stat* st) {
  for (;;) {
    if (int r = ToLast(); r != 0) return r;
    const char* name = ".";
    if (!leaf_.name.empty()) {
      switch (KindOf(leaf_.name)) {
        case ComponentKind::kDotDot:
          if (int r = Pop(); r != 0) return r;
          break;
        case ComponentKind::kDot:
          break;
        case ComponentKind::kName:
          name = LeafName();
          if (name == nullptr) return RefuseHere(ENAMETOOLONG);
          break;
      }
    }
    // No component at all ("/" in InRoot scope): the directory itself, with
    // no lookup, so no search permission needed, as in the kernel.
    int r = leaf_.name.empty()
                ? SysFstatAt(cur(), "", st, AT_EMPTY_PATH)
                : SysFstatAt(cur(), name, st, AT_SYMLINK_NOFOLLOW);
    if (r < 0) return -r;
    if (S_ISLNK(st->st_mode) && (follow || leaf_.trailing_slash)) {
      if (int r = Follow(cur(), name, ELOOP); r != 0) return r;
      continue;
    }
    if (leaf_.trailing_slash && !S_ISDIR(st->st_mode)) return ENOTDIR;
    return 0;
  }
}

int Walk::ResolveParent(ParentDir* out) {
  if (int r = ToLast(); r != 0) return r;
  if (leaf_.name.empty()) {
    out->last = nullptr;
  } else {
    if (KindOf(leaf_.name) == ComponentKind::kDotDot && stack_.empty() &&
        root_.scope == Scope::kBeneath) {
      return kEscape;
    }
    // The last component is never followed here, so it comes from the
    // caller's own path, which is NUL-terminated right after its slashes.
    out->last = leaf_.name.data();
  }
  if (stack_.empty()) {
    out->owned = Fd();
    out->fd = root_.fd;
  } else {
    out->owned = std::move(stack_.back());
    stack_.pop_back();
    out->fd = out->owned.get();
  }
  return 0;
}

}  // namespace

int UserspaceOpen(Root root, const char* path, int flags, mode_t mode,
                  Fd* out) {
  return Walk(root, path).Open(flags, mode, out);
}

int UserspaceStat(Root root, const char* path, bool follow, struct stat* st) {
  return Walk(root, path).Stat(follow, st);
}

int UserspaceResolveParent(Root root, const char* path, ParentDir* out) {
  return Walk(root, path).ResolveParent(out);
}

}  // namespace internal
}  // namespace capfs

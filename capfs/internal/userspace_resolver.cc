#include "capfs/internal/userspace_resolver.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>

#include <atomic>
#include <string>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "capfs/path.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace internal {
namespace {

// What one step of the walk answers: a result for the whole resolution
// (Ok: go on), or how the walk goes on, which only the walk itself sees.
class Step {
 public:
  enum class Next {
    kResult,         // result() is the answer (Ok: go on)
    kFollowed,       // the leaf was a symlink: walk its target
    kRetryStep,      // the name changed under the step: redo it
    kNotALink,       // not a symlink (any more)
    kAncestorMoved,  // a level reopened through ".." is not the directory
                     // the walk left (a concurrent rename): start again
  };

  // Implicit, so that a step returns a resolver's result as it is.
  constexpr Step(ResolveResult r) : next_(Next::kResult), result_(r) {}
  static constexpr Step Followed() { return Step(Next::kFollowed); }
  static constexpr Step RetryStep() { return Step(Next::kRetryStep); }
  static constexpr Step NotALink() { return Step(Next::kNotALink); }
  static constexpr Step AncestorMoved() { return Step(Next::kAncestorMoved); }

  // True when the walk goes on as it was.
  constexpr bool ok() const { return next_ == Next::kResult && result_.ok(); }
  constexpr Next next() const { return next_; }
  // The result, when next() is kResult.
  constexpr ResolveResult result() const { return result_; }

 private:
  explicit constexpr Step(Next next)
      : next_(next), result_(ResolveResult::Ok()) {}

  Next next_;
  ResolveResult result_;
};

// How many times one resolution opens its last component again because the
// name changed between two lookups (a rename racing the walk); past that it
// fails with EAGAIN, as openat2 does when renames keep racing it.
constexpr int kMaxNameChanges = 64;

// SetAncestorReopenHookForTesting's hook and its argument.
std::atomic<void (*)(void*, size_t)> g_reopen_hook{nullptr};
std::atomic<void*> g_reopen_hook_arg{nullptr};

// faccessat2 may be missing (before Linux 5.8) or refused by a seccomp
// filter; then search permission is checked by looking "." up instead.
std::atomic<bool> g_faccessat2_works{true};

}  // namespace

bool ProcFdPath(int fd, char (&buf)[64]) {
  struct statfs st;
  if (SysStatfs("/proc/self/fd", &st) != 0 || st.f_type != PROC_SUPER_MAGIC) {
    return false;
  }
  if (fd == AT_FDCWD) {
    snprintf(buf, sizeof(buf), "/proc/self/cwd");
  } else {
    snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd);
  }
  return true;
}

ResolveResult CheckSearch(int dirfd) {
  if (g_faccessat2_works.load(std::memory_order_relaxed)) {
    int r = SysFaccessat2(dirfd, "", X_OK, AT_EMPTY_PATH);
    if (r != -ENOSYS && r != -EPERM) return ResolveResult::FromSyscall(r);
    g_faccessat2_works.store(false, std::memory_order_relaxed);
  }
  int fd = SysOpenAt(dirfd, ".", O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return ResolveResult::Errno(-fd);
  Fd closer(fd);
  return ResolveResult::Ok();
}

namespace {

// True when `dirfd` is a directory on procfs, where symlinks may be magic.
bool OnProcfs(int dirfd) {
  struct statfs st;
  int r = dirfd == AT_FDCWD ? RetryEintr([&] { return ::statfs(".", &st); })
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

  Step Open(int flags, mode_t mode, Fd* out);
  Step Stat(bool follow, struct stat* st);
  Step ResolveParent(ParentDir* out);

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

  // A directory below the root. Only the last kResolveWindow levels keep
  // their descriptor; a level that leaves the window records its identity,
  // the check its reopen through ".." must pass.
  struct Level {
    Fd fd;  // invalid while the level is outside the window
    dev_t dev = 0;
    ino_t ino = 0;
  };

  // The directory the walk is at: its descriptor is always held.
  int cur() const { return stack_.empty() ? root_.fd : stack_.back().fd.get(); }

  bool NextComponent(Component* c, bool* last);
  Step ToLast();
  ResolveResult Push(Fd fd);
  Step Pop();
  Step ReopenParentOfTop();
  Step Descend(absl::string_view name);
  Step FollowName(const char* name, Fd* object, struct stat* st);
  ResolveResult LookAt(const char* name, Fd* object, struct stat* st);
  ResolveResult FollowLink(const Fd& link);
  ResolveResult PushTarget(absl::string_view target, int dirfd);
  const char* LeafName();
  ResolveResult RefuseHere(int err);
  ResolveResult OpenSelf(int flags, mode_t mode, Fd* out);
  ResolveResult OpenWithoutLookup(int flags, mode_t mode, Fd* out);
  Step OpenLeaf(const char* name, int flags, mode_t mode, Fd* out);
  Step StatLeaf(const char* name, bool follow, struct stat* st);

  Root root_;
  // Inline room for a 256-byte path's worth of levels: no allocation there.
  absl::InlinedVector<Level, 128> stack_;
  absl::InlinedVector<Segment, 2> segments_;
  int follows_left_ = kMaxSymlinkFollows;
  int changes_left_ = kMaxNameChanges;
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
Step Walk::ToLast() {
  Component c;
  bool last = false;
  while (NextComponent(&c, &last)) {
    if (last) {
      leaf_ = Leaf{c.name, c.slash_follows};
      return ResolveResult::Ok();
    }
    Step r = ResolveResult::Ok();
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
    if (!r.ok()) return r;
  }
  leaf_ = Leaf{};
  return ResolveResult::Ok();
}

// Pushes a directory the walk entered. The level that leaves the window
// gives its descriptor up, once its identity is recorded.
ResolveResult Walk::Push(Fd fd) {
  stack_.push_back(Level{std::move(fd)});
  if (ABSL_PREDICT_TRUE(stack_.size() <= kResolveWindow)) {
    return ResolveResult::Ok();
  }
  Level& old = stack_[stack_.size() - 1 - kResolveWindow];
  // Left the window before, and reopened: its identity is recorded.
  if (!old.fd.valid()) return ResolveResult::Ok();
  struct stat st;
  if (int r = SysFstat(old.fd.get(), &st); r < 0) {
    return ResolveResult::Errno(-r);
  }
  old.dev = st.st_dev;
  old.ino = st.st_ino;
  old.fd = Fd();
  return ResolveResult::Ok();
}

Step Walk::Pop() {
  // The kernel needs search permission on a directory to look ".." up in it.
  if (ResolveResult r = CheckSearch(cur()); !r.ok()) return r;
  if (stack_.empty()) {
    return root_.scope == Scope::kBeneath ? ResolveResult::Escape()
                                          : ResolveResult::Ok();
  }
  if (stack_.size() >= 2 && !stack_[stack_.size() - 2].fd.valid()) {
    if (Step r = ReopenParentOfTop(); !r.ok()) return r;
  }
  stack_.pop_back();
  return ResolveResult::Ok();
}

// The level below the top left the window: reopens it through ".." of the
// top (the kernel's ".." of a directory is its parent now, wherever it was
// moved) and checks that it is the directory the walk came down through.
// Anything else means a rename moved the top meanwhile, and going on from
// there could leave the root: kAncestorMoved, and the resolution starts
// again.
Step Walk::ReopenParentOfTop() {
  if (auto hook = g_reopen_hook.load(std::memory_order_acquire)) {
    hook(g_reopen_hook_arg.load(std::memory_order_relaxed), stack_.size() - 1);
  }
  Level& parent = stack_[stack_.size() - 2];
  int fd = SysOpenAt(cur(), "..", O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
  // ENOENT: the top was removed, so it is no longer below its parent.
  if (fd == -ENOENT) return Step::AncestorMoved();
  if (fd < 0) return ResolveResult::Errno(-fd);
  Fd opened(fd);
  struct stat st;
  if (int r = SysFstat(fd, &st); r < 0) return ResolveResult::Errno(-r);
  if (st.st_dev != parent.dev || st.st_ino != parent.ino) {
    return Step::AncestorMoved();
  }
  parent.fd = std::move(opened);
  return ResolveResult::Ok();
}

Step Walk::Descend(absl::string_view name) {
  if (name.size() > kNameMax) return RefuseHere(ENAMETOOLONG);
  memcpy(name_buf_, name.data(), name.size());
  name_buf_[name.size()] = '\0';
  int fd = SysOpenAt(cur(), name_buf_, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
  if (fd >= 0) return Push(Fd(fd));
  if (fd != -ENOTDIR && fd != -ELOOP) return ResolveResult::Errno(-fd);
  // A symlink, or another non-directory, or so it was at that lookup.
  Fd object;
  struct stat st;
  Step r = FollowName(name_buf_, &object, &st);
  if (r.next() != Step::Next::kNotALink) return r;
  if (!S_ISDIR(st.st_mode)) return ResolveResult::Errno(ENOTDIR);
  return Push(std::move(object));
}

// `name` in the current directory was a symlink (or may have been) to a
// lookup: continues the walk from its target (Ok), or, when it is not a
// symlink now, opens what is there to act on (kNotALink, with `*object`
// and `*st`).
//
// The first lookup and readlinkat are two lookups; a rename in between (a
// symlink exchanged with a directory, say) would make the walk fail with an
// ELOOP or ENOTDIR that no state of the tree gives. So when readlinkat finds
// no symlink, the name is looked up once more with O_PATH|O_NOFOLLOW and
// the walk acts on that object through its descriptor.
Step Walk::FollowName(const char* name, Fd* object, struct stat* st) {
  char target[kPathMax];
  ssize_t n = SysReadLinkAt(cur(), name, target, sizeof(target));
  if (n >= 0) {
    if (static_cast<size_t>(n) >= sizeof(target)) {
      return ResolveResult::Errno(ENAMETOOLONG);
    }
    return PushTarget(absl::string_view(target, static_cast<size_t>(n)), cur());
  }
  if (n != -EINVAL && n != -ENOENT) return ResolveResult::FromSyscall(n);
  if (ResolveResult r = LookAt(name, object, st); !r.ok()) return r;
  if (S_ISLNK(st->st_mode)) return FollowLink(*object);
  return Step::NotALink();
}

// Looks `name` up in the current directory without following it, and opens
// what is there (O_PATH) to act on through its descriptor.
ResolveResult Walk::LookAt(const char* name, Fd* object, struct stat* st) {
  int fd = SysOpenAt(cur(), name, O_PATH | O_NOFOLLOW, 0);
  if (fd < 0) return ResolveResult::Errno(-fd);
  *object = Fd(fd);
  return ResolveResult::FromSyscall(SysFstat(fd, st));
}

// Continues the walk from the target of `link`, a symlink in the current
// directory opened with O_PATH|O_NOFOLLOW.
ResolveResult Walk::FollowLink(const Fd& link) {
  char target[kPathMax];
  // readlinkat(2) of "" reads the symlink the descriptor refers to.
  ssize_t n = SysReadLinkAt(link.get(), "", target, sizeof(target));
  if (n < 0) return ResolveResult::FromSyscall(n);
  if (static_cast<size_t>(n) >= sizeof(target)) {
    return ResolveResult::Errno(ENAMETOOLONG);
  }
  return PushTarget(absl::string_view(target, static_cast<size_t>(n)), cur());
}

ResolveResult Walk::PushTarget(absl::string_view target, int dirfd) {
  if (follows_left_ == 0) return ResolveResult::Errno(ELOOP);
  --follows_left_;
  if (target.empty()) return ResolveResult::Errno(ENOENT);
  // A procfs link to a file, pipe or namespace ("/dev/pts/0",
  // "pipe:[1234]") is a magic link: the kernel would jump to the object, not
  // walk the text. openat2 with RESOLVE_NO_MAGICLINKS says ELOOP.
  if ((IsAbsolute(target) || target.find(':') != absl::string_view::npos) &&
      OnProcfs(dirfd)) {
    return ResolveResult::Errno(ELOOP);
  }
  if (IsAbsolute(target)) {
    if (root_.scope == Scope::kBeneath) return ResolveResult::Escape();
    stack_.clear();
  }
  Segment s;
  s.owned = std::string(target);
  s.is_owned = true;
  segments_.push_back(std::move(s));
  return ResolveResult::Ok();
}

// `err`, for a component of the current directory that the walk refuses
// without a syscall (a name longer than NAME_MAX, O_CREAT with a trailing
// slash): the kernel first checks search permission on the directory, as it
// does before every component, so EACCES comes first.
ResolveResult Walk::RefuseHere(int err) {
  if (ResolveResult r = CheckSearch(cur()); !r.ok()) return r;
  return ResolveResult::Errno(err);
}

// The leaf's name without its slashes, NUL-terminated; nullptr when too long.
const char* Walk::LeafName() {
  if (leaf_.name.size() > kNameMax) return nullptr;
  memcpy(name_buf_, leaf_.name.data(), leaf_.name.size());
  name_buf_[leaf_.name.size()] = '\0';
  return name_buf_;
}

ResolveResult Walk::OpenSelf(int flags, mode_t mode, Fd* out) {
  int fd = SysOpenAt(cur(), ".", flags, mode);
  if (fd < 0) return ResolveResult::Errno(-fd);
  *out = Fd(fd);
  return ResolveResult::Ok();
}

// The directory the walk is at, for a path that names it with no component
// at all ("/" in InRoot scope, or a link to "/"): the kernel opens it with
// no lookup, so without the search permission on it that openat(fd, ".")
// needs. When that is what fails, the directory is reopened through
// /proc/self/fd: a magic link, but to the very directory the walk holds,
// not one a path named. O_NOFOLLOW would stop at that link; the path it
// stands in for has no last component not to follow.
ResolveResult Walk::OpenWithoutLookup(int flags, mode_t mode, Fd* out) {
  int fd = SysOpenAt(cur(), ".", flags, mode);
  if (fd != -EACCES) {
    if (fd < 0) return ResolveResult::Errno(-fd);
    *out = Fd(fd);
    return ResolveResult::Ok();
  }
  // Only a real procfs may stand in (ProcFdPath), and what it opened must
  // be the very directory the walk holds; anything else leaves EACCES.
  const ResolveResult refused = ResolveResult::Errno(EACCES);
  char proc[64];
  if (!ProcFdPath(cur(), proc)) return refused;
  struct stat want;
  if (int r = SysFstatAt(cur(), "", &want, AT_EMPTY_PATH); r < 0) {
    return ResolveResult::Errno(-r);
  }
  int again = SysOpenAt(AT_FDCWD, proc, flags & ~O_NOFOLLOW, mode);
  if (again < 0) {
    return again == -ENOENT ? refused : ResolveResult::Errno(-again);
  }
  Fd reopened(again);
  struct stat got;
  if (int r = SysFstat(again, &got); r < 0) return ResolveResult::Errno(-r);
  if (got.st_dev != want.st_dev || got.st_ino != want.st_ino) return refused;
  *out = std::move(reopened);
  return ResolveResult::Ok();
}

Step Walk::Open(int flags, mode_t mode, Fd* out) {
  for (;;) {
    if (Step r = ToLast(); !r.ok()) return r;
    if (leaf_.name.empty()) return OpenWithoutLookup(flags, mode, out);
    switch (KindOf(leaf_.name)) {
      case ComponentKind::kDotDot:
        if (Step r = Pop(); !r.ok()) return r;
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
    Step r = ResolveResult::Ok();
    do {
      r = OpenLeaf(name, flags, mode, out);
    } while (r.next() == Step::Next::kRetryStep);
    if (r.next() != Step::Next::kFollowed) return r;
  }
}

// Opens the leaf `name` in the current directory: Ok with `*out` set, an
// error, kFollowed when it is a symlink to follow (its target is pushed),
// or kRetryStep when it changed between two lookups.
Step Walk::OpenLeaf(const char* name, int flags, mode_t mode, Fd* out) {
  const bool nofollow = (flags & O_NOFOLLOW) != 0;
  int fd;
  if (leaf_.trailing_slash) {
    // A trailing slash asks for a directory and follows a symlink, even
    // under O_NOFOLLOW. openat(fd, "x/", O_NOFOLLOW) would follow x in the
    // kernel, unconfined: open "x" itself as a directory instead. (O_CREAT
    // never gets here: Open refuses it with EISDIR first.)
    fd = SysOpenAt(cur(), name, flags | O_NOFOLLOW | O_DIRECTORY, mode);
    if (fd >= 0) {
      *out = Fd(fd);
      return ResolveResult::Ok();
    }
    if (fd != -ENOTDIR && fd != -ELOOP) return ResolveResult::Errno(-fd);
  } else {
    fd = SysOpenAt(cur(), name, flags | O_NOFOLLOW, mode);
    if (fd >= 0) {
      Fd opened(fd);
      if ((flags & O_PATH) && !nofollow && !(flags & O_DIRECTORY)) {
        // O_PATH|O_NOFOLLOW opens a symlink itself instead of failing.
        struct stat st;
        if (int r = SysFstat(fd, &st); r < 0) return ResolveResult::Errno(-r);
        if (S_ISLNK(st.st_mode)) {
          ResolveResult r = FollowLink(opened);
          return r.ok() ? Step::Followed() : r;
        }
      }
      *out = std::move(opened);
      return ResolveResult::Ok();
    }
    if (nofollow) return ResolveResult::Errno(-fd);
    // A symlink opened with O_NOFOLLOW is ELOOP, or ENOTDIR if O_DIRECTORY
    // was asked for too.
    bool maybe_link = fd == -ELOOP || (fd == -ENOTDIR && (flags & O_DIRECTORY));
    if (!maybe_link) return ResolveResult::Errno(-fd);
  }
  Fd object;
  struct stat st;
  if (Step r = FollowName(name, &object, &st);
      r.next() != Step::Next::kNotALink) {
    return r.ok() ? Step::Followed() : r;
  }
  // Not a symlink now. A non-directory is the answer ENOTDIR gave; anything
  // else replaced the symlink since the open: open again.
  if (fd == -ENOTDIR && !S_ISDIR(st.st_mode)) {
    return ResolveResult::Errno(ENOTDIR);
  }
  if (changes_left_ == 0) return ResolveResult::Errno(EAGAIN);
  --changes_left_;
  return Step::RetryStep();
}

Step Walk::Stat(bool follow, struct stat* st) {
  for (;;) {
    if (Step r = ToLast(); !r.ok()) return r;
    const char* name = ".";
    if (!leaf_.name.empty()) {
      switch (KindOf(leaf_.name)) {
        case ComponentKind::kDotDot:
          if (Step r = Pop(); !r.ok()) return r;
          break;
        case ComponentKind::kDot:
          break;
        case ComponentKind::kName:
          name = LeafName();
          if (name == nullptr) return RefuseHere(ENAMETOOLONG);
          break;
      }
    }
    if (leaf_.name.empty()) {
      // No component at all ("/" in InRoot scope): the directory itself,
      // with no lookup, so no search permission needed, as in the kernel.
      return ResolveResult::FromSyscall(
          SysFstatAt(cur(), "", st, AT_EMPTY_PATH));
    }
    if (Step r = StatLeaf(name, follow, st);
        r.next() != Step::Next::kFollowed) {
      return r;
    }
  }
}

// Stats the leaf `name` in the current directory: Ok, an error, or
// kFollowed when it is a symlink to follow (its target is pushed).
Step Walk::StatLeaf(const char* name, bool follow, struct stat* st) {
  int r = SysFstatAt(cur(), name, st, AT_SYMLINK_NOFOLLOW);
  if (r < 0) return ResolveResult::Errno(-r);
  if (S_ISLNK(st->st_mode) && (follow || leaf_.trailing_slash)) {
    Fd object;
    Step followed = FollowName(name, &object, st);
    if (followed.next() != Step::Next::kNotALink) {
      return followed.ok() ? Step::Followed() : followed;
    }
    // Replaced by a non-symlink since fstatat: that is the answer.
  }
  if (leaf_.trailing_slash && !S_ISDIR(st->st_mode)) {
    return ResolveResult::Errno(ENOTDIR);
  }
  return ResolveResult::Ok();
}

Step Walk::ResolveParent(ParentDir* out) {
  if (Step r = ToLast(); !r.ok()) return r;
  if (leaf_.name.empty()) {
    out->last = nullptr;
  } else {
    if (KindOf(leaf_.name) == ComponentKind::kDotDot && stack_.empty() &&
        root_.scope == Scope::kBeneath) {
      return ResolveResult::Escape();
    }
    // The last component is never followed here, so it comes from the
    // caller's own path, which is NUL-terminated right after its slashes.
    out->last = leaf_.name.data();
  }
  if (stack_.empty()) {
    out->owned = Fd();
    out->fd = root_.fd;
  } else {
    out->owned = std::move(stack_.back().fd);
    stack_.pop_back();
    out->fd = out->owned.get();
  }
  return ResolveResult::Ok();
}

}  // namespace

namespace {

// Runs `resolve` (one resolution, from the start of the path) until no
// ancestor it reopened turned out moved. Only the walk to the last component
// can find that, before the call acts on anything, so starting again repeats
// no effect.
template <typename Resolve>
ResolveResult Resolved(Resolve resolve) {
  for (int attempt = 0; attempt <= kMaxAncestorRetries; ++attempt) {
    Step r = resolve();
    if (ABSL_PREDICT_TRUE(r.next() != Step::Next::kAncestorMoved)) {
      // The other outcomes stay within the step that met them.
      return r.result();
    }
  }
  return ResolveResult::Errno(EAGAIN);
}

}  // namespace

ResolveResult UserspaceOpen(Root root, const char* path, int flags, mode_t mode,
                            Fd* out) {
  return Resolved([&] { return Walk(root, path).Open(flags, mode, out); });
}

ResolveResult UserspaceStat(Root root, const char* path, bool follow,
                            struct stat* st) {
  return Resolved([&] { return Walk(root, path).Stat(follow, st); });
}

ResolveResult UserspaceResolveParent(Root root, const char* path,
                                     ParentDir* out) {
  return Resolved([&] { return Walk(root, path).ResolveParent(out); });
}

void SetAncestorReopenHookForTesting(void (*hook)(void* arg, size_t depth),
                                     void* arg) {
  g_reopen_hook_arg.store(arg, std::memory_order_relaxed);
  g_reopen_hook.store(hook, std::memory_order_release);
}

}  // namespace internal
}  // namespace capfs

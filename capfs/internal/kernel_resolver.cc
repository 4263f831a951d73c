#include "capfs/internal/kernel_resolver.h"

#include <fcntl.h>

#include <atomic>

#include "capfs/internal/open_flags.h"
#include "capfs/path.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace internal {
namespace {

enum Support : int { kUnknown, kAvailable, kUnavailable };
std::atomic<int> g_support{kUnknown};

// KernelResolverCounts, kept only on the rare paths.
std::atomic<uint64_t> g_eagain{0};
std::atomic<uint64_t> g_busy{0};
std::atomic<uint64_t> g_unavailable{0};

uint64_t ResolveFlags(Scope scope) {
  return kResolveNoMagiclinks |
         (scope == Scope::kInRoot ? kResolveInRoot : kResolveBeneath);
}

// openat2 beneath `root`: Ok with the new descriptor in `*out`, or why not
// (an errno, an escape, kKernelUnavailable or kKernelBusy).
ResolveResult Openat2Beneath(Root root, const char* path, int flags,
                             mode_t mode, uint64_t extra_resolve, Fd* out) {
  OpenHow how = KernelOpenHowFor(root, flags, mode);
  how.resolve |= extra_resolve;
  for (int attempt = 0; attempt <= kKernelEagainRetries; ++attempt) {
    int r = SysOpenat2(root.fd, path, how);
    if (r >= 0) {
      *out = Fd(r);
      return ResolveResult::Ok();
    }
    if (extra_resolve != 0) {
      // A nonblocking attempt: EAGAIN is RESOLVE_CACHED's "not in the
      // dentry cache" (or a racing rename), EXDEV may be RESOLVE_NO_XDEV's
      // mount crossing, and EINVAL a kernel without RESOLVE_CACHED. The
      // blocking call, made elsewhere, tells them apart; so do the rare
      // answers the blocking call finishes or reprobes.
      switch (-r) {
        case EAGAIN:
        case EXDEV:
        case EINVAL:
        case ELOOP:
        case ENOSYS:
        case EPERM:
        case E2BIG:
          return ResolveResult::WouldBlock();
        default:
          return ResolveResult::Errno(-r);
      }
    }
    switch (-r) {
      case EAGAIN:
        g_eagain.fetch_add(1, std::memory_order_relaxed);
        continue;
      case EXDEV:
        return ResolveResult::Escape();
      case ELOOP:
        // When the kernel's RCU walk is aborted (-ECHILD) it restarts from
        // the top, but the symlinks the aborted attempt followed still count
        // (Linux 6.18, fs/namei.c): a walk through more than 20 symlinks may
        // say ELOOP. With RESOLVE_BENEATH a ".." at the root always aborts
        // it, so an escape after 21 links is ELOOP instead of EXDEV; in any
        // scope a mount or rename anywhere on the system can abort it, so a
        // path through 40 links is now and then ELOOP. The userspace walk
        // counts exactly: it gives the answer.
        return ResolveResult::KernelBusy();
      case ENOSYS:
      case EPERM:
      case E2BIG:
        // EPERM may be the file's own answer (O_NOATIME, an immutable
        // file): it is the kernel resolver's absence only if a probe fails
        // the same way.
        if (!ReprobeKernelResolver()) {
          g_unavailable.fetch_add(1, std::memory_order_relaxed);
          return ResolveResult::KernelUnavailable();
        }
        return ResolveResult::Errno(-r);
      default:
        return ResolveResult::Errno(-r);
    }
  }
  g_busy.fetch_add(1, std::memory_order_relaxed);
  return ResolveResult::KernelBusy();
}

int Probe() {
  OpenHow how = {};
  how.flags = O_PATH | O_DIRECTORY;
  how.resolve = kResolveNoMagiclinks;
  int fd = SysOpenat2(AT_FDCWD, "/", how);
  if (fd >= 0) {
    Fd closer(fd);
    return kAvailable;
  }
  switch (-fd) {
    case ENOSYS:
    case EPERM:
    case E2BIG:
    case EINVAL:
      return kUnavailable;
    default:
      // Any other answer (EACCES from an LSM, say) came from openat2 itself.
      return kAvailable;
  }
}

}  // namespace

OpenHow KernelOpenHowFor(Root root, int flags, mode_t mode) {
  OpenHow how = {};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = CreatesFile(flags) ? mode : 0;
  how.resolve = ResolveFlags(root.scope);
  return how;
}

ResolveResult KernelOpenResult(int openat2_result, Fd* out) {
  if (openat2_result >= 0) {
    *out = Fd(openat2_result);
    return ResolveResult::Ok();
  }
  switch (-openat2_result) {
    case EXDEV:
      return ResolveResult::Escape();
    case EAGAIN:  // retried by the blocking call
    case ELOOP:   // finished in userspace by it
    case ENOSYS:  // the resolver's absence, or not: it probes
    case EPERM:
    case E2BIG:
      return ResolveResult::WouldBlock();
    default:
      return ResolveResult::Errno(-openat2_result);
  }
}

bool KernelResolverAvailable() {
  int s = g_support.load(std::memory_order_relaxed);
  if (s == kUnknown) {
    s = Probe();
    g_support.store(s, std::memory_order_relaxed);
  }
  return s == kAvailable;
}

KernelResolverCounts KernelResolverCountsNow() {
  KernelResolverCounts c;
  c.eagain = g_eagain.load(std::memory_order_relaxed);
  c.busy = g_busy.load(std::memory_order_relaxed);
  c.unavailable = g_unavailable.load(std::memory_order_relaxed);
  return c;
}

bool ReprobeKernelResolver() {
  int s = Probe();
  g_support.store(s, std::memory_order_relaxed);
  return s == kAvailable;
}

ResolveResult KernelOpen(Root root, const char* path, int flags, mode_t mode,
                         Fd* out, uint64_t extra_resolve) {
  return Openat2Beneath(root, path, flags, mode, extra_resolve, out);
}

ResolveResult KernelStat(Root root, const char* path, bool follow,
                         struct stat* st, uint64_t extra_resolve,
                         FdCloser* closer) {
  Fd fd;
  int flags = O_PATH | (follow ? 0 : O_NOFOLLOW);
  if (ResolveResult r =
          Openat2Beneath(root, path, flags, 0, extra_resolve, &fd);
      !r.ok()) {
    return r;
  }
  int r = SysFstat(fd.get(), st);
  if (closer != nullptr) closer->CloseLater(std::move(fd));
  return ResolveResult::FromSyscall(r);
}

ResolveResult KernelResolveParent(Root root, char* path, ParentDir* out,
                                  uint64_t extra_resolve) {
  absl::string_view whole(path);
  PathSplit split = SplitLast(whole);
  out->last = split.last.empty() ? nullptr : split.last.data();
  out->fd = root.fd;
  out->owned = Fd();
  if (split.last.empty()) {
    // Only slashes: the root itself (absolute paths reach here in InRoot
    // scope only).
    return ResolveResult::Ok();
  }
  absl::string_view last_name = split.last.substr(0, split.last.find('/'));
  const bool last_leaves = KindOf(last_name) == ComponentKind::kDotDot &&
                           root.scope == Scope::kBeneath;
  if (split.parent.empty()) {
    return last_leaves ? ResolveResult::Escape() : ResolveResult::Ok();
  }
  size_t cut = split.parent.size();
  char saved = path[cut];
  path[cut] = '\0';
  ResolveResult r = Openat2Beneath(root, path, O_PATH | O_DIRECTORY, 0,
                                   extra_resolve, &out->owned);
  path[cut] = saved;
  if (!r.ok()) return r;
  out->fd = out->owned.get();
  if (!last_leaves) return ResolveResult::Ok();
  // The *at call will not look ".." up, but a path whose last step leaves
  // the root is an escape all the same: it does when the parent is the root
  // itself. (Not by asking openat2 to walk the "..", which fails on a parent
  // that may not be searched: that error belongs to the *at call, in its
  // order.)
  struct stat parent_st;
  struct stat root_st;
  if (int e = SysFstatAt(out->fd, "", &parent_st, AT_EMPTY_PATH); e < 0) {
    return ResolveResult::Errno(-e);
  }
  if (int e = SysFstatAt(root.fd, "", &root_st, AT_EMPTY_PATH); e < 0) {
    return ResolveResult::Errno(-e);
  }
  const bool at_root =
      parent_st.st_dev == root_st.st_dev && parent_st.st_ino == root_st.st_ino;
  return at_root ? ResolveResult::Escape() : ResolveResult::Ok();
}

}  // namespace internal
}  // namespace capfs

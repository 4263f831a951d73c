#include "capfs/dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <atomic>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "capfs/internal/file_stat.h"
#include "capfs/internal/kernel_resolver.h"
#include "capfs/internal/nonblocking.h"
#include "capfs/internal/open_flags.h"
#include "capfs/internal/resolve.h"
#include "capfs/internal/tree_walk.h"
#include "capfs/internal/userspace_resolver.h"
#include "capfs/path.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace {

using internal::CPath;
using internal::ParentDir;
using internal::ResolveResult;
using internal::Root;
using Kind = internal::ResolveResult::Kind;

// The open(2) flags that can change the tree or open for writing.
constexpr int kWritingFlags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;

absl::Status KernelUnavailableError(absl::string_view op,
                                    absl::string_view path) {
  return absl::UnimplementedError(absl::StrCat(
      op, "(\"", path,
      "\"): Resolver::kKernel needs openat2(2), which is missing or blocked "
      "here; use Resolver::kAuto or Resolver::kUserspace"));
}

// A resolver's failure as a Status.
absl::Status ResultError(ResolveResult r, absl::string_view op,
                         absl::string_view path) {
  switch (r.kind()) {
    case Kind::kEscape:
      return ViolationError(Violation::kEscape, op, path);
    case Kind::kKernelUnavailable:
    case Kind::kKernelBusy:
    case Kind::kWouldBlock:  // never reaches a caller: see nonblocking.h
      return KernelUnavailableError(op, path);
    case Kind::kOk:
    case Kind::kErrno:
      break;
  }
  return ErrnoError(r.errno_value(), op, path);
}

// The checks every path gets before any syscall: well-formed, and relative
// unless the Dir allows absolute paths.
// The refusal CheckInput found: built out of line, off every call's path.
ABSL_ATTRIBUTE_NOINLINE absl::Status InputError(int err, absl::string_view op,
                                                absl::string_view path) {
  return err != 0 ? ErrnoError(err, op, path)
                  : ViolationError(Violation::kAbsolutePath, op, path);
}

inline absl::Status CheckInput(const Dir& dir, absl::string_view op,
                               absl::string_view path) {
  int err = CheckPath(path);
  if (ABSL_PREDICT_TRUE(err == 0) &&
      (!dir.confined() || dir.options().scope != Scope::kBeneath ||
       !IsAbsolute(path))) {
    // A moved-from Dir holds no directory: EBADF, even for a path that
    // needs no syscall ("/" in InRoot scope names the root itself).
    if (ABSL_PREDICT_FALSE(dir.fd() == -1)) {
      return ErrnoError(EBADF, op, path);
    }
    return absl::OkStatus();
  }
  return InputError(err, op, path);
}

absl::Status CheckWritable(const Dir& dir, absl::string_view op,
                           absl::string_view path) {
  if (dir.options().read_only) {
    return ViolationError(Violation::kReadOnly, op, path);
  }
  return absl::OkStatus();
}

// A path of one component that is neither ".." nor a symlink to follow:
// the plain *at call on the Dir's descriptor is already confined.
bool IsOneComponent(absl::string_view path) {
  // memchr inline: absl::string_view::find is an out-of-line call, and this
  // runs on every call.
  return memchr(path.data(), '/', path.size()) == nullptr &&
         KindOf(path) != ComponentKind::kDotDot;
}

// How a call runs: blocking (the Dir's own calls), or as a nonblocking
// attempt (nonblocking.h) that gives up with kWouldBlock.
enum class Mode { kBlocking, kNonblocking };

// The resolve flags a nonblocking attempt adds to every openat2.
uint64_t ExtraResolve(Mode mode) {
  return mode == Mode::kNonblocking
             ? internal::kResolveCached | internal::kResolveNoXdev
             : 0;
}

// True when `mode` may take the plain *at fast path on one component: the
// lookup it makes is not limited to the dentry cache, so only where no
// lookup waits for I/O.
bool PlainLookupAllowed(const Dir& dir, Mode mode) {
  return mode == Mode::kBlocking ||
         internal::FilesystemClassOf(dir) == internal::kFilesystemInMemory;
}

// Runs `kernel` or `userspace`, whichever resolver the Dir uses here. The
// kernel resolver hands over to the userspace one when openat2 keeps saying
// EAGAIN, and (kAuto only) when openat2 turns out to be unavailable. A
// nonblocking attempt only ever runs `kernel` (its callers checked
// NonblockingEligible), and gives up where the blocking call would go on.
template <typename KernelCall, typename UserspaceCall>
ResolveResult Resolve(const Dir& dir, KernelCall kernel,
                      UserspaceCall userspace, Mode mode = Mode::kBlocking) {
  if (mode == Mode::kNonblocking) {
    ResolveResult r = kernel();
    return r.Is(Kind::kKernelBusy) || r.Is(Kind::kKernelUnavailable)
               ? ResolveResult::WouldBlock()
               : r;
  }
  Resolver resolver = dir.options().resolver;
  if (resolver == Resolver::kUserspace ||
      (resolver == Resolver::kAuto && !internal::KernelResolverAvailable())) {
    return userspace();
  }
  ResolveResult r = kernel();
  if (r.Is(Kind::kKernelBusy) ||
      (r.Is(Kind::kKernelUnavailable) && resolver == Resolver::kAuto)) {
    return userspace();
  }
  return r;
}

Root RootOf(const Dir& dir) { return Root{dir.fd(), dir.options().scope}; }

// Opens what `path` names beneath `dir` (or on the host, unconfined), with
// flags already normalized.
ResolveResult OpenResolved(const Dir& dir, const CPath& path, int flags,
                           mode_t mode, Fd* out,
                           Mode call_mode = Mode::kBlocking) {
  if ((!dir.confined() || IsOneComponent(path.view())) &&
      PlainLookupAllowed(dir, call_mode)) {
    // One component: no resolution needed, so none is paid for. Adding
    // O_NOFOLLOW keeps a symlink from being followed here; it is ELOOP (or
    // ENOTDIR with O_DIRECTORY) and then resolved in full below. O_PATH
    // would open the symlink itself, so it always takes the full path.
    const bool fast_safe = !dir.confined() || (flags & O_NOFOLLOW) ||
                           !(flags & O_PATH) || (flags & O_DIRECTORY);
    if (fast_safe) {
      int extra = dir.confined() ? O_NOFOLLOW : 0;
      int fd = internal::SysOpenAt(dir.fd(), path.c_str(), flags | extra, mode);
      if (fd >= 0) {
        *out = Fd(fd);
        return ResolveResult::Ok();
      }
      bool maybe_link =
          dir.confined() && !(flags & O_NOFOLLOW) &&
          (fd == -ELOOP || (fd == -ENOTDIR && (flags & O_DIRECTORY)));
      if (!maybe_link) return ResolveResult::Errno(-fd);
    }
  }
  Root root = RootOf(dir);
  return Resolve(
      dir,
      [&] {
        return internal::KernelOpen(root, path.c_str(), flags, mode, out,
                                    ExtraResolve(call_mode));
      },
      [&] {
        return internal::UserspaceOpen(root, path.c_str(), flags, mode, out);
      },
      call_mode);
}

// StatResolved past its fast paths: the resolver's walk.
ABSL_ATTRIBUTE_NOINLINE ResolveResult
StatResolvedSlow(const Dir& dir, const CPath& path, bool follow,
                 struct stat* st, Mode mode, internal::FdCloser* closer) {
  Root root = RootOf(dir);
  return Resolve(
      dir,
      [&] {
        return internal::KernelStat(root, path.c_str(), follow, st,
                                    ExtraResolve(mode), closer);
      },
      [&] { return internal::UserspaceStat(root, path.c_str(), follow, st); },
      mode);
}

// Inline: on a one-component path this is one fstatat, and a call layer
// around it is a measurable share of Stat's cost.
inline ResolveResult StatResolved(const Dir& dir, const CPath& path,
                                  bool follow, struct stat* st,
                                  Mode mode = Mode::kBlocking,
                                  internal::FdCloser* closer = nullptr) {
  if (!dir.confined()) {
    return ResolveResult::FromSyscall(internal::SysFstatAt(
        dir.fd(), path.c_str(), st, follow ? 0 : AT_SYMLINK_NOFOLLOW));
  }
  if (IsOneComponent(path.view()) && PlainLookupAllowed(dir, mode)) {
    int r =
        internal::SysFstatAt(dir.fd(), path.c_str(), st, AT_SYMLINK_NOFOLLOW);
    if (r < 0) return ResolveResult::Errno(-r);
    if (!follow || !S_ISLNK(st->st_mode)) return ResolveResult::Ok();
  }
  return StatResolvedSlow(dir, path, follow, st, mode, closer);
}

// Stat (follow) and Lstat: the resolved object's metadata, built in place
// in `*out` (no copy of a FileStat on the way out: a one-component Stat is
// little more than its fstatat). False only in nonblocking mode: the call
// would block, and `*out` is untouched. A descriptor opened on the way goes
// to `closer` when there is one.
inline bool StatPath(const Dir& dir, absl::string_view op,
                     absl::string_view path, bool follow, Mode mode,
                     absl::StatusOr<FileStat>* out,
                     internal::FdCloser* closer = nullptr) {
  if (absl::Status s = CheckInput(dir, op, path); !s.ok()) {
    *out = std::move(s);
    return true;
  }
  CPath p(path);
  struct stat st;
  if (ResolveResult r = StatResolved(dir, p, follow, &st, mode, closer);
      !r.ok()) {
    if (r.Is(Kind::kWouldBlock)) return false;
    *out = ResultError(r, op, path);
    return true;
  }
  *out = internal::FileStatOf(st);
  return true;
}

// The rest of a blocking Stat or Lstat past StatCall's fast path: out of
// line, so that the fast path's code stays one short stretch.
ABSL_ATTRIBUTE_NOINLINE absl::StatusOr<FileStat> StatPathBlocking(
    const Dir& dir, absl::string_view op, absl::string_view path, bool follow) {
  absl::StatusOr<FileStat> out;
  StatPath(dir, op, path, follow, Mode::kBlocking, &out);
  return out;
}

// A Stat whose one-component path named a symlink (found by StatCall's
// fstatat): the resolver follows it from there.
ABSL_ATTRIBUTE_NOINLINE absl::StatusOr<FileStat> StatThroughSymlink(
    const Dir& dir, absl::string_view op, absl::string_view path) {
  CPath p(path);
  struct stat st;
  if (ResolveResult r = StatResolvedSlow(dir, p, /*follow=*/true, &st,
                                         Mode::kBlocking, nullptr);
      !r.ok()) {
    return ResultError(r, op, path);
  }
  return internal::FileStatOf(st);
}

ABSL_ATTRIBUTE_NOINLINE absl::StatusOr<FileStat> StatError(
    int err, absl::string_view op, absl::string_view path) {
  return ErrnoError(err, op, path);
}

// Copies `path` into `name`, NUL-terminated, and returns true when it is one
// component that CheckInput accepts and the Dir's own descriptor reaches
// without a walk: 1 to kNameMax bytes, no '/', no NUL byte, not "..". One
// pass over the bytes, inline (for a name, what CheckPath, IsOneComponent
// and CPath find with two memchr calls and a memcpy, each a call into the C
// library).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool CopyPlainName(
    absl::string_view path, char (&name)[kNameMax + 1]) {
  const size_t n = path.size();
  if (n == 0 || n > kNameMax) return false;
  for (size_t i = 0; i < n; ++i) {
    const char c = path[i];
    if (c == '/' || c == '\0') return false;
    name[i] = c;
  }
  name[n] = '\0';
  return !(n == 2 && name[0] == '.' && name[1] == '.');
}

// Dir::Stat and Dir::Lstat. A one-component name in a confined Dir is one
// fstatat(AT_SYMLINK_NOFOLLOW) on the Dir's descriptor, already confined
// (the name is no walk, and a symlink is not followed), and that case runs
// here in one function with no call but the syscall's and no 4 KiB path
// buffer on the stack: where each syscall flushes the TLB (page-table
// isolation without PCID), every page of code or stack a call touches
// costs a miss, and those were most of Stat's cost beyond the raw
// fstatat. Everything else (checks that fail, a moved-from or unconfined
// Dir, a longer path, a symlink to follow) takes StatPath as before.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::StatusOr<FileStat> StatCall(
    const Dir& dir, absl::string_view op, absl::string_view path, bool follow) {
  char name[kNameMax + 1];
  if (ABSL_PREDICT_TRUE(dir.confined() && dir.fd() != -1 &&
                        CopyPlainName(path, name))) {
    struct stat st;
    const int r =
        internal::SysFstatAt(dir.fd(), name, &st, AT_SYMLINK_NOFOLLOW);
    if (ABSL_PREDICT_FALSE(r < 0)) return StatError(-r, op, path);
    if (ABSL_PREDICT_FALSE(follow && S_ISLNK(st.st_mode))) {
      return StatThroughSymlink(dir, op, path);
    }
    return internal::FileStatOf(st);
  }
  return StatPathBlocking(dir, op, path, follow);
}

// True when `dir` can take a call that changes what a plain name names with
// no check or walk beyond CopyPlainName's: confined, holding a directory,
// not read-only.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool WritableConfined(const Dir& dir) {
  return dir.confined() && dir.fd() != -1 && !dir.options().read_only;
}

ABSL_ATTRIBUTE_NOINLINE absl::Status NameCallError(int err,
                                                   absl::string_view op,
                                                   absl::string_view path) {
  return ErrnoError(err, op, path);
}

ABSL_ATTRIBUTE_NOINLINE absl::Status TwoNameCallError(int err,
                                                      absl::string_view op,
                                                      absl::string_view from,
                                                      absl::string_view to) {
  return ErrnoError(err, op, absl::StrCat(from, " -> ", to));
}

// The name-acting calls (mkdir, unlink, rmdir, lchown) and the two-name
// calls (rename, link) on plain names, as StatCall does for Stat: a name
// that CopyPlainName accepts, in a Dir that WritableConfined accepts, is
// what the checks and the parent resolution would hand the *at call
// anyway (the Dir's descriptor and the name, confined because the name is
// no walk and the call does not follow it), so the call runs on the copy
// with nothing else on the way. `slow` is the general path, taken for
// anything else; it makes the same checks in the same order.
template <typename At, typename Slow>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status PlainNameCall(
    const Dir& dir, absl::string_view op, absl::string_view path, At at,
    Slow slow) {
  char name[kNameMax + 1];
  if (ABSL_PREDICT_TRUE(WritableConfined(dir) && CopyPlainName(path, name))) {
    const int r = at(dir.fd(), name);
    if (ABSL_PREDICT_FALSE(r < 0)) return NameCallError(-r, op, path);
    return absl::OkStatus();
  }
  return slow();
}

template <typename Call, typename Slow>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status PlainTwoNameCall(
    const Dir& from_dir, absl::string_view op, absl::string_view from,
    const Dir& to_dir, absl::string_view to, Call call, Slow slow) {
  char from_name[kNameMax + 1];
  char to_name[kNameMax + 1];
  if (ABSL_PREDICT_TRUE(
          WritableConfined(from_dir) && WritableConfined(to_dir) &&
          CopyPlainName(from, from_name) && CopyPlainName(to, to_name))) {
    const int r = call(from_dir.fd(), from_name, to_dir.fd(), to_name);
    if (ABSL_PREDICT_FALSE(r < 0)) return TwoNameCallError(-r, op, from, to);
    return absl::OkStatus();
  }
  return slow();
}

// Finds the directory holding the last component of `path` beneath `dir`.
ResolveResult ParentResolved(const Dir& dir, CPath& path, ParentDir* parent,
                             Mode mode = Mode::kBlocking) {
  if (!dir.confined() || IsOneComponent(path.view())) {
    // Unconfined: the host path as it is. One component (not ".."): its
    // parent is the Dir itself, as either resolver would find without a
    // syscall; skipping them skips their parsing too.
    parent->fd = dir.fd();
    parent->last = path.c_str();
    return ResolveResult::Ok();
  }
  Root root = RootOf(dir);
  return Resolve(
      dir,
      [&] {
        return internal::KernelResolveParent(root, path.data(), parent,
                                             ExtraResolve(mode));
      },
      [&] {
        return internal::UserspaceResolveParent(root, path.c_str(), parent);
      },
      mode);
}

// True when `to` beneath `to_dir` has the same parent as `from` beneath
// `from_dir`, written the same way, so that resolving it again would reach
// the same directory: the same confined Dir, the same text before the last
// component, which is a name (not "..", whose escape check ResolveParent
// makes) on both sides.
bool SameParent(const Dir& from_dir, absl::string_view from, const Dir& to_dir,
                absl::string_view to) {
  if (&from_dir != &to_dir || !from_dir.confined()) return false;
  PathSplit f = SplitLast(from);
  PathSplit t = SplitLast(to);
  if (f.parent.empty() || f.parent != t.parent) return false;
  auto is_name = [](absl::string_view last) {
    absl::string_view name = last.substr(0, last.find('/'));
    return !name.empty() && KindOf(name) != ComponentKind::kDotDot;
  };
  return is_name(f.last) && is_name(t.last);
}

// A name-acting call (mkdir, unlink, ...) on `path`: resolves its parent and
// runs `at(parent_fd, last)`, or returns `root_errno` when the path names
// the root itself ("/" in InRoot scope), as the kernel does for a chroot.
template <typename AtCall>
absl::Status AtParent(const Dir& dir, absl::string_view op,
                      absl::string_view path, int root_errno, AtCall at) {
  internal::AtTarget target;
  if (absl::Status s = *internal::PrepareAt(dir, op, path, root_errno,
                                            /*nonblocking=*/false, &target);
      !s.ok()) {
    return s;
  }
  return internal::AtCallResult(at(target.parent.fd, target.parent.last), op,
                                path);
}

// Dir::OpenAt; nullopt only in nonblocking mode: the call would block.
std::optional<absl::StatusOr<Fd>> OpenAtIn(const Dir& dir,
                                           absl::string_view path, int flags,
                                           mode_t mode, Mode call_mode) {
  constexpr absl::string_view kOp = "openat";
  if (absl::Status s = internal::PrepareOpen(dir, kOp, path, &flags, &mode);
      !s.ok()) {
    return s;
  }
  if (call_mode == Mode::kNonblocking && !internal::OpenCannotWait(flags)) {
    return std::nullopt;
  }
  CPath p(path);
  Fd out;
  if (ResolveResult r = OpenResolved(dir, p, flags, mode, &out, call_mode);
      !r.ok()) {
    if (r.Is(Kind::kWouldBlock)) return std::nullopt;
    return ResultError(r, kOp, path);
  }
  return out;
}

// Dir::OpenDir; nullopt only in nonblocking mode.
std::optional<absl::StatusOr<Dir>> OpenDirIn(const Dir& dir,
                                             absl::string_view path,
                                             Mode call_mode) {
  constexpr absl::string_view kOp = "opendir";
  if (absl::Status s = CheckInput(dir, kOp, path); !s.ok()) return s;
  CPath p(path);
  Fd out;
  int flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  if (ResolveResult r = OpenResolved(dir, p, flags, 0, &out, call_mode);
      !r.ok()) {
    if (r.Is(Kind::kWouldBlock)) return std::nullopt;
    return ResultError(r, kOp, path);
  }
  return internal::ChildDir(dir, std::move(out));
}

// Dir::ReadLink; nullopt only in nonblocking mode.
std::optional<absl::StatusOr<std::string>> ReadLinkIn(const Dir& dir,
                                                      absl::string_view path,
                                                      Mode call_mode) {
  constexpr absl::string_view kOp = "readlink";
  if (absl::Status s = CheckInput(dir, kOp, path); !s.ok()) return s;
  // Reading a target may read a block from disk: in-memory filesystems
  // only (nonblocking.h).
  if (call_mode == Mode::kNonblocking &&
      internal::FilesystemClassOf(dir) != internal::kFilesystemInMemory) {
    return std::nullopt;
  }
  CPath p(path);
  char buf[kPathMax];
  ssize_t n;
  if (!dir.confined() || IsOneComponent(path)) {
    // readlinkat does not follow the last component: already confined.
    n = internal::SysReadLinkAt(dir.fd(), p.c_str(), buf, sizeof(buf));
  } else {
    Fd link;
    int flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    if (ResolveResult r = OpenResolved(dir, p, flags, 0, &link, call_mode);
        !r.ok()) {
      if (r.Is(Kind::kWouldBlock)) return std::nullopt;
      return ResultError(r, kOp, path);
    }
    n = internal::SysReadLinkAt(link.get(), "", buf, sizeof(buf));
    // readlinkat(fd, "") of something other than a symlink is ENOENT; by
    // name it is EINVAL.
    if (n == -ENOENT) n = -EINVAL;
  }
  if (n < 0) return ErrnoError(static_cast<int>(-n), kOp, path);
  return std::string(buf, static_cast<size_t>(n));
}

// Checks both paths and resolves both parents into `target`, from first,
// with the kernel's order of errors. nullopt only in nonblocking mode: the
// resolution would block.
std::optional<absl::Status> TwoParentsResolved(const Dir& dir,
                                               absl::string_view op,
                                               absl::string_view from,
                                               const Dir& to_dir,
                                               absl::string_view to, Mode mode,
                                               internal::RenameTarget* target) {
  if (absl::Status s = CheckInput(dir, op, from); !s.ok()) return s;
  if (absl::Status s = CheckInput(to_dir, op, to); !s.ok()) return s;
  if (absl::Status s = CheckWritable(dir, op, from); !s.ok()) return s;
  if (absl::Status s = CheckWritable(to_dir, op, to); !s.ok()) return s;
  if (mode == Mode::kNonblocking && (!internal::NonblockingEligible(dir) ||
                                     !internal::NonblockingEligible(to_dir))) {
    return std::nullopt;
  }
  target->from.emplace(from);
  target->to.emplace(to);
  // renameat2 looks each last name up in its parent, which needs search
  // permission there, before it walks the other path: check it as each
  // parent is found, so the errors come in the kernel's order. When finding
  // `to`'s parent takes no syscall (the same parent, or one name in
  // `to_dir`), nothing comes between: the call itself checks both parents
  // first, as the plain call on the whole paths does, and the checks would
  // only double its cost.
  const bool to_parent_at_hand =
      SameParent(dir, from, to_dir, to) || IsOneComponent(to);
  ParentDir& from_parent = target->from_parent;
  if (ResolveResult r = ParentResolved(dir, *target->from, &from_parent, mode);
      !r.ok()) {
    if (r.Is(Kind::kWouldBlock)) return std::nullopt;
    return ResultError(r, op, from);
  }
  if (!to_parent_at_hand && from_parent.last != nullptr && dir.confined()) {
    if (ResolveResult r = internal::CheckSearch(from_parent.fd); !r.ok()) {
      return ResultError(r, op, from);
    }
  }
  ParentDir& to_parent = target->to_parent;
  if (SameParent(dir, from, to_dir, to)) {
    // Renaming within one directory (the usual write-then-rename): the
    // parent just resolved is the one `to` names, so it serves both ends.
    to_parent.fd = from_parent.fd;
    to_parent.last = target->to->c_str() + SplitLast(to).parent.size();
  } else if (ResolveResult r =
                 ParentResolved(to_dir, *target->to, &to_parent, mode);
             !r.ok()) {
    if (r.Is(Kind::kWouldBlock)) return std::nullopt;
    return ResultError(r, op, to);
  }
  if (!to_parent_at_hand && to_parent.last != nullptr && to_dir.confined()) {
    if (ResolveResult r = internal::CheckSearch(to_parent.fd); !r.ok()) {
      return ResultError(r, op, to);
    }
  }
  return absl::OkStatus();
}

// A call on two names (rename, link): resolves both parents, from first,
// and runs `call(from_fd, from_name, to_fd, to_name)`.
template <typename Call>
absl::Status TwoPathCall(const Dir& self, absl::string_view kOp,
                         absl::string_view from, const Dir& to_dir,
                         absl::string_view to, int root_errno,
                         int to_root_errno, bool from_root_is_dir_error,
                         Call call) {
  internal::RenameTarget target;
  if (absl::Status s = *TwoParentsResolved(self, kOp, from, to_dir, to,
                                           Mode::kBlocking, &target);
      !s.ok()) {
    return s;
  }
  const ParentDir& from_parent = target.from_parent;
  const ParentDir& to_parent = target.to_parent;
  if (from_parent.last == nullptr || to_parent.last == nullptr) {
    int err = root_errno;
    if (to_parent.last == nullptr) {
      err = to_root_errno;
    } else if (from_root_is_dir_error) {
      // linkat of the root (a directory): the destination's own errors come
      // first, then EPERM.
      struct stat st;
      int r = internal::SysFstatAt(to_parent.fd, to_parent.last, &st,
                                   AT_SYMLINK_NOFOLLOW);
      err = r == 0 ? EEXIST : r == -ENOENT ? root_errno : -r;
    }
    return ErrnoError(err, kOp, absl::StrCat(from, " -> ", to));
  }
  int r = call(from_parent.fd, from_parent.last, to_parent.fd, to_parent.last);
  if (r < 0) return ErrnoError(-r, kOp, absl::StrCat(from, " -> ", to));
  return absl::OkStatus();
}

// The calls of Mkdir, Unlink, Rmdir, Rename and Link past their plain-name
// fast paths (PlainNameCall, PlainTwoNameCall): out of line, so that the
// fast paths stay short.
ABSL_ATTRIBUTE_NOINLINE absl::Status MkdirSlow(const Dir& dir,
                                               absl::string_view path,
                                               mode_t mode) {
  return AtParent(dir, "mkdir", path, EEXIST, [&](int fd, const char* name) {
    return internal::SysMkdirAt(fd, name, mode & 07777);
  });
}

// Unlink (`flags` 0) and Rmdir (AT_REMOVEDIR).
ABSL_ATTRIBUTE_NOINLINE absl::Status UnlinkSlow(const Dir& dir,
                                                absl::string_view path,
                                                int flags) {
  const bool rmdir = flags == AT_REMOVEDIR;
  return AtParent(dir, rmdir ? "rmdir" : "unlink", path, rmdir ? EBUSY : EISDIR,
                  [&](int fd, const char* name) {
                    return internal::SysUnlinkAt(fd, name, flags);
                  });
}

// renameat(2), or renameat2(2) with the flags `mode` asks for.
inline int RenameCall(int from_fd, const char* from_name, int to_fd,
                      const char* to_name, RenameMode mode) {
  const unsigned flags = mode == RenameMode::kNoReplace  ? RENAME_NOREPLACE
                         : mode == RenameMode::kExchange ? RENAME_EXCHANGE
                                                         : 0;
  if (flags == 0) {
    return internal::SysRenameAt(from_fd, from_name, to_fd, to_name);
  }
  return internal::SysRenameAt2(from_fd, from_name, to_fd, to_name, flags);
}

ABSL_ATTRIBUTE_NOINLINE absl::Status RenameSlow(const Dir& dir,
                                                absl::string_view from,
                                                const Dir& to_dir,
                                                absl::string_view to,
                                                RenameMode mode) {
  return TwoPathCall(dir, "rename", from, to_dir, to, EBUSY, EBUSY, false,
                     [mode](int from_fd, const char* from_name, int to_fd,
                            const char* to_name) {
                       return RenameCall(from_fd, from_name, to_fd, to_name,
                                         mode);
                     });
}

ABSL_ATTRIBUTE_NOINLINE absl::Status LinkSlow(const Dir& dir,
                                              absl::string_view from,
                                              const Dir& to_dir,
                                              absl::string_view to) {
  constexpr absl::string_view kOp = "link";
  // linkat(2) follows `from` when it has a trailing slash (the slash asks
  // for a directory): never hand it such a name. A directory cannot be
  // linked (EPERM); anything else with a slash is the lookup's own error.
  if (dir.confined() && HasTrailingSlash(from)) {
    if (absl::Status s = CheckInput(dir, kOp, from); !s.ok()) return s;
    if (absl::Status s = CheckInput(to_dir, kOp, to); !s.ok()) return s;
    if (absl::Status s = CheckWritable(dir, kOp, from); !s.ok()) return s;
    if (absl::Status s = CheckWritable(to_dir, kOp, to); !s.ok()) return s;
    CPath p(from);
    Fd opened;
    if (ResolveResult r =
            OpenResolved(dir, p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, &opened);
        !r.ok()) {
      return ResultError(r, kOp, from);
    }
    return ErrnoError(EPERM, kOp, absl::StrCat(from, " -> ", to));
  }
  return TwoPathCall(
      dir, kOp, from, to_dir, to, EPERM, EEXIST, true,
      [](int from_fd, const char* from_name, int to_fd, const char* to_name) {
        return internal::SysLinkAt(from_fd, from_name, to_fd, to_name, 0);
      });
}

// A follow-and-act call (chmod, chown, utimensat, truncate): the checks,
// then `act(fd)` on an O_PATH descriptor of what `path` names, reached by
// the resolver with a final symlink followed. `act` returns 0 or -errno.
//
// `on_name(dirfd, name)`, when given, is tried first on a path of one name
// (IsOneComponent): it acts on that name without following it, as the plain
// *at call with AT_SYMLINK_NOFOLLOW on the Dir's descriptor does (confined:
// one name that is not ".." cannot leave the Dir), and returns 0, -errno, or
// kNotOnName when the name may be a symlink to follow (or the call is
// missing here): then the resolver's way is taken.
inline constexpr int kNotOnName = 1;

template <typename Act, typename OnName = std::nullptr_t>
absl::Status ActOnFollowed(const Dir& dir, absl::string_view op,
                           absl::string_view path, Act act,
                           OnName on_name = nullptr) {
  if (absl::Status s = CheckInput(dir, op, path); !s.ok()) return s;
  if (absl::Status s = CheckWritable(dir, op, path); !s.ok()) return s;
  CPath p(path);
  if constexpr (!std::is_null_pointer_v<OnName>) {
    if (dir.confined() && IsOneComponent(p.view())) {
      int r = on_name(dir.fd(), p.c_str());
      if (r != kNotOnName) {
        return r < 0 ? ErrnoError(-r, op, path) : absl::OkStatus();
      }
    }
  }
  Fd fd;
  if (ResolveResult r = OpenResolved(dir, p, O_PATH | O_CLOEXEC, 0, &fd);
      !r.ok()) {
    return ResultError(r, op, path);
  }
  int r = act(fd.get());
  return r < 0 ? ErrnoError(-r, op, path) : absl::OkStatus();
}

// Dir::Lchown past its plain-name fast path.
ABSL_ATTRIBUTE_NOINLINE absl::Status LchownSlow(const Dir& dir,
                                                absl::string_view path,
                                                uid_t uid, gid_t gid) {
  constexpr absl::string_view kOp = "lchown";
  PathSplit split = SplitLast(path);
  absl::string_view last = split.last.substr(0, split.last.find('/'));
  // A trailing slash makes fchownat follow the name, and ".." would be
  // walked by the kernel: those (and ".", and "/") name a directory, which
  // is never a symlink, so following is the same and stays confined.
  if (dir.confined() && (last.empty() || last.size() != split.last.size() ||
                         KindOf(last) != ComponentKind::kName)) {
    return ActOnFollowed(dir, kOp, path, [&](int fd) {
      return internal::SysFchownAt(fd, "", uid, gid, AT_EMPTY_PATH);
    });
  }
  return AtParent(dir, kOp, path, EINVAL, [&](int fd, const char* name) {
    return internal::SysFchownAt(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
  });
}

// MkdirAll's steps, on the descriptor `dirfd` of a level it reached (a
// descriptor a confined resolution reached, or that such a step opened as
// a plain name of it, never a path resolved again: the same footing as
// Mkdir's, whose mkdirat is made on its parent's descriptor). `name` is a
// name, not "." or "..".
//
// MkdirIn: mkdirat of `name` there; 0 or -errno.
int MkdirIn(int dirfd, absl::string_view name, mode_t mode) {
  char buf[kNameMax + 1];
  if (!CopyPlainName(name, buf)) return -EINVAL;
  return internal::SysMkdirAt(dirfd, buf, mode & 07777);
}

// LevelIn: the directory `name` there, made first if missing, opened
// O_PATH|O_DIRECTORY|O_NOFOLLOW into `*out`. False when it cannot be so
// (a symlink, a non-directory, an error): the caller takes the confined way.
bool LevelIn(int dirfd, absl::string_view name, mode_t mode, Fd* out) {
  char buf[kNameMax + 1];
  if (!CopyPlainName(name, buf)) return false;
  constexpr int kFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = internal::SysOpenAt(dirfd, buf, kFlags, 0);
  if (fd == -ENOENT) {
    int r = internal::SysMkdirAt(dirfd, buf, mode & 07777);
    if (r != 0 && r != -EEXIST) return false;
    fd = internal::SysOpenAt(dirfd, buf, kFlags, 0);
  }
  if (fd < 0) return false;
  *out = Fd(fd);
  return true;
}

// A salt for the temporary names of this process: its id, read once (glibc
// no longer caches getpid(), and a syscall more is a tenth of a one-name
// WriteFile). No lock: threads that race here store the same value. A
// forked child keeps its parent's salt; the names then differ by the clock
// and the counter, and the O_EXCL create settles the rest.
uint64_t ProcessSalt() {
  static std::atomic<uint64_t> salt{0};
  uint64_t s = salt.load(std::memory_order_relaxed);
  if (s == 0) {
    s = (static_cast<uint64_t>(getpid()) << 32) | 1;
    salt.store(s, std::memory_order_relaxed);
  }
  return s;
}

// The name of the temporary file WriteFile writes beside its target. Two
// processes may still draw the same name: the file is created O_EXCL, and
// the next draw differs by the clock and the counter.
void TempName(char (&buf)[40]) {
  static std::atomic<uint64_t> counter{0};
  uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  uint64_t salt =
      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ ProcessSalt();
  snprintf(buf, sizeof(buf), ".capfs-%016llx",
           static_cast<unsigned long long>(salt + n * 0x9e3779b97f4a7c15ULL));
}

}  // namespace

Dir::Dir(Fd owned, int dirfd, DirOptions options, bool unconfined)
    : owned_(std::move(owned)),
      dirfd_(dirfd),
      options_(options),
      unconfined_(unconfined) {}

Dir::Dir(Dir&& other) noexcept
    : owned_(std::move(other.owned_)),
      dirfd_(std::exchange(other.dirfd_, -1)),
      options_(other.options_),
      unconfined_(std::exchange(other.unconfined_, false)),
      filesystem_class_(other.filesystem_class_.exchange(0)) {}

Dir& Dir::operator=(Dir&& other) noexcept {
  if (this != &other) {
    owned_ = std::move(other.owned_);
    dirfd_ = std::exchange(other.dirfd_, -1);
    options_ = other.options_;
    unconfined_ = std::exchange(other.unconfined_, false);
    filesystem_class_.store(other.filesystem_class_.exchange(0));
  }
  return *this;
}

absl::StatusOr<Dir> Dir::Open(absl::string_view host_path, DirOptions options) {
  if (int err = CheckPath(host_path); err != 0) {
    return ErrnoError(err, "open", host_path);
  }
  if (options.resolver == Resolver::kKernel &&
      !internal::KernelResolverAvailable()) {
    return KernelUnavailableError("open", host_path);
  }
  CPath p(host_path);
  int fd = internal::SysOpenAt(AT_FDCWD, p.c_str(), O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return ErrnoError(-fd, "open", host_path);
  return Dir(Fd(fd), fd, options, false);
}

absl::StatusOr<Dir> Dir::FromFd(Fd fd, DirOptions options) {
  struct stat st;
  if (int r = internal::SysFstat(fd.get(), &st); r < 0) {
    return ErrnoError(-r, "fstat", "");
  }
  if (!S_ISDIR(st.st_mode)) return ErrnoError(ENOTDIR, "Dir::FromFd", "");
  if (int r = internal::SysFcntl(fd.get(), F_SETFD, FD_CLOEXEC); r < 0) {
    return ErrnoError(-r, "fcntl", "");
  }
  if (options.resolver == Resolver::kKernel &&
      !internal::KernelResolverAvailable()) {
    return KernelUnavailableError("Dir::FromFd", "");
  }
  int raw = fd.get();
  return Dir(std::move(fd), raw, options, false);
}

Dir Dir::Cwd(DirOptions options) { return Dir(Fd(), AT_FDCWD, options, false); }

Dir Dir::Unconfined() { return Dir(Fd(), AT_FDCWD, DirOptions(), true); }

absl::StatusOr<Fd> Dir::OpenAt(absl::string_view path, int flags,
                               mode_t mode) const {
  return *OpenAtIn(*this, path, flags, mode, Mode::kBlocking);
}

absl::StatusOr<Dir> Dir::OpenDir(absl::string_view path) const {
  return *OpenDirIn(*this, path, Mode::kBlocking);
}

// Mkdir, Unlink, Rmdir, Rename, Link and Lchown are hot, as Stat is: a
// plain name takes PlainNameCall's or PlainTwoNameCall's one function in
// .text.hot, and everything else an out-of-line call (the *Slow functions
// above).
ABSL_ATTRIBUTE_HOT absl::Status Dir::Mkdir(absl::string_view path,
                                           mode_t mode) const {
  return PlainNameCall(
      *this, "mkdir", path,
      [mode](int fd, const char* name) {
        return internal::SysMkdirAt(fd, name, mode & 07777);
      },
      [&] { return MkdirSlow(*this, path, mode); });
}

ABSL_ATTRIBUTE_HOT absl::Status Dir::Unlink(absl::string_view path) const {
  return PlainNameCall(
      *this, "unlink", path,
      [](int fd, const char* name) {
        return internal::SysUnlinkAt(fd, name, 0);
      },
      [&] { return UnlinkSlow(*this, path, 0); });
}

ABSL_ATTRIBUTE_HOT absl::Status Dir::Rmdir(absl::string_view path) const {
  return PlainNameCall(
      *this, "rmdir", path,
      [](int fd, const char* name) {
        return internal::SysUnlinkAt(fd, name, AT_REMOVEDIR);
      },
      [&] { return UnlinkSlow(*this, path, AT_REMOVEDIR); });
}

absl::Status Dir::Symlink(absl::string_view target,
                          absl::string_view link_path) const {
  constexpr absl::string_view kOp = "symlink";
  if (absl::Status s = internal::CheckSymlinkTarget(target); !s.ok()) {
    return s;
  }
  CPath t(target);
  return AtParent(*this, kOp, link_path, EEXIST, [&](int fd, const char* name) {
    return internal::SysSymlinkAt(t.c_str(), fd, name);
  });
}

ABSL_ATTRIBUTE_HOT absl::Status Dir::Rename(absl::string_view from,
                                            const Dir& to_dir,
                                            absl::string_view to) const {
  return Rename(from, to_dir, to, RenameMode::kReplace);
}

ABSL_ATTRIBUTE_HOT absl::Status Dir::Rename(absl::string_view from,
                                            const Dir& to_dir,
                                            absl::string_view to,
                                            RenameMode mode) const {
  return PlainTwoNameCall(
      *this, "rename", from, to_dir, to,
      [mode](int from_fd, const char* from_name, int to_fd,
             const char* to_name) {
        return RenameCall(from_fd, from_name, to_fd, to_name, mode);
      },
      [&] { return RenameSlow(*this, from, to_dir, to, mode); });
}

ABSL_ATTRIBUTE_HOT absl::Status Dir::Link(absl::string_view from,
                                          const Dir& to_dir,
                                          absl::string_view to) const {
  return PlainTwoNameCall(
      *this, "link", from, to_dir, to,
      [](int from_fd, const char* from_name, int to_fd, const char* to_name) {
        return internal::SysLinkAt(from_fd, from_name, to_fd, to_name, 0);
      },
      [&] { return LinkSlow(*this, from, to_dir, to); });
}

absl::StatusOr<std::string> Dir::ReadLink(absl::string_view path) const {
  return *ReadLinkIn(*this, path, Mode::kBlocking);
}

// Hot: the two sit side by side in .text.hot, away from the rest of dir.cc
// (see StatCall).
ABSL_ATTRIBUTE_HOT absl::StatusOr<FileStat> Dir::Stat(
    absl::string_view path) const {
  return StatCall(*this, "stat", path, /*follow=*/true);
}

ABSL_ATTRIBUTE_HOT absl::StatusOr<FileStat> Dir::Lstat(
    absl::string_view path) const {
  return StatCall(*this, "lstat", path, /*follow=*/false);
}

absl::StatusOr<std::vector<DirEntry>> Dir::ReadDir(
    absl::string_view path) const {
  constexpr absl::string_view kOp = "readdir";
  if (absl::Status s = CheckInput(*this, kOp, path); !s.ok()) return s;
  CPath p(path);
  Fd dir;
  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  if (ResolveResult r = OpenResolved(*this, p, flags, 0, &dir); !r.ok()) {
    return ResultError(r, kOp, path);
  }
  // The layout getdents64(2) fills in.
  struct LinuxDirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
  };
  auto is_dot_or_dotdot = [](const char* name) {
    return name[0] == '.' &&
           (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
  };
  // Every batch getdents64 gives is kept until the directory is read to the
  // end, so that the entries are counted first and the vector is allocated
  // once, at its final size. Grown entry by entry, it would touch about twice
  // the memory, and on a large directory the page faults on that memory cost
  // more than the entries themselves.
  constexpr size_t kBatchSize = 64 * 1024;
  struct Batch {
    std::unique_ptr<char[]> data;
    size_t size;
  };
  absl::InlinedVector<Batch, 8> batches;
  size_t count = 0;
  for (;;) {
    std::unique_ptr<char[]> data(new char[kBatchSize]);
    ssize_t n = internal::SysGetdents64(dir.get(), data.get(), kBatchSize);
    if (n < 0) return ErrnoError(static_cast<int>(-n), kOp, path);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(data.get() + off);
      off += d->d_reclen;
      if (!is_dot_or_dotdot(d->d_name)) ++count;
    }
    batches.push_back(Batch{std::move(data), static_cast<size_t>(n)});
  }
  std::vector<DirEntry> entries;
  entries.reserve(count);
  for (const Batch& batch : batches) {
    for (size_t off = 0; off < batch.size;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(batch.data.get() + off);
      off += d->d_reclen;
      if (is_dot_or_dotdot(d->d_name)) continue;
      FileKind kind;
      switch (d->d_type) {
        case DT_REG:
          kind = FileKind::kRegular;
          break;
        case DT_DIR:
          kind = FileKind::kDirectory;
          break;
        case DT_LNK:
          kind = FileKind::kSymlink;
          break;
        case DT_BLK:
          kind = FileKind::kBlockDevice;
          break;
        case DT_CHR:
          kind = FileKind::kCharDevice;
          break;
        case DT_FIFO:
          kind = FileKind::kFifo;
          break;
        case DT_SOCK:
          kind = FileKind::kSocket;
          break;
        default: {
          // Some filesystems leave d_type unset: ask, without following.
          struct stat st;
          kind = internal::SysFstatAt(dir.get(), d->d_name, &st,
                                      AT_SYMLINK_NOFOLLOW) == 0
                     ? FileKindFromMode(st.st_mode)
                     : FileKind::kUnknown;
        }
      }
      entries.push_back(DirEntry{std::string(d->d_name), kind});
    }
  }
  return entries;
}

absl::Status Dir::Chmod(absl::string_view path, mode_t mode) const {
  return ActOnFollowed(
      *this, "chmod", path,
      [&](int fd) {
        int r = internal::SysFchmodat2(fd, "", mode & 07777, AT_EMPTY_PATH);
        if (r != -ENOSYS) return r;
        // Before Linux 6.6 there is no chmod of a descriptor that O_PATH
        // opened but through procfs.
        char proc[64];
        if (!internal::ProcFdPath(fd, proc)) return -EOPNOTSUPP;
        return internal::SysFchmodAt(AT_FDCWD, proc, mode & 07777);
      },
      // One name: fchmodat2 with AT_SYMLINK_NOFOLLOW changes it in one
      // syscall, as chmod(2) does, unless it is a symlink (EOPNOTSUPP),
      // which the resolver then follows. Before Linux 6.6, ENOSYS.
      [&](int dirfd, const char* name) {
        int r = internal::SysFchmodat2(dirfd, name, mode & 07777,
                                       AT_SYMLINK_NOFOLLOW);
        return r == -EOPNOTSUPP || r == -ENOSYS ? kNotOnName : r;
      });
}

absl::Status Dir::Chown(absl::string_view path, uid_t uid, gid_t gid) const {
  return ActOnFollowed(*this, "chown", path, [&](int fd) {
    return internal::SysFchownAt(fd, "", uid, gid, AT_EMPTY_PATH);
  });
}

ABSL_ATTRIBUTE_HOT absl::Status Dir::Lchown(absl::string_view path, uid_t uid,
                                            gid_t gid) const {
  return PlainNameCall(
      *this, "lchown", path,
      [uid, gid](int fd, const char* name) {
        return internal::SysFchownAt(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
      },
      [&] { return LchownSlow(*this, path, uid, gid); });
}

absl::Status Dir::SetTimes(absl::string_view path, absl::Time atime,
                           absl::Time mtime) const {
  struct timespec times[2] = {absl::ToTimespec(atime), absl::ToTimespec(mtime)};
  return ActOnFollowed(*this, "utimensat", path, [&](int fd) {
    int r = internal::SysUtimensAt(fd, "", times, AT_EMPTY_PATH);
    if (r != -EINVAL) return r;
    // A kernel without AT_EMPTY_PATH here (or a time out of range, which
    // the procfs path answers the same).
    char proc[64];
    if (!internal::ProcFdPath(fd, proc)) return r;
    return internal::SysUtimensAt(AT_FDCWD, proc, times, 0);
  });
}

absl::Status Dir::Truncate(absl::string_view path, off_t length) const {
  constexpr absl::string_view kOp = "truncate";
  // truncate(2) refuses a negative length before it looks the path up.
  if (length < 0) return ErrnoError(EINVAL, kOp, path);
  return ActOnFollowed(*this, kOp, path, [&](int fd) {
    // truncate(2)'s checks, in its order (fs/open.c, vfs_truncate): a
    // directory, then anything but a regular file. Only then is the file
    // opened for writing, so a device or FIFO is never opened.
    struct stat st;
    if (int r = internal::SysFstat(fd, &st); r < 0) return r;
    if (S_ISDIR(st.st_mode)) return -EISDIR;
    if (!S_ISREG(st.st_mode)) return -EINVAL;
    // Opening it O_WRONLY makes the rest of truncate(2)'s checks (read-only
    // mount, write permission, append-only, a running executable), as
    // truncate(2) makes them, on the very inode the resolver reached.
    char proc[64];
    if (!internal::ProcFdPath(fd, proc)) return -EOPNOTSUPP;
    int w = internal::SysOpenAt(AT_FDCWD, proc,
                                O_WRONLY | O_NOCTTY | O_NONBLOCK, 0);
    if (w < 0) return w;
    Fd writable(w);
    struct stat now;
    if (int r = internal::SysFstat(w, &now); r < 0) return r;
    if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) return -EAGAIN;
    return internal::SysFtruncate(w, length);
  });
}

absl::Status Dir::MkdirAll(absl::string_view path, mode_t mode) const {
  constexpr absl::string_view kOp = "mkdir";
  if (absl::Status s = CheckInput(*this, kOp, path); !s.ok()) return s;
  if (absl::Status s = CheckWritable(*this, kOp, path); !s.ok()) return s;
  // One name that is already a directory (the common case: making sure it
  // exists): one fstatat says so, where mkdir first takes a second syscall
  // and builds an EEXIST status. Looking before making is what Go's
  // os.MkdirAll does too. Anything else (missing, a symlink, not a
  // directory, an error) takes the path below, which decides as before.
  if (char name[kNameMax + 1]; CopyPlainName(path, name)) {
    struct stat st;
    if (internal::SysFstatAt(fd(), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
  }
  // EEXIST is OK when what is there is a directory (followed, confined: an
  // escaping symlink is refused as everywhere).
  auto settle = [&](absl::Status s) -> absl::Status {
    if (ErrnoOf(s) != EEXIST || ViolationOf(s) != Violation::kNone) return s;
    absl::StatusOr<FileStat> st;
    StatPath(*this, kOp, path, /*follow=*/true, Mode::kBlocking, &st);
    if (!st.ok() && ViolationOf(st.status()) != Violation::kNone) {
      return st.status();
    }
    return st.ok() && st->kind == FileKind::kDirectory ? absl::OkStatus() : s;
  };
  absl::Status s = Mkdir(path, mode);
  if (ErrnoOf(s) != ENOENT || ViolationOf(s) != Violation::kNone) {
    return settle(s);
  }
  // Some directory on the way is missing: each level is reached from the
  // one before through its descriptor (LevelIn: the name opened, or made
  // and opened, never followed), so the path costs a step a level rather
  // than a walk of its prefix a level. What a descriptor cannot serve ("."
  // and "..", a symlink to follow, a non-directory, an error) takes a
  // confined Mkdir of the path up to there, as before, and the walk goes on
  // from that prefix opened confined (or, if it cannot be, by a confined
  // Mkdir a level, first to last).
  ComponentReader reader(path);
  Component c;
  Fd held;                     // the level reached, unless it is the Dir
  int at = fd();               // the level reached's descriptor
  bool stepping = confined();  // else a confined Mkdir a level
  while (reader.Next(&c)) {
    const bool last = reader.Done();
    if (stepping && KindOf(c.name) == ComponentKind::kName) {
      if (last) {
        if (MkdirIn(at, c.name, mode) == 0) return absl::OkStatus();
        break;  // the confined call below settles it
      }
      Fd next;
      if (LevelIn(at, c.name, mode, &next)) {
        held = std::move(next);
        at = held.get();
        continue;
      }
    }
    if (last) break;
    absl::string_view prefix = path.substr(
        0, static_cast<size_t>(c.name.data() + c.name.size() - path.data()));
    absl::Status step = Mkdir(prefix, mode);
    if (!step.ok() && ErrnoOf(step) != EEXIST) return step;
    if (ViolationOf(step) != Violation::kNone) return step;
    if (stepping) {
      // Opened confined, as Mkdir's parent was: what it reaches is beneath
      // the Dir, a symlink on the way followed.
      CPath p(prefix);
      Fd fd;
      if (OpenResolved(*this, p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, &fd)
              .ok()) {
        held = std::move(fd);
        at = held.get();
      } else {
        stepping = false;
      }
    }
  }
  return settle(Mkdir(path, mode));
}

absl::Status Dir::RemoveAll(absl::string_view path) const {
  constexpr absl::string_view kOp = "removeall";
  if (absl::Status s = CheckInput(*this, kOp, path); !s.ok()) return s;
  if (absl::Status s = CheckWritable(*this, kOp, path); !s.ok()) return s;
  CPath p(path);
  PathSplit split = SplitLast(path);
  absl::string_view last = split.last.substr(0, split.last.find('/'));
  if (last.empty() || KindOf(last) != ComponentKind::kName) {
    // ".", "..", "/": the directory they name is emptied and kept.
    Fd dir;
    ResolveResult r =
        OpenResolved(*this, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &dir);
    if (r.IsErrno(ENOENT)) return absl::OkStatus();
    if (!r.ok()) return ResultError(r, kOp, path);
    r = internal::EmptyTree(std::move(dir));
    return r.ok() ? absl::OkStatus() : ResultError(r, kOp, path);
  }
  const bool trailing_slash = last.size() != split.last.size();
  ParentDir parent;
  if (ResolveResult r = ParentResolved(*this, p, &parent); !r.ok()) {
    // A missing directory on the way: nothing to remove.
    return r.IsErrno(ENOENT) ? absl::OkStatus() : ResultError(r, kOp, path);
  }
  // The last name without its slashes (never followed here).
  p.data()[static_cast<size_t>(last.data() + last.size() - path.data())] = '\0';
  const char* name = parent.last;
  // An empty directory goes with one rmdir, and a non-directory is told by
  // rmdir's ENOTDIR (rmdir never follows the name). Any other answer
  // (ENOTEMPTY, EACCES, EBUSY, ...) takes the whole way below, which
  // empties what it can before it reports an error.
  bool is_dir = true;
  if (int r = internal::SysUnlinkAt(parent.fd, name, AT_REMOVEDIR);
      r == 0 || r == -ENOENT) {
    return absl::OkStatus();
  } else if (r == -ENOTDIR) {
    is_dir = false;
  } else {
    struct stat st;
    r = internal::SysFstatAt(parent.fd, name, &st, AT_SYMLINK_NOFOLLOW);
    if (r < 0) {
      return r == -ENOENT ? absl::OkStatus() : ErrnoError(-r, kOp, path);
    }
    is_dir = S_ISDIR(st.st_mode);
  }
  if (!is_dir) {
    // rmdir(2)'s answer to "name/" on a non-directory, symlinks included.
    if (trailing_slash) return ErrnoError(ENOTDIR, kOp, path);
    int r = internal::SysUnlinkAt(parent.fd, name, 0);
    return r < 0 && r != -ENOENT ? ErrnoError(-r, kOp, path) : absl::OkStatus();
  }
  // Emptied, then removed; filled again meanwhile (a concurrent writer), it
  // is emptied again a few times before ENOTEMPTY is the answer.
  int r = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    int fd = internal::SysOpenAt(parent.fd, name,
                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (fd == -ENOENT) return absl::OkStatus();
    if (fd == -ENOTDIR || fd == -ELOOP) {
      // Replaced by a non-directory since the stat: removed as a name.
      r = internal::SysUnlinkAt(parent.fd, name, 0);
      return r < 0 && r != -ENOENT ? ErrnoError(-r, kOp, path)
                                   : absl::OkStatus();
    }
    if (fd < 0) return ErrnoError(-fd, kOp, path);
    if (ResolveResult e = internal::EmptyTree(Fd(fd)); !e.ok()) {
      return ResultError(e, kOp, path);
    }
    r = internal::SysUnlinkAt(parent.fd, name, AT_REMOVEDIR);
    if (r == 0 || r == -ENOENT) return absl::OkStatus();
    // Filled again, or the name exchanged with a non-directory: again.
    if (r != -ENOTEMPTY && r != -ENOTDIR) break;
  }
  return ErrnoError(-r, kOp, path);
}

absl::StatusOr<std::string> Dir::ReadFile(absl::string_view path) const {
  absl::StatusOr<Fd> fd = OpenAt(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  return ReadAll(*fd);
}

absl::Status Dir::WriteFile(absl::string_view path, absl::string_view data,
                            mode_t mode) const {
  constexpr absl::string_view kOp = "writefile";
  if (absl::Status s = CheckInput(*this, kOp, path); !s.ok()) return s;
  if (absl::Status s = CheckWritable(*this, kOp, path); !s.ok()) return s;
  constexpr int kCreateFlags = O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY;
  // The name a final symlink leads to, followed here one link at a time
  // (confined, as the resolvers follow) so that the file can be replaced
  // by name: `current` is the path of the name to write.
  std::string current(path);
  for (int follows = 0;; ++follows) {
    if (HasTrailingSlash(current)) {
      // open(2) with O_CREAT on "name/" never creates anything: it fails,
      // with EISDIR once the name is reached. Its answer, confined.
      absl::StatusOr<Fd> f = OpenAt(path, kCreateFlags, mode);
      if (!f.ok()) return f.status();
      return ErrnoError(EISDIR, kOp, path);
    }
    if (CheckPath(current) != 0)
      return ErrnoError(CheckPath(current), kOp, path);
    CPath p(current);
    ParentDir parent;
    if (ResolveResult r = ParentResolved(*this, p, &parent); !r.ok()) {
      return ResultError(r, kOp, path);
    }
    if (parent.last == nullptr) return ErrnoError(EISDIR, kOp, path);
    const char* name = parent.last;
    struct stat st;
    int r = internal::SysFstatAt(parent.fd, name, &st, AT_SYMLINK_NOFOLLOW);
    if (r < 0 && r != -ENOENT) return ErrnoError(-r, kOp, path);
    const bool exists = r == 0;
    if (exists && S_ISLNK(st.st_mode) && follows == 0) {
      // open(2)'s own answer first, confined, with its exact symlink count
      // and permission checks: it creates a dangling link's target (empty,
      // with `mode`), which is then replaced like any file.
      absl::StatusOr<Fd> f = OpenAt(path, kCreateFlags, mode);
      if (!f.ok()) return f.status();
    }
    if (exists && S_ISLNK(st.st_mode)) {
      if (follows == internal::kMaxSymlinkFollows) {
        return ErrnoError(ELOOP, kOp, path);
      }
      char target[kPathMax];
      ssize_t n =
          internal::SysReadLinkAt(parent.fd, name, target, sizeof(target));
      if (n < 0) return ErrnoError(static_cast<int>(-n), kOp, path);
      absl::string_view t(target, static_cast<size_t>(n));
      if (t.empty()) return ErrnoError(ENOENT, kOp, path);
      if (IsAbsolute(t)) {
        if (!confined()) {
          current = std::string(t);
          continue;
        }
        if (options().scope == Scope::kBeneath) {
          return ViolationError(Violation::kEscape, kOp, path);
        }
        current = std::string(t);
      } else {
        current = absl::StrCat(SplitLast(current).parent, t);
      }
      if (current.size() >= kPathMax) {
        return ErrnoError(ENAMETOOLONG, kOp, path);
      }
      continue;
    }
    if (exists && S_ISDIR(st.st_mode)) return ErrnoError(EISDIR, kOp, path);
    if (exists && !S_ISREG(st.st_mode)) {
      // A FIFO, socket or device: written in place, as open(2) would.
      int fd = internal::SysOpenAt(
          parent.fd, name,
          O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
      if (fd < 0) return ErrnoError(-fd, kOp, path);
      return WriteAll(Fd(fd), data);
    }
    if (exists) {
      // Replacing needs what writing in place needs: permission to write
      // the file (open(2)'s check, with the effective ids).
      int e =
          internal::SysFaccessat2(parent.fd, name, W_OK, AT_SYMLINK_NOFOLLOW);
      if (e == -ENOSYS || e == -EPERM) {
        // No faccessat2 (before Linux 5.8, or refused by a seccomp filter;
        // EPERM is also an immutable file's answer): ask open(2) itself. A
        // regular file opened for writing without O_TRUNC is left as it is.
        e = internal::SysOpenAt(
            parent.fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
        if (e >= 0) {
          Fd opened(e);
          e = 0;
        }
      }
      if (e < 0) return ErrnoError(-e, kOp, path);
    }
    char temp[40];
    int fd = -EEXIST;
    for (int attempt = 0; attempt < 16 && fd == -EEXIST; ++attempt) {
      TempName(temp);
      fd = internal::SysOpenAt(parent.fd, temp,
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                               exists ? 0600 : (mode & 07777));
    }
    if (fd < 0) return ErrnoError(-fd, kOp, path);
    Fd file(fd);
    auto discard = [&](absl::Status s) {
      internal::SysUnlinkAt(parent.fd, temp, 0);
      return s;
    };
    if (exists) {
      if (int e = internal::SysFchmod(fd, st.st_mode & 07777); e < 0) {
        return discard(ErrnoError(-e, kOp, path));
      }
    }
    if (absl::Status s = WriteAll(file, data); !s.ok()) return discard(s);
    if (int e = internal::SysRenameAt(parent.fd, temp, parent.fd, name);
        e < 0) {
      return discard(ErrnoError(-e, kOp, path));
    }
    return absl::OkStatus();
  }
}

absl::Status Dir::Walk(
    absl::string_view path,
    absl::FunctionRef<absl::StatusOr<bool>(absl::string_view relative_path,
                                           const FileStat& lstat)>
        fn) const {
  constexpr absl::string_view kOp = "walk";
  if (absl::Status s = CheckInput(*this, kOp, path); !s.ok()) return s;
  CPath p(path);
  Fd dir;
  ResolveResult r =
      OpenResolved(*this, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &dir);
  struct stat st;
  if (r.ok()) {
    if (int e = internal::SysFstat(dir.get(), &st); e < 0) {
      return ErrnoError(-e, kOp, path);
    }
  } else if (r.IsErrno(ENOTDIR) || r.IsErrno(EACCES)) {
    // Not a directory, or one that cannot be listed: its own visit first.
    Fd object;
    if (ResolveResult e =
            OpenResolved(*this, p, O_PATH | O_CLOEXEC, 0, &object);
        !e.ok()) {
      return ResultError(e, kOp, path);
    }
    if (int e = internal::SysFstat(object.get(), &st); e < 0) {
      return ErrnoError(-e, kOp, path);
    }
  } else {
    return ResultError(r, kOp, path);
  }
  absl::StatusOr<bool> descend = fn("", internal::FileStatOf(st));
  if (!descend.ok()) return descend.status();
  if (!*descend || !S_ISDIR(st.st_mode)) return absl::OkStatus();
  if (!dir.valid()) return ResultError(r, kOp, path);
  absl::Status stopped;
  ResolveResult w = internal::WalkTree(
      std::move(dir),
      [&](absl::string_view rel, const struct stat& lst, bool* into) {
        absl::StatusOr<bool> d = fn(rel, internal::FileStatOf(lst));
        if (!d.ok()) {
          stopped = d.status();
          return false;
        }
        if (!*d) *into = false;
        return true;
      });
  // The visitor stops the walk only with an error: that is the answer.
  if (!stopped.ok()) return stopped;
  if (!w.ok()) return ResultError(w, kOp, path);
  return absl::OkStatus();
}

namespace internal {

int FilesystemClassOf(const Dir& dir) {
  int c = dir.filesystem_class_.load(std::memory_order_relaxed);
  if (c != kFilesystemUnknown) return c;
  struct statfs st;
  c = kFilesystemOther;
  if (dir.fd() >= 0 && SysFstatfs(dir.fd(), &st) == 0) {
    switch (static_cast<unsigned long>(st.f_type)) {
      case TMPFS_MAGIC:
      case RAMFS_MAGIC:
        c = kFilesystemInMemory;
        break;
      case EXT4_SUPER_MAGIC:  // ext2 and ext3 too
      case XFS_SUPER_MAGIC:
      case BTRFS_SUPER_MAGIC:
      case F2FS_SUPER_MAGIC:
        c = kFilesystemLocal;
        break;
      default:
        break;
    }
  }
  dir.filesystem_class_.store(c, std::memory_order_relaxed);
  return c;
}

Dir ChildDir(const Dir& parent, Fd fd) {
  int raw = fd.get();
  DirOptions child = parent.confined() ? parent.options() : DirOptions();
  return Dir(std::move(fd), raw, child, false);
}

bool KernelResolved(const Dir& dir) {
  Resolver resolver = dir.options().resolver;
  return dir.confined() && resolver != Resolver::kUserspace &&
         KernelResolverAvailable();
}

bool NonblockingEligible(const Dir& dir) {
  return KernelResolved(dir) && dir.fd() >= 0 &&
         FilesystemClassOf(dir) != kFilesystemOther;
}

std::optional<absl::StatusOr<Fd>> TryOpenAt(const Dir& dir,
                                            absl::string_view path, int flags,
                                            mode_t mode) {
  if (!NonblockingEligible(dir)) return std::nullopt;
  return OpenAtIn(dir, path, flags, mode, Mode::kNonblocking);
}

std::optional<absl::StatusOr<Dir>> TryOpenDir(const Dir& dir,
                                              absl::string_view path) {
  if (!NonblockingEligible(dir)) return std::nullopt;
  return OpenDirIn(dir, path, Mode::kNonblocking);
}

std::optional<absl::StatusOr<FileStat>> TryStat(const Dir& dir,
                                                absl::string_view path,
                                                bool follow, FdCloser* closer) {
  if (!NonblockingEligible(dir)) return std::nullopt;
  absl::StatusOr<FileStat> out;
  if (!StatPath(dir, follow ? "stat" : "lstat", path, follow,
                Mode::kNonblocking, &out, closer)) {
    return std::nullopt;
  }
  return out;
}

std::optional<absl::StatusOr<std::string>> TryReadLink(const Dir& dir,
                                                       absl::string_view path) {
  if (!NonblockingEligible(dir)) return std::nullopt;
  return ReadLinkIn(dir, path, Mode::kNonblocking);
}

absl::Status PrepareOpen(const Dir& dir, absl::string_view kOp,
                         absl::string_view path, int* flags, mode_t* mode) {
  *flags = NormalizeOpenFlags(*flags);
  // The kernel refuses these flags before it reads the path; so does capfs,
  // whatever the path and the resolver.
  if (int err = OpenFlagsError(*flags); err != 0) {
    return ErrnoError(err, kOp, path);
  }
  if (absl::Status s = CheckInput(dir, kOp, path); !s.ok()) return s;
  if (*flags & kWritingFlags) {
    if (absl::Status s = CheckWritable(dir, kOp, path); !s.ok()) return s;
  }
  *mode = CreatesFile(*flags) ? (*mode & 07777) : 0;
  return absl::OkStatus();
}

OpenHow KernelOpenHow(const Dir& dir, int flags, mode_t mode) {
  return KernelOpenHowFor(RootOf(dir), flags, mode);
}

absl::Status DirCallError(ResolveResult r, absl::string_view op,
                          absl::string_view path) {
  return ResultError(r, op, path);
}

std::optional<absl::Status> PrepareAt(const Dir& dir, absl::string_view op,
                                      absl::string_view path, int root_errno,
                                      bool nonblocking, AtTarget* target) {
  if (absl::Status s = CheckInput(dir, op, path); !s.ok()) return s;
  if (absl::Status s = CheckWritable(dir, op, path); !s.ok()) return s;
  if (nonblocking && !NonblockingEligible(dir)) return std::nullopt;
  target->path.emplace(path);
  if (ResolveResult r =
          ParentResolved(dir, *target->path, &target->parent,
                         nonblocking ? Mode::kNonblocking : Mode::kBlocking);
      !r.ok()) {
    if (r.Is(Kind::kWouldBlock)) return std::nullopt;
    return ResultError(r, op, path);
  }
  if (target->parent.last == nullptr) return ErrnoError(root_errno, op, path);
  return absl::OkStatus();
}

absl::Status AtCallResult(int r, absl::string_view op, absl::string_view path) {
  return r == 0 ? absl::OkStatus() : ErrnoError(-r, op, path);
}

absl::Status CheckSymlinkTarget(absl::string_view target) {
  constexpr absl::string_view kOp = "symlink";
  // The target is stored, not resolved: any string the kernel takes. The
  // kernel reads it before it looks the link's path up, so its errors come
  // first; an empty one is ENOENT.
  if (target.empty()) return ErrnoError(ENOENT, kOp, target);
  if (target.find('\0') != absl::string_view::npos) {
    return ErrnoError(EINVAL, kOp, target);
  }
  if (target.size() >= kPathMax) return ErrnoError(ENAMETOOLONG, kOp, target);
  return absl::OkStatus();
}

std::optional<absl::Status> PrepareRename(
    const Dir& dir, absl::string_view from, const Dir& to_dir,
    absl::string_view to, bool nonblocking, RenameTarget* target) {
  constexpr absl::string_view kOp = "rename";
  std::optional<absl::Status> s = TwoParentsResolved(
      dir, kOp, from, to_dir, to,
      nonblocking ? Mode::kNonblocking : Mode::kBlocking, target);
  if (!s.has_value() || !s->ok()) return s;
  if (target->from_parent.last == nullptr ||
      target->to_parent.last == nullptr) {
    return ErrnoError(EBUSY, kOp, absl::StrCat(from, " -> ", to));
  }
  return absl::OkStatus();
}

absl::Status RenameCallResult(int r, absl::string_view from,
                              absl::string_view to) {
  if (r < 0) return ErrnoError(-r, "rename", absl::StrCat(from, " -> ", to));
  return absl::OkStatus();
}

std::optional<absl::Status> PrepareLinkNonblocking(const Dir& dir,
                                                   absl::string_view from,
                                                   const Dir& to_dir,
                                                   absl::string_view to,
                                                   RenameTarget* target) {
  // Dir::Link's own cases, a `from` with a trailing slash and the root at
  // either end, make lookups of their own: the blocking call settles them.
  if (dir.confined() && HasTrailingSlash(from)) return std::nullopt;
  std::optional<absl::Status> s = TwoParentsResolved(
      dir, "link", from, to_dir, to, Mode::kNonblocking, target);
  if (!s.has_value() || !s->ok()) return s;
  if (target->from_parent.last == nullptr ||
      target->to_parent.last == nullptr) {
    return std::nullopt;
  }
  return absl::OkStatus();
}

absl::Status LinkCallResult(int r, absl::string_view from,
                            absl::string_view to) {
  if (r < 0) return ErrnoError(-r, "link", absl::StrCat(from, " -> ", to));
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace capfs

// Dir calls for an event loop's own thread, and for callers that make the
// last syscall of a Dir call themselves (the runtime's io_uring path).
//
// The Try* functions are the Dir calls of the same names, run by the same
// code (dir.cc): the same checks before any syscall, the same confinement,
// the same results and errors. They differ in one way: they never block.
// Every openat2 they make gets RESOLVE_CACHED (fail with EAGAIN rather than
// read a directory from disk; Linux 5.12+) and RESOLVE_NO_XDEV (never enter
// another filesystem, whose lookups or opens might wait for a server or a
// daemon), and a call whose own work may wait is not made. When a call cannot
// finish that way, or meets an answer that only the blocking call settles
// (openat2's EAGAIN retries, an ELOOP the userspace resolver finishes, an
// EXDEV that may be RESOLVE_NO_XDEV's, a probe after ENOSYS or EPERM), a
// Try* function returns nullopt having changed nothing: make the blocking
// Dir call instead (on a worker). Otherwise its result is the Dir call's.
//
// What runs without blocking (NonblockingEligible must hold):
//  - OpenAt with O_PATH, O_DIRECTORY or (the caller's own) O_NONBLOCK, read
//    only (OpenCannotWait, open_flags.h): their open cannot wait. A plain
//    open may (a FIFO waits for its other end, a device's driver may wait),
//    and O_CREAT, O_TRUNC and O_TMPFILE write (RESOLVE_CACHED refuses them).
//  - OpenDir, Stat, Lstat: an O_PATH open and fstat.
//  - ReadLink on an in-memory filesystem (elsewhere reading a long target
//    may read a block from disk).
//  - The parent resolution of the name-acting calls (PrepareAt,
//    PrepareRename); the *at call itself (mkdirat, unlinkat, renameat,
//    symlinkat) takes locks and writes metadata and is left to the caller.
// On an in-memory filesystem (tmpfs, ramfs), where no lookup waits for
// I/O, the one-component fast paths of the blocking calls (a plain fstatat,
// openat or readlinkat on the Dir's descriptor) are taken as they are; a
// mount point crossed there is the one way such a call may reach another
// filesystem.
//
// Not part of the API.

#ifndef CAPFS_INTERNAL_NONBLOCKING_H_
#define CAPFS_INTERNAL_NONBLOCKING_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "capfs/dir.h"
#include "capfs/fd.h"
#include "capfs/file.h"
#include "capfs/internal/resolve.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace internal {

// The filesystem a Dir's descriptor is on, as FilesystemClassOf says (found
// with fstatfs on the first call and cached in the Dir).
enum FilesystemClass : int {
  kFilesystemUnknown = 0,
  kFilesystemInMemory = 1,  // tmpfs, ramfs: lookups never wait for I/O
  kFilesystemLocal = 2,     // ext2/3/4, xfs, btrfs, f2fs: a cached lookup,
                            // an O_PATH open and fstat do no I/O
  kFilesystemOther = 3,     // anything else (FUSE, NFS, overlay, ...)
};
int FilesystemClassOf(const Dir& dir);

// A Dir on `fd` (a directory opened beneath `parent`) with `parent`'s
// options, as Dir::OpenDir makes it.
Dir ChildDir(const Dir& parent, Fd fd);

// True when the kernel resolver serves `dir` (kKernel, or kAuto where
// openat2 works) and it is confined: a caller may then make its openat2
// itself (KernelOpenHow, KernelOpenCode).
bool KernelResolved(const Dir& dir);

// KernelResolved, on a descriptor of its own (not Dir::Cwd()), on an
// in-memory or local filesystem: the Try* functions may succeed.
bool NonblockingEligible(const Dir& dir);

// TryOpenAt makes an open only when OpenCannotWait(flags) (open_flags.h);
// for any other flags it checks the call's input and returns nullopt, or
// the input's error.
std::optional<absl::StatusOr<Fd>> TryOpenAt(const Dir& dir,
                                            absl::string_view path, int flags,
                                            mode_t mode);
std::optional<absl::StatusOr<Dir>> TryOpenDir(const Dir& dir,
                                              absl::string_view path);
// The O_PATH descriptor it may open goes to `closer` when there is one.
std::optional<absl::StatusOr<FileStat>> TryStat(const Dir& dir,
                                                absl::string_view path,
                                                bool follow,
                                                FdCloser* closer = nullptr);
std::optional<absl::StatusOr<std::string>> TryReadLink(const Dir& dir,
                                                       absl::string_view path);

// OpenAt made through the caller's own openat2 (io_uring). PrepareOpen does
// Dir::OpenAt's checks: a non-OK status is the call's result. Otherwise
// `*flags` and `*mode` are the call's, normalized, and `path` (NUL-free,
// shorter than PATH_MAX) may be opened beneath dir.fd() with
// KernelOpenHow(dir, *flags, *mode). KernelOpenResult turns
// openat2's result into a ResolveResult: Ok (the descriptor is in `*out`),
// an errno, an escape, or kWouldBlock (make the blocking call).
// DirCallError builds the call's status from a failed result.
// `op` names the call in errors: "openat", or "stat", "lstat" and
// "opendir" for the calls that are an O_PATH open (and fstat).
absl::Status PrepareOpen(const Dir& dir, absl::string_view op,
                         absl::string_view path, int* flags, mode_t* mode);
OpenHow KernelOpenHow(const Dir& dir, int flags, mode_t mode);
ResolveResult KernelOpenResult(int openat2_result, Fd* out);
absl::Status DirCallError(ResolveResult r, absl::string_view op,
                          absl::string_view path);

// A name-acting call (mkdir, unlink, rmdir, symlink) prepared: its path and
// the directory holding the last component.
struct AtTarget {
  std::optional<CPath> path;
  ParentDir parent;
};

// The checks and the parent resolution of the name-acting call `op` on
// `path`, as the Dir call makes them (`root_errno`: the call's error when
// the path names the root itself). OK: make the *at call on
// (target->parent.fd, target->parent.last) and pass its result to
// AtCallResult. Not OK: the call's result. nullopt (only when `nonblocking`):
// resolving the parent would block, or needs the blocking call.
std::optional<absl::Status> PrepareAt(const Dir& dir, absl::string_view op,
                                      absl::string_view path, int root_errno,
                                      bool nonblocking, AtTarget* target);
// The Dir call's status after its *at call returned `r` (0 or -errno).
absl::Status AtCallResult(int r, absl::string_view op, absl::string_view path);

// Symlink's checks of its target, made before the link's path is looked at.
absl::Status CheckSymlinkTarget(absl::string_view target);

// Rename prepared: both paths and both parents, found as Dir::Rename finds
// them (search permission checked on each, in the kernel's order).
struct RenameTarget {
  std::optional<CPath> from;
  std::optional<CPath> to;
  ParentDir from_parent;
  ParentDir to_parent;
};
std::optional<absl::Status> PrepareRename(
    const Dir& dir, absl::string_view from, const Dir& to_dir,
    absl::string_view to, bool nonblocking, RenameTarget* target);
absl::Status RenameCallResult(int r, absl::string_view from,
                              absl::string_view to);

// Link prepared the same way, without blocking (Dir::Link's checks and
// both parents): OK, then linkat(from_parent, to_parent, 0) and
// LinkCallResult; not OK, the call's result. nullopt: resolving would
// block, or the call is one of Dir::Link's own cases (a trailing slash on
// `from`, the root at either end): make the blocking call.
std::optional<absl::Status> PrepareLinkNonblocking(const Dir& dir,
                                                   absl::string_view from,
                                                   const Dir& to_dir,
                                                   absl::string_view to,
                                                   RenameTarget* target);
absl::Status LinkCallResult(int r, absl::string_view from,
                            absl::string_view to);

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_NONBLOCKING_H_

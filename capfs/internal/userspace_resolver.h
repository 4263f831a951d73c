// The userspace resolver: the kernel's path walk, one component at a time.
//
// Each directory on the way is opened with O_PATH|O_NOFOLLOW|O_DIRECTORY
// relative to the previous one and pushed on a stack; ".." pops the stack
// (after checking search permission on the directory it leaves, as the
// kernel does) and is never handed to the kernel to follow, so a directory
// moved elsewhere mid-walk cannot lead ".." out of the root. Popping past the
// root is an escape (Beneath) or stays at the root (InRoot). A symlink is
// read with readlinkat and its target walked from the link's directory, at
// most kMaxSymlinkFollows times; an absolute target is an escape (Beneath)
// or restarts at the root (InRoot). A name with a trailing slash is never
// handed to a call that would follow it.
//
// A name that one lookup says is (or may be) a symlink is read with
// readlinkat; when that finds no symlink (a rename in between: a symlink
// exchanged with a directory, say), the name is looked up once more with
// O_PATH|O_NOFOLLOW and the walk acts on that object through its descriptor
// (fstat, readlinkat of ""), rather than fail with an ELOOP or ENOTDIR that
// no state of the tree gives. Only opening the last component may need to
// open it again (the symlink became a file); a resolution whose last
// component keeps changing that way 64 times fails with EAGAIN, as openat2
// does under racing renames.
//
// Magic links (procfs links such as /proc/self/fd/N, whose targets are not
// paths) are never followed: a symlink on procfs whose target is absolute or
// has the "type:[...]" shape is ELOOP, as openat2 with
// RESOLVE_NO_MAGICLINKS gives.
//
// Only the last kResolveWindow directory levels keep their descriptor, so a
// path of any depth PATH_MAX allows resolves with few descriptors. A level
// that leaves the window records its device and inode; a ".." that pops
// back to it reopens it through ".." of the level above, where the kernel
// finds the parent that directory has now, and checks that identity. When
// it differs (the directory was moved: a concurrent rename), the walk never
// goes on from there, which could be outside the root: the resolution
// starts again from the root, and after kMaxAncestorRetries such restarts
// fails with EAGAIN, as openat2 does when renames keep racing its "..".
// Restarting repeats nothing: only the walk to the last component pops, and
// nothing is created or opened before it ends.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_USERSPACE_RESOLVER_H_
#define CAPFS_INTERNAL_USERSPACE_RESOLVER_H_

#include <stddef.h>
#include <sys/stat.h>

#include "capfs/fd.h"
#include "capfs/internal/resolve.h"

namespace capfs {
namespace internal {

// How many directory levels below the root keep their descriptor.
inline constexpr size_t kResolveWindow = 64;

// How many times one resolution starts again because a level it reopened
// was not the directory it had left, before it fails with EAGAIN.
inline constexpr int kMaxAncestorRetries = 16;

ResolveResult UserspaceOpen(Root root, const char* path, int flags, mode_t mode,
                            Fd* out);
ResolveResult UserspaceStat(Root root, const char* path, bool follow,
                            struct stat* st);
ResolveResult UserspaceResolveParent(Root root, const char* path,
                                     ParentDir* out);

// For tests: `hook(arg, depth)` runs just before each reopen of a level
// that left the window, `depth` levels below the root (1: a directory in
// the root), so that a test can rename directories at that very step;
// nullptr removes it. Set it while no resolution is running.
void SetAncestorReopenHookForTesting(void (*hook)(void* arg, size_t depth),
                                     void* arg);

// Ok when the caller may search `dirfd` (look a name up in it), else EACCES
// or the error that stops the check: the test the kernel makes on each
// directory of a walk, the last one included.
ResolveResult CheckSearch(int dirfd);

// "/proc/self/fd/N" for `fd` ("/proc/self/cwd" for AT_FDCWD) in `buf`, once
// /proc is found to be a real procfs: for the calls the kernel has no
// descriptor form of. False when it is not (no /proc, or something else
// mounted over it, which could lead anywhere: the runc CVE-2019-16884 class).
bool ProcFdPath(int fd, char (&buf)[64]);

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_USERSPACE_RESOLVER_H_

// Recursive walks of a directory tree through descriptors: the engine behind
// Dir::Walk and Dir::RemoveAll.
//
// Each level below the start is opened with O_RDONLY|O_DIRECTORY|O_NOFOLLOW
// relative to its parent's descriptor, so no symlink is ever followed and a
// directory renamed elsewhere mid-walk is still the one being walked: the
// walk acts only on what it holds. Only the last `window` levels keep their
// descriptor (the start keeps its own always), and the device and inode of
// every level are recorded. Going back up past the window reopens the
// ancestor through ".." of the child and checks it against the recorded
// identity; when it differs (the child was moved: a concurrent rename), the
// ancestor is reopened from the start by the recorded names, each level
// checked the same way, and when that fails too the walk stops with EAGAIN.
// It never acts in a directory it could not so identify, so it never acts
// outside the start, whatever is renamed meanwhile, and holds at most
// window + 3 descriptors whatever the depth.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_TREE_WALK_H_
#define CAPFS_INTERNAL_TREE_WALK_H_

#include <stddef.h>
#include <sys/stat.h>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "capfs/fd.h"
#include "capfs/internal/resolve_result.h"

namespace capfs {
namespace internal {

// How many levels keep their descriptor open.
inline constexpr size_t kTreeWindow = 64;

// Called for every entry beneath the start, parents before children, with
// its path relative to the start ("a", "a/b", ...) and its lstat. Sets
// `*descend` (true for a directory on entry) to false to skip the entry's
// contents; returns false to stop the walk (WalkTree then returns Ok: the
// visitor keeps the reason).
using TreeVisitor = absl::FunctionRef<bool(
    absl::string_view relative_path, const struct stat& lstat, bool* descend)>;

// Walks beneath `start`, a descriptor opened O_RDONLY|O_DIRECTORY. Returns
// Ok (the whole tree walked, or the visitor stopped it) or an errno (the
// first failure to list or stat; EAGAIN when an ancestor cannot be
// identified). An entry removed or replaced between its listing and its
// visit is skipped.
ResolveResult WalkTree(Fd start, TreeVisitor visit,
                       size_t window = kTreeWindow);

// Removes everything beneath `start` (opened O_RDONLY|O_DIRECTORY), never
// following a symlink, and keeps `start` itself. Returns Ok or an errno
// (the first removal that failed).
ResolveResult EmptyTree(Fd start, size_t window = kTreeWindow);

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_TREE_WALK_H_

// What both resolvers share: the root they resolve beneath, the result they
// return (ResolveResult, resolve_result.h), and the three primitives every
// Dir operation is built from.
//
// Each resolver (kernel_resolver.h, userspace_resolver.h) provides:
//   Open(root, path, flags, mode, &fd)   the object `path` names, opened
//   Stat(root, path, follow, &st)        its metadata
//   ResolveParent(root, path, &parent)   the directory holding its last
//                                        component, and that component
// with the semantics of DESIGN.md section 3. Paths reach them checked
// (CheckPath), NUL-terminated, relative or (InRoot only) absolute.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_RESOLVE_H_
#define CAPFS_INTERNAL_RESOLVE_H_

#include <string.h>

#include "absl/strings/string_view.h"
#include "capfs/fd.h"
#include "capfs/internal/resolve_result.h"
#include "capfs/options.h"
#include "capfs/path.h"

namespace capfs {
namespace internal {

// The maximum number of symlinks one resolution follows (path_resolution(7)).
inline constexpr int kMaxSymlinkFollows = 40;

// The directory a path is resolved beneath, and how.
struct Root {
  int fd;  // a directory descriptor, or AT_FDCWD
  Scope scope;
};

// The directory that holds a path's last component, and that component.
struct ParentDir {
  Fd owned;     // the parent, when the resolver had to open it
  int fd = -1;  // the parent: owned.get(), or the root's own descriptor
  // The last component with its trailing slashes, NUL-terminated, pointing
  // into the path given to ResolveParent; "." or ".." as written. nullptr
  // when the path names the root itself ("/" in InRoot scope).
  const char* last = nullptr;
};

// Takes descriptors a call opened for itself and no longer needs (the O_PATH
// descriptor a Stat opened), to close them soon rather than at once: the
// runtime hands them to its io_uring, many to one syscall. They are
// close-on-exec and nobody else ever sees them.
class FdCloser {
 public:
  virtual void CloseLater(Fd fd) = 0;

 protected:
  ~FdCloser() = default;
};

// A NUL-terminated copy of a checked path, on the stack.
class CPath {
 public:
  // `path` must have passed CheckPath (so it is shorter than kPathMax).
  explicit CPath(absl::string_view path) : size_(path.size()) {
    memcpy(buf_, path.data(), path.size());
    buf_[path.size()] = '\0';
  }
  CPath(const CPath&) = delete;
  CPath& operator=(const CPath&) = delete;

  char* data() { return buf_; }
  const char* c_str() const { return buf_; }
  size_t size() const { return size_; }
  absl::string_view view() const { return absl::string_view(buf_, size_); }

 private:
  size_t size_;
  char buf_[kPathMax];
};

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_RESOLVE_H_

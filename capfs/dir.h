// Dir: a directory capability.
//
// A Dir holds a descriptor of one directory, and every operation through it
// stays beneath that directory, whatever the path, the symlinks on the way or
// concurrent renames do. It is the only authority capfs code uses: there is
// no ambient path, no process-wide root, no chdir.
//
//   absl::StatusOr<capfs::Dir> root = capfs::Dir::Open("/srv/plugin-data");
//   absl::StatusOr<capfs::Fd> f = root->OpenAt(untrusted_path, O_RDONLY);
//   // "../etc/passwd", "/etc/passwd", or a symlink to either: kPermissionDenied
//
// Scopes (DirOptions::scope):
//   kBeneath  A path that would leave the Dir ("..", an absolute path or an
//             absolute or escaping symlink) fails with kPermissionDenied;
//             ViolationOf() tells kAbsolutePath or kEscape. For every other
//             path, the result is what the plain *at(2) call gives.
//   kInRoot   The Dir is the root of its own tree, as after chroot(2): ".."
//             at the top stays there, absolute paths and absolute symlink
//             targets start again at the Dir. Nothing is refused as an escape.
//
// Resolvers (DirOptions::resolver): kKernel walks the path with Linux's
// openat2(2) (RESOLVE_BENEATH or RESOLVE_IN_ROOT); kUserspace walks it one
// component at a time with O_PATH|O_NOFOLLOW, keeping a stack of opened
// directories for ".."; kAuto (the default) uses the kernel's when openat2
// works here, else the userspace one. Both give the same answer on every
// path. Neither ever follows a magic link (/proc/self/fd/N and the like).
//
// Read-only Dirs (DirOptions::read_only) refuse, before any syscall, every
// call that could change the tree or open a file for writing.
//
// Errors are absl::Status with the errno kept; see status.h. The message
// names the operation and the path as given. Every call is safe to make from
// several threads at once on the same Dir.

#ifndef CAPFS_DIR_H_
#define CAPFS_DIR_H_

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "capfs/fd.h"
#include "capfs/file.h"

namespace capfs {

class Dir;
namespace internal {
int FilesystemClassOf(const Dir& dir);  // capfs/internal/nonblocking.h
Dir ChildDir(const Dir& parent, Fd fd);  // capfs/internal/nonblocking.h
}  // namespace internal

enum class Resolver { kAuto, kKernel, kUserspace };
enum class Scope { kBeneath, kInRoot };

struct DirOptions {
  Resolver resolver = Resolver::kAuto;  // kAuto: kernel when openat2 works
                                        // here, else userspace
  Scope scope = Scope::kBeneath;
  bool read_only = false;
};

struct DirEntry {
  std::string name;
  FileKind kind;
};

class Dir {
 public:
  // Opens the host directory `host_path` (resolved as the plain open(2)
  // would: this is the caller's own path, not an untrusted one) as a Dir.
  // Fails with kUnimplemented when options.resolver is kKernel and this
  // machine has no usable openat2.
  static absl::StatusOr<Dir> Open(absl::string_view host_path,
                                  DirOptions options = {});

  // Makes a Dir of `fd`, which must be a directory (ENOTDIR otherwise), for
  // example one received over a Unix socket. Takes ownership of `fd` and sets
  // close-on-exec on it.
  static absl::StatusOr<Dir> FromFd(Fd fd, DirOptions options = {});

  // A Dir confined beneath the process's current directory, whichever it is
  // at the time of each call (its fd() is AT_FDCWD).
  static Dir Cwd(DirOptions options = {});

  // The host filesystem, unconfined: every call is the plain *at(2) call
  // with AT_FDCWD, absolute paths and ".." allowed. OpenDir on it gives a
  // confined Dir, as Dir::Open does.
  static Dir Unconfined();

  // A moved-from Dir holds no directory: every call on it fails with EBADF.
  Dir(Dir&& other) noexcept;
  Dir& operator=(Dir&& other) noexcept;

  // openat(2) beneath this Dir. `flags` are open(2)'s (O_CLOEXEC is always
  // added); `mode` applies only with O_CREAT or O_TMPFILE. The final
  // component is followed unless `flags` has O_NOFOLLOW (then a symlink is
  // ELOOP, as in the kernel). O_CREAT through a dangling symlink creates its
  // target when that stays beneath; O_CREAT|O_EXCL on any existing name is
  // EEXIST. On a read-only Dir, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC and
  // O_APPEND are refused.
  absl::StatusOr<Fd> OpenAt(absl::string_view path, int flags,
                            mode_t mode = 0) const;

  // The directory at `path` (followed) as a Dir with this Dir's options.
  absl::StatusOr<Dir> OpenDir(absl::string_view path) const;

  // mkdirat(2), unlinkat(2), unlinkat(AT_REMOVEDIR). They act on the last
  // component itself, never following it.
  absl::Status Mkdir(absl::string_view path, mode_t mode = 0777) const;
  absl::Status Unlink(absl::string_view path) const;
  absl::Status Rmdir(absl::string_view path) const;

  // renameat(2) of `from` beneath this Dir to `to` beneath `to_dir` (which may
  // be this Dir). Neither last component is followed. Refused when either Dir
  // is read-only.
  absl::Status Rename(absl::string_view from, const Dir& to_dir,
                      absl::string_view to) const;

  // symlinkat(2): stores `target` verbatim (any string; only following it is
  // confined) at `link_path`.
  absl::Status Symlink(absl::string_view target,
                       absl::string_view link_path) const;

  // readlinkat(2) of the symlink at `path`.
  absl::StatusOr<std::string> ReadLink(absl::string_view path) const;

  // fstatat(2): Stat follows a final symlink, Lstat does not.
  absl::StatusOr<FileStat> Stat(absl::string_view path) const;
  absl::StatusOr<FileStat> Lstat(absl::string_view path) const;

  // The entries of the directory at `path` (followed), without "." and "..",
  // in the order the filesystem gives them.
  absl::StatusOr<std::vector<DirEntry>> ReadDir(absl::string_view path) const;

  const DirOptions& options() const { return options_; }

  // False only for Dir::Unconfined().
  bool confined() const { return !unconfined_; }

  // The directory descriptor (opened O_PATH|O_DIRECTORY|O_CLOEXEC), e.g. to
  // pass over SCM_RIGHTS or to fchdir(2) into; AT_FDCWD for Cwd() and
  // Unconfined(). Ownership stays with the Dir.
  int fd() const { return dirfd_; }

 private:
  friend int internal::FilesystemClassOf(const Dir& dir);
  friend Dir internal::ChildDir(const Dir& parent, Fd fd);

  Dir(Fd owned, int dirfd, DirOptions options, bool unconfined);

  Fd owned_;    // the directory, unless Cwd() or Unconfined()
  int dirfd_;   // owned_.get(), AT_FDCWD, or -1 once moved from
  DirOptions options_;
  bool unconfined_;
  // What kind of filesystem dirfd_ is on, found once (for the runtime's
  // nonblocking calls, capfs/internal/nonblocking.h); 0 until then.
  mutable std::atomic<int> filesystem_class_{0};
};

}  // namespace capfs

#endif  // CAPFS_DIR_H_

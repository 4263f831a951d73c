// Dir: a directory capability.
//
// A Dir holds a descriptor of one directory, and every operation through it
// stays beneath that directory, whatever the path, the symlinks on the way or
// concurrent renames do. It is the only authority capfs code uses: there is
// no ambient path, no process-wide root, no chdir.
//
//   absl::StatusOr<capfs::Dir> root = capfs::Dir::Open("/srv/plugin-data");
//   absl::StatusOr<capfs::Fd> f = root->OpenAt(untrusted_path, O_RDONLY);
//   // "../etc/passwd", "/etc/passwd", or a symlink to either:
//   kPermissionDenied
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
// call that could change the tree or open a file for writing. This guards
// against untrusted paths, not against untrusted code holding the Dir: its
// descriptor (fd()) is an ordinary directory descriptor, and Dir::FromFd of
// it, or any *at(2) call on it, makes a writable Dir or writes directly.
// Code that must not write may only be given what it cannot unwrap (a
// descriptor passed to another process, say, with Landlock or a read-only
// mount behind it).
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

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "capfs/fd.h"
#include "capfs/file.h"
#include "capfs/options.h"  // Resolver, Scope, DirOptions

namespace capfs {

class Dir;
namespace internal {
int FilesystemClassOf(const Dir& dir);   // capfs/internal/nonblocking.h
Dir ChildDir(const Dir& parent, Fd fd);  // capfs/internal/nonblocking.h
}  // namespace internal

// How Dir::Rename treats an existing destination (renameat2(2)'s flags).
enum class RenameMode {
  kReplace,    // 0: replace it, as rename(2)
  kNoReplace,  // RENAME_NOREPLACE: fail with EEXIST
  kExchange,   // RENAME_EXCHANGE: swap the two names (both must exist)
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

  // renameat2(2) with `mode`'s flag; otherwise as the call above.
  absl::Status Rename(absl::string_view from, const Dir& to_dir,
                      absl::string_view to, RenameMode mode) const;

  // linkat(2) of `from` beneath this Dir as `to` beneath `to_dir`, never
  // following `from` (a symlink is linked as itself). Refused when either
  // Dir is read-only.
  absl::Status Link(absl::string_view from, const Dir& to_dir,
                    absl::string_view to) const;

  // chmod(2), chown(2) and utimensat(2) of what `path` names, following a
  // final symlink (confined): they act through the descriptor the resolver
  // reached, never by handing the path to a call that walks it again.
  // SetTimes sets the access and modification times to the nanosecond.
  absl::Status Chmod(absl::string_view path, mode_t mode) const;
  absl::Status Chown(absl::string_view path, uid_t uid, gid_t gid) const;
  absl::Status SetTimes(absl::string_view path, absl::Time atime,
                        absl::Time mtime) const;

  // lchown(2): a final symlink is changed itself (a trailing slash, ".",
  // ".." and "/" name a directory, which is then changed).
  absl::Status Lchown(absl::string_view path, uid_t uid, gid_t gid) const;

  // truncate(2) of what `path` names (followed): the kernel's answers, a
  // directory EISDIR, a non-regular file or a negative length EINVAL, no
  // write permission EACCES. Never opens a device or FIFO.
  absl::Status Truncate(absl::string_view path, off_t length) const;

  // Creates every missing directory of `path`, each with `mode`, from the
  // first to the last. OK when `path` is already a directory (followed); an
  // existing non-directory is mkdir(2)'s EEXIST, and a non-directory on the
  // way is ENOTDIR. Intermediate symlinks are followed, confined. Each level
  // is reached from the one before through its descriptor (opened, or made
  // and opened, never followed), so the cost is linear in the depth; a
  // symlink, ".", ".." or an error on the way takes a confined Mkdir of the
  // path up to there instead. Holds two descriptors at a time beyond the
  // resolver's.
  absl::Status MkdirAll(absl::string_view path, mode_t mode = 0777) const;

  // Removes `path` and everything beneath it, never following a symlink (a
  // symlink is removed as a name). A missing `path` (or a missing directory
  // on its way) is OK; the empty path is ENOENT as everywhere; "." empties
  // the Dir and keeps it, and so does any path whose last component is "."
  // or ".." or that has none ("/" in InRoot scope): the directory it names
  // is emptied and kept. A trailing slash on a non-directory is ENOTDIR, as
  // rmdir(2). The walk works through descriptors (see internal/tree_walk.h):
  // a directory renamed under it is still the one emptied, it never acts
  // outside `path`, and it holds a bounded number of descriptors whatever
  // the depth. The first failure stops it and is returned.
  absl::Status RemoveAll(absl::string_view path) const;

  // The whole content of the file at `path` (followed); see ReadAll.
  absl::StatusOr<std::string> ReadFile(absl::string_view path) const;

  // Creates `path` or atomically replaces the file it names: readers see
  // the old or the new content, never a mix. A final symlink is followed
  // (confined), as open(2) with O_CREAT would. A new file gets `mode` (less
  // the umask); a replaced one keeps its permission bits. The content is
  // written to a temporary name beside the file and renamed over it, so
  // WriteFile needs write permission on the directory, as well as on the
  // file it replaces (checked first: a file the caller may not write is
  // EACCES, as open(2) says), and a replaced file is a new inode (owned by
  // the caller, its hard links not updated). A directory is EISDIR.
  absl::Status WriteFile(absl::string_view path, absl::string_view data,
                         mode_t mode = 0666) const;

  // Calls `fn` for `path` itself (relative_path "", followed if a symlink,
  // as ReadDir does), then for every entry beneath it, parents before
  // children, with its lstat; never follows a symlink below the start.
  // `fn` returns false to skip a directory's contents, or a non-OK status
  // to stop the walk and have Walk return it. A directory that cannot be
  // listed stops the walk with its error. Like RemoveAll, it works through
  // descriptors, holds a bounded number of them whatever the depth, and
  // never leaves `path`; an entry replaced between its listing and its
  // visit is skipped.
  absl::Status Walk(absl::string_view path,
                    absl::FunctionRef<absl::StatusOr<bool>(
                        absl::string_view relative_path, const FileStat& lstat)>
                        fn) const;

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

  // The directory descriptor, e.g. to pass over SCM_RIGHTS or to fchdir(2)
  // into: opened O_PATH|O_DIRECTORY|O_CLOEXEC by Open and OpenDir, or
  // whatever directory descriptor FromFd was given (O_RDONLY, say, with its
  // own access mode); AT_FDCWD for Cwd() and Unconfined(); -1 once moved
  // from. Ownership stays with the Dir. It carries no read-only flag: see
  // the note on read-only Dirs above.
  int fd() const { return dirfd_; }

 private:
  friend int internal::FilesystemClassOf(const Dir& dir);
  friend Dir internal::ChildDir(const Dir& parent, Fd fd);

  Dir(Fd owned, int dirfd, DirOptions options, bool unconfined);

  Fd owned_;   // the directory, unless Cwd() or Unconfined()
  int dirfd_;  // owned_.get(), AT_FDCWD, or -1 once moved from
  DirOptions options_;
  bool unconfined_;
  // What kind of filesystem dirfd_ is on, found once (for the runtime's
  // nonblocking calls, capfs/internal/nonblocking.h); 0 until then.
  mutable std::atomic<int> filesystem_class_{0};
};

}  // namespace capfs

#endif  // CAPFS_DIR_H_

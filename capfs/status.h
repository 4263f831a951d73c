// Errors: how capfs reports what failed and why.
//
// Every fallible capfs call returns absl::Status or absl::StatusOr<T>; nothing
// throws. Two kinds of failure are told apart:
//
//  - OS errors keep the errno behind them (ErrnoOf) and the canonical code
//    that goes with it (ENOENT -> kNotFound, EEXIST -> kAlreadyExists,
//    EACCES/EPERM -> kPermissionDenied, ...).
//  - Refusals by capfs itself are kPermissionDenied with a Violation
//    (ViolationOf): an absolute path given to a confined Dir (errno 0), a path
//    that would leave the Dir (errno EXDEV), or a write through a read-only
//    Dir (errno 0).
//
// Messages name the operation and the path as the caller gave it:
//   openat("a/../../x"): path escapes the directory
//   mkdir("d"): File exists
//
// Example:
//   absl::StatusOr<capfs::Fd> f = dir.OpenAt(untrusted, O_RDONLY);
//   if (capfs::ViolationOf(f.status()) == capfs::Violation::kEscape) ...
//   if (capfs::ErrnoOf(f.status()) == ENOENT) ...

#ifndef CAPFS_STATUS_H_
#define CAPFS_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace capfs {

// Why capfs refused a call (kNone: it did not; the error, if any, is the OS's).
enum class Violation {
  kNone,
  kAbsolutePath,  // an absolute path given to a Beneath-scoped Dir
  kEscape,        // the path (through "..", or a symlink) would leave the Dir
  kReadOnly,      // a call that could change the tree, on a read-only Dir
};

// The errno behind `s`, or 0 when it has none (OK, or a capfs refusal that is
// not an escape).
int ErrnoOf(const absl::Status& s);

// The refusal behind `s`, kNone unless capfs itself refused the call.
Violation ViolationOf(const absl::Status& s);

// Why `s` failed, without the operation and path: "path escapes the
// directory", "No such file or directory", ... For a status not made by
// capfs, its message.
std::string ReasonOf(const absl::Status& s);

// An OS error: `op("path"): strerror(err)` with the canonical code of `err`
// and `err` as its errno. `path` is quoted and escaped, so a hostile path
// cannot forge a message. An empty `path` gives `op: strerror(err)`.
absl::Status ErrnoError(int err, absl::string_view op, absl::string_view path);

// A capfs refusal of `path` in `op`. `v` must not be kNone.
absl::Status ViolationError(Violation v, absl::string_view op,
                            absl::string_view path);

}  // namespace capfs

#endif  // CAPFS_STATUS_H_

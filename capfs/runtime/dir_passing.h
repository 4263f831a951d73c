// Handing a Dir to another process over a Unix socket.
//
//   // sender                              // receiver (another process)
//   co_await SendDir(socket, *data_dir);   absl::StatusOr<Dir> d =
//                                              co_await RecvDir(socket);
//
// One message carries the Dir's descriptor (SCM_RIGHTS) and a small record
// of its options: its scope (kBeneath or kInRoot) and whether it is
// read-only. RecvDir gives a Dir exactly as attenuated as the one sent. The
// resolver choice does not travel: the receiver's Dir uses kAuto (its
// kernel's openat2 if it works there). Dir::Cwd() and Dir::Unconfined() have
// no descriptor of their own and cannot be sent (kInvalidArgument).
//
// RecvDir is strict: exactly one descriptor, a directory, and a well-formed
// record (the right magic and version, a known scope, a boolean read-only
// flag, nothing more); anything else is kInvalidArgument (ENOTDIR for a
// descriptor that is not a directory), with every descriptor that came
// closed.
//
// What the kernel does NOT enforce: the descriptor is an ordinary directory
// descriptor. The scope and read-only flag are honoured by capfs's Dir in
// the receiving process; a receiver that does not use capfs can
// openat(fd, "../..") out of the directory and open files for writing
// wherever the file permissions let it. Hand a Dir only to a process that
// uses capfs, or confine that process with Landlock (capfs/landlock.h),
// which the kernel enforces whatever the process does.
//
// Loop-thread only.

#ifndef CAPFS_RUNTIME_DIR_PASSING_H_
#define CAPFS_RUNTIME_DIR_PASSING_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/dir.h"
#include "capfs/runtime/async_fd.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

// Sends `dir` (its descriptor and options) over the Unix socket `socket`.
Task<absl::Status> SendDir(AsyncFd& socket, const Dir& dir);

// Receives a Dir sent by SendDir; see the file comment.
Task<absl::StatusOr<Dir>> RecvDir(AsyncFd& socket);

// The same over a socket no loop serves yet (SocketPairFds' ends, one
// inherited across fork): adopts it in a scope of its own for the call and
// closes it after.
Task<absl::Status> SendDir(Fd socket, const Dir& dir);
Task<absl::StatusOr<Dir>> RecvDir(Fd socket);

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_DIR_PASSING_H_

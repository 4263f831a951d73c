// Descriptors handed over a Unix socket (SCM_RIGHTS, unix(7)).
//
//   std::vector<int> mine = {file.get(), pipe_end.get()};
//   co_await SendMsg(socket, "x", mine);
//   absl::StatusOr<ReceivedMsg> m = co_await RecvMsg(socket, buf, 2);
//   // m->fds: owned Fds, close-on-exec
//
// What travels is the open file description, not a copy: the sender and the
// receiver share its file offset and status flags from then on.
//
// Received descriptors arrive close-on-exec (MSG_CMSG_CLOEXEC) and owned
// (Fd) from the start. If the control message was truncated (the sender
// sent more than `max_fds`, or this process reached its descriptor limit
// while the kernel installed them: the kernel then sets MSG_CTRUNC), RecvMsg
// fails and every descriptor that did arrive is closed before it returns:
// nothing is left behind for anyone to find (the data of that message is
// consumed and lost with them).
//
// On a stream socket, descriptors travel with a byte of data (unix(7)): a
// SendMsg with descriptors and no data is kInvalidArgument there. They
// arrive with the first byte of the data they were sent with, and a read
// never joins them to data sent after them by another SendMsg.
//
// Waits end with kCancelled (a scope's end, WithTimeout) and EBADF when the
// socket is closed meanwhile, as for every read and write. Loop-thread only.

#ifndef CAPFS_RUNTIME_FD_PASSING_H_
#define CAPFS_RUNTIME_FD_PASSING_H_

#include <stddef.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "capfs/fd.h"
#include "capfs/runtime/async_fd.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

struct ReceivedMsg {
  size_t size;          // bytes of data read into the buffer
  std::vector<Fd> fds;  // the descriptors that came with them, in order
};

// At most this many descriptors in one message (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxFdsPerMsg = 253;

// Sends `data` with `fds` (not closed here; the receiver gets its own).
// Gives the bytes sent: on a stream socket it may be fewer than `data`, the
// descriptors going with the first. More than kMaxFdsPerMsg descriptors, or
// descriptors without data on a stream socket, is kInvalidArgument. Never
// raises SIGPIPE.
Task<absl::StatusOr<size_t>> SendMsg(AsyncFd& socket, absl::string_view data,
                                     absl::Span<const int> fds);

// Receives data into `buf` and at most `max_fds` descriptors (at most
// kMaxFdsPerMsg are ever asked for). More descriptors than that, or a
// truncated control message, is kResourceExhausted, with every descriptor
// that arrived closed.
Task<absl::StatusOr<ReceivedMsg>> RecvMsg(AsyncFd& socket, absl::Span<char> buf,
                                          size_t max_fds);

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_FD_PASSING_H_

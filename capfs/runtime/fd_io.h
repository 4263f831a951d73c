// Awaitable I/O on an AsyncFd: Read, Write, ReadV, WriteV, WriteAll, Copy.
//
//   char buf[4096];
//   absl::StatusOr<size_t> n = co_await Read(fd, absl::MakeSpan(buf));
//   if (n.ok() && *n > 0) s = co_await WriteAll(out, absl::string_view(buf,
//   *n));
//
// Each is one read(2)/write(2)/readv(2)/writev(2) as DoIo (async_fd.h)
// performs it: yields once first, waits while the descriptor is not ready,
// and never blocks the loop. A short count is reported as it is (WriteAll
// loops). 0 from Read is end of file. Errors keep their errno; a descriptor
// closed before or during the call gives EBADF; cancellation gives
// kCancelled, and then nothing was transferred: a call a worker had already
// started runs to its end, and its count is returned (the task meets the
// cancellation at its next wait). The buffers must stay valid until the
// call returns.
//
// On a regular file each is one IORING_OP_READ, WRITE, READV or WRITEV at
// the file's position (offset -1: used and advanced as read(2) does, so
// O_APPEND and lseek(2) work as usual) through the loop's io_uring when it
// may serve them (fs_paths.h; AsyncFsCounts counts each such call as
// io_uring or workers), else on a worker as above. Such calls on one
// AsyncFd run one at a time, in order: io_uring does not take read(2)'s
// position lock. Cancellation: a call not yet handed to the kernel never
// runs (kCancelled); one in flight gets IORING_OP_ASYNC_CANCEL, and if the
// kernel had already moved the bytes, the count stands (the position has
// advanced past them, so reporting kCancelled would lose them silently):
// the task meets the cancellation at its next wait, as with a worker. A
// descriptor closed while such a call is in flight is closed when it
// completes.

#ifndef CAPFS_RUNTIME_FD_IO_H_
#define CAPFS_RUNTIME_FD_IO_H_

#include <stddef.h>
#include <sys/uio.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "capfs/runtime/async_fd.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

Task<absl::StatusOr<size_t>> Read(AsyncFd& fd, absl::Span<char> buf);
Task<absl::StatusOr<size_t>> Write(AsyncFd& fd, absl::string_view data);
// At most IOV_MAX buffers, else EINVAL.
Task<absl::StatusOr<size_t>> ReadV(AsyncFd& fd,
                                   absl::Span<const struct iovec> iov);
Task<absl::StatusOr<size_t>> WriteV(AsyncFd& fd,
                                    absl::Span<const struct iovec> iov);
// Writes all of `data`, over as many calls as it takes. On a descriptor
// served on the loop thread (a socket, a nonblocking pipe) each call offers
// at most kWriteAllPiece bytes, as Asio's async_write offers 64 KiB: one
// send(2) of a whole megabyte on loopback TCP holds the socket while the
// kernel transmits every segment (the acknowledgements wait in its
// backlog) and costs more kernel time than the same bytes in pieces
// (runtime_bench's bulk rows: about 1.6 times the CPU time per MiB of
// 256 KiB pieces); it also holds the loop that long. A worker-served
// descriptor gets everything in one call.
inline constexpr size_t kWriteAllPiece = 256 << 10;
Task<absl::Status> WriteAll(AsyncFd& fd, absl::string_view data);

// Reads `from` until end of file and writes everything read to `to`
// (WriteAll), through a 16 KiB buffer in the task's frame; `from` and `to`
// may be the same socket (an echo). Gives the bytes copied, or the first
// error of either side (then some bytes may have been copied).
Task<absl::StatusOr<size_t>> Copy(AsyncFd& from, AsyncFd& to);

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_FD_IO_H_

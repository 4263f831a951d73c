// Sockets on the loop: listening, accepting, connecting, datagrams.
//
//   absl::StatusOr<SocketAddress> at = SocketAddress::Parse("127.0.0.1:0");
//   absl::StatusOr<AsyncFd> listener = Listen(scope, *at);
//   absl::StatusOr<AsyncFd> peer = co_await Accept(scope, *listener);
//   ...  co_await Read(*peer, buf), co_await WriteAll(*peer, data) ...
//
// Every socket these make is nonblocking and close-on-exec from the syscall
// that made it, owned by `scope` like any AsyncFd (closed at the latest when
// the scope ends) and served on the loop by fd_io.h's calls (Read, Write,
// ReadV, WriteV, WriteAll) and the ones here. Writes on a socket use
// send(2)/sendmsg(2) with MSG_NOSIGNAL: a write to a closed peer is EPIPE or
// ECONNRESET, as the kernel says, never a SIGPIPE.
//
// Waits (Accept, Connect, SendTo, RecvFrom, and every read and write) end
// with kCancelled when the task is cancelled (a scope's end, WithTimeout),
// and with EBADF when the socket is closed meanwhile. Errors keep their
// errno (capfs/status.h) and name the call and the address:
//   connect("127.0.0.1:1"): Connection refused   (kUnavailable, ECONNREFUSED)
//   connect("unix:/run/x.sock"): No such file or directory   (kNotFound)
//
// Loop-thread only.

#ifndef CAPFS_RUNTIME_SOCKET_H_
#define CAPFS_RUNTIME_SOCKET_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "capfs/runtime/async_fd.h"
#include "capfs/runtime/scope.h"
#include "capfs/runtime/socket_address.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

// A stream socket listening on `address`. TCP sets SO_REUSEADDR (a
// restarted server can bind while old connections linger in TIME_WAIT);
// port 0 picks a free port (LocalAddress tells which). A Unix path that
// already exists is EADDRINUSE: it is never unlinked, since it may be
// another server's live socket; the caller removes a stale one. An abstract
// name vanishes with its last socket.
absl::StatusOr<AsyncFd> Listen(Scope& scope, const SocketAddress& address,
                               int backlog = 128);

// The next connection on `listener` (accept4(2) with SOCK_NONBLOCK |
// SOCK_CLOEXEC), owned by `scope`. Waits while none is pending. EMFILE and
// ENFILE (out of descriptors) are returned, not retried: the connection
// stays queued, and the caller decides whether to close something first.
// A blocking listener the caller adopted (AsyncFd::Adopt without O_NONBLOCK)
// is looked at (poll) before each accept4 so that the loop never blocks;
// another process sharing it may still take the connection in between, and
// then that accept4 blocks the loop until the next one: give the loop
// listeners of its own, or nonblocking ones.
Task<absl::StatusOr<AsyncFd>> Accept(Scope& scope, AsyncFd& listener);

// A socket of `type` (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET) connected to
// `address`. A TCP connect in progress waits until the kernel settles it;
// ECONNREFUSED is kUnavailable, a missing Unix path kNotFound. A Unix
// listener whose backlog is full gives EAGAIN at once (the kernel offers
// nothing to wait on for it). A datagram socket's connect sets the only
// peer it sends to and receives from.
Task<absl::StatusOr<AsyncFd>> Connect(Scope& scope,
                                      const SocketAddress& address,
                                      int type = SOCK_STREAM);

// A datagram socket bound to `address` (UDP, or a Unix datagram socket),
// for SendTo and RecvFrom.
absl::StatusOr<AsyncFd> BindDatagram(Scope& scope,
                                     const SocketAddress& address);

// Two connected Unix sockets of `type` (SOCK_STREAM, SOCK_DGRAM,
// SOCK_SEQPACKET): socketpair(2).
absl::StatusOr<std::pair<AsyncFd, AsyncFd>> SocketPair(Scope& scope,
                                                       int type = SOCK_STREAM);

// The same pair as plain Fds that no loop serves yet (nonblocking and
// close-on-exec): for handing one end to a process forked before either side
// has a loop. Adopt them (AsyncFd::Adopt) or pass them to SendDir/RecvDir.
absl::StatusOr<std::pair<Fd, Fd>> SocketPairFds(int type = SOCK_STREAM);

// getsockname(2) and getpeername(2). ENOTCONN for an unconnected peer.
absl::StatusOr<SocketAddress> LocalAddress(const AsyncFd& socket);
absl::StatusOr<SocketAddress> PeerAddress(const AsyncFd& socket);

// shutdown(2): SHUT_RD, SHUT_WR (the peer reads end of file; this side may
// still read) or SHUT_RDWR. Does not close the descriptor.
absl::Status Shutdown(AsyncFd& socket, int how);

// One datagram to `to` (sendto(2)); gives the bytes sent. Waits while the
// socket's buffer is full.
Task<absl::StatusOr<size_t>> SendTo(AsyncFd& socket, absl::string_view data,
                                    const SocketAddress& to);

// One datagram (recvfrom(2)) into `buf`; gives its size, and sets `*from`
// (may be null) to the sender: an unbound Unix sender prints as "unix:".
// Bytes of a datagram beyond `buf` are dropped, as recvfrom(2) does.
Task<absl::StatusOr<size_t>> RecvFrom(AsyncFd& socket, absl::Span<char> buf,
                                      SocketAddress* from);

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_SOCKET_H_

#include "capfs/runtime/socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "capfs/status.h"
#include "capfs/sys/io.h"
#include "capfs/sys/net.h"

namespace capfs {
namespace runtime {
namespace {

using internal::SysConnect;

bool IsIp(int family) { return family == AF_INET || family == AF_INET6; }

bool KnownType(int type) {
  return type == SOCK_STREAM || type == SOCK_DGRAM || type == SOCK_SEQPACKET;
}

absl::Status NoAddress(absl::string_view op) {
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": the address is empty (AF_UNSPEC)"));
}

// A new socket for `address`, as an owned Fd.
absl::StatusOr<Fd> NewSocket(const SocketAddress& address, int type) {
  int fd = internal::SysSocket(address.family(), type, 0);
  if (fd < 0) return ErrnoError(-fd, "socket", address.ToString());
  return Fd(fd);
}

absl::Status Bind(const Fd& fd, const SocketAddress& address) {
  int r = internal::SysBind(fd.get(), address.sockaddr(), address.size());
  if (r < 0) return ErrnoError(-r, "bind", address.ToString());
  return absl::OkStatus();
}

using NameCall = int (*)(int, struct sockaddr*, socklen_t*);

absl::StatusOr<SocketAddress> Name(const AsyncFd& socket, NameCall call,
                                   const char* op) {
  if (!socket.valid()) return ErrnoError(EBADF, op, "");
  struct sockaddr_storage storage;
  socklen_t len = sizeof(storage);
  int r =
      call(socket.get(), reinterpret_cast<struct sockaddr*>(&storage), &len);
  if (r < 0) return ErrnoError(-r, op, "");
  return SocketAddress::FromSockaddr(
      reinterpret_cast<struct sockaddr*>(&storage), len);
}

}  // namespace

absl::StatusOr<AsyncFd> Listen(Scope& scope, const SocketAddress& address,
                               int backlog) {
  if (address.family() == AF_UNSPEC) return NoAddress("listen");
  absl::StatusOr<Fd> fd = NewSocket(address, SOCK_STREAM);
  if (!fd.ok()) return fd.status();
  if (IsIp(address.family())) {
    int one = 1;
    int r = internal::SysSetsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one,
                                    sizeof(one));
    if (r < 0) return ErrnoError(-r, "setsockopt(SO_REUSEADDR)", "");
  }
  // bind(2) on an existing Unix path fails with EADDRINUSE: what we want.
  if (absl::Status s = Bind(*fd, address); !s.ok()) return s;
  int r = internal::SysListen(fd->get(), backlog);
  if (r < 0) return ErrnoError(-r, "listen", address.ToString());
  return AsyncFd::AdoptNewSocket(scope, *std::move(fd), SOCK_STREAM,
                                 IsIp(address.family()));
}

Task<absl::StatusOr<AsyncFd>> Accept(Scope& scope, AsyncFd& listener) {
  struct sockaddr_storage peer;
  socklen_t len = 0;
  // A listener the caller adopted without O_NONBLOCK (served on the loop
  // with MSG_DONTWAIT, which accept4 does not take): look before calling,
  // so that an empty backlog never blocks the loop.
  const bool look_first =
      listener.state() != nullptr &&
      listener.state()->io() == internal::FdIo::kLoopDontWait;
  absl::StatusOr<size_t> r = co_await DoIo(
      listener, Direction::kRead, "accept4", 0,
      [&peer, &len, look_first](const IoTarget& t) -> ssize_t {
        if (look_first) {
          struct pollfd p = {t.fd, POLLIN, 0};
          if (internal::SysPollNow(&p) == 0) return -EAGAIN;
        }
        len = sizeof(peer);
        return internal::SysAccept(
            t.fd, reinterpret_cast<struct sockaddr*>(&peer), &len);
      });
  if (!r.ok()) co_return r.status();
  Fd fd(static_cast<int>(*r));
  int type = SOCK_STREAM;
  if (!IsIp(peer.ss_family)) {
    // A Unix listener may be SOCK_SEQPACKET (one the caller adopted).
    socklen_t type_len = sizeof(type);
    int g = internal::SysGetsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type,
                                    &type_len);
    if (g < 0) co_return ErrnoError(-g, "getsockopt(SO_TYPE)", "");
  }
  co_return AsyncFd::AdoptNewSocket(scope, std::move(fd), type,
                                    IsIp(peer.ss_family));
}

Task<absl::StatusOr<AsyncFd>> Connect(Scope& scope,
                                      const SocketAddress& address, int type) {
  if (address.family() == AF_UNSPEC) co_return NoAddress("connect");
  if (!KnownType(type)) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("connect: socket type ", type,
                     " is not SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET"));
  }
  absl::StatusOr<Fd> fd = NewSocket(address, type);
  if (!fd.ok()) co_return fd.status();
  const int r = SysConnect(fd->get(), address.sockaddr(), address.size());
  if (r < 0 && r != -EINPROGRESS) {
    co_return ErrnoError(-r, "connect", address.ToString());
  }
  absl::StatusOr<AsyncFd> socket =
      AsyncFd::AdoptNewSocket(scope, *std::move(fd), type,
                              IsIp(address.family()) && type == SOCK_STREAM);
  if (!socket.ok() || r == 0) co_return socket;
  // In progress (TCP): wait until it is writable, which it becomes once the
  // handshake is over either way, then ask connect(2) again: 0 (or EISCONN)
  // when it is connected, EALREADY while it is not yet, else the error that
  // ended it (connect(2) reports the socket's pending error).
  socket->state()->OnEagain(internal::kWritable);
  absl::StatusOr<size_t> done = co_await DoIo(
      *socket, Direction::kWrite, "connect", 0,
      [&address](const IoTarget& t) -> ssize_t {
        int c = SysConnect(t.fd, address.sockaddr(), address.size());
        if (c == -EALREADY || c == -EINPROGRESS) return -EAGAIN;
        if (c == -EISCONN) return 0;
        return c;
      });
  if (!done.ok()) {
    if (int err = ErrnoOf(done.status()); err != 0 && err != EBADF) {
      co_return ErrnoError(err, "connect", address.ToString());
    }
    co_return done.status();
  }
  co_return socket;
}

absl::StatusOr<AsyncFd> BindDatagram(Scope& scope,
                                     const SocketAddress& address) {
  if (address.family() == AF_UNSPEC) return NoAddress("bind");
  absl::StatusOr<Fd> fd = NewSocket(address, SOCK_DGRAM);
  if (!fd.ok()) return fd.status();
  if (absl::Status s = Bind(*fd, address); !s.ok()) return s;
  return AsyncFd::AdoptNewSocket(scope, *std::move(fd), SOCK_DGRAM, false);
}

absl::StatusOr<std::pair<Fd, Fd>> SocketPairFds(int type) {
  if (!KnownType(type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socketpair: socket type ", type,
                     " is not SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET"));
  }
  int fds[2];
  int r = internal::SysSocketpair(AF_UNIX, type, 0, fds);
  if (r < 0) return ErrnoError(-r, "socketpair", "");
  return std::make_pair(Fd(fds[0]), Fd(fds[1]));
}

absl::StatusOr<std::pair<AsyncFd, AsyncFd>> SocketPair(Scope& scope, int type) {
  absl::StatusOr<std::pair<Fd, Fd>> fds = SocketPairFds(type);
  if (!fds.ok()) return fds.status();
  absl::StatusOr<AsyncFd> first =
      AsyncFd::AdoptNewSocket(scope, std::move(fds->first), type, false);
  if (!first.ok()) return first.status();
  absl::StatusOr<AsyncFd> second =
      AsyncFd::AdoptNewSocket(scope, std::move(fds->second), type, false);
  if (!second.ok()) return second.status();
  return std::make_pair(*std::move(first), *std::move(second));
}

absl::StatusOr<SocketAddress> LocalAddress(const AsyncFd& socket) {
  return Name(socket, &internal::SysGetsockname, "getsockname");
}

absl::StatusOr<SocketAddress> PeerAddress(const AsyncFd& socket) {
  return Name(socket, &internal::SysGetpeername, "getpeername");
}

absl::Status Shutdown(AsyncFd& socket, int how) {
  if (!socket.valid()) return ErrnoError(EBADF, "shutdown", "");
  int r = internal::SysShutdown(socket.get(), how);
  if (r < 0) return ErrnoError(-r, "shutdown", "");
  return absl::OkStatus();
}

Task<absl::StatusOr<size_t>> SendTo(AsyncFd& socket, absl::string_view data,
                                    const SocketAddress& to) {
  return DoIo(socket, Direction::kWrite, "sendto", data.size(),
              [data, &to](const IoTarget& t) -> ssize_t {
                return internal::SysSendto(
                    t.fd, data.data(), std::min(data.size(), t.max_bytes),
                    t.msg_flags | MSG_NOSIGNAL, to.sockaddr(), to.size());
              });
}

Task<absl::StatusOr<size_t>> RecvFrom(AsyncFd& socket, absl::Span<char> buf,
                                      SocketAddress* from) {
  struct sockaddr_storage storage;
  socklen_t len = 0;
  absl::StatusOr<size_t> n =
      co_await DoIo(socket, Direction::kRead, "recvfrom", buf.size(),
                    [buf, &storage, &len](const IoTarget& t) -> ssize_t {
                      len = sizeof(storage);
                      return internal::SysRecvfrom(
                          t.fd, buf.data(), buf.size(), t.msg_flags,
                          reinterpret_cast<struct sockaddr*>(&storage), &len);
                    });
  if (n.ok() && from != nullptr) {
    if (len < sizeof(sa_family_t)) {
      // The kernel names no sender: on a Unix socket, one that never
      // bound, which prints as "unix:" (on a connected stream, nobody).
      int domain = AF_UNSPEC;
      socklen_t domain_len = sizeof(domain);
      if (internal::SysGetsockopt(socket.get(), SOL_SOCKET, SO_DOMAIN, &domain,
                                  &domain_len) == 0 &&
          domain == AF_UNIX) {
        storage.ss_family = AF_UNIX;
        len = sizeof(sa_family_t);
      }
    }
    *from = SocketAddress::FromSockaddr(
        reinterpret_cast<struct sockaddr*>(&storage), len);
  }
  co_return n;
}

}  // namespace runtime
}  // namespace capfs

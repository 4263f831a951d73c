// SocketAddress: where a socket listens, connects or sends.
//
//   absl::StatusOr<SocketAddress> a = SocketAddress::Parse("127.0.0.1:8080");
//   absl::StatusOr<SocketAddress> b = SocketAddress::Parse("[::1]:8080");
//   absl::StatusOr<SocketAddress> c =
//   SocketAddress::Parse("unix:/run/app.sock"); absl::StatusOr<SocketAddress> d
//   = SocketAddress::Parse("unix:@name");
//
// Four forms, and only these: an IPv4 address as four decimal numbers of
// 0..255 (no leading zeros, which some parsers read as octal) and a port; an
// IPv6 address in brackets and a port; a Unix socket path; an abstract Unix
// name (Linux's abstract namespace, no file) after "unix:@". A port is
// 0..65535 in decimal; a Unix path or abstract name is 1 to 107 bytes (a
// path needs room for its terminating NUL in sun_path's 108) and has no NUL
// byte. Anything else is kInvalidArgument, with the text in the message.
// No name lookup is ever done: "localhost:80" is refused.
//
// ToString gives the form Parse reads; an unnamed Unix socket (a datagram
// sender that never bound) prints as "unix:", and the empty address as "".
// A value type, cheap to copy (a sockaddr_storage).

#ifndef CAPFS_RUNTIME_SOCKET_ADDRESS_H_
#define CAPFS_RUNTIME_SOCKET_ADDRESS_H_

#include <stdint.h>
#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace capfs {
namespace runtime {

class SocketAddress {
 public:
  // Empty (AF_UNSPEC): a place for RecvFrom to fill.
  SocketAddress();

  // "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock", "unix:@name";
  // kInvalidArgument naming `text` for anything else (see the file comment).
  static absl::StatusOr<SocketAddress> Parse(absl::string_view text);

  // The address the kernel gave (getsockname, recvfrom, ...), `len` bytes of
  // `addr`. Families other than AF_INET, AF_INET6 and AF_UNIX are kept as
  // they are; ToString then names the family number.
  static SocketAddress FromSockaddr(const struct sockaddr* addr, socklen_t len);

  int family() const { return storage_.ss_family; }  // AF_INET, ... AF_UNSPEC
  uint16_t port() const;                             // 0 for Unix addresses
  std::string ToString() const;

  // For the socket calls.
  const struct sockaddr* sockaddr() const {
    return reinterpret_cast<const struct sockaddr*>(&storage_);
  }
  socklen_t size() const { return len_; }

 private:
  struct sockaddr_storage storage_;
  socklen_t len_;
};

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_SOCKET_ADDRESS_H_

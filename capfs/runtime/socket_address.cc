#include "capfs/runtime/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace capfs {
namespace runtime {
namespace {

// sun_path's size less the NUL a path needs (an abstract name's leading NUL
// takes the same byte).
constexpr size_t kMaxUnixName = sizeof(sockaddr_un::sun_path) - 1;

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "SocketAddress::Parse(\"", absl::CHexEscape(text), "\"): ", why));
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A port: 1 to 5 decimal digits, at most 65535.
bool ParsePort(absl::string_view s, uint16_t* port) {
  uint32_t value = 0;
  if (!AllDigits(s) || s.size() > 5 || !absl::SimpleAtoi(s, &value) ||
      value > 65535) {
    return false;
  }
  *port = static_cast<uint16_t>(value);
  return true;
}

// Four decimal numbers 0..255, no leading zeros, no signs, no spaces.
bool ParseIpv4(absl::string_view s, struct in_addr* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  if (parts.size() != 4) return false;
  uint32_t addr = 0;
  for (absl::string_view part : parts) {
    uint32_t value = 0;
    if (!AllDigits(part) || part.size() > 3 ||
        (part.size() > 1 && part[0] == '0') ||
        !absl::SimpleAtoi(part, &value) || value > 255) {
      return false;
    }
    addr = (addr << 8) | value;
  }
  out->s_addr = htonl(addr);
  return true;
}

}  // namespace

SocketAddress::SocketAddress() : len_(0) {
  memset(&storage_, 0, sizeof(storage_));
  storage_.ss_family = AF_UNSPEC;
}

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view text) {
  if (text.find('\0') != absl::string_view::npos) {
    return Invalid(text, "contains a NUL byte");
  }
  SocketAddress a;
  if (absl::StartsWith(text, "unix:")) {
    absl::string_view name = text.substr(5);
    const bool abstract = absl::StartsWith(name, "@");
    if (abstract) name.remove_prefix(1);
    if (name.empty()) {
      return Invalid(text, abstract ? "empty abstract socket name"
                                    : "empty Unix socket path");
    }
    if (name.size() > kMaxUnixName) {
      return Invalid(
          text,
          absl::StrCat("Unix socket ", abstract ? "name" : "path", " of ",
                       name.size(), " bytes (at most ", kMaxUnixName, ")"));
    }
    auto* un = reinterpret_cast<struct sockaddr_un*>(&a.storage_);
    un->sun_family = AF_UNIX;
    // An abstract name starts with a NUL and is exactly as long as the
    // length says; a path ends with one (storage_ is zeroed).
    memcpy(un->sun_path + (abstract ? 1 : 0), name.data(), name.size());
    a.len_ = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) +
                                    name.size() + 1);
    return a;
  }
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return Invalid(text, "expected host:port, [ipv6]:port or unix:path");
  }
  absl::string_view host = text.substr(0, colon);
  uint16_t port = 0;
  if (!ParsePort(text.substr(colon + 1), &port)) {
    return Invalid(text, "the port must be a decimal number 0..65535");
  }
  if (absl::StartsWith(host, "[") || absl::EndsWith(host, "]")) {
    if (host.size() < 2 || host.front() != '[' || host.back() != ']') {
      return Invalid(text, "unbalanced brackets around an IPv6 address");
    }
    std::string inner(host.substr(1, host.size() - 2));
    auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&a.storage_);
    if (inner.empty() ||
        inet_pton(AF_INET6, inner.c_str(), &in6->sin6_addr) != 1) {
      return Invalid(text, "not an IPv6 address");
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    a.len_ = sizeof(struct sockaddr_in6);
    return a;
  }
  if (host.find(':') != absl::string_view::npos) {
    return Invalid(text, "an IPv6 address needs brackets: [addr]:port");
  }
  auto* in4 = reinterpret_cast<struct sockaddr_in*>(&a.storage_);
  if (!ParseIpv4(host, &in4->sin_addr)) {
    return Invalid(text, "not an IPv4 address (four decimal numbers 0..255)");
  }
  in4->sin_family = AF_INET;
  in4->sin_port = htons(port);
  a.len_ = sizeof(struct sockaddr_in);
  return a;
}

SocketAddress SocketAddress::FromSockaddr(const struct sockaddr* addr,
                                          socklen_t len) {
  SocketAddress a;
  if (addr == nullptr || len < sizeof(sa_family_t)) return a;
  if (len > sizeof(a.storage_)) len = sizeof(a.storage_);
  memcpy(&a.storage_, addr, len);
  a.len_ = len;
  return a;
}

uint16_t SocketAddress::port() const {
  switch (storage_.ss_family) {
    case AF_INET:
      return ntohs(
          reinterpret_cast<const struct sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6:
      return ntohs(
          reinterpret_cast<const struct sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

std::string SocketAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  switch (storage_.ss_family) {
    case AF_UNSPEC:
      return "";
    case AF_INET: {
      auto* in4 = reinterpret_cast<const struct sockaddr_in*>(&storage_);
      inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof(buf));
      return absl::StrCat(buf, ":", port());
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&storage_);
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
      return absl::StrCat("[", buf, "]:", port());
    }
    case AF_UNIX: {
      auto* un = reinterpret_cast<const struct sockaddr_un*>(&storage_);
      const size_t off = offsetof(struct sockaddr_un, sun_path);
      size_t n = len_ > off ? len_ - off : 0;  // unnamed: nothing
      if (n == 0) return "unix:";
      if (un->sun_path[0] == '\0') {
        return absl::StrCat("unix:@",
                            absl::string_view(un->sun_path + 1, n - 1));
      }
      return absl::StrCat(
          "unix:", absl::string_view(un->sun_path, strnlen(un->sun_path, n)));
    }
    default:
      return absl::StrCat("family ", storage_.ss_family);
  }
}

}  // namespace runtime
}  // namespace capfs

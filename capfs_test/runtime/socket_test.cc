// Sockets on the loop: addresses, echo over every stream family, datagrams
// with their sender, many connections at once, bulk both ways, half close,
// refused, reset and closed peers, cancellation and closing during waits.

#include "capfs/runtime/socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/runtime/socket_test_util.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;
using testing::ReadExactly;
using testing::ReadToEnd;
using testing::SocketDir;

// ------------------------------------------------------------ addresses

struct BadAddressCase {
  const char* name;
  std::string text;
};

class MalformedAddressTest : public ::testing::TestWithParam<BadAddressCase> {};

TEST_P(MalformedAddressTest, IsInvalidArgumentNamingTheText) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse(GetParam().text);
  ASSERT_FALSE(a.ok()) << GetParam().text << " -> " << a->ToString();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  // The text is named (escaped: a NUL byte prints as \x00).
  std::string shown(GetParam().text);
  if (shown.find('\0') == std::string::npos) {
    EXPECT_NE(a.status().message().find(shown), absl::string_view::npos)
        << a.status();
  } else {
    EXPECT_NE(a.status().message().find("\\x00"), absl::string_view::npos)
        << a.status();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedAddressTest,
    ::testing::Values(
        BadAddressCase{"Empty", ""}, BadAddressCase{"NoPort", "127.0.0.1"},
        BadAddressCase{"EmptyPort", "127.0.0.1:"},
        BadAddressCase{"PortTooBig", "127.0.0.1:65536"},
        BadAddressCase{"PortHuge", "127.0.0.1:99999999999"},
        BadAddressCase{"PortNegative", "127.0.0.1:-1"},
        BadAddressCase{"PortSign", "127.0.0.1:+80"},
        BadAddressCase{"PortHex", "127.0.0.1:0x50"},
        BadAddressCase{"PortSpace", "127.0.0.1: 80"},
        BadAddressCase{"ThreeOctets", "127.0.1:80"},
        BadAddressCase{"FiveOctets", "1.2.3.4.5:80"},
        BadAddressCase{"OctetTooBig", "256.0.0.1:80"},
        BadAddressCase{"LeadingZero", "127.0.0.01:80"},
        BadAddressCase{"EmptyOctet", "127..0.1:80"},
        BadAddressCase{"HostName", "localhost:80"},
        BadAddressCase{"NoHost", ":80"}, BadAddressCase{"BareIpv6", "::1:80"},
        BadAddressCase{"UnclosedBracket", "[::1:80"},
        BadAddressCase{"UnopenedBracket", "::1]:80"},
        BadAddressCase{"EmptyBrackets", "[]:80"},
        BadAddressCase{"BadIpv6", "[::g]:80"},
        BadAddressCase{"Ipv6NoPort", "[::1]"},
        BadAddressCase{"Ipv4InBrackets", "[127.0.0.1]:80"},
        BadAddressCase{"UnixEmpty", "unix:"},
        BadAddressCase{"AbstractEmpty", "unix:@"},
        BadAddressCase{"UnixTooLong", "unix:/" + std::string(107, 'a')},
        BadAddressCase{"AbstractTooLong", "unix:@" + std::string(108, 'a')},
        BadAddressCase{"UnixNul", std::string("unix:/tmp/a\0b", 13)},
        BadAddressCase{"Ipv4Nul", std::string("127.0.0.1:8\0", 12)},
        BadAddressCase{"OtherScheme", "tcp://127.0.0.1:80"}),
    [](const ::testing::TestParamInfo<BadAddressCase>& info) {
      return std::string(info.param.name);
    });

struct GoodAddressCase {
  const char* name;
  std::string text;
  int family;
  uint16_t port;
};

class ParseAddressTest : public ::testing::TestWithParam<GoodAddressCase> {};

TEST_P(ParseAddressTest, ParsesAndPrintsBack) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse(GetParam().text);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), GetParam().family);
  EXPECT_EQ(a->port(), GetParam().port);
  EXPECT_EQ(a->ToString(), GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseAddressTest,
    ::testing::Values(
        GoodAddressCase{"Ipv4", "127.0.0.1:8080", AF_INET, 8080},
        GoodAddressCase{"Ipv4Zero", "0.0.0.0:0", AF_INET, 0},
        GoodAddressCase{"Ipv4Max", "255.255.255.255:65535", AF_INET, 65535},
        GoodAddressCase{"Ipv6Loopback", "[::1]:8080", AF_INET6, 8080},
        GoodAddressCase{"Ipv6Full", "[2001:db8::1:2]:443", AF_INET6, 443},
        GoodAddressCase{"UnixPath", "unix:/run/app.sock", AF_UNIX, 0},
        GoodAddressCase{"UnixRelative", "unix:app.sock", AF_UNIX, 0},
        GoodAddressCase{"UnixLongest", "unix:/" + std::string(106, 'a'),
                        AF_UNIX, 0},
        GoodAddressCase{"Abstract", "unix:@name", AF_UNIX, 0},
        GoodAddressCase{"AbstractLongest", "unix:@" + std::string(107, 'b'),
                        AF_UNIX, 0}),
    [](const ::testing::TestParamInfo<GoodAddressCase>& info) {
      return std::string(info.param.name);
    });

TEST(SocketAddressTest, EmptyIsUnspecified) {
  SocketAddress a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.ToString(), "");
}

// --------------------------------------------------------------- streams

class SocketTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(SocketTest);

// Echoes everything from `peer` back to it until end of file, then shuts
// down its side for writing.
Task<absl::Status> EchoUntilEof(AsyncFd& peer) {
  char buf[8192];
  for (;;) {
    absl::StatusOr<size_t> n = co_await Read(peer, absl::MakeSpan(buf));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return Shutdown(peer, SHUT_WR);
    CAPFS_CO_TRY(co_await WriteAll(peer, absl::string_view(buf, *n)));
  }
}

// Listens on `listen_at`, connects, sends `message`, half-closes, and
// returns what came back; also the addresses each side saw.
struct EchoResult {
  std::string reply;
  std::string listener_address;
  std::string client_peer;
  std::string server_peer;
  std::string client_local;
};

Task<absl::StatusOr<EchoResult>> EchoOnce(SocketAddress listen_at,
                                          std::string message) {
  EchoResult result;
  absl::Status s = co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
    absl::StatusOr<AsyncFd> listener = Listen(scope, listen_at);
    if (!listener.ok()) co_return listener.status();
    absl::StatusOr<SocketAddress> bound = LocalAddress(*listener);
    if (!bound.ok()) co_return bound.status();
    result.listener_address = bound->ToString();
    AsyncFd server;
    scope.Spawn([&]() -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> peer = co_await Accept(scope, *listener);
      if (!peer.ok()) co_return peer.status();
      server = *std::move(peer);
      absl::StatusOr<SocketAddress> p = PeerAddress(server);
      if (!p.ok()) co_return p.status();
      result.server_peer = p->ToString();
      co_return co_await EchoUntilEof(server);
    });
    absl::StatusOr<AsyncFd> client = co_await Connect(scope, *bound);
    if (!client.ok()) co_return co_await scope.Join(client.status());
    absl::StatusOr<SocketAddress> p = PeerAddress(*client);
    absl::StatusOr<SocketAddress> l = LocalAddress(*client);
    if (p.ok()) result.client_peer = p->ToString();
    if (l.ok()) result.client_local = l->ToString();
    absl::Status w = co_await WriteAll(*client, message);
    if (w.ok()) w = Shutdown(*client, SHUT_WR);
    if (w.ok()) {
      absl::StatusOr<std::string> reply =
          co_await WithTimeout(absl::Seconds(30), ReadToEnd(*client));
      if (reply.ok()) result.reply = *std::move(reply);
      w = reply.status();
    }
    co_return co_await scope.Join(std::move(w));
  });
  if (!s.ok()) co_return s;
  co_return result;
}

enum class Family { kIpv4, kIpv6, kUnixPath, kAbstract };

std::string FamilyName(Family f) {
  switch (f) {
    case Family::kIpv4:
      return "Ipv4";
    case Family::kIpv6:
      return "Ipv6";
    case Family::kUnixPath:
      return "UnixPath";
    case Family::kAbstract:
      return "Abstract";
  }
  return "?";
}

// A fresh address of `family` to listen or bind on.
std::string AddressOf(Family family, const SocketDir& dir,
                      const std::string& name) {
  switch (family) {
    case Family::kIpv4:
      return "127.0.0.1:0";
    case Family::kIpv6:
      return "[::1]:0";
    case Family::kUnixPath:
      return "unix:" + dir.Path(name);
    case Family::kAbstract:
      return absl::StrCat("unix:@capfs-test-", ::getpid(), "-", name);
  }
  return "";
}

class EchoTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, Family>> {};

INSTANTIATE_TEST_SUITE_P(
    Families, EchoTest,
    ::testing::Combine(::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                       ::testing::Values(Family::kIpv4, Family::kIpv6,
                                         Family::kUnixPath, Family::kAbstract)),
    [](const ::testing::TestParamInfo<std::tuple<IoBackend, Family>>& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          FamilyName(std::get<1>(info.param)));
    });

TEST_P(EchoTest, EchoesAndSeesBothAddresses) {
  const auto [backend, family] = GetParam();
  SocketDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<SocketAddress> at =
      SocketAddress::Parse(AddressOf(family, dir, "echo"));
  ASSERT_TRUE(at.ok()) << at.status();
  std::string message(100000, '\0');
  for (size_t i = 0; i < message.size(); ++i)
    message[i] = static_cast<char>(i * 13);
  LoopOptions options;
  options.backend = backend;
  absl::StatusOr<EchoResult> r =
      ::capfs::runtime::Run(EchoOnce(*at, message), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->reply == message);
  EXPECT_EQ(r->client_peer, r->listener_address);
  switch (family) {
    case Family::kIpv4:
      EXPECT_TRUE(absl::StartsWith(r->listener_address, "127.0.0.1:"));
      EXPECT_NE(r->listener_address, "127.0.0.1:0");
      EXPECT_EQ(r->server_peer, r->client_local);
      break;
    case Family::kIpv6:
      EXPECT_TRUE(absl::StartsWith(r->listener_address, "[::1]:"));
      EXPECT_EQ(r->server_peer, r->client_local);
      break;
    case Family::kUnixPath:
    case Family::kAbstract:
      EXPECT_EQ(r->listener_address, at->ToString());
      EXPECT_EQ(r->server_peer, "unix:");  // the client never bound
      break;
  }
}

TEST_P(EchoTest, DatagramCarriesTheSendersAddress) {
  const auto [backend, family] = GetParam();
  SocketDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<SocketAddress> a_at =
      SocketAddress::Parse(AddressOf(family, dir, "dgram-a"));
  absl::StatusOr<SocketAddress> b_at =
      SocketAddress::Parse(AddressOf(family, dir, "dgram-b"));
  ASSERT_TRUE(a_at.ok() && b_at.ok());
  std::string got, from, a_name, reply_from;
  LoopOptions options;
  options.backend = backend;
  absl::Status s = ::capfs::runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> a = BindDatagram(scope, *a_at);
          absl::StatusOr<AsyncFd> b = BindDatagram(scope, *b_at);
          if (!a.ok()) co_return a.status();
          if (!b.ok()) co_return b.status();
          absl::StatusOr<SocketAddress> a_bound = LocalAddress(*a);
          absl::StatusOr<SocketAddress> b_bound = LocalAddress(*b);
          if (!a_bound.ok()) co_return a_bound.status();
          if (!b_bound.ok()) co_return b_bound.status();
          a_name = a_bound->ToString();
          absl::StatusOr<size_t> n = co_await SendTo(*a, "ping", *b_bound);
          if (!n.ok()) co_return n.status();
          char buf[64];
          SocketAddress sender;
          absl::StatusOr<size_t> m = co_await WithTimeout(
              absl::Seconds(30), RecvFrom(*b, absl::MakeSpan(buf), &sender));
          if (!m.ok()) co_return m.status();
          got.assign(buf, *m);
          from = sender.ToString();
          // Reply to whoever sent it; `from` may be null.
          n = co_await SendTo(*b, "pong", sender);
          if (!n.ok()) co_return n.status();
          m = co_await WithTimeout(absl::Seconds(30),
                                   RecvFrom(*a, absl::MakeSpan(buf), nullptr));
          if (!m.ok()) co_return m.status();
          reply_from.assign(buf, *m);
          co_return absl::OkStatus();
        });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, "ping");
  EXPECT_EQ(from, a_name);
  EXPECT_EQ(reply_from, "pong");
}

// A Unix datagram from a socket that never bound has no name: "unix:".
TEST_P(SocketTest, UnboundUnixSenderPrintsAsUnix) {
  SocketDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<SocketAddress> at =
      SocketAddress::Parse("unix:" + dir.Path("d"));
  ASSERT_TRUE(at.ok());
  std::string from = "unset", got;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> server = BindDatagram(scope, *at);
      if (!server.ok()) co_return server.status();
      absl::StatusOr<AsyncFd> client = co_await Connect(scope, *at, SOCK_DGRAM);
      if (!client.ok()) co_return client.status();
      CAPFS_CO_TRY((co_await Write(*client, "hi")).status());
      char buf[16];
      SocketAddress sender;
      absl::StatusOr<size_t> n =
          co_await RecvFrom(*server, absl::MakeSpan(buf), &sender);
      if (!n.ok()) co_return n.status();
      got.assign(buf, *n);
      from = sender.ToString();
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, "hi");
  EXPECT_EQ(from, "unix:");
}

TEST_P(SocketTest, SocketPairsOfEveryType) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
    std::string got;
    absl::Status s = RunMain([&]() -> Task<absl::Status> {
      co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
        absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair =
            SocketPair(scope, type);
        if (!pair.ok()) co_return pair.status();
        CAPFS_CO_TRY(co_await WriteAll(pair->first, "abc"));
        absl::StatusOr<std::string> r = co_await ReadExactly(pair->second, 3);
        if (!r.ok()) co_return r.status();
        got = *r;
        co_return absl::OkStatus();
      });
    });
    ASSERT_TRUE(s.ok()) << type << ": " << s;
    EXPECT_EQ(got, "abc") << type;
  }
}

TEST_P(SocketTest, ConnectsWithEveryTypeOverUnix) {
  SocketDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<SocketAddress> at =
      SocketAddress::Parse("unix:" + dir.Path("seq"));
  ASSERT_TRUE(at.ok());
  std::string got;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      // A seqpacket listener, adopted as any descriptor may be.
      int fd =
          ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) co_return ErrnoError(errno, "socket", "");
      absl::StatusOr<AsyncFd> listener = AsyncFd::Adopt(scope, Fd(fd));
      if (!listener.ok()) co_return listener.status();
      if (::bind(fd, at->sockaddr(), at->size()) != 0 || ::listen(fd, 8) != 0) {
        co_return ErrnoError(errno, "bind/listen", "");
      }
      scope.Spawn([&]() -> Task<absl::Status> {
        absl::StatusOr<AsyncFd> peer = co_await Accept(scope, *listener);
        if (!peer.ok()) co_return peer.status();
        char buf[64];
        absl::StatusOr<size_t> n = co_await Read(*peer, absl::MakeSpan(buf));
        if (!n.ok()) co_return n.status();
        got.assign(buf, *n);
        co_return absl::OkStatus();
      });
      absl::StatusOr<AsyncFd> c = co_await Connect(scope, *at, SOCK_SEQPACKET);
      if (!c.ok()) co_return co_await scope.Join(c.status());
      absl::Status w = (co_await Write(*c, "packet")).status();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, "packet");
}

// 1,000 clients connect, send their number and read it back, all at once.
TEST_P(SocketTest, AThousandConcurrentLoopbackConnections) {
  constexpr int kClients = 1000;
  testing::NofileAtLeast limit(2 * kClients + 256);
  ASSERT_GE(limit.current(), static_cast<rlim_t>(2 * kClients + 64))
      << "RLIMIT_NOFILE's hard limit is too low for this test";
  int echoed = 0;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithTimeout(
        absl::Seconds(120), WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<SocketAddress> any =
              SocketAddress::Parse("127.0.0.1:0");
          if (!any.ok()) co_return any.status();
          absl::StatusOr<AsyncFd> listener = Listen(scope, *any, kClients);
          if (!listener.ok()) co_return listener.status();
          absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
          if (!at.ok()) co_return at.status();
          std::vector<AsyncFd> accepted(kClients);
          scope.Spawn([&]() -> Task<absl::Status> {
            for (int i = 0; i < kClients; ++i) {
              absl::StatusOr<AsyncFd> peer = co_await Accept(scope, *listener);
              if (!peer.ok()) co_return peer.status();
              accepted[i] = *std::move(peer);
              AsyncFd& mine = accepted[i];
              scope.Spawn([&mine]() -> Task<absl::Status> {
                co_return co_await EchoUntilEof(mine);
              });
            }
            co_return absl::OkStatus();
          });
          for (int i = 0; i < kClients; ++i) {
            scope.Spawn([&, i]() -> Task<absl::Status> {
              absl::StatusOr<AsyncFd> c = co_await Connect(scope, *at);
              if (!c.ok()) co_return c.status();
              std::string id = absl::StrCat("client ", i, ";");
              CAPFS_CO_TRY(co_await WriteAll(*c, id));
              CAPFS_CO_TRY(Shutdown(*c, SHUT_WR));
              absl::StatusOr<std::string> back = co_await ReadToEnd(*c);
              if (!back.ok()) co_return back.status();
              if (*back != id) co_return absl::DataLossError(*back);
              ++echoed;
              co_return c->Close();
            });
          }
          co_return co_await scope.Join();
        }));
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(echoed, kClients);
}

// 8 MiB each way at the same time over TCP: neither side may wait for the
// other to read first.
TEST_P(SocketTest, EightMebibytesBothWaysAtOnce) {
  constexpr size_t kSize = 8 << 20;
  std::string up(kSize, '\0'), down(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) {
    up[i] = static_cast<char>(i * 7 + 1);
    down[i] = static_cast<char>(i * 11 + 3);
  }
  std::string got_up, got_down;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithTimeout(
        absl::Seconds(120), WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<SocketAddress> any =
              SocketAddress::Parse("127.0.0.1:0");
          if (!any.ok()) co_return any.status();
          absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
          if (!listener.ok()) co_return listener.status();
          absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
          if (!at.ok()) co_return at.status();
          absl::StatusOr<AsyncFd> client = co_await Connect(scope, *at);
          if (!client.ok()) co_return client.status();
          absl::StatusOr<AsyncFd> server = co_await Accept(scope, *listener);
          if (!server.ok()) co_return server.status();
          scope.Spawn([&]() -> Task<absl::Status> {
            CAPFS_CO_TRY(co_await WriteAll(*client, up));
            co_return Shutdown(*client, SHUT_WR);
          });
          scope.Spawn([&]() -> Task<absl::Status> {
            CAPFS_CO_TRY(co_await WriteAll(*server, down));
            co_return Shutdown(*server, SHUT_WR);
          });
          scope.Spawn([&]() -> Task<absl::Status> {
            absl::StatusOr<std::string> r = co_await ReadToEnd(*server);
            if (!r.ok()) co_return r.status();
            got_up = *std::move(r);
            co_return absl::OkStatus();
          });
          absl::StatusOr<std::string> r = co_await ReadToEnd(*client);
          if (r.ok()) got_down = *std::move(r);
          co_return co_await scope.Join(r.status());
        }));
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got_up.size(), kSize);
  EXPECT_TRUE(got_up == up);
  EXPECT_EQ(got_down.size(), kSize);
  EXPECT_TRUE(got_down == down);
}

// After SHUT_WR the peer reads end of file, and can still answer.
TEST_P(SocketTest, HalfCloseLetsThePeerAnswer) {
  std::string request, answer;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("[::1]:0");
      if (!any.ok()) co_return any.status();
      absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
      if (!listener.ok()) co_return listener.status();
      absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
      if (!at.ok()) co_return at.status();
      absl::StatusOr<AsyncFd> client = co_await Connect(scope, *at);
      if (!client.ok()) co_return client.status();
      absl::StatusOr<AsyncFd> server = co_await Accept(scope, *listener);
      if (!server.ok()) co_return server.status();
      CAPFS_CO_TRY(co_await WriteAll(*client, "question"));
      CAPFS_CO_TRY(Shutdown(*client, SHUT_WR));
      absl::StatusOr<std::string> q = co_await ReadToEnd(*server);
      if (!q.ok()) co_return q.status();
      request = *q;
      CAPFS_CO_TRY(co_await WriteAll(*server, "answer"));
      CAPFS_CO_TRY(server->Close());
      absl::StatusOr<std::string> a = co_await ReadToEnd(*client);
      if (!a.ok()) co_return a.status();
      answer = *a;
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(request, "question");
  EXPECT_EQ(answer, "answer");
}

// A port with a socket bound but not listening refuses connections.
TEST_P(SocketTest, RefusedConnectIsUnavailableWithEconnrefused) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
      if (!any.ok()) co_return any.status();
      // A bound TCP socket that never listens: holds the port, refuses.
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      Fd held(fd);
      if (::bind(fd, any->sockaddr(), any->size()) != 0) {
        co_return ErrnoError(errno, "bind", "");
      }
      struct sockaddr_storage ss;
      socklen_t len = sizeof(ss);
      ::getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len);
      SocketAddress at = SocketAddress::FromSockaddr(
          reinterpret_cast<struct sockaddr*>(&ss), len);
      absl::StatusOr<AsyncFd> c = co_await Connect(scope, at);
      co_return c.status();
    });
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(ErrnoOf(s), ECONNREFUSED) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "connect(\"127.0.0.1:")) << s;
}

struct ConnectErrorCase {
  const char* name;
  int type;
  absl::StatusCode code;
  int err;
};

class ConnectErrorTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, ConnectErrorCase>> {
};

INSTANTIATE_TEST_SUITE_P(
    Cases, ConnectErrorTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(ConnectErrorCase{"MissingPathStream", SOCK_STREAM,
                                           absl::StatusCode::kNotFound, ENOENT},
                          ConnectErrorCase{"MissingPathDgram", SOCK_DGRAM,
                                           absl::StatusCode::kNotFound, ENOENT},
                          ConnectErrorCase{
                              "MissingPathSeqpacket", SOCK_SEQPACKET,
                              absl::StatusCode::kNotFound, ENOENT})),
    [](const ::testing::TestParamInfo<std::tuple<IoBackend, ConnectErrorCase>>&
           info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

TEST_P(ConnectErrorTest, MissingUnixPathIsNotFound) {
  const auto [backend, c] = GetParam();
  SocketDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<SocketAddress> at =
      SocketAddress::Parse("unix:" + dir.Path("nobody-here"));
  ASSERT_TRUE(at.ok());
  LoopOptions options;
  options.backend = backend;
  absl::Status s = ::capfs::runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          co_return (co_await Connect(scope, *at, c.type)).status();
        });
      }(),
      options);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_EQ(ErrnoOf(s), c.err) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), dir.Path("nobody-here"))) << s;
}

TEST_P(SocketTest, ListenOnAnExistingUnixPathIsEaddrinuseAndKeepsIt) {
  SocketDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<SocketAddress> at =
      SocketAddress::Parse("unix:" + dir.Path("s"));
  ASSERT_TRUE(at.ok());
  absl::Status second;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> first = Listen(scope, *at);
      if (!first.ok()) co_return first.status();
      second = Listen(scope, *at).status();
      // The first server still works: its path was not taken away.
      absl::StatusOr<AsyncFd> c = co_await Connect(scope, *at);
      co_return c.status();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(second), EADDRINUSE) << second;
  // A stale socket file (nobody listening) is not removed either.
  struct stat st;
  ASSERT_EQ(::stat(dir.Path("s").c_str(), &st), 0);
  absl::Status third = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      co_return Listen(scope, *at).status();
    });
  });
  EXPECT_EQ(ErrnoOf(third), EADDRINUSE) << third;
  EXPECT_EQ(::stat(dir.Path("s").c_str(), &st), 0);
}

// The peer closes with SO_LINGER 0 (a reset): reads say ECONNRESET and
// writes ECONNRESET or EPIPE, as the kernel says; never a SIGPIPE.
TEST_P(SocketTest, ResetPeerIsAnErrorNotASignal) {
  absl::Status read_status, write_status;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
      if (!any.ok()) co_return any.status();
      absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
      if (!listener.ok()) co_return listener.status();
      absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
      if (!at.ok()) co_return at.status();
      absl::StatusOr<AsyncFd> client = co_await Connect(scope, *at);
      if (!client.ok()) co_return client.status();
      absl::StatusOr<AsyncFd> server = co_await Accept(scope, *listener);
      if (!server.ok()) co_return server.status();
      struct linger abort_close = {1, 0};
      if (::setsockopt(server->get(), SOL_SOCKET, SO_LINGER, &abort_close,
                       sizeof(abort_close)) != 0) {
        co_return ErrnoError(errno, "setsockopt", "");
      }
      CAPFS_CO_TRY(server->Close());
      char buf[16];
      read_status = (co_await WithTimeout(absl::Seconds(30),
                                          Read(*client, absl::MakeSpan(buf))))
                        .status();
      // Writes after the reset fail; bounded, in case a few are buffered.
      for (int i = 0; i < 1000 && write_status.ok(); ++i) {
        write_status = (co_await Write(*client, "after")).status();
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(read_status), ECONNRESET) << read_status;
  EXPECT_TRUE(ErrnoOf(write_status) == EPIPE ||
              ErrnoOf(write_status) == ECONNRESET)
      << write_status;
}

// Writing to a closed peer (every write call, every socket kind) is EPIPE
// or ECONNRESET; the process is still here to check it.
TEST_P(SocketTest, WritesToAClosedPeerAreEpipe) {
  std::vector<std::string> failures;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int call = 0; call < 4; ++call) {
        absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair = SocketPair(scope);
        if (!pair.ok()) co_return pair.status();
        CAPFS_CO_TRY(pair->second.Close());
        absl::Status w;
        std::string data = "x";
        struct iovec iov = {data.data(), 1};
        switch (call) {
          case 0:
            w = (co_await Write(pair->first, data)).status();
            break;
          case 1:
            w = co_await WriteAll(pair->first, data);
            break;
          case 2:
            w = (co_await WriteV(pair->first, absl::MakeConstSpan(&iov, 1)))
                    .status();
            break;
          case 3: {
            SocketAddress none;
            w = (co_await SendTo(pair->first, data, none)).status();
            break;
          }
        }
        if (ErrnoOf(w) != EPIPE)
          failures.push_back(absl::StrCat(call, ": ", w.ToString()));
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(failures.empty()) << absl::StrJoin(failures, "\n");
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

// ---------------------------------------------------- waits and closing

TEST_P(SocketTest, EveryWaitTakesATimeout) {
  std::vector<absl::Status> results;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
      if (!any.ok()) co_return any.status();
      absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
      if (!listener.ok()) co_return listener.status();
      absl::StatusOr<AsyncFd> udp = BindDatagram(scope, *any);
      if (!udp.ok()) co_return udp.status();
      absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair = SocketPair(scope);
      if (!pair.ok()) co_return pair.status();
      const absl::Duration t = absl::Milliseconds(20);
      char buf[16];
      results.push_back(
          (co_await WithTimeout(t, Accept(scope, *listener))).status());
      results.push_back((co_await WithTimeout(
                             t, RecvFrom(*udp, absl::MakeSpan(buf), nullptr)))
                            .status());
      results.push_back(
          (co_await WithTimeout(t, Read(pair->first, absl::MakeSpan(buf))))
              .status());
      results.push_back((co_await WithTimeout(
                             t, RecvMsg(pair->first, absl::MakeSpan(buf), 1)))
                            .status());
      // A full socket buffer: writes wait.
      std::string big(1 << 20, 'w');
      absl::Status w;
      for (int i = 0; i < 1000 && w.ok(); ++i) {
        w = (co_await WithTimeout(t, Write(pair->second, big))).status();
      }
      results.push_back(w);
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(results.size(), 5u);
  for (const absl::Status& r : results) {
    EXPECT_EQ(r.code(), absl::StatusCode::kDeadlineExceeded) << r;
  }
}

// Closing a socket while a task waits on it ends the wait with EBADF.
TEST_P(SocketTest, ClosingDuringAWaitEndsItWithEbadf) {
  std::vector<absl::Status> results(3);
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
      if (!any.ok()) co_return any.status();
      absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
      absl::StatusOr<AsyncFd> udp = BindDatagram(scope, *any);
      absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair = SocketPair(scope);
      if (!listener.ok() || !udp.ok() || !pair.ok()) {
        co_return absl::InternalError("setup");
      }
      internal::Fiber* fibers[3] = {nullptr, nullptr, nullptr};
      scope.Spawn([&]() -> Task<absl::Status> {
        fibers[0] = co_await internal::CurrentFiber();
        results[0] = (co_await Accept(scope, *listener)).status();
        co_return absl::OkStatus();
      });
      scope.Spawn([&]() -> Task<absl::Status> {
        fibers[1] = co_await internal::CurrentFiber();
        char buf[8];
        results[1] =
            (co_await RecvFrom(*udp, absl::MakeSpan(buf), nullptr)).status();
        co_return absl::OkStatus();
      });
      scope.Spawn([&]() -> Task<absl::Status> {
        fibers[2] = co_await internal::CurrentFiber();
        char buf[8];
        results[2] =
            (co_await RecvMsg(pair->first, absl::MakeSpan(buf), 4)).status();
        co_return absl::OkStatus();
      });
      absl::Status w;
      for (internal::Fiber*& f : fibers) {
        if (w.ok()) {
          w = co_await testing::YieldUntilWaitingIn<internal::FdReadyAwaiter>(
              &f);
        }
      }
      if (w.ok()) w = listener->Close();
      if (w.ok()) w = udp->Close();
      if (w.ok()) w = pair->first.Close();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  for (const absl::Status& r : results) EXPECT_EQ(ErrnoOf(r), EBADF) << r;
}

// Out of descriptors, Accept reports EMFILE at once (no spinning); the
// connection stays queued and is accepted once there is room.
TEST_P(SocketTest, AcceptAtTheDescriptorLimitReportsEmfile) {
  absl::Status at_limit, after;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
      if (!any.ok()) co_return any.status();
      absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
      if (!listener.ok()) co_return listener.status();
      absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
      if (!at.ok()) co_return at.status();
      absl::StatusOr<AsyncFd> client = co_await Connect(scope, *at);
      if (!client.ok()) co_return client.status();
      {
        // Every number below the limit in use: the next descriptor is EMFILE.
        std::set<int> open = capfs_test::OpenFdNumbers();  // needs one more
        testing::NofileLimit limit(*open.rbegin() + 1);
        std::vector<Fd> fillers;
        for (int n = 0; n < *open.rbegin(); ++n) {
          if (open.count(n) == 0) fillers.emplace_back(::dup(listener->get()));
        }
        at_limit =
            (co_await WithTimeout(absl::Seconds(10), Accept(scope, *listener)))
                .status();
      }
      absl::StatusOr<AsyncFd> peer =
          co_await WithTimeout(absl::Seconds(10), Accept(scope, *listener));
      after = peer.status();
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(at_limit), EMFILE) << at_limit;
  EXPECT_TRUE(after.ok()) << after;
}

// A blocking listener the caller adopted: Accept with nothing queued waits
// on the loop (and times out) instead of blocking the loop in accept4.
TEST_P(SocketTest, AdoptedBlockingListenerNeverBlocksTheLoop) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  Fd listener_fd(fd);
  absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
  ASSERT_TRUE(any.ok());
  ASSERT_EQ(::bind(fd, any->sockaddr(), any->size()), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len),
            0);
  SocketAddress at =
      SocketAddress::FromSockaddr(reinterpret_cast<struct sockaddr*>(&ss), len);
  // Should the loop block in accept4 after all, a connection unblocks it
  // and the test fails instead of hanging.
  testing::Watchdog watchdog(absl::Seconds(30), [&] {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    (void)::connect(c.get(), at.sockaddr(), at.size());
  });
  absl::Status waited, accepted;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> listener =
          AsyncFd::Adopt(scope, std::move(listener_fd));
      if (!listener.ok()) co_return listener.status();
      waited = (co_await WithTimeout(absl::Milliseconds(20),
                                     Accept(scope, *listener)))
                   .status();
      absl::StatusOr<AsyncFd> c = co_await Connect(scope, at);
      if (!c.ok()) co_return c.status();
      accepted = (co_await Accept(scope, *listener)).status();
      co_return absl::OkStatus();
    });
  });
  watchdog.Disarm();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(watchdog.fired());
  EXPECT_EQ(waited.code(), absl::StatusCode::kDeadlineExceeded) << waited;
  EXPECT_TRUE(accepted.ok()) << accepted;
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// runtime_bench: what the runtime costs, next to libuv and Boost.Asio doing
// the same work in the same binary, so that ratios come from one run.
//
//   bazel run -c opt //capfs_test/bench:runtime_bench
//
// Benchmarks (times are wall-clock per iteration):
//   yield/<backend>                 one Yield by each of two tasks
//   pipe_write/<capfs|raw>          a 64-byte write to a pipe (and a raw
//                                   read draining it)
//   pingpong/<peer>/idle:<n>        one round trip of a byte over two pipes
//                                   between two tasks (or libuv handles, or
//                                   Asio coroutines), with n idle eventfds
//                                   each waited on by a task
//   timers/heap_arm_cancel          arm 1M timers in the heap, cancel all
//   timers/sleep_tasks_cancelled    1M tasks asleep, then cancelled
//   run_blocking/<backend>          one RunBlocking round trip to a worker
//   memory/sleeping_tasks           heap bytes per task with 100k asleep
//   echo/<peer>                     a 64-byte TCP echo round trip on
//                                   loopback (capfs also counts heap
//                                   allocations per round trip)
//   bulk/<peer>                     1 MiB over loopback TCP, one direction
//   accept/<peer>                   1,000 queued connections accepted
//                                   (registered with the loop) and closed
//   sync_fs/, async_fs/, async_fs_uring/, async_fs_workers/, liburing/
//                                   the awaitable Dir calls against the
//                                   sync call, RunBlocking and liburing
//                                   (async_fs_rows.h; async_fs_bench runs
//                                   these alone)
// After the runs, a table of the target ratios.

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

// Boost 1.74's asio/awaitable.hpp needs <utility> first under g++ 12.
#include <utility>

#include <uv.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "capfs/runtime/internal/timer_heap.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/bench/async_fs_rows.h"

namespace capfs {
namespace runtime {
namespace {

LoopOptions OptionsFor(IoBackend backend) {
  LoopOptions options;
  options.backend = backend;
  return options;
}

void Check(benchmark::State& state, const absl::Status& s) {
  if (!s.ok()) state.SkipWithError(s.ToString().c_str());
}

// ---------------------------------------------------------------- yield

void BM_Yield(benchmark::State& state, IoBackend backend) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          bool done = false;
          scope.Spawn([&]() -> Task<absl::Status> {
            while (!done) {
              if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
            }
            co_return absl::OkStatus();
          });
          absl::Status y;
          for (auto _ : state) y.Update(co_await Yield());
          done = true;
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
  state.counters["switches"] =
      benchmark::Counter(2.0 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

// ------------------------------------------------------- capfs ping-pong

void BM_PingPongCapfs(benchmark::State& state, IoBackend backend, int idle) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<PipeEnds> ping = Pipe(scope);
          absl::StatusOr<PipeEnds> pong = Pipe(scope);
          if (!ping.ok()) co_return ping.status();
          if (!pong.ok()) co_return pong.status();
          std::vector<AsyncFd> idle_fds;
          idle_fds.reserve(idle);  // the tasks hold references into it
          for (int i = 0; i < idle; ++i) {
            int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            absl::StatusOr<AsyncFd> fd = AsyncFd::Adopt(scope, Fd(efd));
            if (!fd.ok()) co_return co_await scope.Join(fd.status());
            idle_fds.push_back(*std::move(fd));
            AsyncFd& mine = idle_fds.back();
            scope.Spawn([&mine]() -> Task<absl::Status> {
              uint64_t value;
              // Ends with EBADF when the benchmark closes the eventfd.
              (void)co_await Read(
                  mine, absl::MakeSpan(reinterpret_cast<char*>(&value),
                                       sizeof(value)));
              co_return absl::OkStatus();
            });
          }
          scope.Spawn([&]() -> Task<absl::Status> {  // the echo
            char buf[64];
            for (;;) {
              absl::StatusOr<size_t> n =
                  co_await Read(ping->read, absl::MakeSpan(buf));
              if (!n.ok() || *n == 0) co_return n.status();
              absl::Status w =
                  co_await WriteAll(pong->write, absl::string_view(buf, *n));
              if (!w.ok()) co_return w;
            }
          });
          absl::Status r = co_await Yield();  // let the idle tasks suspend
          char reply[64];                     // every peer reads into 64 bytes
          for (auto _ : state) {
            r.Update((co_await Write(ping->write, "x")).status());
            r.Update(
                (co_await Read(pong->read, absl::MakeSpan(reply))).status());
          }
          r.Update(ping->write.Close());  // the echo sees end of file
          for (AsyncFd& fd : idle_fds) r.Update(fd.Close());
          co_return co_await scope.Join(std::move(r));
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
}

// ------------------------------------------------------- libuv ping-pong

struct UvPingPong {
  uv_loop_t loop;
  uv_pipe_t a_out, b_in, b_out, a_in;
  uv_write_t a_req, b_req;
  char a_buf[64], b_buf[64];
  bool got_reply = false;
};

void BM_PingPongLibuv(benchmark::State& state) {
  UvPingPong pp;
  int ping[2], pong[2];
  if (::pipe2(ping, O_CLOEXEC) != 0 || ::pipe2(pong, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2");
    return;
  }
  uv_loop_init(&pp.loop);
  pp.loop.data = &pp;
  uv_pipe_init(&pp.loop, &pp.a_out, 0);
  uv_pipe_init(&pp.loop, &pp.b_in, 0);
  uv_pipe_init(&pp.loop, &pp.b_out, 0);
  uv_pipe_init(&pp.loop, &pp.a_in, 0);
  uv_pipe_open(&pp.a_out, ping[1]);
  uv_pipe_open(&pp.b_in, ping[0]);
  uv_pipe_open(&pp.b_out, pong[1]);
  uv_pipe_open(&pp.a_in, pong[0]);
  // B echoes what it reads; A notes the reply.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&pp.b_in),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvPingPong*>(h->loop->data);
        *buf = uv_buf_init(p->b_buf, sizeof(p->b_buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        if (n <= 0) return;
        auto* p = static_cast<UvPingPong*>(s->loop->data);
        uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(n));
        uv_write(&p->b_req, reinterpret_cast<uv_stream_t*>(&p->b_out), &out, 1,
                 nullptr);
      });
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&pp.a_in),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvPingPong*>(h->loop->data);
        *buf = uv_buf_init(p->a_buf, sizeof(p->a_buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n > 0) static_cast<UvPingPong*>(s->loop->data)->got_reply = true;
      });
  static char byte = 'x';
  for (auto _ : state) {
    pp.got_reply = false;
    uv_buf_t out = uv_buf_init(&byte, 1);
    uv_write(&pp.a_req, reinterpret_cast<uv_stream_t*>(&pp.a_out), &out, 1,
             nullptr);
    while (!pp.got_reply) uv_run(&pp.loop, UV_RUN_ONCE);
  }
  for (uv_pipe_t* p : {&pp.a_out, &pp.b_in, &pp.b_out, &pp.a_in}) {
    uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
  }
  uv_run(&pp.loop, UV_RUN_DEFAULT);
  uv_loop_close(&pp.loop);
}

// -------------------------------------------------------- Asio ping-pong

namespace asio = boost::asio;

asio::awaitable<void> AsioEcho(asio::posix::stream_descriptor& in,
                               asio::posix::stream_descriptor& out) {
  char buf[64];
  boost::system::error_code ec;
  for (;;) {
    size_t n = co_await in.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // end of file once the driver closes its end
    co_await asio::async_write(out, asio::buffer(buf, n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

asio::awaitable<void> AsioDriver(benchmark::State& state,
                                 asio::posix::stream_descriptor& out,
                                 asio::posix::stream_descriptor& in) {
  char byte = 'x';
  char reply[64];  // every peer reads into 64 bytes
  boost::system::error_code ec;
  for (auto _ : state) {
    co_await asio::async_write(out, asio::buffer(&byte, 1),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_await in.async_read_some(asio::buffer(reply),
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) state.SkipWithError(ec.message().c_str());
  }
  out.close();
}

void BM_PingPongAsio(benchmark::State& state) {
  int ping[2], pong[2];
  if (::pipe2(ping, O_CLOEXEC) != 0 || ::pipe2(pong, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2");
    return;
  }
  asio::io_context io(1);
  asio::posix::stream_descriptor a_out(io, ping[1]), b_in(io, ping[0]);
  asio::posix::stream_descriptor b_out(io, pong[1]), a_in(io, pong[0]);
  asio::co_spawn(io, AsioEcho(b_in, b_out), asio::detached);
  asio::co_spawn(io, AsioDriver(state, a_out, a_in), asio::detached);
  io.run();
}

// ---------------------------------------------------------- pipe writes

// One 64-byte write to a pipe, drained by a raw read(2) in both rows, so
// that the difference is the write: capfs's Write (which must keep SIGPIPE
// from being raised: no mask change per write on the loop's thread) against
// a bare write(2) on a nonblocking pipe.
constexpr size_t kPipeMessage = 64;

void BM_PipeWriteCapfs(benchmark::State& state) {
  absl::Status s = Run([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      const std::string message(kPipeMessage, 'p');
      char buf[kPipeMessage];
      absl::Status r;
      for (auto _ : state) {
        r.Update((co_await Write(pipe->write, message)).status());
        if (::read(pipe->read.get(), buf, sizeof(buf)) != kPipeMessage) {
          r.Update(absl::DataLossError("short read"));
        }
      }
      co_return r;
    });
  }());
  Check(state, s);
}

void BM_PipeWriteRaw(benchmark::State& state) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    state.SkipWithError("pipe2");
    return;
  }
  const std::string message(kPipeMessage, 'p');
  char buf[kPipeMessage];
  for (auto _ : state) {
    if (::write(fds[1], message.data(), message.size()) != kPipeMessage ||
        ::read(fds[0], buf, sizeof(buf)) != kPipeMessage) {
      state.SkipWithError("short write or read");
      break;
    }
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

// ============================================================ sockets
//
// TCP on loopback, every peer in one loop with both ends: a 64-byte echo
// round trip, 1 MiB bulk transfers, and 1,000 connections accepted. Every
// peer reads into the same buffer sizes (4 KiB for echo, 64 KiB for bulk)
// and sets TCP_NODELAY on both ends.

constexpr size_t kEchoMessage = 64;
constexpr size_t kEchoBuffer = 4096;
constexpr size_t kBulkSize = 1 << 20;
constexpr size_t kBulkBuffer = 64 << 10;
constexpr int kAcceptCount = 1000;

// CAPFS_BENCH_ITERATIONS fixes the iteration count of the socket rows, for
// counting their syscalls under strace.
void MaybeFixIterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("CAPFS_BENCH_ITERATIONS")) {
    b->Iterations(std::atoll(n));
  }
}

// Heap allocations (operator new) made by this thread's code, counted.
std::atomic<uint64_t> g_allocations{0};

void NoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// A loopback TCP listener (blocking socket) and its port, for the peers
// that are given raw descriptors.
int RawListener(int backlog, uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int RawConnect(uint16_t port, bool nonblocking) {
  int fd = ::socket(
      AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0),
      0);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  if (r != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A connected loopback TCP pair of blocking descriptors: {client, server}.
bool RawTcpPair(int out[2]) {
  uint16_t port = 0;
  int l = RawListener(1, &port);
  if (l < 0) return false;
  out[0] = RawConnect(port, false);
  out[1] = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);
  if (out[0] < 0 || out[1] < 0) return false;
  NoDelay(out[0]);
  NoDelay(out[1]);
  return true;
}

// Connected capfs sockets through the runtime's own calls.
struct CapfsTcpPair {
  AsyncFd client, server;
};

Task<absl::StatusOr<CapfsTcpPair>> MakeCapfsPair(Scope& scope) {
  absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
  if (!any.ok()) co_return any.status();
  absl::StatusOr<AsyncFd> listener = Listen(scope, *any, 1);
  if (!listener.ok()) co_return listener.status();
  absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
  if (!at.ok()) co_return at.status();
  absl::StatusOr<AsyncFd> client = co_await Connect(scope, *at);
  if (!client.ok()) co_return client.status();
  absl::StatusOr<AsyncFd> server = co_await Accept(scope, *listener);
  if (!server.ok()) co_return server.status();
  NoDelay(client->get());
  NoDelay(server->get());
  co_return CapfsTcpPair{*std::move(client), *std::move(server)};
}

// ----------------------------------------------------------- capfs echo

void BM_EchoCapfs(benchmark::State& state, IoBackend backend) {
  uint64_t allocations = 0;
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<CapfsTcpPair> pair = co_await MakeCapfsPair(scope);
          if (!pair.ok()) co_return pair.status();
          scope.Spawn([&]() -> Task<absl::Status> {  // the echo
            char buf[kEchoBuffer];
            for (;;) {
              absl::StatusOr<size_t> n =
                  co_await Read(pair->server, absl::MakeSpan(buf));
              if (!n.ok() || *n == 0) co_return n.status();
              absl::Status w =
                  co_await WriteAll(pair->server, absl::string_view(buf, *n));
              if (!w.ok()) co_return w;
            }
          });
          const std::string message(kEchoMessage, 'm');
          char reply[kEchoBuffer];
          absl::Status r;
          // One warm-up round trip, so that what is counted is steady state.
          r.Update((co_await Write(pair->client, message)).status());
          r.Update(
              (co_await Read(pair->client, absl::MakeSpan(reply))).status());
          const uint64_t before = g_allocations.load();
          for (auto _ : state) {
            r.Update((co_await Write(pair->client, message)).status());
            size_t got = 0;
            while (got < kEchoMessage && r.ok()) {
              absl::StatusOr<size_t> n =
                  co_await Read(pair->client, absl::MakeSpan(reply));
              if (!n.ok() || *n == 0) {
                r.Update(n.ok() ? absl::DataLossError("eof") : n.status());
                break;
              }
              got += *n;
            }
          }
          allocations = g_allocations.load() - before;
          r.Update(Shutdown(pair->client, SHUT_WR));
          co_return co_await scope.Join(std::move(r));
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
  state.counters["allocs_per_rt"] =
      static_cast<double>(allocations) /
      static_cast<double>(std::max<int64_t>(state.iterations(), 1));
}

// ----------------------------------------------------------- libuv echo

struct UvEcho {
  uv_loop_t loop;
  uv_tcp_t client, server;
  uv_write_t client_req, server_req;
  char client_buf[kEchoBuffer], server_buf[kEchoBuffer];
  size_t got = 0;
};

void BM_EchoLibuv(benchmark::State& state) {
  int fds[2];
  if (!RawTcpPair(fds)) {
    state.SkipWithError("tcp pair");
    return;
  }
  UvEcho e;
  uv_loop_init(&e.loop);
  e.loop.data = &e;
  uv_tcp_init(&e.loop, &e.client);
  uv_tcp_init(&e.loop, &e.server);
  uv_tcp_open(&e.client, fds[0]);
  uv_tcp_open(&e.server, fds[1]);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&e.server),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvEcho*>(h->loop->data);
        *buf = uv_buf_init(p->server_buf, sizeof(p->server_buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        if (n <= 0) return;
        auto* p = static_cast<UvEcho*>(s->loop->data);
        uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(n));
        uv_write(&p->server_req, reinterpret_cast<uv_stream_t*>(&p->server),
                 &out, 1, nullptr);
      });
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&e.client),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvEcho*>(h->loop->data);
        *buf = uv_buf_init(p->client_buf, sizeof(p->client_buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n > 0) static_cast<UvEcho*>(s->loop->data)->got += n;
      });
  static char message[kEchoMessage];
  for (auto _ : state) {
    e.got = 0;
    uv_buf_t out = uv_buf_init(message, sizeof(message));
    uv_write(&e.client_req, reinterpret_cast<uv_stream_t*>(&e.client), &out, 1,
             nullptr);
    while (e.got < kEchoMessage) uv_run(&e.loop, UV_RUN_ONCE);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&e.client), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&e.server), nullptr);
  uv_run(&e.loop, UV_RUN_DEFAULT);
  uv_loop_close(&e.loop);
}

// ------------------------------------------------------------ Asio echo

using asio_tcp = asio::ip::tcp;

asio::awaitable<void> AsioTcpEcho(asio_tcp::socket& s) {
  char buf[kEchoBuffer];
  boost::system::error_code ec;
  for (;;) {
    size_t n = co_await s.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    co_await asio::async_write(s, asio::buffer(buf, n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

asio::awaitable<void> AsioTcpDriver(benchmark::State& state,
                                    asio_tcp::socket& s) {
  char message[kEchoMessage] = {};
  char reply[kEchoBuffer];
  boost::system::error_code ec;
  for (auto _ : state) {
    co_await asio::async_write(s, asio::buffer(message),
                               asio::redirect_error(asio::use_awaitable, ec));
    size_t got = 0;
    while (got < kEchoMessage && !ec) {
      got += co_await s.async_read_some(
          asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) state.SkipWithError(ec.message().c_str());
  }
  s.shutdown(asio_tcp::socket::shutdown_send, ec);
}

void BM_EchoAsio(benchmark::State& state) {
  int fds[2];
  if (!RawTcpPair(fds)) {
    state.SkipWithError("tcp pair");
    return;
  }
  asio::io_context io(1);
  asio_tcp::socket client(io, asio_tcp::v4(), fds[0]);
  asio_tcp::socket server(io, asio_tcp::v4(), fds[1]);
  asio::co_spawn(io, AsioTcpEcho(server), asio::detached);
  asio::co_spawn(io, AsioTcpDriver(state, client), asio::detached);
  io.run();
}

// ------------------------------------------------------------ bulk 1 MiB

void BM_BulkCapfs(benchmark::State& state, IoBackend backend) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<CapfsTcpPair> pair = co_await MakeCapfsPair(scope);
          if (!pair.ok()) co_return pair.status();
          const std::string data(kBulkSize, 'b');
          std::vector<char> buf(kBulkBuffer);
          absl::Status r;
          for (auto _ : state) {
            Event sent;
            scope.Spawn([&]() -> Task<absl::Status> {
              absl::Status w = co_await WriteAll(pair->client, data);
              sent.Set();
              co_return w;
            });
            size_t got = 0;
            while (got < kBulkSize && r.ok()) {
              absl::StatusOr<size_t> n =
                  co_await Read(pair->server, absl::MakeSpan(buf));
              if (!n.ok() || *n == 0) {
                r.Update(n.ok() ? absl::DataLossError("eof") : n.status());
                break;
              }
              got += *n;
            }
            r.Update(co_await sent.Wait());
          }
          co_return co_await scope.Join(std::move(r));
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(kBulkSize));
}

struct UvBulk {
  uv_loop_t loop;
  uv_tcp_t client, server;
  uv_write_t req;
  std::vector<char> data = std::vector<char>(kBulkSize, 'b');
  std::vector<char> buf = std::vector<char>(kBulkBuffer);
  size_t got = 0;
  bool written = false;
};

void BM_BulkLibuv(benchmark::State& state) {
  int fds[2];
  if (!RawTcpPair(fds)) {
    state.SkipWithError("tcp pair");
    return;
  }
  UvBulk b;
  uv_loop_init(&b.loop);
  b.loop.data = &b;
  uv_tcp_init(&b.loop, &b.client);
  uv_tcp_init(&b.loop, &b.server);
  uv_tcp_open(&b.client, fds[0]);
  uv_tcp_open(&b.server, fds[1]);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&b.server),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvBulk*>(h->loop->data);
        *buf = uv_buf_init(p->buf.data(), static_cast<unsigned>(p->buf.size()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n > 0) static_cast<UvBulk*>(s->loop->data)->got += n;
      });
  for (auto _ : state) {
    b.got = 0;
    b.written = false;
    uv_buf_t out = uv_buf_init(b.data.data(), static_cast<unsigned>(kBulkSize));
    uv_write(&b.req, reinterpret_cast<uv_stream_t*>(&b.client), &out, 1,
             [](uv_write_t* req, int) {
               static_cast<UvBulk*>(req->handle->loop->data)->written = true;
             });
    while (b.got < kBulkSize || !b.written) uv_run(&b.loop, UV_RUN_ONCE);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&b.client), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&b.server), nullptr);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(kBulkSize));
}

asio::awaitable<void> AsioBulkDriver(benchmark::State& state,
                                     asio_tcp::socket& client,
                                     asio_tcp::socket& server) {
  auto executor = co_await asio::this_coro::executor;
  std::vector<char> data(kBulkSize, 'b');
  std::vector<char> buf(kBulkBuffer);
  boost::system::error_code ec;
  for (auto _ : state) {
    bool written = false;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          boost::system::error_code wec;
          co_await asio::async_write(
              client, asio::buffer(data),
              asio::redirect_error(asio::use_awaitable, wec));
          written = true;
        },
        asio::detached);
    size_t got = 0;
    while (got < kBulkSize && !ec) {
      got += co_await server.async_read_some(
          asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    }
    while (!written) co_await asio::post(executor, asio::use_awaitable);
    if (ec) state.SkipWithError(ec.message().c_str());
  }
}

void BM_BulkAsio(benchmark::State& state) {
  int fds[2];
  if (!RawTcpPair(fds)) {
    state.SkipWithError("tcp pair");
    return;
  }
  asio::io_context io(1);
  asio_tcp::socket client(io, asio_tcp::v4(), fds[0]);
  asio_tcp::socket server(io, asio_tcp::v4(), fds[1]);
  asio::co_spawn(io, AsioBulkDriver(state, client, server), asio::detached);
  io.run();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(kBulkSize));
}

// ---------------------------------------------------- accepting 1,000

// Before each timed part: 1,000 connections made with raw nonblocking
// connects (the handshake completes on loopback), waiting in the backlog.
// Timed: accepting all of them (each adopted by the peer: registered with
// its loop) and closing them.
std::vector<int> QueueConnections(uint16_t port) {
  std::vector<int> fds;
  fds.reserve(kAcceptCount);
  for (int i = 0; i < kAcceptCount; ++i) fds.push_back(RawConnect(port, true));
  return fds;
}

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  fds.clear();
}

void BM_AcceptCapfs(benchmark::State& state, IoBackend backend) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<SocketAddress> any =
              SocketAddress::Parse("127.0.0.1:0");
          if (!any.ok()) co_return any.status();
          absl::StatusOr<AsyncFd> listener = Listen(scope, *any, 4096);
          if (!listener.ok()) co_return listener.status();
          absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
          if (!at.ok()) co_return at.status();
          absl::Status r;
          std::vector<AsyncFd> accepted(kAcceptCount);
          for (auto _ : state) {
            state.PauseTiming();
            std::vector<int> clients = QueueConnections(at->port());
            state.ResumeTiming();
            for (int i = 0; i < kAcceptCount && r.ok(); ++i) {
              absl::StatusOr<AsyncFd> peer = co_await Accept(scope, *listener);
              if (!peer.ok()) {
                r = peer.status();
                break;
              }
              accepted[i] = *std::move(peer);
            }
            for (AsyncFd& fd : accepted) r.Update(fd.Close());
            state.PauseTiming();
            CloseAll(clients);
            state.ResumeTiming();
          }
          co_return r;
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          kAcceptCount);
}

struct UvAccept {
  uv_loop_t loop;
  uv_tcp_t listener;
  std::vector<uv_tcp_t> peers = std::vector<uv_tcp_t>(kAcceptCount);
  int accepted = 0;
  int closed = 0;
};

void BM_AcceptLibuv(benchmark::State& state) {
  uint16_t port = 0;
  int lfd = RawListener(4096, &port);
  if (lfd < 0) {
    state.SkipWithError("listen");
    return;
  }
  UvAccept a;
  uv_loop_init(&a.loop);
  a.loop.data = &a;
  uv_tcp_init(&a.loop, &a.listener);
  uv_tcp_open(&a.listener, lfd);
  uv_listen(
      reinterpret_cast<uv_stream_t*>(&a.listener), 4096,
      [](uv_stream_t* server, int status) {
        if (status < 0) return;
        auto* p = static_cast<UvAccept*>(server->loop->data);
        uv_tcp_t* peer = &p->peers[p->accepted];
        uv_tcp_init(server->loop, peer);
        if (uv_accept(server, reinterpret_cast<uv_stream_t*>(peer)) == 0) {
          ++p->accepted;
          uv_close(reinterpret_cast<uv_handle_t*>(peer), [](uv_handle_t* h) {
            ++static_cast<UvAccept*>(h->loop->data)->closed;
          });
        }
      });
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<int> clients = QueueConnections(port);
    a.accepted = 0;
    a.closed = 0;
    state.ResumeTiming();
    while (a.closed < kAcceptCount) uv_run(&a.loop, UV_RUN_ONCE);
    state.PauseTiming();
    CloseAll(clients);
    state.ResumeTiming();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&a.listener), nullptr);
  uv_run(&a.loop, UV_RUN_DEFAULT);
  uv_loop_close(&a.loop);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          kAcceptCount);
}

asio::awaitable<void> AsioAcceptDriver(benchmark::State& state,
                                       asio_tcp::acceptor& acceptor,
                                       uint16_t port) {
  boost::system::error_code ec;
  std::vector<asio_tcp::socket> peers;
  peers.reserve(kAcceptCount);
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<int> clients = QueueConnections(port);
    state.ResumeTiming();
    for (int i = 0; i < kAcceptCount && !ec; ++i) {
      peers.push_back(co_await acceptor.async_accept(
          asio::redirect_error(asio::use_awaitable, ec)));
    }
    for (asio_tcp::socket& p : peers) p.close(ec);
    peers.clear();
    state.PauseTiming();
    CloseAll(clients);
    state.ResumeTiming();
  }
}

void BM_AcceptAsio(benchmark::State& state) {
  uint16_t port = 0;
  int lfd = RawListener(4096, &port);
  if (lfd < 0) {
    state.SkipWithError("listen");
    return;
  }
  asio::io_context io(1);
  asio_tcp::acceptor acceptor(io, asio_tcp::v4(), lfd);
  asio::co_spawn(io, AsioAcceptDriver(state, acceptor, port), asio::detached);
  io.run();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          kAcceptCount);
}

// --------------------------------------------------------------- timers

class BenchTimer final : public internal::TimerNode {
 public:
  void OnTimerFired() noexcept override {}
};

// The heap itself: a million timers armed (random deadlines), then all
// cancelled in random order.
void BM_TimerHeapArmCancel(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<BenchTimer> timers(n);
  std::vector<BenchTimer*> order;
  for (BenchTimer& t : timers) order.push_back(&t);
  std::mt19937_64 rng(7);
  std::vector<int64_t> deadlines(n);
  for (int64_t& d : deadlines) d = static_cast<int64_t>(rng() % 1000000000);
  std::shuffle(order.begin(), order.end(), rng);
  internal::TimerHeap heap;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) heap.Add(&timers[i], deadlines[i]);
    for (BenchTimer* t : order) heap.Remove(t);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

Task<absl::Status> Asleep(absl::Duration d) { co_return co_await Sleep(d); }

// Through the runtime: a million tasks each asleep on its own timer, then
// the scope cancelled (every timer removed from the heap).
void BM_SleepTasksArmedAndCancelled(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    absl::Status s = Run([&]() -> Task<absl::Status> {
      co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
        for (int i = 0; i < n; ++i) scope.Spawn(Asleep(absl::Hours(1)));
        absl::Status y = co_await Yield();  // all of them arm their timer
        scope.Cancel();
        co_return co_await scope.Join(std::move(y));
      });
    }());
    if (!absl::IsCancelled(s)) Check(state, s);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}

// ---------------------------------------------------------- RunBlocking

void BM_RunBlocking(benchmark::State& state, IoBackend backend) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        absl::Status r;
        for (auto _ : state) {
          r.Update(co_await RunBlocking([] { return absl::OkStatus(); }));
        }
        co_return r;
      }(),
      OptionsFor(backend));
  Check(state, s);
}

// --------------------------------------------------------------- memory

size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;  // small chunks + mmapped ones
}

// Everything the loop holds for a suspended task, counted by the allocator:
// its coroutine frames, its fiber, its share of the run queue and of the
// timer heap's array.
void BM_MemoryPerSleepingTask(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  double per_task = 0;
  for (auto _ : state) {
    absl::Status s = Run([&]() -> Task<absl::Status> {
      co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
        size_t before = HeapInUse();
        for (int i = 0; i < n; ++i) scope.Spawn(Asleep(absl::Hours(1)));
        absl::Status y = co_await Yield();  // all are asleep now
        per_task = static_cast<double>(HeapInUse() - before) / n;
        scope.Cancel();
        co_return co_await scope.Join(std::move(y));
      });
    }());
    if (!absl::IsCancelled(s)) Check(state, s);
  }
  state.counters["bytes_per_task"] = per_task;
}

// ------------------------------------------------------------- reporting

// Prints what the console reporter does, and keeps each benchmark's time per
// iteration (ns; the median when it was repeated), wall-clock and CPU, for
// the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") {
        continue;
      }
      double to_ns = benchmark::GetTimeUnitMultiplier(benchmark::kNanosecond) /
                     benchmark::GetTimeUnitMultiplier(run.time_unit);
      times_[run.run_name.function_name] = {run.GetAdjustedRealTime() * to_ns,
                                            run.GetAdjustedCPUTime() * to_ns};
    }
    async_fs_.Record(runs);
  }

  void PrintRatios() const {
    std::printf(
        "\nTarget ratios (medians of time per round trip; lower is better):\n"
        "  %-28s %8s %8s\n",
        "", "wall", "cpu");
    Ratio("capfs epoll / libuv", "pingpong/capfs_epoll/idle:0",
          "pingpong/libuv", 1.0);
    Ratio("capfs epoll / Asio", "pingpong/capfs_epoll/idle:0", "pingpong/asio",
          1.0);
    Ratio("capfs poll / libuv", "pingpong/capfs_poll/idle:0", "pingpong/libuv",
          0);
    Ratio("pipe write capfs / write(2)", "pipe_write/capfs", "pipe_write/raw",
          0);
    Ratio("echo capfs epoll / libuv", "echo/capfs_epoll", "echo/libuv", 1.0);
    Ratio("echo capfs epoll / Asio", "echo/capfs_epoll", "echo/asio", 1.0);
    Ratio("echo capfs poll / libuv", "echo/capfs_poll", "echo/libuv", 0);
    // Throughput: the faster peer's time over capfs's (>= 0.95 wanted).
    for (const char* peer : {"libuv", "asio"}) {
      Ratio(absl::StrCat("bulk ", peer, " time / capfs epoll time"),
            absl::StrCat("bulk/", peer), "bulk/capfs_epoll", 0);
    }
    Ratio("accept capfs epoll / libuv", "accept/capfs_epoll", "accept/libuv",
          0);
    Ratio("accept capfs epoll / Asio", "accept/capfs_epoll", "accept/asio", 0);
    for (const char* backend : {"epoll", "poll"}) {
      for (int idle : {1000, 10000}) {
        Ratio(absl::StrCat(backend, " idle ", idle, " / idle 10"),
              absl::StrCat("pingpong/capfs_", backend, "/idle:", idle),
              absl::StrCat("pingpong/capfs_", backend, "/idle:10"),
              std::string(backend) == "epoll" && idle == 10000 ? 1.2 : 0);
      }
    }
    async_fs_.Print();
  }

 private:
  struct Times {
    double wall_ns, cpu_ns;
  };

  void Ratio(const std::string& label, const std::string& num,
             const std::string& den, double target) const {
    auto a = times_.find(num), b = times_.find(den);
    if (a == times_.end() || b == times_.end()) return;
    double wall = a->second.wall_ns / b->second.wall_ns;
    double cpu = a->second.cpu_ns / b->second.cpu_ns;
    std::printf("  %-28s %8.3f %8.3f", label.c_str(), wall, cpu);
    if (target > 0) {
      std::printf("  (target <= %.1f: %s)", target,
                  wall <= target ? "met" : "MISSED");
    }
    std::printf("\n");
  }

  std::map<std::string, Times> times_;  // by benchmark name
  AsyncFsRatios async_fs_;              // the awaitable Dir calls' rows
};

// The ratios compare medians of five runs: the machines are shared and a
// single run can be off by tens of percent.
benchmark::internal::Benchmark* Repeated(benchmark::internal::Benchmark* b) {
  return b->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
}

void RegisterAll() {
  using benchmark::RegisterBenchmark;
  for (IoBackend b : {IoBackend::kEpoll, IoBackend::kPoll}) {
    std::string name = IoBackendName(b);
    RegisterBenchmark(("yield/" + name).c_str(), BM_Yield, b)->UseRealTime();
    for (int idle : {0, 10, 1000, 10000}) {
      Repeated(RegisterBenchmark(
          absl::StrCat("pingpong/capfs_", name, "/idle:", idle).c_str(),
          BM_PingPongCapfs, b, idle));
    }
  }
  Repeated(RegisterBenchmark("pingpong/libuv", BM_PingPongLibuv));
  Repeated(RegisterBenchmark("pipe_write/capfs", BM_PipeWriteCapfs));
  Repeated(RegisterBenchmark("pipe_write/raw", BM_PipeWriteRaw));
  Repeated(RegisterBenchmark("pingpong/asio", BM_PingPongAsio));
  for (IoBackend b : {IoBackend::kEpoll, IoBackend::kPoll}) {
    std::string name = IoBackendName(b);
    MaybeFixIterations(Repeated(
        RegisterBenchmark(("echo/capfs_" + name).c_str(), BM_EchoCapfs, b)));
    MaybeFixIterations(Repeated(
        RegisterBenchmark(("bulk/capfs_" + name).c_str(), BM_BulkCapfs, b)));
    MaybeFixIterations(Repeated(RegisterBenchmark(
        ("accept/capfs_" + name).c_str(), BM_AcceptCapfs, b)));
  }
  MaybeFixIterations(Repeated(RegisterBenchmark("echo/libuv", BM_EchoLibuv)));
  MaybeFixIterations(Repeated(RegisterBenchmark("echo/asio", BM_EchoAsio)));
  MaybeFixIterations(Repeated(RegisterBenchmark("bulk/libuv", BM_BulkLibuv)));
  MaybeFixIterations(Repeated(RegisterBenchmark("bulk/asio", BM_BulkAsio)));
  MaybeFixIterations(
      Repeated(RegisterBenchmark("accept/libuv", BM_AcceptLibuv)));
  MaybeFixIterations(Repeated(RegisterBenchmark("accept/asio", BM_AcceptAsio)));
  RegisterBenchmark("timers/heap_arm_cancel", BM_TimerHeapArmCancel)
      ->Arg(1000000)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  RegisterBenchmark("timers/sleep_tasks_cancelled",
                    BM_SleepTasksArmedAndCancelled)
      ->Arg(1000000)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  for (IoBackend b : {IoBackend::kEpoll, IoBackend::kPoll}) {
    RegisterBenchmark((std::string("run_blocking/") + IoBackendName(b)).c_str(),
                      BM_RunBlocking, b)
        ->UseRealTime();
  }
  RegisterBenchmark("memory/sleeping_tasks", BM_MemoryPerSleepingTask)
      ->Arg(100000)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  RegisterAsyncFsBenchmarks();
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// Counts heap allocations, for allocs_per_rt.
void* operator new(size_t size) {
  capfs::runtime::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  std::abort();  // out of memory: nothing here throws
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
  // 10,000 idle eventfds and the pipes need more than the usual 1024.
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  benchmark::Initialize(&argc, argv);
  capfs::runtime::RegisterAll();
  capfs::runtime::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  capfs::runtime::RemoveAsyncFsTree();
  benchmark::Shutdown();
  return 0;
}

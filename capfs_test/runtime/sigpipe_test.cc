// No write ever raises SIGPIPE, on a pipe or on a socket, whoever serves it
// (the loop or a worker), and the host's signal state is left as it was.
// Nothing here ignores SIGPIPE: a signal would kill the test.

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/runtime/socket_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

enum class Call { kWrite, kWriteAll, kWriteV };
enum class Ends { kPipe, kBlockingPipe, kSocketPair };

struct SigpipeCase {
  const char* name;
  Ends ends;
  Call call;
};

class SigpipeTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, SigpipeCase>> {};

INSTANTIATE_TEST_SUITE_P(
    Cases, SigpipeTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(
            SigpipeCase{"PipeWrite", Ends::kPipe, Call::kWrite},
            SigpipeCase{"PipeWriteAll", Ends::kPipe, Call::kWriteAll},
            SigpipeCase{"PipeWriteV", Ends::kPipe, Call::kWriteV},
            // Served by a worker thread: the same holds there.
            SigpipeCase{"WorkerPipeWrite", Ends::kBlockingPipe, Call::kWrite},
            SigpipeCase{"WorkerPipeWriteV", Ends::kBlockingPipe, Call::kWriteV},
            SigpipeCase{"SocketWrite", Ends::kSocketPair, Call::kWrite},
            SigpipeCase{"SocketWriteAll", Ends::kSocketPair, Call::kWriteAll},
            SigpipeCase{"SocketWriteV", Ends::kSocketPair, Call::kWriteV})),
    [](const ::testing::TestParamInfo<std::tuple<IoBackend, SigpipeCase>>&
           info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

Task<absl::Status> WriteOnce(AsyncFd& fd, Call call) {
  std::string data = "data";
  struct iovec iov = {data.data(), data.size()};
  switch (call) {
    case Call::kWrite:
      co_return (co_await Write(fd, data)).status();
    case Call::kWriteAll:
      co_return co_await WriteAll(fd, data);
    case Call::kWriteV:
      co_return (co_await WriteV(fd, absl::MakeConstSpan(&iov, 1))).status();
  }
  co_return absl::InternalError("unknown call");
}

bool SigpipeBlocked() {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, SIGPIPE);
}

bool SigpipePending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE);
}

// As a user would: make the ends, close the reader, write the other end.
TEST_P(SigpipeTest, WriteWithNoReaderIsEpipeAndTheProcessLives) {
  const auto [backend, c] = GetParam();
  struct sigaction before;
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &before), 0);
  ASSERT_EQ(before.sa_handler, SIG_DFL) << "this test needs SIGPIPE's default";
  LoopOptions options;
  options.backend = backend;
  absl::Status s = ::capfs::runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          AsyncFd reader, writer;
          switch (c.ends) {
            case Ends::kPipe: {
              absl::StatusOr<PipeEnds> pipe = Pipe(scope);
              if (!pipe.ok()) co_return pipe.status();
              reader = std::move(pipe->read);
              writer = std::move(pipe->write);
              break;
            }
            case Ends::kBlockingPipe: {
              int fds[2];
              if (::pipe2(fds, O_CLOEXEC) != 0) {
                co_return ErrnoError(errno, "pipe2", "");
              }
              Fd r(fds[0]), w(fds[1]);
              absl::StatusOr<AsyncFd> ar = AsyncFd::Adopt(scope, std::move(r));
              absl::StatusOr<AsyncFd> aw =
                  AsyncFd::Adopt(scope, std::move(w), IoMode::kBlocking);
              if (!ar.ok()) co_return ar.status();
              if (!aw.ok()) co_return aw.status();
              if (aw->on_loop()) co_return absl::InternalError("on the loop");
              reader = *std::move(ar);
              writer = *std::move(aw);
              break;
            }
            case Ends::kSocketPair: {
              absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair =
                  SocketPair(scope);
              if (!pair.ok()) co_return pair.status();
              reader = std::move(pair->first);
              writer = std::move(pair->second);
              break;
            }
          }
          CAPFS_CO_TRY(reader.Close());
          co_return co_await WriteOnce(writer, c.call);
        });
      }(),
      options);
  EXPECT_EQ(ErrnoOf(s), EPIPE) << s;
  // Still here; nothing left pending, blocked or changed.
  EXPECT_FALSE(SigpipePending());
  EXPECT_FALSE(SigpipeBlocked());
  struct sigaction after;
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, SIG_DFL);
}

// A host that blocks SIGPIPE itself keeps it blocked.
TEST(SigpipeMaskTest, AHostsBlockedSigpipeStaysBlocked) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &pipe_only, &old), 0);
  absl::Status s = ::capfs::runtime::Run([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      CAPFS_CO_TRY(pipe->read.Close());
      co_return (co_await Write(pipe->write, "x")).status();
    });
  }());
  EXPECT_EQ(ErrnoOf(s), EPIPE) << s;
  EXPECT_TRUE(SigpipeBlocked());
  EXPECT_FALSE(SigpipePending());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// The loop's thread blocks SIGPIPE at its first pipe write and keeps it
// blocked (no mask change per write) until Run returns, which unblocks it.
TEST(SigpipeHoldTest, TheLoopThreadHoldsSigpipeFromItsFirstPipeWriteToItsEnd) {
  ASSERT_FALSE(SigpipeBlocked());
  bool before_write = true, after_write = false, after_epipe = false;
  absl::Status s = ::capfs::runtime::Run([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      before_write = SigpipeBlocked();
      CAPFS_CO_TRY((co_await Write(pipe->write, "x")).status());
      after_write = SigpipeBlocked();
      CAPFS_CO_TRY(pipe->read.Close());
      absl::Status w = (co_await Write(pipe->write, "x")).status();
      after_epipe = SigpipeBlocked() && !SigpipePending();
      co_return w;
    });
  }());
  EXPECT_EQ(ErrnoOf(s), EPIPE) << s;
  EXPECT_FALSE(before_write);
  EXPECT_TRUE(after_write);
  EXPECT_TRUE(after_epipe);
  EXPECT_FALSE(SigpipeBlocked());
  EXPECT_FALSE(SigpipePending());
}

// The worker threads are capfs's own: SIGPIPE stays blocked on them.
TEST(SigpipeHoldTest, WorkerThreadsKeepSigpipeBlocked) {
  bool on_worker = false;
  absl::Status s = ::capfs::runtime::Run([&]() -> Task<absl::Status> {
    co_return co_await RunBlocking([&] {
      on_worker = SigpipeBlocked();
      return absl::OkStatus();
    });
  }());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(on_worker);
  EXPECT_FALSE(SigpipeBlocked());
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

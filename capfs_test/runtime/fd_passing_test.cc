// Descriptors over Unix sockets: files and pipes arrive sharing their open
// file (offsets), close-on-exec; truncated control messages leave nothing
// behind, whether the sender sent too many or the receiver is at its limit.

#include "capfs/runtime/fd_passing.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "capfs/file.h"
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

class FdPassingTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, int>> {
 protected:
  template <typename Body>
  absl::Status RunWithPair(Body body) {
    LoopOptions options;
    options.backend = std::get<0>(GetParam());
    const int type = std::get<1>(GetParam());
    return ::capfs::runtime::Run(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair =
                SocketPair(scope, type);
            if (!pair.ok()) co_return pair.status();
            co_return co_await body(scope, pair->first, pair->second);
          });
        }(),
        options);
  }
};

std::string TypeName(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "Stream";
    case SOCK_DGRAM:
      return "Dgram";
    case SOCK_SEQPACKET:
      return "Seqpacket";
  }
  return "?";
}

INSTANTIATE_TEST_SUITE_P(
    Types, FdPassingTest,
    ::testing::Combine(::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                       ::testing::Values(SOCK_STREAM, SOCK_DGRAM,
                                         SOCK_SEQPACKET)),
    [](const ::testing::TestParamInfo<std::tuple<IoBackend, int>>& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          TypeName(std::get<1>(info.param)));
    });

bool CloseOnExec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// A file and a pipe's write end travel; the receiver's reads move the
// sender's offset (one open file), and its writes reach the sender's pipe.
TEST_P(FdPassingTest, FilesAndPipesArriveSharingTheirOpenFile) {
  char tmpl[] = "/tmp/capfs-fdpass-XXXXXX";
  int raw = ::mkstemp(tmpl);
  ASSERT_GE(raw, 0);
  ::unlink(tmpl);
  Fd file(raw);
  ASSERT_EQ(::write(file.get(), "0123456789", 10), 10);
  ASSERT_EQ(::lseek(file.get(), 2, SEEK_SET), 2);
  std::string data, via_pipe, via_file;
  off_t sender_offset = -1;
  bool cloexec = false;
  absl::Status s = RunWithPair([&](Scope& scope, AsyncFd& a,
                                   AsyncFd& b) -> Task<absl::Status> {
    absl::StatusOr<PipeEnds> pipe = Pipe(scope);
    if (!pipe.ok()) co_return pipe.status();
    const int fds[2] = {file.get(), pipe->write.get()};
    absl::StatusOr<size_t> n = co_await SendMsg(a, "two", fds);
    if (!n.ok()) co_return n.status();
    char buf[16];
    absl::StatusOr<ReceivedMsg> m = co_await RecvMsg(b, absl::MakeSpan(buf), 4);
    if (!m.ok()) co_return m.status();
    data.assign(buf, m->size);
    if (m->fds.size() != 2) {
      co_return absl::InternalError(absl::StrCat(m->fds.size(), " fds"));
    }
    cloexec = CloseOnExec(m->fds[0].get()) && CloseOnExec(m->fds[1].get());
    char got[3];
    if (::read(m->fds[0].get(), got, 3) != 3) {
      co_return ErrnoError(errno, "read", "");
    }
    via_file.assign(got, 3);
    sender_offset = ::lseek(file.get(), 0, SEEK_CUR);
    if (::write(m->fds[1].get(), "through", 7) != 7) {
      co_return ErrnoError(errno, "write", "");
    }
    absl::StatusOr<std::string> r =
        co_await testing::ReadExactly(pipe->read, 7);
    if (!r.ok()) co_return r.status();
    via_pipe = *r;
    co_return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(data, "two");
  EXPECT_TRUE(cloexec);
  EXPECT_EQ(via_file, "234");
  EXPECT_EQ(sender_offset, 5);  // moved by the receiver's read
  EXPECT_EQ(via_pipe, "through");
}

struct TruncationCase {
  const char* name;
  size_t sent;
  size_t max_fds;
};

class TruncationTest : public ::testing::TestWithParam<
                           std::tuple<IoBackend, int, TruncationCase>> {};

INSTANTIATE_TEST_SUITE_P(
    Cases, TruncationTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET),
        ::testing::Values(TruncationCase{"ThreeForOne", 3, 1},
                          TruncationCase{"OneForNone", 1, 0},
                          TruncationCase{"ManyForSome", 100, 8})),
    [](const ::testing::TestParamInfo<
        std::tuple<IoBackend, int, TruncationCase>>& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          TypeName(std::get<1>(info.param)), "_",
                          std::get<2>(info.param).name);
    });

// More descriptors than asked for: an error, and not one of them is left
// open in this process afterwards.
TEST_P(TruncationTest, IsAnErrorAndLeavesNoDescriptorBehind) {
  const auto [backend, type, c] = GetParam();
  std::set<int> during, before;
  absl::Status result;
  LoopOptions options;
  options.backend = backend;
  absl::Status s = ::capfs::runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair =
              SocketPair(scope, type);
          if (!pair.ok()) co_return pair.status();
          std::vector<int> fds(c.sent, pair->first.get());
          absl::StatusOr<size_t> n = co_await SendMsg(pair->first, "m", fds);
          if (!n.ok()) co_return n.status();
          before = capfs_test::OpenFdNumbers();
          char buf[4];
          result =
              (co_await RecvMsg(pair->second, absl::MakeSpan(buf), c.max_fds))
                  .status();
          during = capfs_test::OpenFdNumbers();
          co_return absl::OkStatus();
        });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(result.code(), absl::StatusCode::kResourceExhausted) << result;
  EXPECT_EQ(during, before);
}

// The receiver at its descriptor limit: the kernel installs what it can
// and truncates; RecvMsg closes those and fails.
TEST_P(FdPassingTest, ReceiverAtItsDescriptorLimitKeepsNothing) {
  std::set<int> before, during;
  absl::Status result;
  absl::Status s =
      RunWithPair([&](Scope&, AsyncFd& a, AsyncFd& b) -> Task<absl::Status> {
        const int fds[3] = {a.get(), a.get(), a.get()};
        absl::StatusOr<size_t> n = co_await SendMsg(a, "m", fds);
        if (!n.ok()) co_return n.status();
        before = capfs_test::OpenFdNumbers();
        // Room for exactly one more descriptor: the lowest free number.
        int first_free = 0;
        while (before.count(first_free)) ++first_free;
        int second_free = first_free + 1;
        while (before.count(second_free)) ++second_free;
        {
          testing::NofileLimit limit(second_free);
          char buf[4];
          result = (co_await RecvMsg(b, absl::MakeSpan(buf), 3)).status();
        }
        during = capfs_test::OpenFdNumbers();
        co_return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(result.code(), absl::StatusCode::kResourceExhausted) << result;
  EXPECT_EQ(during, before);
}

TEST_P(FdPassingTest, ArgumentsThatCannotTravelAreRefused) {
  std::vector<absl::Status> results;
  const int type = std::get<1>(GetParam());
  absl::Status s =
      RunWithPair([&](Scope&, AsyncFd& a, AsyncFd&) -> Task<absl::Status> {
        std::vector<int> too_many(kMaxFdsPerMsg + 1, a.get());
        results.push_back((co_await SendMsg(a, "x", too_many)).status());
        const int one[1] = {a.get()};
        results.push_back((co_await SendMsg(a, "", one)).status());
        co_return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(results[0].code(), absl::StatusCode::kInvalidArgument)
      << results[0];
  if (type == SOCK_STREAM) {
    EXPECT_EQ(results[1].code(), absl::StatusCode::kInvalidArgument)
        << results[1];
  } else {
    EXPECT_TRUE(results[1].ok()) << results[1];  // a message of no bytes
  }
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

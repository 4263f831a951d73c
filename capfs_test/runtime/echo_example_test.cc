// The echo example of docs/runtime.md, kept compiling and working here.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

// --- example begins
// Copies everything from `in` to `out` until end of file.
Task<absl::Status> Echo(AsyncFd& in, AsyncFd& out) {
  char buf[4096];
  for (;;) {
    absl::StatusOr<size_t> n = co_await Read(in, absl::MakeSpan(buf));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return absl::OkStatus();
    absl::Status s = co_await WriteAll(out, absl::string_view(buf, *n));
    if (!s.ok()) co_return s;
  }
}

// Sends `line` through an echo task and returns what came back.
Task<absl::StatusOr<std::string>> RoundTrip(std::string line) {
  std::string reply;
  absl::Status s = co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
    absl::StatusOr<PipeEnds> requests = Pipe(scope);
    absl::StatusOr<PipeEnds> replies = Pipe(scope);
    if (!requests.ok()) co_return requests.status();
    if (!replies.ok()) co_return replies.status();
    scope.Spawn(Echo(requests->read, replies->write));
    scope.Spawn([&]() -> Task<absl::Status> {  // write while we read
      absl::Status sent = co_await WriteAll(requests->write, line);
      if (!sent.ok()) co_return sent;
      co_return requests->write.Close();  // the echo sees end of file
    });

    absl::Status got;
    char buf[4096];
    while (got.ok() && reply.size() < line.size()) {
      absl::StatusOr<size_t> n = co_await WithTimeout(
          absl::Seconds(5), Read(replies->read, absl::MakeSpan(buf)));
      if (!n.ok()) {
        got = n.status();
      } else if (*n == 0) {
        got = absl::DataLossError("echo ended early");
      } else {
        reply.append(buf, *n);
      }
    }
    // The tasks use this body's pipes: wait for them before they go.
    co_return co_await scope.Join(std::move(got));
  });
  if (!s.ok()) co_return s;
  co_return reply;
}

// In main():  absl::StatusOr<std::string> r = Run(RoundTrip("hello\n"));
// --- example ends

class EchoExampleTest : public testing::BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(EchoExampleTest);

TEST_P(EchoExampleTest, EchoesALine) {
  absl::StatusOr<std::string> r =
      RunMain([] { return RoundTrip("hello, runtime\n"); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "hello, runtime\n");
}

TEST_P(EchoExampleTest, EchoesMoreThanAPipeHolds) {
  std::string big(300000, 'e');
  absl::StatusOr<std::string> r = RunMain([&] { return RoundTrip(big); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r == big);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// Task<T>: laziness, results, nesting, and synchronous completion.

#include "capfs/runtime/task.h"

#include <fcntl.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "capfs/fd.h"
#include "capfs/runtime/loop.h"
#include "capfs/runtime/scope.h"
#include "capfs/runtime/yield.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class TaskTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(TaskTest);

Task<int> Leaf(int x, std::vector<std::string>* log) {
  log->push_back("leaf");
  co_return x * 2;
}

TEST_P(TaskTest, IsLazyUntilAwaited) {
  std::vector<std::string> log;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    Task<int> t = Leaf(21, &log);
    log.push_back("made");
    int v = co_await std::move(t);
    log.push_back("got " + std::to_string(v));
    co_return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(log, (std::vector<std::string>{"made", "leaf", "got 42"}));
}

TEST_P(TaskTest, TaskNeverAwaitedNeverRuns) {
  std::vector<std::string> log;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    { Task<int> dropped = Leaf(1, &log); }
    co_return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(log.empty());
}

Task<absl::StatusOr<Fd>> OpenNull() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) co_return absl::InternalError("open /dev/null");
  co_return Fd(fd);
}

TEST_P(TaskTest, CarriesMoveOnlyResults) {
  absl::StatusOr<Fd> fd = RunMain(
      []() -> Task<absl::StatusOr<Fd>> { co_return co_await OpenNull(); });
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_TRUE(fd->valid());
}

TEST_P(TaskTest, CarriesErrors) {
  absl::StatusOr<int> r = RunMain([]() -> Task<absl::StatusOr<int>> {
    co_return absl::NotFoundError("nothing here");
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

Task<int> Depth(int n) {
  if (n == 0) co_return 0;
  int below = co_await Depth(n - 1);
  co_return below + 1;
}

TEST_P(TaskTest, NestsDeeply) {
  absl::StatusOr<int> r = RunMain(
      []() -> Task<absl::StatusOr<int>> { co_return co_await Depth(1000); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1000);
}

Task<int> Immediate(int i) { co_return i; }

// A million awaits of tasks that finish without suspending must not grow the
// stack (they return into the parent, not through nested resumptions).
TEST_P(TaskTest, SynchronousCompletionsDoNotGrowTheStack) {
  absl::StatusOr<long> r = RunMain([]() -> Task<absl::StatusOr<long>> {
    long sum = 0;
    for (int i = 0; i < 1000000; ++i) sum += co_await Immediate(i % 3);
    co_return sum;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 999999);  // 333333 each of 0, 1, 2, plus one 0
}

Task<int> YieldThen(int i) {
  absl::Status s = co_await Yield();
  co_return s.ok() ? i : -1;
}

TEST_P(TaskTest, SuspendedChildResumesParent) {
  absl::StatusOr<long> r = RunMain([]() -> Task<absl::StatusOr<long>> {
    long sum = 0;
    for (int i = 0; i < 100000; ++i) sum += co_await YieldThen(1);
    co_return sum;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 100000);
}

Task<absl::StatusOr<int>> Seven() { co_return 7; }

// A Task is awaited once: awaiting it gives up the coroutine and leaves the
// Task empty. Awaiting, spawning or running an empty Task (awaited before,
// moved from, or default-made) is a bug the runtime reports the same way in
// every build: kFailedPrecondition where the result can carry a status.
struct EmptyTaskCase {
  std::string name;
  // Returns what the misuse gave.
  std::function<Task<absl::Status>()> misuse;
};

void PrintTo(const EmptyTaskCase& c, std::ostream* os) { *os << c.name; }

std::vector<EmptyTaskCase> EmptyTaskCases() {
  return {
      {"AwaitedTwice",
       []() -> Task<absl::Status> {
         Task<absl::StatusOr<int>> t = Seven();
         absl::StatusOr<int> first = co_await std::move(t);
         EXPECT_TRUE(first.ok() && *first == 7);
         EXPECT_FALSE(t.valid());
         co_return (co_await std::move(t)).status();
       }},
      {"MovedFrom",
       []() -> Task<absl::Status> {
         Task<absl::StatusOr<int>> t = Seven();
         Task<absl::StatusOr<int>> moved = std::move(t);
         absl::Status s = (co_await std::move(t)).status();
         absl::StatusOr<int> real = co_await std::move(moved);
         EXPECT_TRUE(real.ok() && *real == 7);
         co_return s;
       }},
      {"DefaultMade",
       []() -> Task<absl::Status> { co_return co_await Task<absl::Status>(); }},
      {"Spawned",
       []() -> Task<absl::Status> {
         co_return co_await WithScope([](Scope& scope) -> Task<absl::Status> {
           scope.Spawn(Task<absl::Status>());
           co_return absl::OkStatus();
         });
       }},
      {"SpawnedFromACallable",
       []() -> Task<absl::Status> {
         co_return co_await WithScope([](Scope& scope) -> Task<absl::Status> {
           scope.Spawn([]() { return Task<absl::Status>(); });
           co_return absl::OkStatus();
         });
       }},
  };
}

class EmptyTaskTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, EmptyTaskCase>> {};

TEST_P(EmptyTaskTest, IsFailedPrecondition) {
  const IoBackend backend = std::get<0>(GetParam());
  const auto& c = std::get<1>(GetParam());
  LoopOptions options;
  options.backend = backend;
  absl::Status s = runtime::Run(c.misuse(), options);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

INSTANTIATE_TEST_SUITE_P(
    Backends, EmptyTaskTest,
    ::testing::Combine(::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                       ::testing::ValuesIn(EmptyTaskCases())),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

TEST_P(TaskTest, RunningAnEmptyTaskIsFailedPrecondition) {
  absl::Status s = runtime::Run(Task<absl::Status>(), Options());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

// A result that cannot carry a status has nothing to give: the process
// stops with a message rather than run on with a made-up value.
TEST(EmptyTaskDeathTest, WithoutAStatusTheProcessStops) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        absl::Status s = runtime::Run([]() -> Task<absl::Status> {
          Task<int> t = Immediate(1);
          int a = co_await std::move(t);
          int b = co_await std::move(t);
          co_return a + b > 0 ? absl::OkStatus() : absl::InternalError("");
        }());
        (void)s;
      },
      "awaited an empty Task");
}

TEST(LoopTest, CurrentIsSetOnlyWhileRunning) {
  EXPECT_EQ(Loop::Current(), nullptr);
  absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
  ASSERT_TRUE(loop.ok());
  Loop* seen = nullptr;
  absl::Status s = (*loop)->Run([&]() -> Task<absl::Status> {
    seen = Loop::Current();
    co_return absl::OkStatus();
  }());
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(seen, loop->get());
  EXPECT_EQ(Loop::Current(), nullptr);
}

TEST(LoopTest, RunsOneTaskAfterAnother) {
  absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
  ASSERT_TRUE(loop.ok());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int> r = (*loop)->Run(
        [i]() -> Task<absl::StatusOr<int>> { co_return co_await Depth(i); }());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, i);
  }
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

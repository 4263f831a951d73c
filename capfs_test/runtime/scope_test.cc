// Scopes: joining, failure and cancellation, and cancellation of every kind
// of suspension point.

#include "capfs/runtime/scope.h"

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;
using testing::SetOnExit;

class ScopeTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(ScopeTest);

TEST_P(ScopeTest, WaitsForEveryTaskBeforeReturning) {
  int finished = 0;
  int seen_after = -1;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    absl::Status r =
        co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          for (int i = 0; i < 5; ++i) {
            scope.Spawn([&, i]() -> Task<absl::Status> {
              absl::Status w = co_await Sleep(absl::Milliseconds(i));
              ++finished;
              co_return w;
            });
          }
          co_return absl::OkStatus();
        });
    seen_after = finished;
    co_return r;
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(seen_after, 5);
}

TEST_P(ScopeTest, FailingTaskCancelsSiblingsAndItsErrorIsReported) {
  absl::Status sibling_result;
  absl::Status body_result;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Spawn([&]() -> Task<absl::Status> {
        sibling_result = co_await Sleep(absl::Seconds(60));
        co_return sibling_result;
      });
      scope.Spawn([&]() -> Task<absl::Status> {
        if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
        co_return absl::DataLossError("first failure");
      });
      body_result = co_await Sleep(absl::Seconds(60));
      co_return body_result;
    });
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_EQ(s.message(), "first failure");
  EXPECT_TRUE(absl::IsCancelled(sibling_result)) << sibling_result;
  EXPECT_TRUE(absl::IsCancelled(body_result)) << body_result;
}

TEST_P(ScopeTest, FirstOfSeveralErrorsWins) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int i = 0; i < 3; ++i) {
        scope.Spawn([i]() -> Task<absl::Status> {
          co_return absl::InternalError(absl::StrCat("error ", i));
        });
      }
      co_return absl::OkStatus();
    });
  });
  EXPECT_EQ(s.message(), "error 0");
}

TEST_P(ScopeTest, FailingBodyCancelsTasks) {
  absl::Status child_result;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Spawn([&]() -> Task<absl::Status> {
        child_result = co_await Sleep(absl::Seconds(60));
        co_return child_result;
      });
      co_return absl::UnavailableError("body gave up");
    });
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::IsCancelled(child_result)) << child_result;
}

TEST_P(ScopeTest, BodyValueIsTheResultWhenAllSucceed) {
  absl::StatusOr<int> r = RunMain([&]() -> Task<absl::StatusOr<int>> {
    co_return co_await WithScope(
        [&](Scope& scope) -> Task<absl::StatusOr<int>> {
          scope.Spawn(
              []() -> Task<absl::Status> { co_return absl::OkStatus(); });
          co_return 7;
        });
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 7);
}

TEST_P(ScopeTest, CancellingTheOuterTaskCancelsNestedScopes) {
  std::vector<std::string> log;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithTimeout(
        absl::Milliseconds(10),
        WithScope([&](Scope& outer) -> Task<absl::Status> {
          outer.Spawn([&]() -> Task<absl::Status> {
            absl::Status inner =
                co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
                  scope.Spawn([&]() -> Task<absl::Status> {
                    absl::Status w = co_await Sleep(absl::Seconds(60));
                    log.push_back(absl::StrCat("deep: ", w.ToString()));
                    co_return w;
                  });
                  co_return absl::OkStatus();
                });
            log.push_back(absl::StrCat("inner: ", inner.ToString()));
            co_return inner;
          });
          co_return absl::OkStatus();
        }));
  });
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0], "deep: CANCELLED: sleep");
  EXPECT_EQ(log[1], "inner: CANCELLED: sleep");
}

TEST_P(ScopeTest, ExplicitCancelStopsEverythingAndReportsCancelled) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Spawn([]() -> Task<absl::Status> {
        co_return co_await Sleep(absl::Seconds(60));
      });
      scope.Cancel();
      co_return absl::OkStatus();
    });
  });
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
}

TEST_P(ScopeTest, SpawnedCallableLivesAsLongAsItsTask) {
  bool lambda_destroyed = false;
  bool destroyed_while_running = true;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      auto guard = std::make_shared<SetOnExit>(&lambda_destroyed);
      scope.Spawn([&, guard]() -> Task<absl::Status> {
        absl::Status w = co_await Sleep(absl::Milliseconds(1));
        destroyed_while_running = lambda_destroyed;
        co_return w;
      });
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(destroyed_while_running);
  EXPECT_TRUE(lambda_destroyed);
}

TEST_P(ScopeTest, DescriptorsOpenedUnderAScopeAreClosedWhenItEnds) {
  int read_fd = -1, write_fd = -1;
  AsyncFd kept;  // outlive the scope: still closed by it
  std::unique_ptr<AsyncFd> kept_on_heap;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      read_fd = pipe->read.get();
      write_fd = pipe->write.get();
      kept = std::move(pipe->read);
      kept_on_heap = std::make_unique<AsyncFd>(std::move(pipe->write));
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(kept.valid());
  EXPECT_FALSE(kept_on_heap->valid());
  std::set<int> open = ::capfs_test::OpenFdNumbers();
  EXPECT_EQ(open.count(read_fd), 0u);
  EXPECT_EQ(open.count(write_fd), 0u);
}

// Cancelling a join (here by a WithTimeout around it) cancels the scope's
// tasks; the join still waits for them to end, then gives kCancelled, which
// WithTimeout reports as kDeadlineExceeded. The task ignores its
// cancellation and returns OK: the join's result does not depend on it.
struct JoinTimeoutCase {
  std::string name;
  // Sleeps through the timeout before the join begins: the join then starts
  // out cancelled.
  bool timeout_before_join;
};

void PrintTo(const JoinTimeoutCase& c, std::ostream* os) { *os << c.name; }

class JoinTimeoutTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, JoinTimeoutCase>> {
};

TEST_P(JoinTimeoutTest, CancelledJoinCancelsTheTasksAndWaitsForThem) {
  const auto& [backend, c] = GetParam();
  LoopOptions options;
  options.backend = backend;
  absl::Status slept;
  absl::Status joined;
  bool task_ended = false;
  bool ended_before_join_returned = false;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Spawn([&]() -> Task<absl::Status> {
            SetOnExit ended(&task_ended);
            // Far beyond the timeout: without the cancellation the join
            // would give this sleep's OK, late.
            slept = co_await Sleep(absl::Seconds(5));
            co_return absl::OkStatus();
          });
          joined = co_await WithTimeout(
              absl::Milliseconds(1), [&]() -> Task<absl::Status> {
                if (c.timeout_before_join) {
                  absl::Status w = co_await Sleep(absl::Hours(1));
                  if (!absl::IsCancelled(w)) co_return w;
                }
                co_return co_await scope.Join();
              }());
          ended_before_join_returned = task_ended;
          co_return absl::OkStatus();
        });
      }(),
      options);
  EXPECT_TRUE(absl::IsDeadlineExceeded(joined)) << joined;
  EXPECT_TRUE(absl::IsCancelled(slept)) << slept;
  EXPECT_TRUE(ended_before_join_returned);
  // The scope was cancelled: WithScope says so.
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
}

INSTANTIATE_TEST_SUITE_P(
    Backends, JoinTimeoutTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(JoinTimeoutCase{"TimeoutDuringJoin", false},
                          JoinTimeoutCase{"TimeoutBeforeJoin", true})),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// Only the body may join its scope. A task spawned in it that joins would
// wait for itself; it gets kFailedPrecondition at once instead, however
// deep in nested scopes the join is.
struct ForeignJoinCase {
  std::string name;
  bool from_nested_scope;  // the task joins from the body of a scope of its own
};

void PrintTo(const ForeignJoinCase& c, std::ostream* os) { *os << c.name; }

class ForeignJoinTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, ForeignJoinCase>> {
};

TEST_P(ForeignJoinTest, TaskJoiningItsOwnScopeFailsAtOnce) {
  const auto& [backend, c] = GetParam();
  LoopOptions options;
  options.backend = backend;
  absl::Status joined;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Spawn([&]() -> Task<absl::Status> {
            if (c.from_nested_scope) {
              joined = co_await WithScope([&](Scope&) -> Task<absl::Status> {
                co_return co_await scope.Join();
              });
            } else {
              joined = co_await scope.Join();
            }
            co_return joined;
          });
          co_return absl::OkStatus();
        });
      }(),
      options);
  EXPECT_EQ(joined.code(), absl::StatusCode::kFailedPrecondition) << joined;
  EXPECT_NE(joined.message().find("other than the scope's body"),
            absl::string_view::npos)
      << joined;
  EXPECT_EQ(s, joined);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, ForeignJoinTest,
    ::testing::Combine(::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                       ::testing::Values(ForeignJoinCase{"SpawnedTask", false},
                                         ForeignJoinCase{"NestedScopeBody",
                                                         true})),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// Cancellation must reach every kind of suspension point. Each case starts a
// task that suspends in one kind of wait and would stay there for good; the
// scope is then cancelled, and the task must end with kCancelled.
struct WaitCase {
  std::string name;
  // Returns the wait's result. `ready` is set once the task is about to
  // suspend (or, for a worker job, once the job runs); `released` is set
  // right after the scope is cancelled.
  std::function<Task<absl::Status>(Scope&, std::atomic<bool>& ready,
                                   std::atomic<bool>& released)>
      wait;
};

std::vector<WaitCase> WaitCases() {
  return {
      {"Sleep",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         ready = true;
         co_return co_await Sleep(absl::Hours(1));
       }},
      {"SleepUntil",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         ready = true;
         co_return co_await SleepUntil(MonotonicNow() + absl::Hours(1));
       }},
      {"ReadOnEmptyPipe",
       [](Scope& scope, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         absl::StatusOr<PipeEnds> pipe = Pipe(scope);
         if (!pipe.ok()) co_return pipe.status();
         char byte;
         ready = true;
         absl::StatusOr<size_t> n =
             co_await Read(pipe->read, absl::MakeSpan(&byte, 1));
         co_return n.status();
       }},
      {"WriteOnFullPipe",
       [](Scope& scope, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         absl::StatusOr<PipeEnds> pipe = Pipe(scope);
         if (!pipe.ok()) co_return pipe.status();
         std::string chunk(1 << 16, 'x');
         for (;;) {  // fill it until a write has to wait
           ready = true;
           absl::StatusOr<size_t> n = co_await Write(pipe->write, chunk);
           if (!n.ok()) co_return n.status();
         }
       }},
      {"EventWait",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         Event never;
         ready = true;
         co_return co_await never.Wait();
       }},
      {"Yield",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         for (;;) {
           ready = true;
           if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
         }
       }},
      {"JoinOfNestedScope",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         co_return co_await WithScope(
             [&ready](Scope& inner) -> Task<absl::Status> {
               inner.Spawn([&ready]() -> Task<absl::Status> {
                 ready = true;
                 co_return co_await Sleep(absl::Hours(1));
               });
               co_return absl::OkStatus();
             });
       }},
      {"StartedWorkerJob",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>& released) -> Task<absl::Status> {
         // The job cannot be interrupted: it is still running when the
         // scope is cancelled and ends only after that; the task waits for
         // it and reports kCancelled, not the job's OK.
         co_return co_await RunBlocking([&ready, &released]() -> absl::Status {
           ready = true;
           while (!released) std::this_thread::yield();
           return absl::OkStatus();
         });
       }},
      {"QueuedWorkerJob",
       [](Scope&, std::atomic<bool>& ready,
          std::atomic<bool>&) -> Task<absl::Status> {
         ready = true;  // the harness cancels on its next turn
         co_return co_await RunBlocking(
             []() -> absl::Status { return absl::InternalError("ran"); });
       }},
  };
}

class CancelWaitTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, WaitCase>> {};

TEST_P(CancelWaitTest, CancellationEndsTheWaitWithCancelled) {
  const auto& [backend, wait_case] = GetParam();
  LoopOptions options;
  options.backend = backend;
  // One worker busy with a blocker makes the queued job stay queued.
  WorkerPoolOptions workers;
  workers.max_threads = 1;
  options.worker_options = workers;
  absl::Status waited;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          std::atomic<bool> ready{false};
          std::atomic<bool> released{false};
          if (wait_case.name == "QueuedWorkerJob") {
            scope.Spawn([&]() -> Task<absl::Status> {
              co_return co_await RunBlocking([&]() -> absl::Status {
                while (!released) std::this_thread::yield();
                return absl::OkStatus();
              });
            });
          }
          scope.Spawn([&]() -> Task<absl::Status> {
            waited = co_await wait_case.wait(scope, ready, released);
            co_return absl::OkStatus();
          });
          absl::Status y;
          while (!ready && y.ok()) y = co_await Yield();
          // One more turn, so the task is suspended in its wait.
          if (y.ok()) y = co_await Yield();
          scope.Cancel();
          released = true;
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      options);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(absl::IsCancelled(waited)) << waited;
}

INSTANTIATE_TEST_SUITE_P(EveryWait, CancelWaitTest,
                         ::testing::Combine(::testing::Values(IoBackend::kEpoll,
                                                              IoBackend::kPoll),
                                            ::testing::ValuesIn(WaitCases())),
                         [](const auto& info) {
                           return absl::StrCat(
                               IoBackendName(std::get<0>(info.param)), "_",
                               std::get<1>(info.param).name);
                         });

}  // namespace
}  // namespace runtime
}  // namespace capfs

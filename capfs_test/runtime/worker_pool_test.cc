// The worker pool and RunBlocking: reuse, bounds, idle exit, cancellation.

#include "capfs/runtime/worker_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "capfs/fd.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class WorkerPoolTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(WorkerPoolTest);

TEST_P(WorkerPoolTest, ResultComesBackOnTheLoopThread) {
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id job_thread, resumed_on;
  absl::StatusOr<int> r = RunMain([&]() -> Task<absl::StatusOr<int>> {
    absl::StatusOr<int> v = co_await RunBlocking([&]() -> absl::StatusOr<int> {
      job_thread = std::this_thread::get_id();
      return 42;
    });
    resumed_on = std::this_thread::get_id();
    co_return v;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 42);
  EXPECT_NE(job_thread, loop_thread);
  EXPECT_EQ(resumed_on, loop_thread);
}

TEST_P(WorkerPoolTest, SequentialJobsReuseOneThread) {
  std::set<std::thread::id> threads;
  WorkerPool pool;
  LoopOptions options = Options();
  options.workers = &pool;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        for (int i = 0; i < 200; ++i) {
          absl::Status j = co_await RunBlocking([&]() -> absl::Status {
            threads.insert(std::this_thread::get_id());
            return absl::OkStatus();
          });
          if (!j.ok()) co_return j;
        }
        co_return absl::OkStatus();
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(pool.peak_threads(), 1);
  EXPECT_EQ(pool.jobs_started(), 200u);
}

// Twenty concurrent jobs on a pool of three: never more than three run at
// once, and three do (each waits until three are in, or all are done).
TEST_P(WorkerPoolTest, ConcurrencyIsBoundedByMaxThreads) {
  constexpr int kJobs = 20;
  constexpr int kMax = 3;
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0, most_inside = 0, finished = 0;
  WorkerPool pool({.max_threads = kMax, .idle_timeout = absl::Seconds(10)});
  LoopOptions options = Options();
  options.workers = &pool;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          for (int i = 0; i < kJobs; ++i) {
            scope.Spawn([&]() -> Task<absl::Status> {
              co_return co_await RunBlocking([&]() -> absl::Status {
                std::unique_lock<std::mutex> lock(mu);
                ++inside;
                most_inside = std::max(most_inside, inside);
                cv.notify_all();
                // Hold the thread until the pool is full or the tail of the
                // jobs is running.
                cv.wait(lock, [&] {
                  return inside == kMax || finished + inside == kJobs;
                });
                --inside;
                ++finished;
                cv.notify_all();
                return absl::OkStatus();
              });
            });
          }
          co_return absl::OkStatus();
        });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(finished, kJobs);
  EXPECT_EQ(most_inside, kMax);
  EXPECT_EQ(pool.peak_threads(), kMax);
}

// The pool's bound is all there is: idle threads exit after idle_timeout.
// (Waits for it, but asserts no duration.)
TEST(WorkerPoolIdleTest, IdleThreadsExit) {
  WorkerPool pool({.max_threads = 4, .idle_timeout = absl::Milliseconds(1)});
  LoopOptions options;
  options.workers = &pool;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await RunBlocking([] { return absl::OkStatus(); });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(pool.peak_threads(), 1);
  for (int i = 0; i < 10000 && pool.threads() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(pool.threads(), 0);
  // And the pool starts threads again afterwards.
  s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await RunBlocking([] { return absl::OkStatus(); });
      }(),
      options);
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(WorkerPoolTest, QueuedJobWithdrawnOnCancelNeverRuns) {
  std::atomic<bool> queued_job_ran{false};
  std::atomic<bool> release{false};
  LoopOptions options = Options();
  options.worker_options.max_threads = 1;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Spawn([&]() -> Task<absl::Status> {
            co_return co_await RunBlocking([&] {
              while (!release) std::this_thread::yield();
              return absl::OkStatus();
            });
          });
          scope.Spawn([&]() -> Task<absl::Status> {
            co_return co_await RunBlocking([&] {
              queued_job_ran = true;
              return absl::OkStatus();
            });
          });
          absl::Status y = co_await Yield();
          scope.Cancel();
          release = true;
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      options);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_FALSE(queued_job_ran);
}

// A job that has started runs to its end; what it produced (an open Fd) is
// released when its task turns out to be cancelled.
TEST_P(WorkerPoolTest, CancelledStartedJobReleasesItsFd) {
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  std::atomic<int> opened{-1};
  absl::StatusOr<Fd> result;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Spawn([&]() -> Task<absl::Status> {
        result = co_await RunBlocking([&]() -> absl::StatusOr<Fd> {
          started = true;
          while (!release) std::this_thread::yield();
          int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          opened = fd;
          return Fd(fd);
        });
        co_return absl::OkStatus();
      });
      absl::Status y;
      while (!started && y.ok()) y = co_await Yield();
      scope.Cancel();
      release = true;
      co_return co_await scope.Join(std::move(y));
    });
  });
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
  ASSERT_GE(opened.load(), 0);
  EXPECT_EQ(testing::OpenFds().count(opened.load()), 0u);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

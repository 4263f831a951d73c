// The worker pool and RunBlocking: reuse, bounds, idle exit, cancellation.

#include "capfs/runtime/worker_pool.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "capfs/fd.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/fd_leak_check.h"
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
TEST_P(WorkerPoolTest, IdleThreadsExit) {
  WorkerPool pool({.max_threads = 4, .idle_timeout = absl::Milliseconds(1)});
  LoopOptions options = Options();
  options.workers = &pool;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await RunBlocking([] { return absl::OkStatus(); });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(pool.peak_threads(), 1);
  EXPECT_TRUE(pool.WaitForThreadsAtMost(0, absl::Seconds(10)));
  EXPECT_EQ(pool.threads(), 0);
  // And the pool starts threads again afterwards.
  s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await RunBlocking([] { return absl::OkStatus(); });
      }(),
      options);
  EXPECT_TRUE(s.ok()) << s;
}

// An idle timeout too long for the clock (an infinite one above all) keeps
// an idle thread for good instead of wrapping into the past, which made
// every thread exit at once and every job start a new one.
struct IdleTimeoutCase {
  std::string name;
  absl::Duration idle_timeout;
};

void PrintTo(const IdleTimeoutCase& c, std::ostream* os) { *os << c.name; }

class LongIdleTimeoutTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, IdleTimeoutCase>> {
};

TEST_P(LongIdleTimeoutTest, OneThreadServesSequentialJobs) {
  const IoBackend backend = std::get<0>(GetParam());
  const auto& c = std::get<1>(GetParam());
  WorkerPool pool({.max_threads = 4, .idle_timeout = c.idle_timeout});
  LoopOptions options;
  options.backend = backend;
  options.workers = &pool;
  std::set<std::thread::id> threads;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        for (int i = 0; i < 20; ++i) {
          absl::Status j = co_await RunBlocking([&]() -> absl::Status {
            threads.insert(std::this_thread::get_id());
            return absl::OkStatus();
          });
          if (!j.ok()) co_return j;
          // Time for a thread that would exit to do so.
          if (absl::Status w = co_await Sleep(absl::Milliseconds(1)); !w.ok()) {
            co_return w;
          }
        }
        co_return absl::OkStatus();
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(pool.peak_threads(), 1);
  EXPECT_EQ(pool.threads(), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, LongIdleTimeoutTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(IdleTimeoutCase{"Infinite", absl::InfiniteDuration()},
                          IdleTimeoutCase{"Huge", absl::Hours(1e8)})),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// RunBlocking's awaitable goes into WithTimeout like any other: a quick job
// passes its result through; a job stuck in the queue is withdrawn when the
// time is up, and never runs.
TEST_P(WorkerPoolTest, WithTimeoutAroundRunBlocking) {
  std::atomic<bool> blocker_started{false};
  absl::Notification release;
  std::atomic<bool> queued_job_ran{false};
  absl::StatusOr<int> quick;
  absl::Status late;
  LoopOptions options = Options();
  options.worker_options.max_threads = 1;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        quick = co_await WithTimeout(
            absl::Seconds(30),
            RunBlocking([]() -> absl::StatusOr<int> { return 42; }));
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Spawn([&]() -> Task<absl::Status> {  // holds the only thread
            co_return co_await RunBlocking([&] {
              blocker_started = true;
              release.WaitForNotification();
              return absl::OkStatus();
            });
          });
          absl::Status y;
          while (!blocker_started && y.ok()) y = co_await Yield();
          late = co_await WithTimeout(absl::Milliseconds(10), RunBlocking([&] {
                                        queued_job_ran = true;
                                        return absl::OkStatus();
                                      }));
          release.Notify();
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(quick.ok()) << quick.status();
  EXPECT_EQ(*quick, 42);
  EXPECT_TRUE(absl::IsDeadlineExceeded(late)) << late;
  EXPECT_FALSE(queued_job_ran);
}

// Makes the system refuse new threads in this process from now on (a
// seccomp filter, so only in a child process): clone3 says ENOSYS, so the C
// library falls back to clone, which says EAGAIN for a thread; fork works.
void RefuseNewThreads() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr ||
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
      seccomp_rule_add(
          ctx, SCMP_ACT_ERRNO(EAGAIN), SCMP_SYS(clone), 1,
          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0 ||
      seccomp_load(ctx) != 0) {
    fprintf(stderr, "could not load the seccomp filter\n");
    _exit(2);
  }
  seccomp_release(ctx);
}

// In a child: exits 0 when `check` holds. _exit, so that nothing at exit
// (a leak checker's thread, say) needs a new thread.
template <typename Check>
void ExitWith(Check check) {
  fflush(stdout);
  fflush(stderr);
  _exit(check() ? 0 : 1);
}

// With no thread alive and none to be had, a job fails with
// kResourceExhausted instead of waiting for good (or terminating the process
// from a noexcept suspension).
TEST(WorkerPoolNoThreadsDeathTest, JobFailsWhenNoThreadCanStart) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (IoBackend backend : {IoBackend::kEpoll, IoBackend::kPoll}) {
    EXPECT_EXIT(
        {
          LoopOptions options;
          options.backend = backend;
          RefuseNewThreads();
          bool ran = false;
          absl::Status s = runtime::Run(
              [&]() -> Task<absl::Status> {
                co_return co_await RunBlocking([&] {
                  ran = true;
                  return absl::OkStatus();
                });
              }(),
              options);
          fprintf(stderr, "%s\n", s.ToString().c_str());
          ExitWith([&] { return absl::IsResourceExhausted(s) && !ran; });
        },
        ::testing::ExitedWithCode(0), "RESOURCE_EXHAUSTED")
        << IoBackendName(backend);
  }
}

// With one thread alive, a job that finds no new thread waits for it.
TEST(WorkerPoolNoThreadsDeathTest, JobWaitsForTheThreadAlive) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (IoBackend backend : {IoBackend::kEpoll, IoBackend::kPoll}) {
    EXPECT_EXIT(
        {
          WorkerPool pool(
              {.max_threads = 4, .idle_timeout = absl::InfiniteDuration()});
          LoopOptions options;
          options.backend = backend;
          options.workers = &pool;
          absl::Status first = runtime::Run(
              []() -> Task<absl::Status> {
                co_return co_await RunBlocking([] { return absl::OkStatus(); });
              }(),
              options);
          RefuseNewThreads();
          int ran = 0;
          absl::Status s = runtime::Run(
              [&]() -> Task<absl::Status> {
                co_return co_await WithScope(
                    [&](Scope& scope) -> Task<absl::Status> {
                      for (int i = 0; i < 3; ++i) {
                        scope.Spawn([&]() -> Task<absl::Status> {
                          co_return co_await RunBlocking([&] {
                            ++ran;  // one thread: no race
                            return absl::OkStatus();
                          });
                        });
                      }
                      co_return absl::OkStatus();
                    });
              }(),
              options);
          fprintf(stderr, "%s %s ran %d on %d\n", first.ToString().c_str(),
                  s.ToString().c_str(), ran, pool.peak_threads());
          ExitWith([&] {
            return first.ok() && s.ok() && ran == 3 && pool.peak_threads() == 1;
          });
        },
        ::testing::ExitedWithCode(0), "OK OK ran 3 on 1")
        << IoBackendName(backend);
  }
}

// The only thread is busy with a job that has started, so the second job
// is still queued when the scope is cancelled: it is withdrawn and never
// runs, while the started one runs to its end.
TEST_P(WorkerPoolTest, QueuedJobWithdrawnOnCancelNeverRuns) {
  std::atomic<bool> blocker_started{false};
  std::atomic<bool> blocker_finished{false};
  absl::Notification release;
  std::atomic<bool> queued_job_ran{false};
  absl::Status queued_result;
  LoopOptions options = Options();
  options.worker_options.max_threads = 1;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Spawn([&]() -> Task<absl::Status> {
            co_return co_await RunBlocking([&] {
              blocker_started = true;
              release.WaitForNotification();
              blocker_finished = true;
              return absl::OkStatus();
            });
          });
          absl::Status y;
          // Withdrawing a blocker not started yet would hand the thread to
          // the other job before its own cancellation reached it.
          while (!blocker_started && y.ok()) y = co_await Yield();
          bool queueing = false;
          scope.Spawn([&]() -> Task<absl::Status> {
            queueing = true;  // and queues it in the same turn
            queued_result = co_await RunBlocking([&] {
              queued_job_ran = true;
              return absl::OkStatus();
            });
            co_return queued_result;
          });
          while (!queueing && y.ok()) y = co_await Yield();
          scope.Cancel();
          release.Notify();
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      options);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(absl::IsCancelled(queued_result)) << queued_result;
  EXPECT_FALSE(queued_job_ran);
  EXPECT_TRUE(blocker_finished);
}

// A job that has started runs to its end, and its task resumes only after
// that; what it produced (an open Fd) is released when the task turns out
// to be cancelled.
TEST_P(WorkerPoolTest, CancelledStartedJobReleasesItsFd) {
  std::atomic<bool> started{false};
  absl::Notification release;
  std::atomic<bool> finished{false};
  std::atomic<int> opened{-1};
  bool finished_when_resumed = false;
  absl::StatusOr<Fd> result;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Spawn([&]() -> Task<absl::Status> {
        result = co_await RunBlocking([&]() -> absl::StatusOr<Fd> {
          started = true;
          release.WaitForNotification();
          int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          opened = fd;
          // The loop may run on meanwhile: nothing waits for this.
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          finished = true;
          return Fd(fd);
        });
        finished_when_resumed = finished;
        co_return absl::OkStatus();
      });
      absl::Status y;
      while (!started && y.ok()) y = co_await Yield();
      scope.Cancel();
      release.Notify();
      co_return co_await scope.Join(std::move(y));
    });
  });
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
  EXPECT_TRUE(finished_when_resumed);
  ASSERT_GE(opened.load(), 0);
  EXPECT_EQ(::capfs_test::OpenFdNumbers().count(opened.load()), 0u);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// The loop: run order, fairness, cross-thread posts, many tasks.

#include "capfs/runtime/loop.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/fd.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class LoopTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(LoopTest);

TEST_P(LoopTest, SpawnedTasksStartInSpawnOrderAfterTheSpawner) {
  std::vector<std::string> log;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int i = 0; i < 3; ++i) {
        scope.Spawn([&, i]() -> Task<absl::Status> {
          log.push_back(absl::StrCat("child ", i));
          co_return absl::OkStatus();
        });
      }
      log.push_back("body");
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(
      log, (std::vector<std::string>{"body", "child 0", "child 1", "child 2"}));
}

TEST_P(LoopTest, YieldingTasksTakeTurnsRoundRobin) {
  std::vector<std::string> log;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int i = 0; i < 3; ++i) {
        scope.Spawn([&, i]() -> Task<absl::Status> {
          for (int round = 0; round < 3; ++round) {
            log.push_back(absl::StrCat(i, ":", round));
            if (absl::Status s = co_await Yield(); !s.ok()) co_return s;
          }
          co_return absl::OkStatus();
        });
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(log, (std::vector<std::string>{"0:0", "1:0", "2:0", "0:1", "1:1",
                                           "2:1", "0:2", "1:2", "2:2"}));
}

// A task reading an always-ready descriptor (a pipe kept full) must not
// starve a task waiting on another descriptor: each read yields first, and
// the loop polls between turns.
TEST_P(LoopTest, AlwaysReadyDescriptorDoesNotStarveOthers) {
  int reads_before_ping = -1;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> busy = Pipe(scope);
      absl::StatusOr<PipeEnds> ping = Pipe(scope);
      if (!busy.ok()) co_return busy.status();
      if (!ping.ok()) co_return ping.status();
      Event pinged;
      int reads = 0;
      scope.Spawn([&]() -> Task<absl::Status> {
        // Refill as fast as it drains: the read side is always ready.
        char byte = 0;
        while (!pinged.is_set()) {
          absl::Status w = co_await WriteAll(busy->write, "x");
          if (!w.ok()) co_return w;
          absl::StatusOr<size_t> n =
              co_await Read(busy->read, absl::MakeSpan(&byte, 1));
          if (!n.ok()) co_return n.status();
          ++reads;
        }
        co_return absl::OkStatus();
      });
      scope.Spawn([&]() -> Task<absl::Status> {
        char byte;
        absl::StatusOr<size_t> n =
            co_await Read(ping->read, absl::MakeSpan(&byte, 1));
        if (!n.ok()) co_return n.status();
        reads_before_ping = reads;
        pinged.Set();
        co_return absl::OkStatus();
      });
      // Let the busy task spin a while before the ping arrives.
      absl::Status w;
      for (int i = 0; i < 20 && w.ok(); ++i) w = co_await Yield();
      if (w.ok()) w = co_await WriteAll(ping->write, "!");
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  // The waiter ran while the busy task was still busy, a few turns after the
  // ping was written.
  EXPECT_GE(reads_before_ping, 1);
  EXPECT_LT(reads_before_ping, 100);
}

TEST_P(LoopTest, PostsFromOtherThreadsRunInOrderPerThread) {
  constexpr int kThreads = 4;
  constexpr int kPosts = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    Loop* loop = Loop::Current();
    Event all_done;
    int finished = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPosts; ++i) {
          loop->Post([&, t, i] {
            seen[t].push_back(i);
            if (i == kPosts - 1 && ++finished == kThreads) all_done.Set();
          });
        }
      });
    }
    absl::Status w = co_await all_done.Wait();
    for (std::thread& t : threads) t.join();
    co_return w;
  });
  ASSERT_TRUE(s.ok()) << s;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPosts));
    for (int i = 0; i < kPosts; ++i) ASSERT_EQ(seen[t][i], i);
  }
}

// True when thread `tid` of this process is blocked in a backend's wait
// (epoll or poll family), as /proc says; false while it runs or makes any
// other call. Fails the test if /proc cannot say.
bool BlockedInBackendWait(pid_t tid) {
  std::string path = absl::StrCat("/proc/self/task/", tid, "/syscall");
  std::ifstream in(path);
  std::string first;
  if (!(in >> first)) {
    ADD_FAILURE() << "cannot read " << path;
    return true;  // stop waiting: the test fails anyway
  }
  if (first == "running") return false;
  long nr = std::strtol(first.c_str(), nullptr, 10);
  static const std::set<long> kWaits = {
      SYS_epoll_pwait, SYS_epoll_pwait2, SYS_ppoll,
#ifdef SYS_epoll_wait
      SYS_epoll_wait,
#endif
#ifdef SYS_poll
      SYS_poll,
#endif
  };
  return kWaits.count(nr) > 0;
}

// The loop has nothing runnable and no timer: it blocks in the backend's
// wait with no timeout (a task waits on a pipe nobody writes to). Only then
// does the other thread post; the post's eventfd write must wake the loop.
// Were it missing, the loop would sleep on until the watchdog writes to the
// pipe.
TEST_P(LoopTest, PostWakesALoopBlockedInItsWait) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  Fd rescue(fds[1]);
  testing::Watchdog dog(absl::Seconds(10),
                        [&] { (void)!::write(rescue.get(), "r", 1); });
  bool saw_blocked = false;
  bool woken_by_post = false;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    Loop* loop = Loop::Current();
    const pid_t loop_tid = ::gettid();
    Event woken;  // outlives every post: unrun ones are dropped, not run
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> idle = AsyncFd::Adopt(scope, Fd(fds[0]));
      if (!idle.ok()) co_return idle.status();
      scope.Spawn([&]() -> Task<absl::Status> {
        char byte;
        absl::StatusOr<size_t> n =
            co_await Read(*idle, absl::MakeSpan(&byte, 1));
        if (!woken.is_set()) woken.Set();  // the watchdog's rescue
        co_return n.status();
      });
      std::thread poster([&] {
        while (!dog.fired() && !BlockedInBackendWait(loop_tid)) {
          std::this_thread::yield();
        }
        saw_blocked = !dog.fired();
        loop->Post([&] {
          woken_by_post = !woken.is_set();
          woken.Set();
        });
      });
      absl::Status w = co_await woken.Wait();
      poster.join();  // it has posted, or is about to
      // End the idle reader.
      if (::write(rescue.get(), "x", 1) != 1 && w.ok()) {
        w = ErrnoError(errno, "write", "");
      }
      co_return co_await scope.Join(std::move(w));
    });
  });
  dog.Disarm();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(saw_blocked);
  EXPECT_TRUE(woken_by_post);
  EXPECT_FALSE(dog.fired()) << "the post did not wake the loop";
}

TEST_P(LoopTest, HundredThousandConcurrentTasks) {
  constexpr int kTasks = 100000;
  long sum = 0;
  size_t peak = 0;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    Event go;
    absl::Status r =
        co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          for (int i = 0; i < kTasks; ++i) {
            scope.Spawn([&, i]() -> Task<absl::Status> {
              if (absl::Status w = co_await go.Wait(); !w.ok()) co_return w;
              if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
              sum += i;
              co_return absl::OkStatus();
            });
          }
          // Let every task reach its wait, so all are suspended at once.
          if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
          peak = scope.running();
          go.Set();
          co_return absl::OkStatus();
        });
    co_return r;
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(peak, static_cast<size_t>(kTasks));
  EXPECT_EQ(sum, static_cast<long>(kTasks) * (kTasks - 1) / 2);
}

TEST_P(LoopTest, PostedButNeverRunFunctionsAreDestroyed) {
  auto token = std::make_shared<int>(7);
  std::weak_ptr<int> weak = token;
  {
    absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create(Options());
    ASSERT_TRUE(loop.ok());
    (*loop)->Post([token = std::move(token)] { FAIL() << "must not run"; });
  }
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

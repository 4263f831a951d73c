// A loop's ring kept for its thread's next loop (AsyncFsOptions::keep_ring,
// fs_paths.h): which loop gets which ring, that a kept ring still serves
// after a loop that ended with work in the kernel, that a forked child
// never uses its parent's, that one a seccomp filter has since forbidden is
// let go, and that nothing outlives the thread.
//
// Each test runs its loops on a thread of its own, whose exit closes what it
// kept: the test main's descriptor check then sees what it saw before.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

// The descriptors of this process that are io_uring instances.
std::set<int> RingFds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  const int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = atoi(e->d_name);
    if (fd == own) continue;
    char target[64] = {};
    const std::string link = absl::StrCat("/proc/self/fd/", e->d_name);
    if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
        strcmp(target, "anon_inode:[io_uring]") == 0) {
      fds.insert(fd);
    }
  }
  closedir(d);
  return fds;
}

// Runs `fn` on a thread of its own and waits for it (its exit closes the
// ring it kept).
void OnNewThread(const std::function<void()>& fn) {
  std::thread t(fn);
  t.join();
}

LoopOptions RingOptions(bool keep) {
  LoopOptions options;
  options.fs.on_loop = false;  // through the ring
  options.fs.keep_ring = keep;
  return options;
}

AsyncFsCounts Minus(const AsyncFsCounts& a, const AsyncFsCounts& b) {
  AsyncFsCounts d;
  d.on_loop = a.on_loop - b.on_loop;
  d.io_uring = a.io_uring - b.io_uring;
  d.workers = a.workers - b.workers;
  d.rings_set_up = a.rings_set_up - b.rings_set_up;
  d.rings_reused = a.rings_reused - b.rings_reused;
  return d;
}

// One loop (after WaitForRing when `wait`) making an O_PATH open of "f",
// then, once the open succeeded, calling `then` from its task: the open's
// status, and what the counters moved by.
struct LoopResult {
  absl::Status status;
  AsyncFsCounts moved;
};

LoopResult OneOpen(
    const Dir& dir, bool keep, bool wait = true,
    absl::FunctionRef<void()> then = [] {}) {
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        absl::Status opened = (co_await OpenAt(dir, "f", O_PATH)).status();
        if (opened.ok()) then();
        co_return opened;
      }(),
      RingOptions(keep), wait);
  return {s, Minus(AsyncFsCountsNow(), before)};
}

// A first keep_ring loop whose ring the thread keeps: the ring set up is of
// the first size only when the user's locked memory allows it (a smaller
// one is not kept), which parallel test processes may prevent for a while.
// Tries again for up to 20 s. The kept ring's descriptor, or -1.
int KeepARing(const Dir& dir) {
  for (int i = 0; i < 200; ++i) {
    const std::set<int> before = RingFds();
    LoopResult r = OneOpen(dir, /*keep=*/true);
    if (!r.status.ok()) return -1;
    const std::set<int> after = RingFds();
    for (int fd : after) {
      if (!before.count(fd)) return fd;
    }
    if (after.size() == before.size() && r.moved.rings_reused == 1) {
      return -1;  // took a ring kept before: not a first loop
    }
    usleep(100'000);
  }
  return -1;
}

class RingKeepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IoUringUsable()) GTEST_SKIP() << "io_uring is not usable";
    Fd f(open(temp_.Join("f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(f.valid());
    absl::StatusOr<Dir> dir = Dir::Open(temp_.path());
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    strays_ = internal::UringRing::StrayCompletions();
  }

  // No loop reaped a completion an earlier loop on its ring left behind.
  void TearDown() override {
    EXPECT_EQ(internal::UringRing::StrayCompletions(), strays_);
  }

  const Dir& dir() const { return *dir_; }
  const capfs_test::TempDir& temp() const { return temp_; }

 private:
  capfs_test::TempDir temp_;
  std::optional<Dir> dir_;
  uint64_t strays_ = 0;
};

// Two loops in turn on one thread: what the second gets, and whether the
// thread keeps a ring after it.
struct SequenceCase {
  const char* name;
  bool release_between;  // ReleaseThreadRing() after the first loop
  bool second_keeps;     // the second loop's keep_ring
  bool second_reuses;    // it starts with the first loop's ring
  bool kept_after;       // a ring is kept once the second loop ends
};

constexpr SequenceCase kSequenceCases[] = {
    {"kept_ring_serves_the_next_loop", false, true, true, true},
    {"a_loop_without_keep_ring_takes_it_and_closes_it", false, false, true,
     false},
    {"a_released_ring_is_set_up_anew", true, true, false, true},
    {"a_released_ring_then_a_loop_that_keeps_nothing", true, false, false,
     false},
};

class RingKeepSequenceTest
    : public RingKeepTest,
      public ::testing::WithParamInterface<SequenceCase> {};

TEST_P(RingKeepSequenceTest, TheSecondLoopGetsWhatTheFirstLeft) {
  const SequenceCase c = GetParam();
  const std::set<int> at_start = RingFds();
  OnNewThread([&] {
    const int kept = KeepARing(dir());
    ASSERT_GE(kept, 0) << "no ring of the first size was kept";
    if (c.release_between) {
      ReleaseThreadRing();
      EXPECT_EQ(RingFds(), at_start) << "ReleaseThreadRing closed nothing";
    }
    LoopResult second = OneOpen(dir(), c.second_keeps);
    ASSERT_TRUE(second.status.ok()) << second.status;
    EXPECT_EQ(second.moved.io_uring, 1u);
    EXPECT_EQ(second.moved.rings_reused, c.second_reuses ? 1u : 0u);
    if (c.second_reuses) {
      EXPECT_EQ(second.moved.rings_set_up, 0u);
    }
    const std::set<int> after = RingFds();
    if (c.kept_after) {
      // One more ring than at the start (a new one after a release, when
      // memory allowed the first size; else none).
      EXPECT_LE(after.size(), at_start.size() + 1);
      if (c.second_reuses) {
        EXPECT_TRUE(after.count(kept));
      }
    } else {
      EXPECT_EQ(after, at_start);
    }
  });
  EXPECT_EQ(RingFds(), at_start) << "the thread's exit left a ring open";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RingKeepSequenceTest, ::testing::ValuesIn(kSequenceCases),
    [](const ::testing::TestParamInfo<SequenceCase>& info) {
      return std::string(info.param.name);
    });

// A loop without keep_ring, on a thread that kept nothing, closes its ring.
TEST_F(RingKeepTest, ALoopKeepsNothingByDefault) {
  const std::set<int> at_start = RingFds();
  OnNewThread([&] {
    LoopResult r = OneOpen(dir(), /*keep=*/false);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.moved.io_uring, 1u);
    EXPECT_EQ(r.moved.rings_reused, 0u);
    EXPECT_EQ(r.moved.rings_set_up, 1u);
    EXPECT_EQ(RingFds(), at_start);
  });
}

// A loop that ends with a call cancelled in the kernel (its cancellation
// request's completion still to come), its wakeup poll in flight, and an
// open that the next loop then makes through the same ring: kept, and
// serving, with no completion of the first loop's reaching the second.
TEST_F(RingKeepTest, ARingKeptAfterACancellationInTheKernelServesTheNext) {
  const std::string fifo = temp().Join("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  OnNewThread([&] {
    const int kept = KeepARing(dir());
    ASSERT_GE(kept, 0) << "no ring of the first size was kept";
    // Should the cancellation not reach the open, a writer ends it: the
    // test then fails instead of hanging.
    testing::Watchdog watchdog(absl::Seconds(20), [&] {
      int fd = testing::OpenFifoWriter(fifo);  // the open may never come
      if (fd >= 0) close(fd);
    });
    absl::StatusOr<Fd> opened = absl::UnknownError("not run");
    const AsyncFsCounts before = AsyncFsCountsNow();
    absl::Status s = ::capfs::runtime::Run(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            internal::Fiber* fiber = nullptr;
            scope.Spawn([&]() -> Task<absl::Status> {
              fiber = co_await internal::CurrentFiber();
              opened = co_await OpenAt(dir(), "fifo", O_RDONLY);
              co_return absl::OkStatus();
            });
            if (absl::Status y =
                    co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                        &fiber);
                !y.ok()) {
              co_return y;
            }
            // The loop sleeps in the ring meanwhile: its wakeup poll is in
            // flight from then on.
            if (absl::Status z = co_await Sleep(absl::Milliseconds(1));
                !z.ok()) {
              co_return z;
            }
            scope.Cancel();
            co_return co_await scope.Join();
          });
        }(),
        RingOptions(/*keep=*/true));
    watchdog.Disarm();
    EXPECT_FALSE(watchdog.fired()) << "the cancellation did not reach the open";
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
    EXPECT_TRUE(absl::IsCancelled(opened.status())) << opened.status();
    EXPECT_EQ(Minus(AsyncFsCountsNow(), before).rings_reused, 1u);
    EXPECT_TRUE(RingFds().count(kept)) << "the ring was not kept";
    LoopResult next = OneOpen(dir(), /*keep=*/false, /*wait=*/false);
    ASSERT_TRUE(next.status.ok()) << next.status;
    EXPECT_EQ(next.moved.rings_reused, 1u);
    EXPECT_EQ(next.moved.io_uring, 1u);
  });
}

// A loop that ends with closes prepared and not handed over yet (the O_PATH
// descriptors its last Stats opened on the loop, closed through the ring
// with the turn's submissions): its end hands them over and reaps their
// completions before the ring is kept, so that none reaches the next loop.
TEST_F(RingKeepTest, ClosesPreparedAtALoopsEndAreReapedBeforeItsRingIsKept) {
  ASSERT_EQ(mkdir(temp().Join("sub").c_str(), 0700), 0);
  {
    Fd g(open(temp().Join("sub/g").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC,
              0600));
    ASSERT_TRUE(g.valid());
  }
  OnNewThread([&] {
    const int kept = KeepARing(dir());
    ASSERT_GE(kept, 0) << "no ring of the first size was kept";
    LoopOptions options;  // on the loop, closing through the ring
    options.fs.keep_ring = true;
    for (int round = 0; round < 2; ++round) {
      const AsyncFsCounts before = AsyncFsCountsNow();
      absl::Status s = ::capfs::runtime::Run(
          [&]() -> Task<absl::Status> {
            for (int i = 0; i < 10; ++i) {
              absl::StatusOr<FileStat> st = co_await Stat(dir(), "sub/g");
              if (!st.ok()) co_return st.status();
            }
            co_return absl::OkStatus();
          }(),
          options);
      ASSERT_TRUE(s.ok()) << s;
      const AsyncFsCounts moved = Minus(AsyncFsCountsNow(), before);
      EXPECT_EQ(moved.on_loop, 10u);
      EXPECT_EQ(moved.rings_reused, 1u) << "round " << round;
      EXPECT_TRUE(RingFds().count(kept)) << "round " << round;
    }
  });
}

// When a test does what it does to the kept ring: between loops, or from
// the task of a keep_ring loop that took the ring (after its open through
// it).
struct WhenCase {
  const char* name;
  bool in_loop;
};

constexpr WhenCase kWhenCases[] = {
    {"between_loops", false},
    {"while_a_loop_runs", true},
};

std::string WhenCaseName(const ::testing::TestParamInfo<WhenCase>& info) {
  return info.param.name;
}

// The kept ring's descriptor closed behind capfs's back and its number
// reused (dup3 of /dev/null onto it), between loops or while a loop that
// took the ring runs: the ring is let go without closing that number, which
// still names /dev/null afterwards, and the next loop sets up its own.
class RingKeepLostTest : public RingKeepTest,
                         public ::testing::WithParamInterface<WhenCase> {};

// What descriptor `fd` names now ("" when it is closed).
std::string FdTarget(int fd) {
  char target[64] = {};
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  if (readlink(link.c_str(), target, sizeof(target) - 1) < 0) return "";
  return target;
}

TEST_P(RingKeepLostTest, ARingWhoseNumberWasReusedIsLetGoUnclosed) {
  const WhenCase c = GetParam();
  OnNewThread([&] {
    const int kept = KeepARing(dir());
    ASSERT_GE(kept, 0) << "no ring of the first size was kept";
    Fd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(devnull.valid());
    if (!c.in_loop) {
      ASSERT_EQ(dup3(devnull.get(), kept, O_CLOEXEC), kept);
    } else {
      int duped = -1;
      LoopResult r = OneOpen(dir(), /*keep=*/true, /*wait=*/false, [&] {
        duped = dup3(devnull.get(), kept, O_CLOEXEC);
      });
      ASSERT_TRUE(r.status.ok()) << r.status;
      ASSERT_EQ(duped, kept);
      EXPECT_EQ(r.moved.rings_reused, 1u);
      EXPECT_EQ(FdTarget(kept), "/dev/null") << "the loop's end closed it";
    }
    LoopResult next = OneOpen(dir(), /*keep=*/false, /*wait=*/false);
    EXPECT_TRUE(next.status.ok()) << next.status;
    EXPECT_EQ(next.moved.rings_reused, 0u);
    EXPECT_EQ(FdTarget(kept), "/dev/null") << "capfs closed a number not its";
    Fd reused(kept);  // the test's own: closed here
  });
}

INSTANTIATE_TEST_SUITE_P(Cases, RingKeepLostTest,
                         ::testing::ValuesIn(kWhenCases), WhenCaseName);

// A Loop kept in a thread_local that was set before the thread's kept-ring
// slot was first used is destroyed after that slot, at the thread's exit:
// its ring, which it would keep, is closed instead.
thread_local std::unique_ptr<Loop> t_loop_outliving_the_slot;

TEST_F(RingKeepTest, ALoopDestroyedAfterItsThreadsSlotClosesItsRing) {
  const std::set<int> at_start = RingFds();
  absl::Status status = absl::UnknownError("not run");
  OnNewThread([&] {
    absl::StatusOr<std::unique_ptr<Loop>> loop =
        Loop::Create(RingOptions(/*keep=*/true));
    ASSERT_TRUE(loop.ok()) << loop.status();
    t_loop_outliving_the_slot = *std::move(loop);  // before the slot
    status = t_loop_outliving_the_slot->Run([&]() -> Task<absl::Status> {
      if (absl::Status w = co_await testing::WaitForRing(); !w.ok()) {
        co_return w;
      }
      co_return (co_await OpenAt(dir(), "f", O_PATH)).status();
    }());
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(RingFds(), at_start) << "the ring outlived its thread";
}

// A child forked after its parent's thread kept a ring sets up its own, and
// never closes the descriptor it inherited (the number is the child's to
// reuse); the parent's next loop then gets its ring, undisturbed.
TEST_F(RingKeepTest, AForkedChildNeverUsesItsParentsRing) {
  OnNewThread([&] {
    const int kept = KeepARing(dir());
    ASSERT_GE(kept, 0) << "no ring of the first size was kept";
    absl::StatusOr<std::string> report = capfs_test::RunInChild({}, [&] {
      LoopResult r = OneOpen(dir(), /*keep=*/true);
      if (!r.status.ok()) return r.status.ToString();
      if (r.moved.rings_reused != 0 || r.moved.rings_set_up != 1 ||
          r.moved.io_uring != 1) {
        return absl::StrCat("the child's loop: rings reused ",
                            r.moved.rings_reused, ", set up ",
                            r.moved.rings_set_up, ", calls through a ring ",
                            r.moved.io_uring);
      }
      if (!RingFds().count(kept)) {
        return std::string("the child closed the descriptor it inherited");
      }
      ReleaseThreadRing();
      return std::string();
    });
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(*report, "");
    LoopResult next = OneOpen(dir(), /*keep=*/true);
    ASSERT_TRUE(next.status.ok()) << next.status;
    EXPECT_EQ(next.moved.rings_reused, 1u);
    EXPECT_EQ(next.moved.io_uring, 1u);
  });
}

// Refuses io_uring_enter and io_uring_setup (EPERM) in this process from
// now on. "" or what failed.
std::string ForbidIoUring() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return "seccomp_init failed";
  int r =
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), 0);
  if (r == 0) {
    r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup),
                         0);
  }
  if (r == 0) r = seccomp_load(ctx);
  seccomp_release(ctx);
  return r == 0 ? "" : absl::StrCat("seccomp filter: ", strerror(-r));
}

// A seccomp filter that refuses io_uring_enter (and io_uring_setup),
// installed after the thread kept its ring, or while a keep_ring loop that
// took it still runs: that loop ends without keeping it (and without
// failing on its last submissions), and the next loop lets the ring go and
// serves its call on its workers rather than failing on its first
// submission. In a child: a filter cannot be removed.
class RingKeepSeccompTest : public RingKeepTest,
                            public ::testing::WithParamInterface<WhenCase> {};

TEST_P(RingKeepSeccompTest, ARingAFilterForbadeSinceIsLetGo) {
  const WhenCase c = GetParam();
  absl::StatusOr<std::string> report = capfs_test::RunInChild({}, [&] {
    const int kept = KeepARing(dir());
    if (kept < 0) return std::string("no ring of the first size was kept");
    if (!c.in_loop) {
      if (std::string e = ForbidIoUring(); !e.empty()) return e;
    } else {
      std::string failure = "the filter was not installed";
      LoopResult r = OneOpen(dir(), /*keep=*/true, /*wait=*/false,
                             [&] { failure = ForbidIoUring(); });
      if (!r.status.ok()) return r.status.ToString();
      if (!failure.empty()) return failure;
      const AsyncFsCounts& moved = r.moved;
      if (moved.rings_reused != 1 || moved.io_uring != 1) {
        return absl::StrCat(
            "the loop that installed the filter: rings "
            "reused ",
            moved.rings_reused, ", calls through a ring ", moved.io_uring);
      }
      // Its end, which could not hand the ring its last submissions,
      // closed it rather than keep it.
      if (RingFds().count(kept)) {
        return std::string("the forbidden ring outlived its loop");
      }
    }
    LoopResult next = OneOpen(dir(), /*keep=*/true, /*wait=*/false);
    if (!next.status.ok()) return next.status.ToString();
    if (next.moved.workers != 1 || next.moved.io_uring != 0 ||
        next.moved.rings_reused != 0) {
      return absl::StrCat("served by the workers ", next.moved.workers,
                          ", by a ring ", next.moved.io_uring,
                          "; rings reused ", next.moved.rings_reused);
    }
    if (RingFds().count(kept)) {
      return std::string("the forbidden ring is still open");
    }
    return std::string();
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
}

INSTANTIATE_TEST_SUITE_P(Cases, RingKeepSeccompTest,
                         ::testing::ValuesIn(kWhenCases), WhenCaseName);

}  // namespace
}  // namespace runtime
}  // namespace capfs

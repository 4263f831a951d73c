// Timers: firing order, cancellation, WithTimeout; and the heap underneath.

#include "capfs/runtime/timer.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/runtime/internal/timer_heap.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class TimerTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(TimerTest);

TEST_P(TimerTest, FireInDeadlineOrderWhateverTheArmingOrder) {
  const std::vector<int> delays_ms = {30, 10, 50, 20, 40, 0};
  std::vector<int> fired;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    // Deadlines from one base: the tasks arm their timers at slightly
    // different times, and a stall between two of them must not reorder.
    const absl::Duration base = MonotonicNow();
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int ms : delays_ms) {
        scope.Spawn([&, ms]() -> Task<absl::Status> {
          absl::Status w = co_await SleepUntil(base + absl::Milliseconds(ms));
          fired.push_back(ms);
          co_return w;
        });
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(fired, (std::vector<int>{0, 10, 20, 30, 40, 50}));
}

TEST_P(TimerTest, EqualDeadlinesFireInArmingOrder) {
  std::vector<int> fired;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    absl::Duration deadline = MonotonicNow() + absl::Milliseconds(5);
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int i = 0; i < 8; ++i) {
        scope.Spawn([&, i]() -> Task<absl::Status> {
          absl::Status w = co_await SleepUntil(deadline);
          fired.push_back(i);
          co_return w;
        });
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(fired, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST_P(TimerTest, SleepEndsNoEarlierThanItsDeadline) {
  absl::Duration woke, deadline;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    deadline = MonotonicNow() + absl::Milliseconds(20);
    absl::Status w = co_await SleepUntil(deadline);
    woke = MonotonicNow();
    co_return w;
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GE(woke, deadline);
}

TEST_P(TimerTest, WithTimeoutCutsALongSleepShort) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithTimeout(absl::Milliseconds(10),
                                   Sleep(absl::Seconds(10)));
  });
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
}

TEST_P(TimerTest, WithTimeoutPassesAFastResultThrough) {
  absl::StatusOr<int> r = RunMain([&]() -> Task<absl::StatusOr<int>> {
    co_return co_await WithTimeout(
        absl::Seconds(10), []() -> Task<absl::StatusOr<int>> {
          if (absl::Status w = co_await Sleep(absl::Milliseconds(1)); !w.ok()) {
            co_return w;
          }
          co_return 42;
        }());
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 42);
}

// After WithTimeout returns, its timer is gone and the task's context is the
// outer one again: a later long wait is not cut short by it.
TEST_P(TimerTest, WithTimeoutLeavesNoTimerBehind) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    absl::Status fast = co_await WithTimeout(absl::Milliseconds(20),
                                             Sleep(absl::Milliseconds(1)));
    if (!fast.ok()) co_return fast;
    co_return co_await Sleep(absl::Milliseconds(40));
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(TimerTest, NestedTimeoutsReportTheOneThatFired) {
  absl::Status inner_result;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithTimeout(
        absl::Milliseconds(10), [&]() -> Task<absl::Status> {
          inner_result =
              co_await WithTimeout(absl::Seconds(30), Sleep(absl::Seconds(60)));
          co_return inner_result;
        }());
  });
  // The outer deadline fired: the inner WithTimeout sees plain cancellation
  // (its own deadline did not pass) and the outer one turns it into
  // kDeadlineExceeded.
  EXPECT_TRUE(absl::IsCancelled(inner_result)) << inner_result;
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
}

// Durations too long for the clock (infinite ones above all) must neither
// wrap around into the past nor arm a timer: a sleep that long ends only by
// cancellation, and a timeout that long never fires.
struct LongDurationCase {
  std::string name;
  absl::Duration timeout;  // WithTimeout's
  bool until;              // SleepUntil(MonotonicNow() + sleep), else Sleep
  absl::Duration sleep;
  absl::StatusCode expected;
};

void PrintTo(const LongDurationCase& c, std::ostream* os) { *os << c.name; }

class LongDurationTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, LongDurationCase>> {
};

TEST_P(LongDurationTest, NeitherWrapsNorFiresEarly) {
  const IoBackend backend = std::get<0>(GetParam());
  const auto& c = std::get<1>(GetParam());
  LoopOptions options;
  options.backend = backend;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        if (c.until) {
          co_return co_await WithTimeout(c.timeout,
                                         SleepUntil(MonotonicNow() + c.sleep));
        }
        co_return co_await WithTimeout(c.timeout, Sleep(c.sleep));
      }(),
      options);
  EXPECT_EQ(s.code(), c.expected) << s;
}

std::vector<LongDurationCase> LongDurationCases() {
  const absl::Duration inf = absl::InfiniteDuration();
  const absl::Duration huge = absl::Hours(1e8);  // more ns than int64 holds
  const auto ok = absl::StatusCode::kOk;
  const auto late = absl::StatusCode::kDeadlineExceeded;
  return {
      {"InfiniteSleep", absl::Milliseconds(20), false, inf, late},
      {"HugeSleep", absl::Milliseconds(20), false, huge, late},
      {"SleepUntilInfiniteFuture", absl::Milliseconds(20), true, inf, late},
      {"InfiniteTimeout", inf, false, absl::Milliseconds(1), ok},
      {"HugeTimeout", huge, false, absl::Milliseconds(1), ok},
      {"MinusInfiniteSleep", absl::Seconds(30), false, -inf, ok},
      {"MinusInfiniteTimeout", -inf, false, absl::Hours(1), late},
  };
}

INSTANTIATE_TEST_SUITE_P(
    Backends, LongDurationTest,
    ::testing::Combine(::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
                       ::testing::ValuesIn(LongDurationCases())),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// The heap against a multiset model, through a random mix of arming,
// cancelling and popping.
class ModelTimer : public internal::TimerNode {
 public:
  void OnTimerFired() noexcept override {}
  int64_t deadline = 0;
};

TEST(TimerHeapTest, MatchesAnOrderedModelUnderRandomArmAndCancel) {
  internal::TimerHeap heap;
  std::vector<ModelTimer> timers(5000);
  std::set<std::pair<int64_t, ModelTimer*>> model;  // ties: any order here
  std::mt19937 rng(1234);
  int64_t now = 0;
  for (int step = 0; step < 200000; ++step) {
    ModelTimer& t = timers[rng() % timers.size()];
    switch (rng() % 3) {
      case 0:
        if (!t.armed()) {
          t.deadline = now + static_cast<int64_t>(rng() % 1000);
          heap.Add(&t, t.deadline);
          model.insert({t.deadline, &t});
        }
        break;
      case 1:
        if (t.armed()) {
          heap.Remove(&t);
          model.erase({t.deadline, &t});
        }
        break;
      case 2:
        now += rng() % 20;
        while (internal::TimerNode* node = heap.PopDue(now)) {
          auto* popped = static_cast<ModelTimer*>(node);
          ASSERT_FALSE(model.empty());
          ASSERT_EQ(popped->deadline, model.begin()->first);
          ASSERT_TRUE(model.erase({popped->deadline, popped}));
        }
        ASSERT_TRUE(model.empty() || model.begin()->first > now);
        break;
    }
    ASSERT_EQ(heap.size(), model.size());
  }
  for (ModelTimer& t : timers) {
    if (t.armed()) heap.Remove(&t);
  }
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeapTest, AMillionArmedAndCancelledLeaveItEmpty) {
  internal::TimerHeap heap;
  std::vector<ModelTimer> timers(1000000);
  std::mt19937 rng(99);
  for (ModelTimer& t : timers) heap.Add(&t, rng() % 1000000);
  EXPECT_EQ(heap.size(), timers.size());
  std::vector<ModelTimer*> order;
  for (ModelTimer& t : timers) order.push_back(&t);
  std::shuffle(order.begin(), order.end(), rng);  // cancel in random order
  for (ModelTimer* t : order) heap.Remove(t);
  EXPECT_TRUE(heap.empty());
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// Timers on the monotonic clock: Sleep, SleepUntil and WithTimeout.
//
//   co_await Sleep(absl::Milliseconds(50));            // OK, or kCancelled
//   absl::StatusOr<size_t> n =
//       co_await WithTimeout(absl::Seconds(5), Read(fd, buf));
//   if (absl::IsDeadlineExceeded(n.status())) ...
//
// A sleeping task costs a heap slot and nothing else (the timer lives in the
// task's frame); cancelling it removes the slot at once. Timers with the
// same deadline fire in the order they were armed. Wall-clock changes do not
// move them. Durations saturate: a deadline past what the clock can count
// (absl::InfiniteDuration(), or hundreds of years) is "never", and arms no
// timer at all; so Sleep(absl::InfiniteDuration()) ends only by
// cancellation and WithTimeout(absl::InfiniteDuration(), x) only waits for x.

#ifndef CAPFS_RUNTIME_TIMER_H_
#define CAPFS_RUNTIME_TIMER_H_

#include <stdint.h>

#include <coroutine>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/timer_heap.h"
#include "capfs/runtime/task.h"
#include "capfs/sys/io.h"

namespace capfs {
namespace runtime {
namespace internal {

// A deadline that never comes: no timer is armed for it.
inline constexpr int64_t kNoDeadline = INT64_MAX;

// `deadline` (since the monotonic clock's zero) in nanoseconds, saturating:
// kNoDeadline when it is infinite or too far to count.
int64_t DeadlineAt(absl::Duration deadline);
// MonotonicNowNs() + `duration`, saturating the same way.
int64_t DeadlineAfter(absl::Duration duration);

class SleepAwaiter final : public Waiter, public TimerNode {
 public:
  explicit SleepAwaiter(int64_t deadline_ns) : deadline_ns_(deadline_ns) {}

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    Fiber* fiber = self.promise().fiber();
    if (!BeginWait(this, fiber, self)) {
      cancelled_ = true;
      return false;
    }
    if (deadline_ns_ != kNoDeadline) {
      fiber->scheduler()->timers().Add(this, deadline_ns_);
    }
    return true;
  }
  absl::Status await_resume() noexcept {
    return cancelled_ ? absl::CancelledError("sleep") : absl::OkStatus();
  }

 private:
  void OnTimerFired() noexcept override { EndWait(this); }
  void OnCancel() noexcept override {
    if (armed()) fiber()->scheduler()->timers().Remove(this);
    cancelled_ = true;
    EndWait(this);
  }

  int64_t deadline_ns_;
  bool cancelled_ = false;
};

// Runs what WithTimeout guards in a context of its own, cancelled when the
// deadline passes.
class TimeoutGuard final : public TimerNode {
 public:
  TimeoutGuard(Fiber* fiber, absl::Duration timeout);
  TimeoutGuard(const TimeoutGuard&) = delete;
  TimeoutGuard& operator=(const TimeoutGuard&) = delete;
  ~TimeoutGuard();

  // The deadline passed before the guard ended, while the enclosing context
  // was not cancelled: the timeout, not the enclosing context, cancelled
  // what was guarded. (What that cancellation leads to may cancel the
  // enclosing context afterwards: a join cancels its scope.)
  bool timed_out() const { return timed_out_; }

 private:
  void OnTimerFired() noexcept override;

  Fiber* fiber_;
  CancelContext* outer_;
  CancelContext context_;
  bool timed_out_ = false;
};

// What `co_await` on an A gives.
template <typename A>
struct AwaitResult {
  using type = decltype(std::declval<A&>().await_resume());
};
template <typename T>
struct AwaitResult<Task<T>> {
  using type = T;
};

}  // namespace internal

// The monotonic clock: time since an arbitrary fixed point (boot).
inline absl::Duration MonotonicNow() {
  return absl::Nanoseconds(internal::MonotonicNowNs());
}

// Suspends the task until `deadline` on the monotonic clock (MonotonicNow)
// has passed. OK, or kCancelled as soon as the task is cancelled.
inline internal::SleepAwaiter SleepUntil(absl::Duration deadline) {
  return internal::SleepAwaiter(internal::DeadlineAt(deadline));
}

// Suspends the task for `duration` (at least one loop turn, even if it is
// zero or negative). OK, or kCancelled as soon as the task is cancelled.
inline internal::SleepAwaiter Sleep(absl::Duration duration) {
  return internal::SleepAwaiter(internal::DeadlineAfter(duration));
}

// Awaits `awaitable` (a Task<R> or any runtime awaitable whose result R is
// an absl::Status or absl::StatusOr) for at most `timeout`. When the time is
// up, everything it waits on is cancelled (around a Scope::Join, the whole
// scope is: see scope.h); once it has returned, a
// kCancelled result caused by the timeout becomes kDeadlineExceeded. Any
// other result, including one that finished despite the cancellation, is
// returned as it is.
template <typename Awaitable>
Task<typename internal::AwaitResult<Awaitable>::type> WithTimeout(
    absl::Duration timeout, Awaitable awaitable) {
  using R = typename internal::AwaitResult<Awaitable>::type;
  static_assert(internal::StatusLike<R>,
                "WithTimeout needs an absl::Status or absl::StatusOr result");
  internal::Fiber* fiber = co_await internal::CurrentFiber();
  std::optional<R> result;
  bool timed_out;
  {
    internal::TimeoutGuard guard(fiber, timeout);
    result.emplace(co_await std::move(awaitable));
    timed_out = guard.timed_out();
  }
  if (timed_out && absl::IsCancelled(internal::StatusOf(*result))) {
    co_return R(absl::DeadlineExceededError(
        absl::StrCat("timed out after ", absl::FormatDuration(timeout))));
  }
  co_return std::move(*result);
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_TIMER_H_

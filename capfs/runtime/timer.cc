#include "capfs/runtime/timer.h"

namespace capfs {
namespace runtime {
namespace internal {

int64_t DeadlineAt(absl::Duration deadline) {
  // ToInt64Nanoseconds saturates at the int64 range, infinities included.
  return absl::ToInt64Nanoseconds(deadline);
}

int64_t DeadlineAfter(absl::Duration duration) {
  int64_t now = MonotonicNowNs();  // never negative
  int64_t ns = absl::ToInt64Nanoseconds(duration);
  if (ns >= kNoDeadline - now) return kNoDeadline;
  return now + ns;  // a negative `ns` cannot overflow: `now` is >= 0
}

TimeoutGuard::TimeoutGuard(Fiber* fiber, absl::Duration timeout)
    : fiber_(fiber), outer_(fiber->context()), context_(outer_) {
  fiber_->SwitchContext(&context_);
  int64_t deadline = DeadlineAfter(timeout);
  if (deadline != kNoDeadline)
    fiber_->scheduler()->timers().Add(this, deadline);
}

TimeoutGuard::~TimeoutGuard() {
  if (armed()) fiber_->scheduler()->timers().Remove(this);
  fiber_->SwitchContext(outer_);
}

void TimeoutGuard::OnTimerFired() noexcept {
  timed_out_ = !outer_->cancelled();
  context_.Cancel();
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

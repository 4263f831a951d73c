#include "capfs/runtime/timer.h"

namespace capfs {
namespace runtime {
namespace internal {

TimeoutGuard::TimeoutGuard(Fiber* fiber, absl::Duration timeout)
    : fiber_(fiber), outer_(fiber->context()), context_(outer_) {
  fiber_->SwitchContext(&context_);
  fiber_->scheduler()->timers().Add(
      this, MonotonicNowNs() + absl::ToInt64Nanoseconds(timeout));
}

TimeoutGuard::~TimeoutGuard() {
  if (armed()) fiber_->scheduler()->timers().Remove(this);
  fiber_->SwitchContext(outer_);
}

void TimeoutGuard::OnTimerFired() noexcept {
  fired_ = true;
  context_.Cancel();
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#include "capfs/runtime/internal/blocking_job.h"

namespace capfs {
namespace runtime {
namespace internal {

bool BlockingJob::Start(Fiber* fiber, std::coroutine_handle<> self) {
  if (fiber->cancelled()) {
    outcome_ = Outcome::kCancelled;
    return false;
  }
  scheduler_ = fiber->scheduler();
  if (!scheduler_->workers().Submit(this)) {
    outcome_ = Outcome::kNoThread;
    return false;
  }
  // The job may already run on a worker, but its completion reaches this
  // thread only through the loop, after the task has suspended.
  BeginWait(this, fiber, self);  // cannot fail: the fiber is not cancelled
  return true;
}

bool BlockingJob::WithdrawForClose() {
  if (!scheduler_->workers().Withdraw(this)) return false;
  outcome_ = Outcome::kClosed;
  Settled();
  EndWait(this);
  return true;
}

void BlockingJob::Complete() noexcept {
  if (outcome_ == Outcome::kPending) {
    outcome_ =
        cancelled_while_running_ ? Outcome::kRanCancelled : Outcome::kRan;
  }
  Settled();
  EndWait(this);
}

void BlockingJob::OnCancel() noexcept {
  if (scheduler_->workers().Withdraw(this)) {
    outcome_ = Outcome::kCancelled;
    Settled();
    EndWait(this);
    return;
  }
  // It has started: Complete ends the wait when it is done.
  cancelled_while_running_ = true;
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

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
  if (outcome_ == Outcome::kPending) outcome_ = Outcome::kRan;
  Settled();
  EndWait(this);
}

void BlockingJob::OnCancel() noexcept {
  outcome_ = Outcome::kCancelled;
  if (scheduler_->workers().Withdraw(this)) {
    Settled();
    EndWait(this);
  }
  // Otherwise it has started: Complete ends the wait when it is done, and
  // the result is dropped.
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#include "capfs/runtime/event.h"

namespace capfs {
namespace runtime {
namespace internal {

bool EventAwaiter::await_ready() noexcept { return event_->set_; }

bool EventAwaiter::Suspend(Fiber* fiber, std::coroutine_handle<> self) {
  if (!BeginWait(this, fiber, self)) {
    cancelled_ = true;
    return false;
  }
  event_->waiters_.PushBack(this);
  return true;
}

void EventAwaiter::OnCancel() noexcept {
  event_->waiters_.Remove(this);
  cancelled_ = true;
  EndWait(this);
}

}  // namespace internal

void Event::Set() {
  set_ = true;
  while (internal::EventAwaiter* waiter = waiters_.PopFront()) {
    internal::EndWait(waiter);
  }
}

}  // namespace runtime
}  // namespace capfs

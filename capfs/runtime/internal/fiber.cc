#include "capfs/runtime/internal/fiber.h"

#include <cassert>

namespace capfs {
namespace runtime {
namespace internal {

void OnFiberRootDone(Fiber* fiber) noexcept { fiber->OnRootDone(); }

CancelContext::CancelContext(CancelContext* parent) : parent_(parent) {
  if (parent_ != nullptr) {
    parent_->children_.PushBack(this);
    cancelled_ = parent_->cancelled_;
  }
}

CancelContext::~CancelContext() {
  assert(fibers_.empty() && children_.empty());
  if (parent_ != nullptr) parent_->children_.Remove(this);
}

void CancelContext::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  // OnCancel only unregisters and queues, so neither list changes under us.
  fibers_.ForEach([](Fiber* fiber) {
    if (fiber->waiting_ != nullptr) fiber->waiting_->OnCancel();
  });
  children_.ForEach([](CancelContext* child) { child->Cancel(); });
}

Fiber::Fiber(Scheduler* scheduler, CancelContext* context)
    : scheduler_(scheduler), context_(context) {
  context_->fibers_.PushBack(this);
}

Fiber::~Fiber() {
  assert(waiting_ == nullptr);
  context_->fibers_.Remove(this);
}

void Fiber::SwitchContext(CancelContext* context) {
  context_->fibers_.Remove(this);
  context_ = context;
  context_->fibers_.PushBack(this);
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

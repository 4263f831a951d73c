#include "capfs/runtime/scope.h"

#include <cassert>

namespace capfs {
namespace runtime {
namespace internal {

ChildFiber::ChildFiber(Scope* scope, Task<absl::Status> task)
    : TaskFiber<absl::Status>(scope->scheduler_, &scope->context_,
                              std::move(task)),
      scope_(scope) {}

void ChildFiber::OnRootDone() noexcept { scope_->OnChildDone(this); }

bool JoinAwaiter::Suspend(Fiber* fiber, std::coroutine_handle<> self) {
  if (fiber != scope_->body_) {
    // A task spawned in the scope would wait for itself; any other task
    // breaks the contract. Either way, say so rather than hang.
    not_the_body_ = true;
    return false;
  }
  if (scope_->children_.empty()) return false;
  assert(scope_->joiner_ == nullptr && "the body joins once at a time");
  BeginShieldedWait(this, fiber, self);
  scope_->joiner_ = this;
  // Awaited already cancelled (a WithTimeout whose time was up before the
  // join began): no OnCancel will come, so act on it now.
  if (fiber->cancelled()) OnCancel();
  return true;
}

void JoinAwaiter::OnCancel() noexcept {
  // When the scope's own context was cancelled, its tasks already were;
  // the join's fiber is in a context below it (a timeout) otherwise.
  if (!scope_->cancelled()) scope_->CancelFromJoin();
}

absl::Status JoinAwaiter::await_resume() noexcept {
  if (not_the_body_) {
    return absl::FailedPreconditionError(
        "Scope::Join awaited by a task other than the scope's body (a task "
        "spawned in the scope would wait for itself)");
  }
  return scope_->first_error_;
}

ScopeRunner::ScopeRunner(Fiber* body)
    : body_(body), outer_(body->context()), scope_(body) {
  body_->SwitchContext(&scope_.context_);
}

absl::Status ScopeRunner::Finish() {
  assert(scope_.children_.empty());
  body_->SwitchContext(outer_);
  scope_.resources_.ForEach(
      [](FdState* state) { state->Close().IgnoreError(); });
  return scope_.first_error_;
}

}  // namespace internal

Scope::Scope(internal::Fiber* body)
    : scheduler_(body->scheduler()), body_(body), context_(body->context()) {}

Scope::~Scope() { assert(children_.empty() && resources_.empty()); }

void Scope::Spawn(Task<absl::Status> task) {
  Start(new internal::ChildFiber(this, std::move(task)));
}

void Scope::Start(internal::ChildFiber* child) {
  children_.PushBack(child);
  child->Start();
}

void Scope::Cancel() { Record(absl::CancelledError("scope cancelled")); }

void Scope::CancelFromJoin() {
  // Runs inside a cancellation walk (of a context below this scope's):
  // Record only marks and walks, so that is allowed.
  Record(absl::CancelledError("scope join cancelled"));
}

void Scope::Record(const absl::Status& status) {
  if (status.ok()) return;
  if (first_error_.ok()) first_error_ = status;
  context_.Cancel();
}

void Scope::OnChildDone(internal::ChildFiber* child) {
  absl::Status status = child->TakeResult();
  children_.Remove(child);
  // The child's frame is suspended at its end: destroying it here is allowed.
  delete child;
  Record(status);
  if (children_.empty() && joiner_ != nullptr) {
    internal::EndWait(std::exchange(joiner_, nullptr));
  }
}

}  // namespace runtime
}  // namespace capfs

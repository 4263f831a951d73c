// Scope: structured concurrency. A scope owns the tasks started in it and
// the descriptors opened under it, and does not end before all of them have.
//
//   absl::Status s = co_await WithScope([&](Scope& scope) -> Task<absl::Status>
//   {
//     scope.Spawn(Serve(listener));
//     scope.Spawn([&]() -> Task<absl::Status> { co_return co_await Watch(); });
//     co_return absl::OkStatus();
//   });
//
// WithScope(body) runs body(scope) in the calling task's fiber, then waits
// for every task spawned in the scope, then closes every AsyncFd still open
// under it, and returns:
//   - the first error reported by the body or a spawned task, if any;
//   - else the body's own result.
// A non-OK result from the body or any task cancels the whole scope: the body
// and every other task in it get kCancelled at their current or next
// suspension point (fd waits, sleeps, events, worker jobs not started yet,
// yields). Cancelling the task that runs WithScope (from an enclosing scope,
// or a WithTimeout around it) cancels the scope.
// Waiting for the spawned tasks cannot itself be cut short: a scope always
// outlives its tasks, so references they hold into the body stay valid. A
// cancelled join (Scope::Join, or the end of a nested WithScope) passes the
// cancellation on to the tasks it waits for, and waits for them to end.
//
// The body's locals end when the body returns, which may be before its
// tasks do (C++ destroys a coroutine's locals at co_return). A body whose
// tasks use its locals joins them first:
//
//   co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
//     absl::StatusOr<PipeEnds> pipe = Pipe(scope);
//     if (!pipe.ok()) co_return pipe.status();
//     scope.Spawn([&]() -> Task<absl::Status> { ... pipe->read ... });
//     ...
//     co_return co_await scope.Join();   // pipe outlives the task
//   });
//
// State owned by the enclosing task, or captured by value in the callable
// given to Spawn (which lives as long as its task), needs no such join.
//
// Spawned tasks start on a later loop turn, in spawn order. Loop-thread only.

#ifndef CAPFS_RUNTIME_SCOPE_H_
#define CAPFS_RUNTIME_SCOPE_H_

#include <stddef.h>

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "capfs/runtime/internal/fd_state.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/frame_allocator.h"
#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

class Scope;

namespace internal {

class ScopeRunner;

// A task spawned in a scope: its fiber reports to the scope when done.
class ChildFiber : public TaskFiber<absl::Status> {
 public:
  ChildFiber(Scope* scope, Task<absl::Status> task);
  void OnRootDone() noexcept override;

  // A child comes and goes with its task, as often as frames do: from the
  // same per-thread cache (frame_allocator.h), not malloc.
  static void* operator new(size_t size) { return AllocateFrame(size); }
  static void operator delete(void* child, size_t size) noexcept {
    FreeFrame(child, size);
  }

 private:
  Scope* scope_;
};

template <typename Fn>
struct CallableBox {
  Fn fn;
};

// A child made by calling a callable that the fiber keeps alive for as long
// as the task runs, so that a lambda's captures outlive its coroutine.
template <typename Fn>
class CallableChildFiber final : private CallableBox<Fn>, public ChildFiber {
 public:
  CallableChildFiber(Scope* scope, Fn fn)
      : CallableBox<Fn>{std::move(fn)}, ChildFiber(scope, this->fn()) {}
};

// Waits until a scope has no task left; see Scope::Join.
class JoinAwaiter final : public Waiter {
 public:
  explicit JoinAwaiter(Scope* scope) : scope_(scope) {}
  // The awaiting fiber decides (see Suspend): always suspend to find it.
  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Suspend(self.promise().fiber(), self);
  }
  // The scope's first error, or OK; kFailedPrecondition when a task other
  // than the scope's body awaited it.
  absl::Status await_resume() noexcept;

 private:
  // Returns false (do not suspend) when there is nothing to wait for, or
  // when `fiber` is not the scope's body.
  bool Suspend(Fiber* fiber, std::coroutine_handle<> self);
  // The join's own wait was cancelled: cancel the scope, unless that is
  // where the cancellation came from. The join keeps waiting.
  void OnCancel() noexcept override;

  Scope* scope_;
  bool not_the_body_ = false;
};

template <typename T>
struct TaskValue;
template <typename T>
struct TaskValue<Task<T>> {
  using type = T;
};

}  // namespace internal

class Scope {
 public:
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  // Starts `task` in this scope.
  void Spawn(Task<absl::Status> task);

  // Starts the task `fn()` returns, keeping `fn` (and so a lambda's
  // captures) alive until the task is done:
  //   scope.Spawn([&, id]() -> Task<absl::Status> { ... });
  template <typename Fn>
  requires std::same_as<std::invoke_result_t<Fn&>, Task<absl::Status>>
  void Spawn(Fn fn) {
    Start(new internal::CallableChildFiber<Fn>(this, std::move(fn)));
  }

  // From the body only: waits until every task spawned so far has
  // finished, and gives the scope's first error so far (or OK). A non-OK
  // `body_status` is recorded first, as if the body had returned it (so it
  // cancels the tasks rather than waiting on them):
  //   absl::Status s = co_await WriteAll(pipe->write, data);
  //   co_return co_await scope.Join(std::move(s));
  //
  // Cancellation does not cut the wait short, since the tasks may use what
  // the body owns; it is passed on to them, and the join waits for them to
  // end. Cancelling the join itself (a WithTimeout around it whose time is
  // up, or any context the body entered inside the scope) cancels the
  // scope as Cancel() does: the first error becomes kCancelled unless one
  // came before, so the join gives kCancelled (which WithTimeout reports as
  // kDeadlineExceeded) or that earlier error, and so does WithScope.
  // Cancelling the scope itself (from outside, or by a failure in it)
  // records nothing more: the join gives the first error, as WithScope does.
  //   absl::Status s =
  //       co_await WithTimeout(absl::Seconds(5), scope.Join());
  //   // kDeadlineExceeded: the tasks were cancelled, and have ended.
  //
  // Awaited by any task but the body (a task spawned in this scope would
  // wait for itself forever), it gives kFailedPrecondition at once instead
  // of waiting, in every build mode.
  internal::JoinAwaiter Join(absl::Status body_status = absl::OkStatus()) {
    Record(body_status);
    return internal::JoinAwaiter(this);
  }

  // Cancels the body and every task in the scope; WithScope then returns
  // kCancelled unless an error came first.
  void Cancel();
  bool cancelled() const { return context_.cancelled(); }

  // Spawned tasks not finished yet.
  size_t running() const { return children_.size(); }

  // For the runtime.
  internal::Scheduler* scheduler() const { return scheduler_; }
  internal::IntrusiveList<internal::FdState, internal::ResourceTag>*
  resources() {
    return &resources_;
  }

 private:
  friend class internal::ScopeRunner;
  friend class internal::ChildFiber;
  friend class internal::JoinAwaiter;

  explicit Scope(internal::Fiber* body);
  ~Scope();
  // Cancels the scope from a join whose own wait was cancelled.
  void CancelFromJoin();
  void Start(internal::ChildFiber* child);
  void OnChildDone(internal::ChildFiber* child);
  void Record(const absl::Status& status);

  internal::Scheduler* scheduler_;
  internal::Fiber* body_;  // the fiber running WithScope
  internal::CancelContext context_;
  internal::IntrusiveList<internal::Fiber, internal::ScopeTag> children_;
  internal::IntrusiveList<internal::FdState, internal::ResourceTag> resources_;
  absl::Status first_error_;
  internal::JoinAwaiter* joiner_ = nullptr;
};

namespace internal {

// The steps of WithScope that do not depend on its types.
class ScopeRunner {
 public:
  // Makes the scope and moves `body` (the fiber running WithScope) into it.
  explicit ScopeRunner(Fiber* body);
  ScopeRunner(const ScopeRunner&) = delete;
  ScopeRunner& operator=(const ScopeRunner&) = delete;

  Scope& scope() { return scope_; }
  void BodyDone(const absl::Status& status) { scope_.Record(status); }
  JoinAwaiter Join() { return scope_.Join(); }
  // Moves the fiber back out, closes what is still open, and returns the
  // first error.
  absl::Status Finish();

 private:
  Fiber* body_;
  CancelContext* outer_;
  Scope scope_;
};

}  // namespace internal

template <typename Body>
requires std::invocable<Body&, Scope&> std::invoke_result_t<Body&, Scope&>
WithScope(Body body) {
  using R =
      typename internal::TaskValue<std::invoke_result_t<Body&, Scope&>>::type;
  static_assert(internal::StatusLike<R>,
                "a scope body returns Task<absl::Status> or "
                "Task<absl::StatusOr<T>>");
  internal::ScopeRunner runner(co_await internal::CurrentFiber());
  R result = co_await body(runner.scope());
  runner.BodyDone(internal::StatusOf(result));
  co_await runner.Join();
  absl::Status error = runner.Finish();
  if (!error.ok()) co_return R(std::move(error));
  co_return std::move(result);
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_SCOPE_H_

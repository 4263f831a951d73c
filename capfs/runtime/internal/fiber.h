// Fibers, cancellation contexts and waiters: the runtime's bookkeeping of
// who runs, who waits where, and who is cancelled.
//
// A Fiber is one thread of control on a loop: the outermost task given to
// Loop::Run or Scope::Spawn, together with every task it awaits (they share
// its fiber, as the promise of each task records). At any time a fiber is
// running, queued to run, or suspended at one suspension point, described by
// a Waiter. (A ring call that sleeps in the ring itself, from its
// await_suspend, registers its Waiter while its fiber is still running: no
// one else runs meanwhile, so no one sees it; see uring_ring.h.)
//
// A CancelContext is a node in the tree of cancellation: each fiber is in
// exactly one (its current one), and contexts nest (a Scope makes one for its
// body and children, WithTimeout one for what it guards). Cancelling a context
// marks it and every context below it cancelled, and calls OnCancel on the
// waiter of every fiber in them. From then on every suspension point those
// fibers reach fails at once with kCancelled (a join or a started worker job
// instead lets what it waits for finish; see their OnCancel).
//
// Everything here is loop-thread only. Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_FIBER_H_
#define CAPFS_RUNTIME_INTERNAL_FIBER_H_

#include <coroutine>
#include <utility>

#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {
namespace internal {

struct ContextTag;  // a fiber in its context; a context in its parent
struct ScopeTag;    // a fiber among its scope's children

class Fiber;

// Where a fiber is suspended, when that wait can be cancelled.
class Waiter {
 public:
  Waiter() = default;
  // Awaiters are moved before they are awaited, never while waiting.
  Waiter(Waiter&&) noexcept {}
  Waiter& operator=(const Waiter&) = delete;

  Fiber* fiber() const { return fiber_; }

  // The waiting fiber's context was cancelled. Either end the wait now
  // (unregister it and call EndWait) or arrange for it to end soon. Must not
  // run user code: it runs in the middle of a cancellation walk.
  virtual void OnCancel() noexcept = 0;

 protected:
  ~Waiter() = default;

 private:
  friend bool BeginWait(Waiter*, Fiber*, std::coroutine_handle<>);
  friend void BeginShieldedWait(Waiter*, Fiber*, std::coroutine_handle<>);
  friend void EndWait(Waiter*);
  friend void EndWaitUnsuspended(Waiter*);

  Fiber* fiber_ = nullptr;
  std::coroutine_handle<> handle_;
};

class CancelContext : public ListLink<ContextTag> {
 public:
  // A context below `parent` (nullptr: a root, never cancelled from above).
  // It starts cancelled when `parent` is.
  explicit CancelContext(CancelContext* parent);
  CancelContext(const CancelContext&) = delete;
  CancelContext& operator=(const CancelContext&) = delete;
  // Every fiber must have left it.
  ~CancelContext();

  bool cancelled() const { return cancelled_; }
  CancelContext* parent() const { return parent_; }

  // Cancels this context and every context below it. Idempotent.
  void Cancel();

 private:
  friend class Fiber;

  CancelContext* parent_;
  IntrusiveList<CancelContext, ContextTag> children_;
  IntrusiveList<Fiber, ContextTag> fibers_;
  bool cancelled_ = false;
};

class Fiber : public ListLink<ContextTag>, public ListLink<ScopeTag> {
 public:
  Fiber(Scheduler* scheduler, CancelContext* context);
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  virtual ~Fiber();

  Scheduler* scheduler() const { return scheduler_; }
  CancelContext* context() const { return context_; }
  bool cancelled() const { return context_->cancelled(); }
  Waiter* waiting() const { return waiting_; }

  // Moves this fiber into `context` (entering a scope or a timeout), or back
  // out to the context it came from.
  void SwitchContext(CancelContext* context);

  // Called once the outermost task has finished; may delete the fiber.
  virtual void OnRootDone() noexcept = 0;

 private:
  friend class CancelContext;
  friend bool BeginWait(Waiter*, Fiber*, std::coroutine_handle<>);
  friend void BeginShieldedWait(Waiter*, Fiber*, std::coroutine_handle<>);
  friend void EndWait(Waiter*);
  friend void EndWaitUnsuspended(Waiter*);

  Scheduler* scheduler_;
  CancelContext* context_;
  Waiter* waiting_ = nullptr;
};

// Registers `waiter` as the place where `fiber` (about to suspend as
// `handle`) waits. Returns false, registering nothing, when the fiber is
// already cancelled: the caller then does not suspend and reports
// kCancelled.
inline bool BeginWait(Waiter* waiter, Fiber* fiber,
                      std::coroutine_handle<> handle) {
  if (fiber->cancelled()) return false;
  waiter->fiber_ = fiber;
  waiter->handle_ = handle;
  fiber->waiting_ = waiter;
  return true;
}

// Registers `waiter` even when the fiber is cancelled: for a wait that must
// run its course (a scope's join), whose OnCancel passes the cancellation on
// rather than ending it.
inline void BeginShieldedWait(Waiter* waiter, Fiber* fiber,
                              std::coroutine_handle<> handle) {
  waiter->fiber_ = fiber;
  waiter->handle_ = handle;
  fiber->waiting_ = waiter;
}

// Ends the wait of `waiter`'s fiber: it is queued to resume.
inline void EndWait(Waiter* waiter) {
  Fiber* fiber = waiter->fiber_;
  fiber->waiting_ = nullptr;
  fiber->scheduler_->Schedule(waiter->handle_);
}

// Ends the wait of `waiter`'s fiber when it ended before the fiber
// suspended (its await_suspend then returns false): nothing is queued.
inline void EndWaitUnsuspended(Waiter* waiter) {
  waiter->fiber_->waiting_ = nullptr;
}

// `co_await CurrentFiber()` gives the fiber the awaiting task runs in,
// without suspending.
class CurrentFiber {
 public:
  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    fiber_ = self.promise().fiber();
    return false;
  }
  Fiber* await_resume() noexcept { return fiber_; }

 private:
  Fiber* fiber_ = nullptr;
};

// A task standing in for an empty Task given to a fiber: it reports the
// misuse as awaiting one would (see task.h).
template <typename T>
Task<T> EmptyTaskStandIn() {
  co_return EmptyTaskResult<T>();
}

// A fiber that owns its outermost task, a Task<T>.
template <typename T>
class TaskFiber : public Fiber {
 public:
  TaskFiber(Scheduler* scheduler, CancelContext* context, Task<T> task)
      : Fiber(scheduler, context),
        root_(task.valid() ? task.ReleaseHandle()
                           : EmptyTaskStandIn<T>().ReleaseHandle()) {
    root_.promise().set_fiber(this);
  }
  ~TaskFiber() override {
    if (root_) root_.destroy();
  }

  // Queues the task to run.
  void Start() { scheduler()->Schedule(root_); }

  // The task's result, once it has finished.
  T TakeResult() { return root_.promise().TakeResult(); }

 private:
  std::coroutine_handle<typename Task<T>::promise_type> root_;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_FIBER_H_

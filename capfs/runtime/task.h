// Task<T>: a lazy coroutine that produces one T, awaited exactly once.
//
// A function returning Task<T> may use co_await and co_return. Calling it
// only creates the task; nothing runs until the task is awaited (or handed to
// Scope::Spawn, Loop::Run or Run), and it is awaited once:
//
//   Task<absl::StatusOr<size_t>> CountBytes(AsyncFd& in) {
//     char buf[4096];
//     size_t total = 0;
//     for (;;) {
//       absl::StatusOr<size_t> n = co_await Read(in, absl::MakeSpan(buf));
//       if (!n.ok()) co_return n.status();
//       if (*n == 0) co_return total;
//       total += *n;
//     }
//   }
//
// Errors travel in T (absl::Status or absl::StatusOr<U> by convention); no
// exception crosses the runtime, and one escaping a task terminates the
// process.
//
// Awaiting a task takes its coroutine and leaves the Task empty (valid() is
// false), as moving from it does. Awaiting an empty Task, or handing one to
// Spawn or Run, is a bug, caught in every build mode: where T can carry a
// status (absl::Status, absl::StatusOr<U>) the result is
// kFailedPrecondition; otherwise the process stops with a message, since
// there is no T to give. A task runs on the loop of the task that awaits it
// and inherits that task's cancellation (see scope.h): it is part of the
// same fiber.
//
// Task is [[nodiscard]]: a call whose Task is dropped never runs, and the
// compiler warns (the runtime and its tests build with
// -Werror=unused-result).
//
// A child task that finishes without suspending returns straight into its
// parent, so a loop over many such awaits never deepens the stack.

#ifndef CAPFS_RUNTIME_TASK_H_
#define CAPFS_RUNTIME_TASK_H_

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <concepts>
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/runtime/internal/frame_allocator.h"

namespace capfs {
namespace runtime {
namespace internal {

// The status carried by a task result: the Status itself, a StatusOr's
// status, or OK for any other type.
inline const absl::Status& StatusOf(const absl::Status& status) {
  return status;
}
template <typename U>
absl::Status StatusOf(const absl::StatusOr<U>& value) {
  return value.status();
}
template <typename T>
absl::Status StatusOf(const T&) {
  return absl::OkStatus();
}

// Types a cancelled or failed operation can report itself in.
template <typename T>
concept StatusLike = std::constructible_from<T, absl::Status> &&
    requires(const T& t) {
  StatusOf(t);
};

// What awaiting (or spawning, or running) an empty Task gives: see the file
// comment.
inline constexpr char kEmptyTaskMessage[] =
    "awaited an empty Task (awaited before, or moved from)";
template <typename T>
T EmptyTaskResult() {
  if constexpr (StatusLike<T>) {
    return T(absl::FailedPreconditionError(kEmptyTaskMessage));
  } else {
    fprintf(stderr, "capfs runtime: %s\n", kEmptyTaskMessage);
    abort();
  }
}

class Fiber;

// Called when the outermost task of `fiber` finishes; defined with Fiber.
void OnFiberRootDone(Fiber* fiber) noexcept;

// What every runtime coroutine's promise carries: the fiber it runs in (which
// gives its loop and its cancellation) and who awaits it.
class PromiseBase {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(
        std::coroutine_handle<Promise> self) noexcept {
      PromiseBase& promise = self.promise();
      if (promise.parent_suspended_) return promise.continuation_;
      if (promise.continuation_) {
        // The parent is still inside TaskAwaiter::await_suspend, which
        // resumed us: it continues without suspending.
        promise.completed_inline_ = true;
        return std::noop_coroutine();
      }
      OnFiberRootDone(promise.fiber_);
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  // Nothing may throw through the runtime.
  void unhandled_exception() noexcept { std::terminate(); }

  static void* operator new(size_t size) { return AllocateFrame(size); }
  static void operator delete(void* frame, size_t size) noexcept {
    FreeFrame(frame, size);
  }

  Fiber* fiber() const { return fiber_; }
  void set_fiber(Fiber* fiber) { fiber_ = fiber; }

 private:
  template <typename T>
  friend class TaskAwaiter;
  friend class FiberRoot;

  Fiber* fiber_ = nullptr;
  std::coroutine_handle<> continuation_;
  bool parent_suspended_ = false;
  bool completed_inline_ = false;
};

// A promise of the runtime's own coroutines: awaiting a runtime awaitable
// from any other kind of coroutine does not compile.
template <typename P>
concept RuntimePromise = std::derived_from<P, PromiseBase>;

template <typename T>
class TaskAwaiter;

}  // namespace internal

template <typename T>
class [[nodiscard]] Task {
 public:
  class promise_type : public internal::PromiseBase {
   public:
    Task get_return_object() noexcept {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    template <typename U = T>
    void return_value(U&& value) {
      result_.emplace(std::forward<U>(value));
    }
    T TakeResult() { return std::move(*result_); }

   private:
    std::optional<T> result_;
  };

  // A task that holds nothing; awaiting it is a bug.
  Task() = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { Reset(); }

  bool valid() const { return static_cast<bool>(handle_); }

  // Runs the task in the awaiting task's fiber and gives its result. Only an
  // rvalue can be awaited (`co_await std::move(task)` or `co_await F()`);
  // the coroutine moves into the await, leaving this Task empty.
  internal::TaskAwaiter<T> operator co_await() && noexcept;

  // For the runtime: gives up the coroutine, which the caller then owns.
  std::coroutine_handle<promise_type> ReleaseHandle() {
    return std::exchange(handle_, {});
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  void Reset() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace internal {

template <typename T>
class TaskAwaiter {
 public:
  using Handle = std::coroutine_handle<typename Task<T>::promise_type>;
  // Owns `child` (which may be null: an empty Task) from here on.
  explicit TaskAwaiter(Handle child) : child_(child) {}
  TaskAwaiter(TaskAwaiter&& other) noexcept
      : child_(std::exchange(other.child_, {})) {}
  TaskAwaiter& operator=(const TaskAwaiter&) = delete;
  ~TaskAwaiter() {
    if (child_) child_.destroy();
  }

  // An empty Task is "ready": await_resume reports it.
  bool await_ready() noexcept { return !child_; }

  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
    PromiseBase& child = child_.promise();
    child.fiber_ = parent.promise().fiber();
    child.continuation_ = parent;
    // Run the child on this stack. If it finishes without suspending it
    // returns here and the parent goes on; otherwise its final suspension
    // resumes the parent later, from wherever it is resumed.
    child_.resume();
    if (child.completed_inline_) return false;
    child.parent_suspended_ = true;
    return true;
  }

  T await_resume() {
    if (!child_) return EmptyTaskResult<T>();
    return child_.promise().TakeResult();
  }

 private:
  Handle child_;
};

}  // namespace internal

template <typename T>
internal::TaskAwaiter<T> Task<T>::operator co_await() && noexcept {
  return internal::TaskAwaiter<T>(std::exchange(handle_, {}));
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_TASK_H_

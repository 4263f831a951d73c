// Yield: let every other runnable task of the loop run before going on.
//
//   for (const Item& item : items) {
//     if (absl::Status s = co_await Yield(); !s.ok()) co_return s;
//     Process(item);
//   }
//
// The task goes to the back of the run queue and resumes on the loop's next
// turn, after the tasks runnable now and after the loop has looked at its
// descriptors, so a task that never waits cannot starve the others. Every I/O
// call yields once like this before touching its descriptor (as Eio does).
// When nothing else is runnable or due, the task simply goes on (the loop
// would resume it next anyway). Gives kCancelled when the task's fiber is
// cancelled (then without yielding), else OK.

#ifndef CAPFS_RUNTIME_YIELD_H_
#define CAPFS_RUNTIME_YIELD_H_

#include <coroutine>

#include "absl/status/status.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {
namespace internal {

class YieldAwaiter {
 public:
  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    fiber_ = self.promise().fiber();
    if (fiber_->cancelled()) return false;
    if (fiber_->scheduler()->YieldIsNoOp()) return false;
    fiber_->scheduler()->Schedule(self);
    return true;
  }
  absl::Status await_resume() noexcept {
    return fiber_->cancelled() ? absl::CancelledError("yield")
                               : absl::OkStatus();
  }

 private:
  Fiber* fiber_ = nullptr;
};

}  // namespace internal

inline internal::YieldAwaiter Yield() { return {}; }

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_YIELD_H_

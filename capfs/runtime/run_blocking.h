// RunBlocking: run a blocking call on the loop's worker pool.
//
//   absl::StatusOr<std::string> text = co_await RunBlocking(
//       [&]() { return capfs::ReadAll(file); });
//
// `fn` (any callable returning an absl::Status or absl::StatusOr) runs once
// on a pool thread while the task is suspended; the task resumes on its own
// loop with fn's result. Whatever fn reads or writes through references must
// stay put meanwhile (the awaiting task's locals do).
//
// Cancellation: a job still queued is withdrawn and never runs. A job that has
// started cannot be interrupted: the task waits for it, then destroys what
// it produced (an Fd in the result is closed) and gets kCancelled.

#ifndef CAPFS_RUNTIME_RUN_BLOCKING_H_
#define CAPFS_RUNTIME_RUN_BLOCKING_H_

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/task.h"
#include "capfs/runtime/worker_pool.h"

namespace capfs {
namespace runtime {
namespace internal {

template <typename Fn>
class RunBlockingAwaiter final : public Waiter,
                                 public Job,
                                 public RemoteCompletion {
 public:
  using Result = std::invoke_result_t<Fn&>;
  static_assert(StatusLike<Result>,
                "RunBlocking needs fn to return absl::Status or StatusOr");

  explicit RunBlockingAwaiter(Fn fn) : fn_(std::move(fn)) {}

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    Fiber* fiber = self.promise().fiber();
    if (!BeginWait(this, fiber, self)) return false;
    scheduler_ = fiber->scheduler();
    scheduler_->workers().Submit(this);
    return true;
  }
  Result await_resume() {
    if (!result_.has_value() || cancelled_) {
      result_.reset();  // releases what a job that ran anyway produced
      return Result(absl::CancelledError("blocking call"));
    }
    return std::move(*result_);
  }

 private:
  // On a worker. Posting is the worker's last touch of this object.
  void Run() noexcept override { result_.emplace(fn_()); }
  void Finish() noexcept override { scheduler_->Post(this); }
  // Back on the loop.
  void Complete() noexcept override { EndWait(this); }
  void OnCancel() noexcept override {
    cancelled_ = true;
    if (scheduler_->workers().Withdraw(this)) EndWait(this);
    // Otherwise it has started: Complete ends the wait when it is done.
  }

  Fn fn_;
  std::optional<Result> result_;
  Scheduler* scheduler_ = nullptr;
  bool cancelled_ = false;
};

}  // namespace internal

template <typename Fn>
internal::RunBlockingAwaiter<Fn> RunBlocking(Fn fn) {
  return internal::RunBlockingAwaiter<Fn>(std::move(fn));
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_RUN_BLOCKING_H_

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
// it produced (an Fd in the result is closed) and gets kCancelled. When the
// pool has no thread and the system refuses to start one, the result is
// kResourceExhausted and fn never runs.
//
// The awaitable may be handed to WithTimeout like any other.

#ifndef CAPFS_RUNTIME_RUN_BLOCKING_H_
#define CAPFS_RUNTIME_RUN_BLOCKING_H_

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "capfs/runtime/internal/blocking_job.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {
namespace internal {

template <typename Fn>
class RunBlockingAwaiter final : public BlockingJob {
 public:
  using Result = std::invoke_result_t<Fn&>;
  static_assert(StatusLike<Result>,
                "RunBlocking needs fn to return absl::Status or StatusOr");

  explicit RunBlockingAwaiter(Fn fn) : fn_(std::move(fn)) {}
  RunBlockingAwaiter(RunBlockingAwaiter&&) noexcept = default;

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Start(self.promise().fiber(), self);
  }
  Result await_resume() {
    switch (outcome()) {
      case Outcome::kRan:
        return std::move(*result_);
      case Outcome::kNoThread:
        return Result(
            absl::ResourceExhaustedError("no worker thread could be started"));
      default:
        result_.reset();  // releases what a job that ran anyway produced
        return Result(absl::CancelledError("blocking call"));
    }
  }

 private:
  void Work() noexcept override { result_.emplace(fn_()); }

  Fn fn_;
  std::optional<Result> result_;
};

}  // namespace internal

template <typename Fn>
internal::RunBlockingAwaiter<Fn> RunBlocking(Fn fn) {
  return internal::RunBlockingAwaiter<Fn>(std::move(fn));
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_RUN_BLOCKING_H_

// Event: a one-shot signal between tasks of one loop.
//
//   Event ready;
//   scope.Spawn([&]() -> Task<absl::Status> {
//     if (absl::Status s = co_await ready.Wait(); !s.ok()) co_return s;
//     ...
//   });
//   ready.Set();   // every waiter resumes; later Wait()s return at once
//
// Wait gives OK once the event is set, or kCancelled as soon as the waiting
// task is cancelled. From another thread, set it through Loop::Post:
//   loop->Post([&] { ready.Set(); });
// Loop-thread only otherwise. Nobody may be waiting when it is destroyed.

#ifndef CAPFS_RUNTIME_EVENT_H_
#define CAPFS_RUNTIME_EVENT_H_

#include <coroutine>

#include "absl/status/status.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

class Event;

namespace internal {

struct EventTag;

class EventAwaiter final : public Waiter, public ListLink<EventTag> {
 public:
  explicit EventAwaiter(Event* event) : event_(event) {}

  bool await_ready() noexcept;
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Suspend(self.promise().fiber(), self);
  }
  absl::Status await_resume() noexcept {
    return cancelled_ ? absl::CancelledError("event wait") : absl::OkStatus();
  }

 private:
  friend class ::capfs::runtime::Event;
  bool Suspend(Fiber* fiber, std::coroutine_handle<> self);
  void OnCancel() noexcept override;

  Event* event_;
  bool cancelled_ = false;
};

}  // namespace internal

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() = default;

  // Sets the event and resumes every waiter. Idempotent.
  void Set();
  bool is_set() const { return set_; }

  internal::EventAwaiter Wait() { return internal::EventAwaiter(this); }

 private:
  friend class internal::EventAwaiter;
  bool set_ = false;
  internal::IntrusiveList<internal::EventAwaiter, internal::EventTag> waiters_;
};

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_EVENT_H_

// Loop: one event loop, run by one thread at a time.
//
//   absl::Status s = Run(MainTask());                        // epoll
//   absl::Status s = Run(MainTask(), {.backend = IoBackend::kPoll});
//
// Run (or Loop::Run) drives the loop on the calling thread until the given
// task finishes, and returns its result. Everything the task starts lives in
// scopes inside it, so nothing of it is left running afterwards. A thread has
// at most one running loop (Loop::Current()).
//
// Other threads talk to a loop only through Post, which queues a function to
// run on the loop's thread and wakes the loop (through an eventfd) if it
// sleeps:
//   Loop* loop = Loop::Current();           // on the loop's thread
//   std::thread([loop, &event] { loop->Post([&] { event.Set(); }); });
//
// Backends: epoll (the default) and poll(2); see internal/backend.h for how
// they differ. Blocking work goes to a WorkerPool (worker_pool.h).

#ifndef CAPFS_RUNTIME_LOOP_H_
#define CAPFS_RUNTIME_LOOP_H_

#include <stddef.h>

#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/runtime/fs_paths.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/task.h"
#include "capfs/runtime/worker_pool.h"

namespace capfs {
namespace runtime {

enum class IoBackend {
  kEpoll,  // epoll(7), edge-triggered; the default
  kPoll,   // poll(2), as in Eio's POSIX scheduler
};

// "epoll" or "poll".
const char* IoBackendName(IoBackend backend);

struct LoopOptions {
  IoBackend backend = IoBackend::kEpoll;
  // A pool to share with other loops (it must outlive them); when null the
  // loop makes its own with `worker_options`.
  WorkerPool* workers = nullptr;
  WorkerPoolOptions worker_options;
  AsyncFsOptions fs;
};

namespace internal {

// The fiber of the task Loop::Run was given.
template <typename T>
class MainFiber final : public TaskFiber<T> {
 public:
  using TaskFiber<T>::TaskFiber;
  void OnRootDone() noexcept override { done_ = true; }
  const bool* done() const { return &done_; }

 private:
  bool done_ = false;
};

}  // namespace internal

class Loop {
 public:
  static absl::StatusOr<std::unique_ptr<Loop>> Create(LoopOptions options = {});
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  // Functions posted but not run yet are destroyed without running.
  ~Loop();

  // Runs `main` on the calling thread until it finishes; returns its result.
  // Not reentrant.
  template <typename T>
  T Run(Task<T> main) {
    internal::CancelContext root(nullptr);
    internal::MainFiber<T> fiber(scheduler_.get(), &root, std::move(main));
    CurrentLoop current(this);
    fiber.Start();
    scheduler_->RunUntil(fiber.done());
    return fiber.TakeResult();
  }

  // Thread-safe: runs `fn` on the loop's thread, on one of its next turns.
  // Functions posted from one thread run in the order posted. The loop must
  // outlive the call.
  void Post(absl::AnyInvocable<void() &&> fn);

  // The loop running on this thread, or null.
  static Loop* Current();

  IoBackend backend() const { return backend_; }
  WorkerPool& workers() { return *workers_; }
  // Descriptors the backend watches, the loop's own eventfd included.
  size_t watched_fds() const;

  // For the runtime.
  internal::Scheduler* scheduler() { return scheduler_.get(); }

 private:
  class CurrentLoop {
   public:
    explicit CurrentLoop(Loop* loop);
    ~CurrentLoop();

   private:
    Loop* previous_;
  };

  Loop(IoBackend backend, std::unique_ptr<WorkerPool> own_workers,
       WorkerPool* workers);

  IoBackend backend_;
  std::unique_ptr<WorkerPool> own_workers_;
  WorkerPool* workers_;
  std::unique_ptr<internal::Scheduler> scheduler_;
};

// Makes a loop with `options`, runs `main` on it to the end, and returns its
// result (or the error that kept the loop from being made).
template <typename T>
requires internal::StatusLike<T> T Run(Task<T> main, LoopOptions options = {}) {
  absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create(options);
  if (!loop.ok()) return T(loop.status());
  return (*loop)->Run(std::move(main));
}

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_LOOP_H_

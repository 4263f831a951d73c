// WorkerPool: threads that run blocking calls so that a loop never blocks.
//
// Filesystem calls, reads of regular files and of descriptors shared with
// another process (a tty, an inherited stdin) cannot be made nonblocking, so
// RunBlocking (run_blocking.h) sends them here and resumes the task on its
// loop when they are done. Threads are started on demand up to
// `max_threads`, reused for job after job, and exit once idle for
// `idle_timeout` (never, when it is absl::InfiniteDuration()); jobs beyond
// `max_threads` wait their turn in FIFO order. When the system refuses a new
// thread, the job waits for a thread already alive; with none alive, it
// fails with kResourceExhausted instead of running.
//
// Each Loop has a pool of its own unless LoopOptions::workers names one to
// share (which must outlive the loops using it).
//
//   WorkerPool pool({.max_threads = 4, .idle_timeout = absl::Seconds(5)});
//   LoopOptions options;
//   options.workers = &pool;
//
// Thread-safe. Destroying the pool waits for its threads to exit; no job may
// be pending then (a loop's tasks have all finished when Loop::Run returns,
// and with them their jobs; the job a loop's burst of Stats shares with a
// worker, internal/call_share.h, may stay queued until the Loop is
// destroyed, which takes it back).

#ifndef CAPFS_RUNTIME_WORKER_POOL_H_
#define CAPFS_RUNTIME_WORKER_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "capfs/runtime/internal/intrusive_list.h"

namespace capfs {
namespace runtime {
namespace internal {

struct JobTag;

// A unit of blocking work, owned by whoever submits it.
class Job : public ListLink<JobTag> {
 public:
  Job() = default;
  // Moved only before it is submitted.
  Job(Job&& other) noexcept : ListLink<JobTag>(std::move(other)) {}
  Job& operator=(const Job&) = delete;

  // Does the work, on a worker thread.
  virtual void Run() noexcept = 0;
  // Then hands the result back, on the same thread, once the pool counts
  // the thread as free again (so that a job submitted in response reuses
  // it). The pool does not touch the job afterwards.
  virtual void Finish() noexcept = 0;

 protected:
  ~Job() = default;
};

}  // namespace internal

struct WorkerPoolOptions {
  int max_threads = 16;  // at least 1
  // Then an idle thread exits; absl::InfiniteDuration(): never.
  absl::Duration idle_timeout = absl::Seconds(10);
};

class WorkerPool {
 public:
  explicit WorkerPool(WorkerPoolOptions options = {});
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool();

  // Threads alive now, idle or busy.
  int threads() const;
  // The most threads ever alive at once.
  int peak_threads() const;
  // Jobs started so far.
  size_t jobs_started() const;
  // Waits until at most `n` threads are alive (idle ones exit after
  // idle_timeout), or `timeout` has passed; whether they are.
  bool WaitForThreadsAtMost(int n, absl::Duration timeout) const;
  const WorkerPoolOptions& options() const { return options_; }

  // For the runtime: queues `job`, starting a thread if none is idle and the
  // bound allows. False, queueing nothing, when no thread is alive and none
  // can be started.
  bool Submit(internal::Job* job);
  // For the runtime: takes `job` back if no thread has started it (true), in
  // which case it never runs; false when it has started or finished.
  bool Withdraw(internal::Job* job);

 private:
  using ThreadList = std::list<std::thread>;
  void WorkerMain(ThreadList::iterator self);
  // Waits for work or closing, as long as the idle timeout allows; false
  // when it ran out.
  bool WaitForWork(std::unique_lock<std::mutex>& lock);
  void JoinExited(std::unique_lock<std::mutex>& lock);

  const WorkerPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable work_;  // a job was queued, or the pool is closing
  mutable std::condition_variable exits_;  // a thread left running_
  internal::IntrusiveList<internal::Job, internal::JobTag> queue_;
  ThreadList running_;  // threads alive
  ThreadList exited_;   // threads that returned, not yet joined
  int idle_ = 0;        // threads alive and not running a job
  int peak_ = 0;
  size_t started_ = 0;
  bool closing_ = false;
};

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_WORKER_POOL_H_

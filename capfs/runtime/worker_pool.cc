#include "capfs/runtime/worker_pool.h"

#include <stdint.h>

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>

#include "capfs/sys/net.h"

namespace capfs {
namespace runtime {

WorkerPool::WorkerPool(WorkerPoolOptions options)
    : options_([&] {
        options.max_threads = std::max(options.max_threads, 1);
        return options;
      }()) {}

WorkerPool::~WorkerPool() {
  std::unique_lock<std::mutex> lock(mu_);
  closing_ = true;
  work_.notify_all();
  ThreadList threads;
  threads.splice(threads.end(), running_);
  threads.splice(threads.end(), exited_);
  lock.unlock();
  for (std::thread& t : threads) t.join();
}

int WorkerPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(running_.size());
}

bool WorkerPool::WaitForThreadsAtMost(int n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return exits_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    return static_cast<int>(running_.size()) <= n;
  });
}

int WorkerPool::peak_threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

size_t WorkerPool::jobs_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

bool WorkerPool::Submit(internal::Job* job) {
  std::unique_lock<std::mutex> lock(mu_);
  queue_.PushBack(job);
  if (static_cast<int>(queue_.size()) > idle_ &&
      static_cast<int>(running_.size()) < options_.max_threads) {
    // The new thread takes the lock before touching its list entry, so the
    // entry is filled in by the time it looks.
    auto self = running_.emplace(running_.end());
    try {
      *self = std::thread(&WorkerPool::WorkerMain, this, self);
      ++idle_;  // it takes the job as soon as it runs
      peak_ = std::max(peak_, static_cast<int>(running_.size()));
    } catch (const std::system_error&) {
      // Out of threads (EAGAIN): a thread alive takes the job in its turn;
      // with none alive, nobody ever would.
      running_.erase(self);
      if (running_.empty()) {
        queue_.Remove(job);
        JoinExited(lock);
        return false;
      }
      work_.notify_one();
    }
  } else {
    work_.notify_one();
  }
  JoinExited(lock);
  return true;
}

bool WorkerPool::Withdraw(internal::Job* job) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!job->linked()) return false;
  queue_.Remove(job);
  return true;
}

void WorkerPool::JoinExited(std::unique_lock<std::mutex>& lock) {
  if (exited_.empty()) return;
  ThreadList exited;
  exited.swap(exited_);
  lock.unlock();
  // They have left WorkerMain's critical section for good: joins are short.
  for (std::thread& t : exited) t.join();
  lock.lock();
}

bool WorkerPool::WaitForWork(std::unique_lock<std::mutex>& lock) {
  auto has_work = [&] { return !queue_.empty() || closing_; };
  if (options_.idle_timeout == absl::InfiniteDuration()) {
    work_.wait(lock, has_work);
    return true;
  }
  // Saturate: now + a long timeout must not overflow the clock.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  const auto most = std::chrono::duration_cast<std::chrono::nanoseconds>(
      Clock::time_point::max() - now);
  auto timeout = std::chrono::nanoseconds(
      std::max<int64_t>(0, absl::ToInt64Nanoseconds(options_.idle_timeout)));
  if (timeout > most) timeout = most;
  return work_.wait_until(lock, now + timeout, has_work);
}

void WorkerPool::WorkerMain(ThreadList::iterator self) {
  // A thread of ours: its pipe writes keep SIGPIPE blocked for good, rather
  // than block and unblock it around each write.
  ::capfs::runtime::internal::HoldSigpipeOnThisThread();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty() && !closing_ && !WaitForWork(lock)) {
      break;  // idle too long
    }
    if (queue_.empty()) break;  // closing
    internal::Job* job = queue_.PopFront();
    --idle_;
    ++started_;
    lock.unlock();
    job->Run();
    lock.lock();
    ++idle_;
    lock.unlock();
    job->Finish();
    lock.lock();
  }
  --idle_;
  if (!closing_) {
    exited_.splice(exited_.end(), running_, self);
    exits_.notify_all();
  }
}

}  // namespace runtime
}  // namespace capfs

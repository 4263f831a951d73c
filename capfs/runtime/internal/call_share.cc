#include "capfs/runtime/internal/call_share.h"

#include <assert.h>

#include <utility>

namespace capfs {
namespace runtime {
namespace internal {

CallShare::~CallShare() {
  // Every task has finished, so no call is left; the job may still be
  // between its last look at the list and the end of Finish.
  // A job still queued behind other jobs of a shared pool is taken back
  // rather than waited for.
  std::unique_lock<std::mutex> lock(mu_);
  assert(waiting_.empty() && done_.empty() && !posted_);
  if (job_active_ && scheduler_->workers().Withdraw(this)) job_active_ = false;
  ended_.wait(lock, [&] { return !job_active_; });
}

void CallShare::WaitingChanged() {
  waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
  if (waiting_.empty()) submit_refused_ = false;
}

size_t CallShare::Take(UringOp** batch, bool from_back) {
  size_t n = 0;
  while (n < kBatch && !waiting_.empty()) {
    UringOp* op = from_back ? waiting_.back() : waiting_.front();
    waiting_.Remove(op);
    op->shared_taken_ = true;
    batch[n++] = op;
  }
  WaitingChanged();
  return n;
}

void CallShare::Add(UringOp* op) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_.PushBack(op);
  WaitingChanged();
  // A job still at work takes it (Run looks again; Finish goes on).
  if (!job_active_ && !submit_refused_) {
    job_active_ = scheduler_->workers().Submit(this);
    submit_refused_ = !job_active_;
  }
}

bool CallShare::Withdraw(UringOp* op) {
  std::lock_guard<std::mutex> lock(mu_);
  if (op->shared_taken_) return false;
  waiting_.Remove(op);
  WaitingChanged();
  return true;
}

void CallShare::MakeSome() {
  UringOp* batch[kBatch];
  size_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = Take(batch, /*from_back=*/true);
  }
  for (size_t i = 0; i < n; ++i) {
    ring_->FinishMade(batch[i], batch[i]->MakeInUserSpace(),
                      /*by_worker=*/false);
  }
}

void CallShare::Run() noexcept {
  UringOp* batch[kBatch];
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t runs = 0; runs < kBatchesPerRun; ++runs) {
    const size_t n = Take(batch, /*from_back=*/false);
    if (n == 0) return;
    lock.unlock();
    // Only the call's own fields are written here; the loop reads them once
    // it has taken the call from done_ under the mutex.
    for (size_t i = 0; i < n; ++i)
      batch[i]->result_ = batch[i]->MakeInUserSpace();
    made_by_worker_.fetch_add(n, std::memory_order_relaxed);
    lock.lock();
    for (size_t i = 0; i < n; ++i) done_.PushBack(batch[i]);
    // The tasks waiting on these run while the worker goes on. A post not
    // yet taken carries these too. Posting under mu_ orders it before the
    // job's end, which the loop's destruction waits for.
    if (!std::exchange(posted_, true)) scheduler_->Post(this);
  }
}

void CallShare::Finish() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  // Calls left after kBatchesPerRun, or added since Run found none (which
  // saw the job active): the job goes on, behind the pool's other jobs.
  // This thread counts as idle by now, so the pool has one for it.
  if (!waiting_.empty() && scheduler_->workers().Submit(this)) return;
  job_active_ = false;
  ended_.notify_all();
}

void CallShare::Complete() noexcept {
  IntrusiveList<UringOp, UringQueueTag> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_ = false;
    while (UringOp* op = done_.PopFront()) done.PushBack(op);
  }
  while (UringOp* op = done.PopFront()) {
    ring_->FinishMade(op, op->result_, /*by_worker=*/true);
  }
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#include "capfs/runtime/internal/scheduler.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <optional>
#include <utility>

#include "absl/base/attributes.h"
#include "capfs/runtime/internal/fd_state.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace runtime {
namespace internal {

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    std::unique_ptr<Backend> backend, WorkerPool* workers) {
  int fd = SysEventfd();
  if (fd < 0) return ErrnoError(-fd, "eventfd", "");
  std::unique_ptr<Scheduler> scheduler(
      new Scheduler(std::move(backend), workers, Fd(fd)));
  int r = scheduler->backend_->Add(fd, &scheduler->wakeup_token_, kReadable);
  if (r < 0) return ErrnoError(-r, "watch eventfd", "");
  scheduler->backend_->SetInterest(fd, kReadable);
  return scheduler;
}

Scheduler::Scheduler(std::unique_ptr<Backend> backend, WorkerPool* workers,
                     Fd wakeup)
    : backend_(std::move(backend)),
      workers_(workers),
      wakeup_(std::move(wakeup)) {}

Scheduler::~Scheduler() {
  // The ring first: its CallShare waits for its worker's job to end, the
  // job's last touch of the share, while every member stands. Nothing
  // posted is the share's by then (a post carries results whose tasks wait
  // for them, and every task has finished).
  if (ring_watched_) backend_->Remove(ring_->fd());
  ring_.reset();
  // A poster still inside Post holds the mutex: wait for it to leave.
  std::lock_guard<std::mutex> lock(posted_mu_);
  for (RemoteCompletion* c = posted_head_; c != nullptr;) {
    RemoteCompletion* next = c->next_;
    c->Drop();
    c = next;
  }
  backend_->Remove(wakeup_.get());
}

void Scheduler::SetUpRing() {
  if (ring_retry_at_ns_ != 0 && MonotonicNowNs() < ring_retry_at_ns_) return;
  ring_tried_ = true;
  if (!fs_options_.io_uring) return;
  bool short_of_resources = false;
  std::unique_ptr<UringRing> ring =
      UringRing::Create(this, &short_of_resources);
  if (ring == nullptr) {
    if (short_of_resources) {
      // Locked memory or descriptors are spent for now (uring_ring.h):
      // the calls go to the workers until a later try succeeds.
      ring_tried_ = false;
      ring_retry_at_ns_ = MonotonicNowNs() + kRingRetryNs;
    }
    return;
  }
  ring_ = std::move(ring);
}

bool Scheduler::OnlyRingWaits() const {
  return ring_ != nullptr && ring_->waits() > 0 &&
         static_cast<int64_t>(ring_->waits()) == fd_waits_;
}

void Scheduler::WatchRing() {
  // Readable only: the ring's descriptor is writable whenever its
  // submission queue has room, which says nothing to the loop.
  int r = backend_->Add(ring_->fd(), &ring_token_, kReadable);
  if (r < 0) {
    // Sleeping in the backend without it would hang the ring's tasks.
    fprintf(stderr, "capfs runtime: %s cannot watch the io_uring: %s\n",
            backend_->name(), strerror(-r));
    abort();
  }
  backend_->SetInterest(ring_->fd(), kReadable);
  ring_watched_ = true;
}

void Scheduler::Post(RemoteCompletion* completion) {
  std::lock_guard<std::mutex> lock(posted_mu_);
  completion->next_ = nullptr;
  if (posted_tail_ != nullptr) {
    posted_tail_->next_ = completion;
  } else {
    posted_head_ = completion;
  }
  posted_tail_ = completion;
  posted_.store(true, std::memory_order_seq_cst);
  // Pairs with RunUntil's store to sleeping_ then load of posted_: one of the
  // two sides sees the other's store, so a post never sleeps unnoticed.
  if (sleeping_.exchange(false, std::memory_order_seq_cst)) {
    uint64_t one = 1;
    ::capfs::internal::SysWrite(wakeup_.get(), &one, sizeof(one));
  }
}

void Scheduler::RunPosted() {
  RemoteCompletion* head;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    head = std::exchange(posted_head_, nullptr);
    posted_tail_ = nullptr;
    posted_.store(false, std::memory_order_relaxed);
  }
  while (head != nullptr) {
    RemoteCompletion* next = head->next_;
    head->Complete();
    head = next;
  }
}

void Scheduler::FireTimers() {
  int64_t now = MonotonicNowNs();
  while (TimerNode* node = timers_.PopDue(now)) node->OnTimerFired();
}

void Scheduler::PollIo(int64_t timeout_ns) {
  resumes_since_poll_ = 0;
  if (!ring_watched_ && ring_ != nullptr && ring_->waits() > 0) WatchRing();
  events_.clear();
  int r = backend_->Wait(timeout_ns, &events_);
  if (r < 0) {
    // Only a bug (a bad descriptor or argument) gets here; continuing would
    // spin or hang.
    fprintf(stderr, "capfs runtime: %s wait failed: %s\n", backend_->name(),
            strerror(-r));
    abort();
  }
  for (const ReadyEvent& event : events_) {
    if (event.token == &wakeup_token_) {
      DrainWakeup();
      continue;
    }
    if (event.token == &ring_token_) {
      ring_->OnReady();
      continue;
    }
    static_cast<FdState*>(event.token)->OnReady(event.ready);
  }
}

void Scheduler::DrainWakeup() {
  uint64_t count;
  ::capfs::internal::SysRead(wakeup_.get(), &count, sizeof(count));
}

int64_t Scheduler::SleepTimeout() {
  int64_t timeout_ns = -1;
  if (!timers_.empty()) {
    timeout_ns = timers_.next_deadline() - MonotonicNowNs();
    if (timeout_ns < 0) timeout_ns = 0;
  }
  return timeout_ns;
}

// Inlined into its two callers (a call's own sleep is on every lone ring
// call's path).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline std::optional<int64_t>
Scheduler::ArmRingSleep() {
  // Only the ring's calls wait on descriptors, and there are some: the ring
  // alone can end the sleep, with a post or the next timer.
  if (!OnlyRingWaits() || !run_queue_.empty()) return std::nullopt;
  int64_t timeout_ns = SleepTimeout();
  if (!ring_->CanWait(timeout_ns)) return std::nullopt;
  sleeping_.store(true, std::memory_order_seq_cst);
  if (posted_.load(std::memory_order_seq_cst)) timeout_ns = 0;
  return timeout_ns;
}

bool Scheduler::SleptInRing() {
  // Calls the loop may make itself wait for a taker: RunUntil makes some
  // rather than sleep.
  if (ring_ != nullptr && ring_->CanMakeQueuedOnLoop()) return false;
  std::optional<int64_t> timeout_ns = ArmRingSleep();
  if (!timeout_ns.has_value()) return false;
  resumes_since_poll_ = 0;
  if (*timeout_ns == 0) {
    // Calls queued on the ring this turn go to the kernel without a sleep.
    ring_->Flush();
    sleeping_.store(false, std::memory_order_relaxed);
  } else {
    SleepInRing(*timeout_ns);
  }
  return true;
}

bool Scheduler::SleepInRingFromCall() {
  // The conditions of the turn's steps 1 to 4: nothing would run before
  // SleptInRing, and it would sleep. A timer already due or a post keeps the
  // call in the turn, which runs them first, as it would have; so do calls
  // the loop may make itself (RunUntil makes them).
  if (ring_->CanMakeQueuedOnLoop()) return false;
  std::optional<int64_t> timeout_ns = ArmRingSleep();
  if (!timeout_ns.has_value()) return false;
  if (*timeout_ns == 0) {
    sleeping_.store(false, std::memory_order_relaxed);
    return false;
  }
  resumes_since_poll_ = 0;
  SleepInRing(*timeout_ns);
  return true;
}

void Scheduler::SleepInRing(int64_t timeout_ns) {
  if (ring_->Wait(timeout_ns, wakeup_.get())) DrainWakeup();
  sleeping_.store(false, std::memory_order_relaxed);
}

void Scheduler::RunUntil(const bool* done) {
  while (!*done) {
    size_t batch = run_queue_.size();
    resumes_since_poll_ += batch;
    for (; batch > 0; --batch) run_queue_.Pop().resume();
    if (posted_.load(std::memory_order_acquire)) RunPosted();
    if (!timers_.empty()) FireTimers();
    if (!*done && SleptInRing()) continue;
    // Calls queued on the ring this turn go to the kernel together.
    if (ring_ != nullptr && ring_->has_work()) ring_->Flush();
    if (*done) break;
    if (run_queue_.empty() && ring_ != nullptr && ring_->holds_back_calls()) {
      // The loop is about to sleep in its backend, where no completion of
      // the ring's may end the sleep soon: the calls Flush held back for
      // the kernel's workers go now.
      ring_->FlushAll();
    }
    if (!run_queue_.empty()) {
      // Keep descriptor waiters in the rotation while others run, within a
      // bounded number of resumes; with no such waiter there is nothing to
      // ask. Calls the loop may make itself that no one has taken (their
      // job waits behind others in a busy pool) go on too, a few of them.
      if (fd_waits_ > 0 && resumes_since_poll_ >= kResumesPerPoll) {
        if (ring_ != nullptr && ring_->CanMakeQueuedOnLoop()) {
          ring_->MakeQueuedOnLoop();
        }
        if (OnlyRingWaits()) {
          // The ring's completions are in memory: no syscall to look.
          resumes_since_poll_ = 0;
          ring_->OnReady();
        } else {
          PollIo(0);
        }
      }
      continue;
    }
    if (ring_ != nullptr && ring_->CanMakeQueuedOnLoop()) {
      // Calls the loop can make itself wait for a taker (the ring's
      // CallShare, whose worker takes them too): it makes some rather than
      // sleep, the turn's calls handed over first (Flush, above). A task
      // waiting on another descriptor still gets its turn within
      // kResumesPerPoll resumes.
      if (static_cast<int64_t>(ring_->waits()) < fd_waits_ &&
          resumes_since_poll_ >= kResumesPerPoll) {
        PollIo(0);
      }
      ring_->MakeQueuedOnLoop();
      ring_->OnReady();  // the completions posted meanwhile
      continue;
    }
    int64_t timeout_ns = SleepTimeout();
    sleeping_.store(true, std::memory_order_seq_cst);
    if (posted_.load(std::memory_order_seq_cst)) timeout_ns = 0;
    if (ring_ != nullptr) ring_->CountBackendSleep();
    PollIo(timeout_ns);
    sleeping_.store(false, std::memory_order_relaxed);
  }
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

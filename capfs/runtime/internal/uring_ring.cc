#include "capfs/runtime/internal/uring_ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>

#include "capfs/runtime/fs_paths.h"
#include "capfs/runtime/internal/call_share.h"
#include "capfs/runtime/internal/fork_epoch.h"
#include "capfs/runtime/internal/fs_counts.h"
#include "capfs/runtime/internal/scheduler.h"

namespace capfs {
namespace runtime {

using ::capfs::internal::SysUring;

namespace {

// The sizes a loop's ring is set up with, largest first: the next is tried
// only when the kernel says ENOMEM. A ring's memory is counted against
// RLIMIT_MEMLOCK for a process without CAP_IPC_LOCK, summed over every
// process of its user: 8 MiB holds about 97 rings of the first size (84 KiB
// each), 680 of the last (3 pages). Whether the kernel counts it so
// depends on its version; Linux 6.18 does.
struct RingSize {
  unsigned sq_entries;
  unsigned cq_entries;
};
constexpr RingSize kRingSizes[] = {{256, 4096}, {256, 1024}, {64, 256}};
// The tag of cancellation requests, whose completions say nothing a task
// waits for (they are only counted, until reaped).
constexpr uint64_t kCancelTag = 0;
// The tag of the poll of the loop's wakeup eventfd (no UringOp is at 1).
constexpr uint64_t kWakeupTag = 1;
// The tag of CloseLater's closes (nor at 2: UringOps are aligned).
constexpr uint64_t kCloseTag = 2;
// Closes CloseLater leaves unreaped at most (each holds its descriptor open
// until it is submitted, then a completion until it is reaped).
constexpr unsigned kMaxPendingCloses = 64;

enum Support : int { kUnknown, kAvailable, kUnavailable, kShortOfResources };
std::atomic<int> g_support{kUnknown};
// After a probe that met kShortOfResources: none again before this (a probe's
// ring stays counted a while after it is closed).
std::atomic<int64_t> g_probe_again_at_ns{0};

bool DisabledByEnvironment() {
  const char* env = getenv("CAPFS_IO_URING");
  return env != nullptr && strcmp(env, "0") == 0;
}

// True for what io_uring_setup(2) says when a resource is spent for now:
// the user's locked memory (ENOMEM), descriptors (EMFILE, ENFILE).
bool ShortOfResources(int r) {
  return r == -ENOMEM || r == -EMFILE || r == -ENFILE;
}

// True for what io_uring_enter(2) says when the ring's descriptor is no
// longer the ring: its number was closed behind capfs's back (EBADF), and
// perhaps reused for something else (EOPNOTSUPP). Not capfs's to close: the
// ring is only unmapped (SysUring::Abandon).
bool DescriptorLost(int r) { return r == -EBADF || r == -EOPNOTSUPP; }

// kAvailable or kUnavailable, probed once and cached; kShortOfResources, not
// cached: a probe Scheduler::kRingRetryNs later or more tries again.
int Support() {
  int s = g_support.load(std::memory_order_relaxed);
  if (s != kUnknown) return s;
  if (DisabledByEnvironment()) {
    s = kUnavailable;
  } else {
    const int64_t again_at =
        g_probe_again_at_ns.load(std::memory_order_relaxed);
    if (again_at != 0 && internal::MonotonicNowNs() < again_at) {
      return kShortOfResources;
    }
    std::unique_ptr<SysUring> ring;
    int r = SysUring::Create(4, 8, &ring);
    if (ShortOfResources(r)) {
      g_probe_again_at_ns.store(
          internal::MonotonicNowNs() + internal::Scheduler::kRingRetryNs,
          std::memory_order_relaxed);
      return kShortOfResources;
    }
    s = r == 0 ? kAvailable : kUnavailable;
  }
  g_support.store(s, std::memory_order_relaxed);
  return s;
}

// Calls a ring of `sq_entries` and `cq_entries` has in flight at most, so
// that their completions always fit in the completion queue: each call's,
// its cancellation's, CloseLater's not reaped yet (kMaxPendingCloses), the
// wakeup poll's, and a submission queue's worth to spare.
unsigned MaxInFlight(unsigned sq_entries, unsigned cq_entries) {
  return (cq_entries - sq_entries - kMaxPendingCloses - 1) / 2;
}

// Queued calls handed to the kernel in one io_uring_enter when more wait
// (HandOverAllButLast). An O_PATH open of a cached path completes inline in
// that enter; its task closes the descriptor once it runs. The loop runs a
// batch's tasks before it hands over more (the turn's end may hand one
// over while they wait), so that a burst of 1,000 such opens whose tasks
// close their descriptors holds two batches of them at once at most, not
// 1,000, and the kernel reuses the file objects the last batch freed while
// they are still in its caches: against liburing by hand, 1,000 O_PATH
// opens in flight went from 1.12-1.16 to 1.03-1.09 of its time at depth 1
// (async_fs_bench, alternated runs; docs/runtime.md).
constexpr size_t kSubmitBatch = 128;

// Calls that go to the kernel's workers (UringOp::GoesToWorkers) handed
// over in one Flush or Wait at most, and how long a loop sleeps in the ring
// at most while more of them are queued. The loop hands a few over, sleeps
// until one completes, takes it, and hands over the next, as a program
// using liburing by hand submits a queue's worth and waits for one
// completion before it submits more (a Wait hands over before it sleeps and
// again once it wakes: up to twice this a sleep). Handed over all at once,
// 1,000 plain opens at depth 16 took 2.99 ms against 2.50 ms paced by 32,
// and 2.62 to 2.81 ms by 16, 64, 128 or 256 (async_fs_bench, six alternated
// runs of each, on an experimental build; docs/runtime.md). The wait's bound
// keeps calls that wait long in flight (a FIFO's open waits for a writer) from
// holding back the rest: a sleep that ends with none of them done is followed
// by the next hand-over. A plain open of a cached path completes in a few
// microseconds.
constexpr size_t kPacedBatch = 32;
constexpr int64_t kPacedWaitNs = 50'000;

// Calls in one chain at most, and chains in flight at most
// (UringOp::AllowChaining). A chain's calls run one after another on one of
// the kernel's workers, which takes each next one without its being queued
// and a worker woken for it: a burst of 1,000 STATX calls that each woke a
// worker cost the loop's thread more in the kernel than the fstatat it
// replaces. Sixteen chains of 8 keep 128 such calls in flight, each holding
// a copy of its name (4 KiB of the kernel's) until it completes, where a
// burst of 1,000 all in flight at once made the kernel allocate and free
// slab pages for them. 8 x 16, 16 x 8, 32 x 4 and 16 x 16 measured alike;
// the shorter chain makes a call wait least. Against a sync loop of
// fstatat, 1,000 Stats in a burst went from 1.06-1.60 of its time to
// 0.94-1.02 (async_fs_bench, stat/1/inflight:1000, six alternated runs;
// docs/runtime.md). Such a burst takes this way now only where the loop's
// path is off; where it serves, the CallShare makes it (call_share.h).
constexpr size_t kChainLength = 8;
constexpr size_t kMaxChainsInFlight = 16;

// How long a loop's end waits, at most, for what its ring still has in
// flight (cancellation requests, closes, the wakeup poll's cancellation):
// they complete inline, so the first wait normally finds them done. A ring
// that is not idle by then is closed rather than kept.
constexpr int64_t kQuiesceWaitNs = 10'000'000;
constexpr int kQuiesceWaits = 3;

// The ring a thread's last loop left (AsyncFsOptions::keep_ring), for the
// thread's next loop: a ring of the first size, idle (nothing in flight,
// nothing to reap), set up in this process. Setting a ring up and tearing
// it down costs about 125 us of the kernel's time (zeroing and unmapping
// its 84 KiB), as much as dozens of calls through it, and its locked memory
// stays counted a while after it is closed; a program that runs many short
// loops on a thread pays that once. Closed when the thread exits. In a
// forked child (ForkEpoch) the ring is the parent's: it is unmapped, never
// entered, and its descriptor, which the child may have closed and reused
// since, is left alone.
class KeptRing {
 public:
  KeptRing() = default;
  KeptRing(const KeptRing&) = delete;
  KeptRing& operator=(const KeptRing&) = delete;
  ~KeptRing();

  // Keeps `ring`, set up in epoch `epoch`, closing any ring kept before.
  void Keep(std::unique_ptr<SysUring> ring, uint64_t epoch) {
    Release();
    ring_ = std::move(ring);
    epoch_ = epoch;
  }

  // The kept ring, when it is still this thread's to use; else nullptr,
  // having let go of it.
  std::unique_ptr<SysUring> Take() {
    if (ring_ == nullptr) return nullptr;
    if (epoch_ != internal::ForkEpoch()) {
      Release();
      return nullptr;
    }
    std::unique_ptr<SysUring> ring = std::move(ring_);
    const int r = ring->Ping();
    if (r == 0) return ring;
    // A seccomp filter installed since refuses io_uring_enter (EPERM,
    // ENOSYS, or whatever errno it was told): the descriptor is still the
    // ring, closed here; unless it was lost.
    if (DescriptorLost(r)) ring->Abandon();
    return nullptr;
  }

  // Lets go of the kept ring, if any: closed, or only unmapped when it is
  // a forked parent's.
  void Release() {
    if (ring_ != nullptr && epoch_ != internal::ForkEpoch()) ring_->Abandon();
    ring_.reset();
  }

 private:
  std::unique_ptr<SysUring> ring_;
  uint64_t epoch_ = 0;
};

thread_local KeptRing t_kept_ring;
std::atomic<uint64_t> g_stray_completions{0};
// Set once the thread's KeptRing is destroyed, at its exit: a loop ending
// later (in another thread_local's destructor, say) must not touch it. A
// bool, so that it outlives every thread_local with a destructor.
thread_local bool t_kept_ring_gone = false;

KeptRing::~KeptRing() {
  Release();
  t_kept_ring_gone = true;
}

// The thread's KeptRing, or nullptr once the thread is exiting past it.
KeptRing* ThreadKeptRing() { return t_kept_ring_gone ? nullptr : &t_kept_ring; }

}  // namespace

bool IoUringAvailable() { return Support() == kAvailable; }

void ReleaseThreadRing() {
  if (KeptRing* kept = ThreadKeptRing()) kept->Release();
}

namespace internal {

bool UringOp::Start(UringRing* ring, Fiber* fiber,
                    std::coroutine_handle<> self) {
  if (!BeginWait(this, fiber, self)) {
    outcome_ = Outcome::kCancelled;
    return false;
  }
  ring_ = ring;
  ring->Queue(this);
  in_start_ = true;
  const bool done = ring->SleepFromCall(this);
  in_start_ = false;
  if (!done) return true;
  EndWaitUnsuspended(this);  // done in the sleep: the task goes on
  ++ring->calls_done_in_own_sleep_;
  return false;
}

void UringOp::OnCancel() noexcept {
  if (!submitted_ && ring_->Withdraw(this)) {
    outcome_ = Outcome::kCancelled;
    if (!in_start_) EndWait(this);
    return;
  }
  // In flight, or taken by a worker (whose result then stands).
  if (!cancel_requested_) {
    cancel_requested_ = true;
    if (submitted_) ring_->Cancel(this);
  }
}

void UringOp::Finish(int res) {
  result_ = res;
  if (!cancel_requested_) {
    outcome_ = Outcome::kDone;
  } else if (res == -ECANCELED || res == -EINTR) {
    outcome_ = Outcome::kCancelled;
  } else {
    outcome_ = Outcome::kDoneCancelled;
  }
  if (!in_start_) EndWait(this);  // else Start sees the outcome
}

std::unique_ptr<UringRing> UringRing::Create(Scheduler* scheduler,
                                             bool* short_of_resources) {
  const int support = Support();
  *short_of_resources = support == kShortOfResources;
  if (support != kAvailable) return nullptr;
  if (KeptRing* thread_kept = ThreadKeptRing()) {
    if (std::unique_ptr<SysUring> kept = thread_kept->Take()) {
      CountRing(RingEvent::kReused);
      return std::unique_ptr<UringRing>(
          new UringRing(scheduler, std::move(kept)));
    }
  }
  for (const RingSize& size : kRingSizes) {
    std::unique_ptr<SysUring> ring;
    int r = SysUring::Create(size.sq_entries, size.cq_entries, &ring);
    if (r == 0) {
      CountRing(RingEvent::kSetUp);
      return std::unique_ptr<UringRing>(
          new UringRing(scheduler, std::move(ring)));
    }
    if (r == -ENOMEM) continue;  // a smaller one may fit
    *short_of_resources = ShortOfResources(r);
    return nullptr;
  }
  *short_of_resources = true;
  return nullptr;  // the loop's calls go to its workers
}

UringRing::UringRing(Scheduler* scheduler, std::unique_ptr<SysUring> ring)
    : scheduler_(scheduler),
      ring_(std::move(ring)),
      epoch_(ForkEpoch()),
      keep_(scheduler->fs_options().keep_ring),
      max_in_flight_(MaxInFlight(ring_->sq_entries(), ring_->cq_entries())),
      max_chains_in_flight_(static_cast<unsigned>(std::clamp<size_t>(
          max_in_flight_ / kChainLength, 1, kMaxChainsInFlight))) {
  share_ = std::make_unique<CallShare>(this, scheduler);
}

UringRing::~UringRing() {
  // Every task has finished, so nothing of theirs is queued or in flight.
  while (queue_.PopFront() != nullptr) {
  }
  while (paced_queue_.PopFront() != nullptr) {
  }
  while (chained_queue_.PopFront() != nullptr) {
  }
  // The share waits for its worker's job to end. A forked child's copy is
  // leaked instead: the worker, if one was at work, is the parent's thread,
  // whose end the copy would wait for in vain.
  if (share_->forked_copy()) {
    static_cast<void>(share_.release());
  } else {
    share_.reset();
  }
  if (epoch_ != 0 && epoch_ != ForkEpoch()) {
    // A forked child ending its copy of its parent's loop: the ring is the
    // parent's, whose own wakeup poll and closes carry the same tags.
    ring_->Abandon();
    return;
  }
  // With keep_ring, a ring of the first size that is idle is kept for the
  // thread's next loop; a smaller one, set up when memory was short, is
  // not, so that the next loop tries the first size again.
  KeptRing* thread_kept = keep_ ? ThreadKeptRing() : nullptr;
  if (thread_kept != nullptr && epoch_ != 0 && in_flight_ == 0 &&
      !stray_seen_ && ring_->sq_entries() == kRingSizes[0].sq_entries &&
      ring_->cq_entries() == kRingSizes[0].cq_entries && Quiesce()) {
    thread_kept->Keep(std::move(ring_), epoch_);
    return;
  }
  // Closed: tearing the ring down ends what cancellation requests remain.
  // The wakeup poll is cancelled first: with a poll in flight, the kernel
  // took 50 ms here to release the ring's memory, still counted against
  // RLIMIT_MEMLOCK meanwhile, against 16 ms without. Closes still prepared
  // are handed over with it (they run inline).
  if (!ring_lost_ && wakeup_polled_) CancelWakeupPoll();
  if (!ring_lost_ && unsubmitted_ > 0) SubmitAtEnd();
  // A ring whose descriptor was lost is unmapped, its number left alone.
}

bool UringRing::SubmitAtEnd() { return EnteredAtEnd(ring_->Submit()); }

bool UringRing::EnteredAtEnd(int r) {
  if (r >= 0 || r == -EAGAIN || r == -EBUSY) {
    CountUnsubmitted();
    return true;
  }
  if (DescriptorLost(r)) {
    ring_->Abandon();
    ring_lost_ = true;
  }
  return false;
}

bool UringRing::CancelWakeupPoll() {
  // Not NextSqe, which stops the process when io_uring_enter fails.
  struct io_uring_sqe* sqe = ring_->GetSqe();
  if (sqe == nullptr) {
    if (!SubmitAtEnd()) return false;
    sqe = ring_->GetSqe();
    if (sqe == nullptr) return false;
  }
  SysUring::PrepCancel(sqe, kWakeupTag);
  SysUring::SetUserData(sqe, kCancelTag);
  ++unsubmitted_;
  ++unreaped_cancels_;
  return true;
}

void UringRing::CountStray() {
  // A completion of a submission this loop did not make: one an earlier
  // loop left behind. Never expected; the ring is then not kept.
  stray_seen_ = true;
  g_stray_completions.fetch_add(1, std::memory_order_relaxed);
}

uint64_t UringRing::StrayCompletions() {
  return g_stray_completions.load(std::memory_order_relaxed);
}

bool UringRing::Idle() const {
  return !queued() && in_flight_ == 0 && unsubmitted_ == 0 &&
         unreaped_closes_ == 0 && unreaped_cancels_ == 0 && !wakeup_polled_;
}

bool UringRing::Quiesce() {
  if (!ring_->waits_with_timeout()) return false;  // no bounded wait
  // The poll of this loop's wakeup eventfd must not outlive the loop.
  if (wakeup_polled_ && !CancelWakeupPoll()) return false;
  if (unsubmitted_ > 0 && !SubmitAtEnd()) return false;
  Reap();
  for (int i = 0; i < kQuiesceWaits && !Idle(); ++i) {
    if (!EnteredAtEnd(ring_->SubmitAndWait(kQuiesceWaitNs))) return false;
    Reap();
  }
  return Idle();
}

void UringRing::CloseLater(Fd fd) {
  struct io_uring_sqe* sqe = NextSqe();
  SysUring::PrepClose(sqe, fd.release());
  SysUring::SetUserData(sqe, kCloseTag);
  ++unsubmitted_;
  if (++unreaped_closes_ >= kMaxPendingCloses) {
    // Closes complete inline: take their completions now, so a burst of
    // them never fills the completion queue (see MaxInFlight).
    Enter();
    Reap();
  }
}

void UringRing::Queue(UringOp* op) {
  if (op->loop_may_make_) {
    share_->Add(op);
  } else {
    QueueOf(op).PushBack(op);
  }
  ++waits_;
  scheduler_->AddFdWaits(1);  // keeps the loop looking at completions
}

bool UringRing::Withdraw(UringOp* op) {
  if (op->loop_may_make_) {
    if (!share_->Withdraw(op)) return false;
  } else {
    QueueOf(op).Remove(op);
  }
  --waits_;
  scheduler_->AddFdWaits(-1);
  return true;
}

void UringRing::FinishMade(UringOp* op, int res, bool by_worker) {
  --waits_;
  scheduler_->AddFdWaits(-1);
  if (!by_worker) ++made_on_loop_;
  op->made_by_worker_ = by_worker;
  op->Finish(res);
}

bool UringRing::CanMakeQueuedOnLoop() const { return share_->has_waiting(); }

uint64_t UringRing::made_by_worker() const { return share_->made_by_worker(); }

void UringRing::Cancel(UringOp* op) {
  struct io_uring_sqe* sqe = NextSqe();
  SysUring::PrepCancel(sqe, reinterpret_cast<uintptr_t>(op));
  SysUring::SetUserData(sqe, kCancelTag);
  ++unsubmitted_;
  ++unreaped_cancels_;
}

struct io_uring_sqe* UringRing::NextSqe() {
  struct io_uring_sqe* sqe = ring_->GetSqe();
  while (sqe == nullptr) {
    // The submission queue is full: hand it over to make room.
    int r = ring_->Submit();
    if (r < 0 && r != -EAGAIN && r != -EBUSY) {
      fprintf(stderr, "capfs runtime: io_uring_enter failed: %s\n",
              strerror(-r));
      abort();
    }
    if (r >= 0) unsubmitted_ = 0;
    sqe = ring_->GetSqe();
    if (sqe == nullptr) Reap();  // the kernel is short of completion room
  }
  return sqe;
}

size_t UringRing::PrepareQueued(size_t max) {
  size_t prepared = 0;
  while (prepared < max && in_flight_ < max_in_flight_) {
    UringOp* op = queue_.PopFront();
    if (op == nullptr) break;
    PrepareOne(op, NextSqe());
    ++prepared;
  }
  // Then the calls that go to the kernel's workers, paced.
  while (prepared < max && in_flight_ < max_in_flight_ && paced_room_ > 0) {
    UringOp* op = paced_queue_.PopFront();
    if (op == nullptr) break;
    PrepareOne(op, NextSqe());
    ++prepared;
    if (--paced_room_ == 0 && !paced_queue_.empty()) ++paced_holds_;
  }
  // Then the calls that allow chaining, in chains: each chain's submissions
  // go to the kernel in one io_uring_enter (nothing is handed over between
  // two of them), all but its last hard-linked to the next.
  UringOp* last = nullptr;  // of the chain being prepared
  struct io_uring_sqe* last_sqe = nullptr;
  size_t length = 0;
  while (prepared < max && in_flight_ < max_in_flight_ &&
         !chained_queue_.empty()) {
    // A chain starts only with room in flight for all of it (or for what
    // is queued), so that a small ring's completions, freeing room one at a
    // time, do not start chains of one; or when no chain is in flight.
    if (last == nullptr &&
        (chains_in_flight_ >= max_chains_in_flight_ ||
         (chains_in_flight_ > 0 &&
          max_in_flight_ - in_flight_ <
              std::min(kChainLength, chained_queue_.size())))) {
      break;
    }
    struct io_uring_sqe* sqe = ring_->GetSqe();
    if (sqe == nullptr) {
      // The submission queue is full: the chain ends here, and NextSqe
      // hands it over whole.
      if (last != nullptr) EndChain(last);
      last = nullptr;
      if (chains_in_flight_ >= max_chains_in_flight_) break;
      sqe = NextSqe();
    }
    UringOp* op = chained_queue_.PopFront();
    if (last != nullptr) {
      SysUring::HardLinkToNext(last_sqe);
      ++chained_calls_;
    }
    PrepareOne(op, sqe);
    ++prepared;
    if (last == nullptr) length = 0;
    last = op;
    last_sqe = sqe;
    if (++length == kChainLength) {
      EndChain(last);
      last = nullptr;
    }
  }
  if (last != nullptr) EndChain(last);
  return prepared;
}

void UringRing::PrepareOne(UringOp* op, struct io_uring_sqe* sqe) {
  op->Prepare(sqe);
  SysUring::SetUserData(sqe, reinterpret_cast<uintptr_t>(op));
  op->submitted_ = true;
  ++in_flight_;
  ++unsubmitted_;
}

void UringRing::EndChain(UringOp* last) {
  last->ends_chain_ = true;
  if (++chains_in_flight_ > peak_chains_in_flight_) {
    peak_chains_in_flight_ = chains_in_flight_;
  }
}

bool UringRing::HandOverAllButLast() {
  while (queue_.size() + chained_queue_.size() > kSubmitBatch) {
    if (PrepareQueued(kSubmitBatch) == 0) break;  // no room in flight
    const size_t runnable_before = scheduler_->runnable();
    Enter();
    Reap();
    // Most of the batch completed inline. A few completions of calls the
    // kernel's workers make do not stop the hand-over: the loop would run
    // a few tasks per turn and enter the kernel more often for the rest.
    if (scheduler_->runnable() - runnable_before >= kSubmitBatch / 2) {
      return true;
    }
  }
  return false;
}

void UringRing::Flush() {
  paced_room_ = kPacedBatch;
  HandOver();
}

void UringRing::FlushAll() {
  paced_room_ = SIZE_MAX;
  HandOver();
}

void UringRing::HandOver() {
  if (HandOverAllButLast()) return;
  PrepareQueued();
  if (unsubmitted_ > 0) Enter();
  Reap();
}

bool UringRing::Wait(int64_t timeout_ns, int wakeup_fd) {
  slept_ = false;
  paced_room_ = kPacedBatch;
  // Tasks a batch made runnable run first: the loop does not sleep.
  if (HandOverAllButLast()) return false;
  PrepareQueued();
  if (scheduler_->runnable() > 0) {
    // Completions taken in the hand-over: those tasks run first, whatever
    // the calls in flight wait for.
    if (unsubmitted_ > 0) Enter();
    Reap();
    return false;
  }
  if (holds_back_calls()) {
    // More wait to go to the kernel's workers: back for them soon, whether
    // or not the ones in flight complete.
    if (ring_->waits_with_timeout()) {
      if (timeout_ns < 0 || timeout_ns > kPacedWaitNs) {
        timeout_ns = kPacedWaitNs;
      }
    } else {
      paced_room_ = SIZE_MAX;  // no bounded sleep: all of them now
      PrepareQueued();
    }
  }
  slept_ = true;
  if (!wakeup_polled_) {
    // A post from another thread writes the eventfd: this poll's completion
    // then ends the wait. It stays in flight until that happens.
    struct io_uring_sqe* sqe = NextSqe();
    SysUring::PrepPollIn(sqe, wakeup_fd);
    SysUring::SetUserData(sqe, kWakeupTag);
    ++unsubmitted_;
    wakeup_polled_ = true;
  }
  wakeup_seen_ = false;
  int r = ring_->SubmitAndWait(timeout_ns);
  if (r < 0 && r != -EAGAIN && r != -EBUSY) {
    fprintf(stderr, "capfs runtime: io_uring_enter failed: %s\n", strerror(-r));
    abort();
  }
  CountUnsubmitted();
  Reap();
  // Completions freed room in flight for queued calls.
  if (queued()) Flush();
  return wakeup_seen_;
}

void UringRing::MakeQueuedOnLoop() { share_->MakeSome(); }

void UringRing::CountUnsubmitted() { unsubmitted_ = ring_->unsubmitted(); }

void UringRing::Enter() {
  int r = ring_->Submit();
  if (r < 0 && r != -EAGAIN && r != -EBUSY) {
    // A bug (a bad submission), or a ring the process may no longer enter
    // (a seccomp filter installed while the loop runs, its descriptor
    // closed behind capfs's back): going on would hang the tasks waiting
    // on the ring.
    fprintf(stderr, "capfs runtime: io_uring_enter failed: %s\n", strerror(-r));
    abort();
  }
  if (r >= 0) CountUnsubmitted();
}

bool UringRing::SleepFromCall(const UringOp* op) {
  if (!scheduler_->SleepInRingFromCall()) return false;
  if (slept_) ++sleeps_from_calls_;
  return op->outcome() != UringOp::Outcome::kPending;
}

void UringRing::OnReady() {
  Reap();
  // Completions freed room in flight for queued calls.
  if (queued()) Flush();
}

void UringRing::Reap() {
  ring_->Reap([&](uint64_t user_data, int res) {
    if (user_data == kCancelTag) {
      if (unreaped_cancels_ == 0) return CountStray();
      --unreaped_cancels_;
      return;
    }
    if (user_data == kCloseTag) {
      if (unreaped_closes_ == 0) return CountStray();
      --unreaped_closes_;
      return;
    }
    if (user_data == kWakeupTag) {
      if (!wakeup_polled_) return CountStray();
      wakeup_polled_ = false;
      wakeup_seen_ = true;
      return;
    }
    --in_flight_;
    --waits_;
    scheduler_->AddFdWaits(-1);
    UringOp* op = reinterpret_cast<UringOp*>(static_cast<uintptr_t>(user_data));
    // A chain's completions come in its order: the last one's ends it.
    if (op->ends_chain_) --chains_in_flight_;
    op->Finish(res);
  });
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

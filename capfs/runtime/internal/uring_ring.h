// UringRing: a loop's io_uring, and the submissions tasks await on it.
//
// One ring per loop, set up the first time a task needs it (Scheduler::
// ring) when io_uring is available (fs_paths.h): smaller when the kernel is
// short of memory for the first size (ENOMEM: the user's RLIMIT_MEMLOCK is
// spent), and none, the loop's calls going to its workers, when even the
// smallest is refused (tried again later: Scheduler::ring). A loop with
// AsyncFsOptions::keep_ring leaves its ring, once idle, to its thread's
// next loop, which takes it instead of setting one up (fork_epoch.h keeps a
// forked child off its parent's).
//
// The ring's own descriptor, readable while completions wait, is watched by
// the loop's backend like any descriptor (for reading only) once the loop
// has had to look at the backend while ring calls were in flight, so epoll
// and poll both wake for completions; completions the loop took meanwhile
// leave nothing behind to read, so they cause no further wakeup. A loop
// that only ever waits on the ring never has it watched: its completions
// then wake no one else.
//
// A task awaits a UringCall: the call is queued in user space, and the
// scheduler hands the queued calls to the kernel at the end of the loop's
// turn (Flush), 128 in one io_uring_enter, so a thousand calls started in
// one turn cost eight syscalls, not a thousand. Completions the kernel
// posted inline during a submission are taken at once; the rest when the
// loop next looks. When most of a batch (half or more) completed inline, the
// rest of the queue waits until those tasks have run (the turn's end may
// hand one more batch over meanwhile), so a burst of O_PATH opens whose
// tasks close their descriptors holds two batches of them at once at most. When
// the loop has nothing to run and every task waiting on a descriptor waits on
// the ring (and no queued call is one the loop may make itself: below), it
// submits and sleeps in that same io_uring_enter (Wait), as a
// program using liburing by hand does, rather than submit, sleep in the
// backend and be woken through it: a post from another thread still wakes
// it (the loop's wakeup eventfd is polled by the ring), and so does the
// next timer (the enter's timeout). Fewer calls are in flight than half the
// completion queue's size (1,887 of the first size's 4,096: room is kept
// for their cancellations, closes and the wakeup poll); more calls wait in
// the queue.
//
// A call made when the loop has nothing else to do (no other task runnable,
// nothing posted, no timer due, every descriptor wait on the ring, no queued
// call the loop may make itself) does not
// wait for the turn's end: its await_suspend submits it and sleeps in that
// same io_uring_enter itself (Scheduler::SleepInRingFromCall), and when the
// call has completed there the task goes on without suspending. The wait is
// the loop's own, so posts, timers and other completions end it as they
// would; the task suspends if its call is still queued or in flight.
//
// Calls that allow chaining (UringOp::AllowChaining: a burst's STATX on
// tmpfs) wait in a queue of their own and go to the kernel after the
// others, hard-linked in chains of 8 that one of the kernel's workers makes
// one after another, 16 chains in flight at most. Calls that may be made in
// user space (UringOp::AllowLoopToMake: the same STATX where the loop's
// path serves) never reach the kernel's ring: they wait in the ring's
// CallShare (call_share.h), whose worker takes them from the front while
// the loop, when it has nothing to run and would sleep, in the ring or in
// its backend, takes them from the back (MakeQueuedOnLoop), and a few every
// kResumesPerPoll resumes when it always has tasks to run: it does not
// sleep while any waits, and the loop and one worker share the burst.
//
// Plain opens, which capfs forces to the kernel's workers
// (UringOp::GoesToWorkers), wait in a queue of their own too, and go to the
// kernel kPacedBatch (32) at most per hand-over (each Flush, each Wait; a
// Wait hands over before it sleeps and again once it wakes, so up to 64 a
// sleep): the loop sleeps for a completion between them, as a program using
// liburing by hand submits a queue's worth and waits for one completion
// before it submits more. Handed over all at once, a burst of 1,000 took
// about 14 % longer (3.07 against 2.69 ms; async_fs_bench,
// docs/runtime.md). So that calls in flight that wait long (a FIFO's open
// waits for a writer) cannot hold the rest back for good, a loop that
// sleeps in the ring with such calls still queued sleeps kPacedWaitNs (50
// us) at most, and one about to sleep in its backend hands them all over
// first (FlushAll). A loop that always has tasks to run hands over 32 a
// turn.
//
// Cancellation: a call still queued is withdrawn and never reaches the
// kernel (kCancelled). One in flight gets an IORING_OP_ASYNC_CANCEL, and
// the task waits for the call's own completion, which says whether the
// cancellation won (-ECANCELED, -EINTR: kCancelled) or lost
// (kDoneCancelled: the call's result stands, for its owner to release). A
// call in the CallShare is withdrawn unless its worker has taken it; then
// it is made and ends kDoneCancelled.
//
// The ring also closes descriptors for the nonblocking Dir calls (an O_PATH
// descriptor a Stat opened on the loop: CloseLater), with the turn's other
// submissions, so that a thousand stats in one turn do not make a thousand
// close(2) calls. At most 64 wait at once; the descriptors are never seen
// by anyone else.
//
// Loop-thread only, except UringOp::MakeInUserSpace of a call the
// CallShare's worker takes. Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_URING_RING_H_
#define CAPFS_RUNTIME_INTERNAL_URING_RING_H_

#include <stdint.h>

#include <coroutine>
#include <memory>
#include <utility>

#include "capfs/fd.h"
#include "capfs/internal/resolve.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/intrusive_list.h"
#include "capfs/sys/uring.h"

namespace capfs {
namespace runtime {
namespace internal {

class CallShare;
class Scheduler;
class UringRing;
struct UringQueueTag;

class UringOp : public Waiter, public ListLink<UringQueueTag> {
 public:
  enum class Outcome {
    kPending,
    kDone,           // the call ran; result() is its return value
    kDoneCancelled,  // it ran although the task was cancelled meanwhile
    kCancelled,      // it never ran, or the kernel stopped it
  };

  Outcome outcome() const { return outcome_; }
  int result() const { return result_; }

  // Before the call is awaited: it may be chained to the calls queued just
  // before and after it that allow it too. The kernel then makes a chain's
  // calls one after another on one of its workers, which takes the next
  // without being woken for it (IOSQE_IO_HARDLINK; each call keeps its own
  // result), kChainLength calls at most in a chain. Only for a call the
  // kernel always makes on its workers and that seldom waits long: a STATX
  // of a name on an in-memory filesystem, where only a mount point reaches
  // a slower filesystem. The calls behind it in its chain wait for it, and
  // a cancellation of one of them, which the kernel cannot find before its
  // turn comes, loses the race (kDoneCancelled). A call cancelled on a
  // worker does not cancel the rest of its chain (hard links), but one the
  // kernel failed to submit does: the calls after it complete with
  // -ECANCELED, which the caller must take for "not made". Not with
  // AllowLoopToMake: where the loop's path serves, such a STATX goes to the
  // CallShare instead, and is chained only with that path off.
  void AllowChaining() { chainable_ = true; }

  // Before the call is awaited: the call is made in user space
  // (MakeInUserSpace) rather than by the kernel's ring, by the loop's thread or
  // one of its workers, whichever takes it first (call_share.h): the loop when
  // it has nothing to run and would sleep (UringRing::MakeQueuedOnLoop). Only
  // for a call that cannot wait on the loop's thread (a STATX of a name on an
  // in-memory filesystem). Not with AllowChaining. made_by_worker() then
  // says which made it.
  void AllowLoopToMake() { loop_may_make_ = true; }
  // After the call: it was made in user space (AllowLoopToMake), never by
  // the kernel's ring; and by a worker, not the loop.
  bool made_in_user_space() const { return loop_may_make_; }
  bool made_by_worker() const { return made_by_worker_; }

  // Before the call is awaited: the call is forced to the kernel's workers
  // (a plain open, IOSQE_ASYNC), so the ring hands such calls over a few at
  // a time (see the file comment). Not with AllowChaining.
  void GoesToWorkers() { paced_ = true; }

 protected:
  UringOp() = default;
  UringOp(UringOp&& other) noexcept
      : Waiter(std::move(other)),
        ListLink<UringQueueTag>(std::move(other)),
        chainable_(other.chainable_),
        paced_(other.paced_),
        loop_may_make_(other.loop_may_make_) {}
  ~UringOp() = default;

  // From await_suspend: queues the call on `ring` for `fiber`, and sleeps in
  // the ring for it when the loop would do nothing else first. False when
  // the task must not suspend: already cancelled (outcome kCancelled), or
  // the call completed in that sleep.
  bool Start(UringRing* ring, Fiber* fiber, std::coroutine_handle<> self);

 private:
  friend class CallShare;
  friend class UringRing;
  // Fills the submission (the ring tags it).
  virtual void Prepare(struct io_uring_sqe* sqe) = 0;
  // The call made in user space, with the syscall the submission asks of
  // the kernel: its return value (0 or -errno). Called only after
  // AllowLoopToMake, on the loop's thread or a worker's; it touches nothing
  // but the call's own fields.
  virtual int MakeInUserSpace() { return -ENOSYS; }
  void OnCancel() noexcept override;
  void Finish(int res);

  UringRing* ring_ = nullptr;
  Outcome outcome_ = Outcome::kPending;
  int result_ = 0;
  bool submitted_ = false;
  bool cancel_requested_ = false;
  bool in_start_ = false;       // Start is sleeping: the task has not suspended
  bool chainable_ = false;      // AllowChaining
  bool paced_ = false;          // GoesToWorkers
  bool loop_may_make_ = false;  // AllowLoopToMake
  bool ends_chain_ = false;     // the last call of its chain (chainable_ only)
  bool made_by_worker_ = false;  // AllowLoopToMake: a worker made it
  // AllowLoopToMake: taken from the CallShare to be made (its mutex guards
  // it).
  bool shared_taken_ = false;
};

// The awaitable: `fill(sqe)` fills the submission.
template <typename Fill>
class UringCall final : public UringOp {
 public:
  UringCall(UringRing* ring, Fill fill) : ring_(ring), fill_(std::move(fill)) {}

  bool await_ready() noexcept { return false; }
  template <RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Start(ring_, self.promise().fiber(), self);
  }
  Outcome await_resume() noexcept { return outcome(); }

 private:
  void Prepare(struct io_uring_sqe* sqe) override { fill_(sqe); }

  UringRing* ring_;
  Fill fill_;
};

class UringRing final : public ::capfs::internal::FdCloser {
 public:
  // A ring for `scheduler`, or nullptr when io_uring cannot be used; then
  // `*short_of_resources` says whether only a resource spent for now was
  // lacking (ENOMEM for every size, or EMFILE, ENFILE; or so at the probe).
  static std::unique_ptr<UringRing> Create(Scheduler* scheduler,
                                           bool* short_of_resources);
  UringRing(const UringRing&) = delete;
  UringRing& operator=(const UringRing&) = delete;
  ~UringRing();

  // The ring's descriptor, for the backend (readable while completions
  // wait).
  int fd() const { return ring_->fd(); }

  // True when calls wait to be handed to the kernel.
  bool has_work() const { return queued() || unsubmitted_ > 0; }
  // Calls queued or in flight: each is one of the scheduler's fd waits.
  unsigned waits() const { return waits_; }
  // True when Wait may be given `timeout_ns` (-1: no limit).
  bool CanWait(int64_t timeout_ns) const {
    return timeout_ns < 0 || ring_->waits_with_timeout();
  }

  // Hands the queued calls to the kernel, then takes the completions
  // already posted; stops after a batch that completed inline
  // (HandOverAllButLast), leaving the rest queued until its tasks have run.
  // Of the calls that go to the kernel's workers, hands over kPacedBatch at
  // most.
  void Flush();
  // Flush, handing over every queued call that goes to the kernel's
  // workers (as long as there is room in flight, and unless a batch that
  // completed inline made tasks runnable: then the loop does not sleep):
  // before the loop sleeps in its backend, which no completion of the
  // ring's may end in time.
  void FlushAll();
  // Hands the queued calls to the kernel and, in the same syscall, sleeps
  // until a completion is posted, `wakeup_fd` (the loop's wakeup eventfd)
  // becomes readable, or `timeout_ns` passes (CanWait); then takes the
  // completions. True when `wakeup_fd` was seen readable (the caller drains
  // it). Does not sleep when the hand-over made tasks runnable (a batch
  // that completed inline, HandOverAllButLast, or completions taken
  // meanwhile): they run first (slept_ is then false). Sleeps kPacedWaitNs
  // at most while calls that go to the kernel's workers are still queued.
  // The scheduler does not call it while CanMakeQueuedOnLoop(): it makes
  // those calls first, with sleeping_ clear, so that the share's posts
  // meanwhile wake no one.
  bool Wait(int64_t timeout_ns, int wakeup_fd);
  // The ring's descriptor was reported readable: takes the posted
  // completions.
  void OnReady();
  // From `op`'s Start: Scheduler::SleepInRingFromCall. True when `op`
  // completed in that sleep.
  bool SleepFromCall(const UringOp* op);

  // For tests: how many calls slept in the ring themselves, and how many of
  // them completed there, their tasks going on without suspending.
  uint64_t sleeps_from_calls() const { return sleeps_from_calls_; }
  uint64_t calls_done_in_own_sleep() const { return calls_done_in_own_sleep_; }
  // For the scheduler, when the loop has nothing to run and would sleep, in
  // the ring or in its backend, while CanMakeQueuedOnLoop(), and every
  // kResumesPerPoll resumes when it always has tasks to run: makes
  // up to CallShare::kBatch (8) of the calls waiting in the share itself
  // (UringOp::MakeInUserSpace), the last queued first; their tasks are then
  // runnable. The share's worker goes on meanwhile, so a burst's calls are
  // shared between it and the loop.
  void MakeQueuedOnLoop();
  // True when MakeQueuedOnLoop would (most likely) make a call: calls wait
  // in the share that no one has taken.
  bool CanMakeQueuedOnLoop() const;
  // For tests: chains in flight at most (kMaxChainsInFlight, or fewer on a
  // ring with less room in flight).
  unsigned max_chains_in_flight() const { return max_chains_in_flight_; }
  // For tests: calls the loop made itself (MakeQueuedOnLoop), and calls
  // the share's worker made (counted as it makes them, on its thread).
  uint64_t made_on_loop() const { return made_on_loop_; }
  uint64_t made_by_worker() const;
  // For tests: calls handed over hard-linked to the call before them
  // (AllowChaining), and the most chains that were in flight at once.
  uint64_t chained_calls() const { return chained_calls_; }
  unsigned peak_chains_in_flight() const { return peak_chains_in_flight_; }

  // True when calls that go to the kernel's workers wait in the queue
  // although there is room in flight for them: Flush held them back.
  bool holds_back_calls() const {
    return !paced_queue_.empty() && in_flight_ < max_in_flight_;
  }
  // The loop begins to sleep in its backend: counts it when
  // holds_back_calls(), which FlushAll prevents.
  void CountBackendSleep() {
    if (holds_back_calls()) ++backend_sleeps_holding_back_;
  }
  // For tests: hand-overs that stopped with calls that go to the kernel's
  // workers still queued, their kPacedBatch spent.
  uint64_t paced_holds() const { return paced_holds_; }
  // For tests: sleeps in the backend begun while the ring held calls back.
  // Always 0.
  uint64_t backend_sleeps_holding_back() const {
    return backend_sleeps_holding_back_;
  }
  // For tests: completions reaped, over every ring of the process, whose
  // tag said a close, a cancellation or the wakeup poll this ring had not
  // made (left by an earlier loop on the same ring). Always 0.
  static uint64_t StrayCompletions();

  // Closes `fd` with the turn's submissions (FdCloser).
  void CloseLater(Fd fd) override;

  // For UringOp: queues `op`; withdraws it, still queued (false: a call a
  // worker has taken, not to be withdrawn); cancels it in flight.
  void Queue(UringOp* op);
  bool Withdraw(UringOp* op);
  void Cancel(UringOp* op);

 private:
  friend class CallShare;  // FinishMade
  friend class UringOp;    // counts calls_done_in_own_sleep_

  UringRing(Scheduler* scheduler,
            std::unique_ptr<::capfs::internal::SysUring> ring);
  struct io_uring_sqe* NextSqe();
  // `op`, made in user space (AllowLoopToMake) with result `res` by the
  // loop or a worker: ends its wait, as its completion would.
  void FinishMade(UringOp* op, int res, bool by_worker);
  // True when calls wait in any queue.
  bool queued() const {
    return !queue_.empty() || !paced_queue_.empty() || !chained_queue_.empty();
  }
  // The queue `op` waits in until it is handed over.
  IntrusiveList<UringOp, UringQueueTag>& QueueOf(const UringOp* op) {
    if (op->chainable_) return chained_queue_;
    return op->paced_ ? paced_queue_ : queue_;
  }
  // Prepares a submission for each queued call, `max` at most, as long as
  // there is room in flight; returns how many. The calls that go to the
  // kernel's workers come after the others, paced_room_ of them at most
  // (then counted off it); the calls that allow chaining come last, in chains
  // of kChainLength at most. A chain starts only while fewer than
  // max_chains_in_flight_ are in flight, and, unless none is, with room in
  // flight for all of it; the rest wait in their queue for a chain to complete.
  size_t PrepareQueued(size_t max = SIZE_MAX);
  // Fills `sqe` for `op`, tagged with it, and counts it in flight.
  void PrepareOne(UringOp* op, struct io_uring_sqe* sqe);
  // `last` ends the chain being prepared: one more chain in flight.
  void EndChain(UringOp* last);
  // While more calls are queued than one batch (kSubmitBatch), hands them
  // to the kernel a batch at a time and takes the completions posted inline;
  // true, leaving the rest queued, once half a batch or more completed so
  // (the loop runs those tasks first). False when the rest fits in one
  // batch (the caller hands it over) or in flight is full (the rest waits
  // for completions).
  bool HandOverAllButLast();
  // Flush and FlushAll, once paced_room_ is set.
  void HandOver();
  // Hands every prepared submission to the kernel.
  void Enter();
  void Reap();
  // After a submission that may have stopped short: what is left.
  void CountUnsubmitted();
  // At the loop's end: hands the prepared submissions over; false, never
  // stopping the process, when io_uring_enter fails (a seccomp filter
  // installed since). When the descriptor is no longer the ring's (EBADF,
  // EOPNOTSUPP), the ring is abandoned (ring_lost_).
  bool SubmitAtEnd();
  // At the loop's end: what an io_uring_enter that returned `r` leaves. True
  // when it went through (or the kernel asked to try again later); false
  // when it failed, the ring then abandoned if its descriptor was lost.
  bool EnteredAtEnd(int r);
  // At the loop's end: prepares the cancellation of the wakeup eventfd's
  // poll; false when the submission queue has no room and the kernel
  // refused to take it.
  bool CancelWakeupPoll();
  // Counts a completion no submission of this loop's stands for.
  void CountStray();
  // True when nothing is queued, prepared, in flight or left to reap.
  bool Idle() const;
  // At the loop's end: cancels the wakeup poll, hands over what is
  // prepared and waits (boundedly) for every completion still due. True
  // when the ring is then Idle, so that the thread may keep it; false,
  // never stopping the process, when io_uring_enter fails.
  bool Quiesce();

  Scheduler* scheduler_;
  std::unique_ptr<::capfs::internal::SysUring> ring_;
  // Calls that may be made in user space (AllowLoopToMake).
  std::unique_ptr<CallShare> share_;
  uint64_t epoch_;  // ForkEpoch() when this loop got the ring
  bool keep_;       // kept for the thread's next loop at the end (keep_ring)
  IntrusiveList<UringOp, UringQueueTag> queue_;  // not handed over yet
  // Calls that go to the kernel's workers (GoesToWorkers), not handed over
  // yet.
  IntrusiveList<UringOp, UringQueueTag> paced_queue_;
  // Calls that allow chaining, not handed over yet.
  IntrusiveList<UringOp, UringQueueTag> chained_queue_;
  // Of paced_queue_, how many this hand-over may still prepare.
  size_t paced_room_ = 0;
  unsigned waits_ = 0;  // calls queued or in flight
  unsigned in_flight_ = 0;
  unsigned chains_in_flight_ = 0;  // their last call not completed yet
  unsigned max_in_flight_;
  // kMaxChainsInFlight, or fewer on a ring with less room in flight.
  unsigned max_chains_in_flight_;
  unsigned unsubmitted_ = 0;       // prepared submissions not yet entered
  unsigned unreaped_closes_ = 0;   // CloseLater's, not reaped yet
  unsigned unreaped_cancels_ = 0;  // cancellation requests, not reaped yet
  bool wakeup_polled_ = false;     // a poll of the wakeup eventfd in flight
  bool wakeup_seen_ = false;       // that poll completed since Wait began
  bool stray_seen_ = false;        // CountStray ran: the ring is not kept
  bool ring_lost_ = false;         // its descriptor was not ours: abandoned
  bool slept_ = false;             // the last Wait slept
  uint64_t sleeps_from_calls_ = 0;
  uint64_t calls_done_in_own_sleep_ = 0;
  uint64_t chained_calls_ = 0;
  uint64_t made_on_loop_ = 0;
  uint64_t backend_sleeps_holding_back_ = 0;
  uint64_t paced_holds_ = 0;
  unsigned peak_chains_in_flight_ = 0;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_URING_RING_H_

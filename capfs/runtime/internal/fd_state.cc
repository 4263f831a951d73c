#include "capfs/runtime/internal/fd_state.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include "capfs/status.h"
#include "capfs/sys/io.h"

namespace capfs {
namespace runtime {
namespace internal {

bool FdReadyAwaiter::Suspend(Fiber* fiber, std::coroutine_handle<> self) {
  if (state_->closed()) {
    closed_ = true;
    return false;
  }
  if (!BeginWait(this, fiber, self)) {
    cancelled_ = true;
    return false;
  }
  state_->AddWaiter(this);
  return true;
}

void FdReadyAwaiter::OnCancel() noexcept {
  state_->RemoveWaiter(this);
  cancelled_ = true;
  EndWait(this);
}

absl::Status FdReadyAwaiter::await_resume() {
  if (cancelled_) return absl::CancelledError(op_);
  if (closed_) return ErrnoError(EBADF, op_, "");
  return absl::OkStatus();
}

bool FdJob::StartOn(Fiber* fiber, std::coroutine_handle<> self) {
  if (!Start(fiber, self)) return false;
  state_->AddJob(this);
  return true;
}

void FdJob::Settled() noexcept { state_->RemoveJob(this); }

FdRingTurn::~FdRingTurn() {
  if (held_) state_->ReleaseRingTurn();
}

bool FdRingTurn::await_ready() noexcept {
  if (state_->closed()) {
    closed_ = true;
    return true;
  }
  held_ = state_->TakeRingTurn();
  return held_;
}

bool FdRingTurn::Suspend(Fiber* fiber, std::coroutine_handle<> self) {
  if (!BeginWait(this, fiber, self)) {
    cancelled_ = true;
    return false;
  }
  state_->QueueForRingTurn(this);
  return true;
}

void FdRingTurn::OnCancel() noexcept {
  state_->LeaveRingTurnQueue(this);
  cancelled_ = true;
  EndWait(this);
}

absl::Status FdRingTurn::await_resume() {
  if (closed_) return ErrnoError(EBADF, op_, "");
  if (cancelled_) return absl::CancelledError(op_);
  return absl::OkStatus();
}

bool FdState::TakeRingTurn() {
  if (ring_turn_taken_) return false;
  ring_turn_taken_ = true;
  return true;
}

void FdState::ReleaseRingTurn() {
  if (FdRingTurn* next = ring_turns_.PopFront()) {
    next->Wake(/*closed=*/false);  // the turn passes on, still taken
    return;
  }
  ring_turn_taken_ = false;
}

void FdState::RemoveRingCall() {
  --ring_calls_;
  if (ring_calls_ == 0 && jobs_.empty() && close_deferred_) {
    close_deferred_ = false;
    fd_.Close().IgnoreError();  // nobody is left to tell
  }
}

absl::StatusOr<FdState*> FdState::Create(
    Scheduler* scheduler, Fd fd, FdIo io, uint32_t short_drains, bool socket,
    bool capped_writes, IntrusiveList<FdState, ResourceTag>* resources) {
  FdState* state = new FdState(scheduler, std::move(fd), io, short_drains,
                               socket, capped_writes);
  if (io != FdIo::kWorker) {
    int r = scheduler->backend().Add(state->fd_.get(), state,
                                     kReadable | kWritable);
    if (r == -EPERM) {
      // Not pollable after all (epoll refuses files that are always ready):
      // serve it from the workers.
      state->io_ = FdIo::kWorker;
    } else if (r < 0) {
      state->Unref();
      return ErrnoError(-r, "watch descriptor", "");
    } else {
      state->watched_ = true;
    }
  }
  state->resources_ = resources;
  resources->PushBack(state);
  return state;
}

FdState::FdState(Scheduler* scheduler, Fd fd, FdIo io, uint32_t short_drains,
                 bool socket, bool capped_writes)
    : scheduler_(scheduler),
      fd_(std::move(fd)),
      io_(io),
      short_drains_(short_drains),
      socket_(socket),
      capped_writes_(capped_writes) {}

void FdState::Destroy() {
  Close().IgnoreError();  // the owner dropped it without asking
  delete this;
}

IoTarget FdState::target(uint32_t direction) const {
  // MSG_NOSIGNAL: a send to a closed peer is EPIPE, never a SIGPIPE.
  int msg_flags = 0;
  if (socket_) {
    msg_flags = MSG_DONTWAIT | (direction == kWritable ? MSG_NOSIGNAL : 0);
  }
  IoTarget target{fd(), msg_flags, SIZE_MAX};
  if (capped_writes_ && direction == kWritable) target.max_bytes = PIPE_BUF;
  return target;
}

bool FdState::PollNow(uint32_t direction) {
  struct pollfd p = {fd_.get(), 0, 0};
  if (direction & kReadable) p.events |= POLLIN;
  if (direction & kWritable) p.events |= POLLOUT;
  return SysPollNow(&p) != 0;  // an error (never expected) counts as ready
}

void FdState::OnReady(uint32_t ready) {
  if (ready & kReadClosed) hung_up_ |= kReadable;
  if (ready & kWriteClosed) hung_up_ |= kWritable;
  ready &= kReadable | kWritable;
  maybe_ready_ |= ready;
  if (ready & kReadable) {
    ++reports_[0];
    while (FdReadyAwaiter* w = readers_.PopFront()) {
      scheduler_->AddFdWaits(-1);
      w->Wake(/*closed=*/false);
    }
  }
  if (ready & kWritable) {
    ++reports_[1];
    while (FdReadyAwaiter* w = writers_.PopFront()) {
      scheduler_->AddFdWaits(-1);
      w->Wake(/*closed=*/false);
    }
  }
  UpdateInterest();
}

void FdState::AddWaiter(FdReadyAwaiter* waiter) {
  (waiter->direction() == kReadable ? readers_ : writers_).PushBack(waiter);
  scheduler_->AddFdWaits(1);
  UpdateInterest();
}

void FdState::RemoveWaiter(FdReadyAwaiter* waiter) {
  (waiter->direction() == kReadable ? readers_ : writers_).Remove(waiter);
  scheduler_->AddFdWaits(-1);
  UpdateInterest();
}

void FdState::UpdateInterest() {
  if (!watched_) return;
  uint32_t interest =
      (readers_.empty() ? 0 : kReadable) | (writers_.empty() ? 0 : kWritable);
  if (interest != interest_) {
    interest_ = interest;
    scheduler_->backend().SetInterest(fd_.get(), interest);
  }
}

absl::Status FdState::Close() {
  if (closed_) return absl::OkStatus();
  if (close_hook_ != nullptr) {
    std::exchange(close_hook_, nullptr)(close_hook_arg_, fd_.get());
  }
  closed_ = true;
  if (watched_) {
    scheduler_->backend().Remove(fd_.get());
    watched_ = false;
  }
  for (auto* list : {&readers_, &writers_}) {
    while (FdReadyAwaiter* w = list->PopFront()) {
      scheduler_->AddFdWaits(-1);
      w->Wake(/*closed=*/true);
    }
  }
  // Jobs not started never run (each leaves the list as it is withdrawn);
  // started ones keep the number until they are done.
  jobs_.ForEach([](FdJob* job) { job->WithdrawForClose(); });
  while (FdRingTurn* turn = ring_turns_.PopFront()) turn->Wake(/*closed=*/true);
  if (resources_ != nullptr) {
    resources_->Remove(this);
    resources_ = nullptr;
  }
  if (!jobs_.empty() || ring_calls_ > 0) {
    close_deferred_ = true;
    return absl::OkStatus();
  }
  return fd_.Close();
}

void FdState::RemoveJob(FdJob* job) {
  jobs_.Remove(job);
  if (jobs_.empty() && ring_calls_ == 0 && close_deferred_) {
    close_deferred_ = false;
    fd_.Close().IgnoreError();  // nobody is left to tell
  }
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

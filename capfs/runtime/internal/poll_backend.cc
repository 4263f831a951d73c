// The poll(2) backend, as Eio's POSIX scheduler has it: the pollfd array holds
// exactly the descriptors some task waits on, updated in place (no syscall)
// when waits start and end, and passed whole to each ppoll(2).

#include <poll.h>

#include <memory>
#include <vector>

#include "capfs/runtime/internal/backend.h"
#include "capfs/sys/io.h"

namespace capfs {
namespace runtime {
namespace internal {
namespace {

class PollBackend final : public Backend {
 public:
  const char* name() const override { return "poll"; }

  // The directions come with SetInterest.
  int Add(int fd, void* token, uint32_t) override {
    if (static_cast<size_t>(fd) >= by_fd_.size()) {
      by_fd_.resize(static_cast<size_t>(fd) + 1);
    }
    by_fd_[fd] = Watch{token, kNoSlot};
    ++watched_;
    return 0;
  }

  void SetInterest(int fd, uint32_t interest) override {
    Watch& watch = by_fd_[fd];
    if (interest == 0) {
      if (watch.slot != kNoSlot) DropSlot(watch);
      return;
    }
    short events = 0;
    if (interest & kReadable) events |= POLLIN | POLLRDHUP;
    if (interest & kWritable) events |= POLLOUT;
    if (watch.slot == kNoSlot) {
      watch.slot = pollfds_.size();
      pollfds_.push_back({fd, events, 0});
      tokens_.push_back(watch.token);
    } else {
      pollfds_[watch.slot].events = events;
    }
  }

  void Remove(int fd) override {
    Watch& watch = by_fd_[fd];
    if (watch.slot != kNoSlot) DropSlot(watch);
    watch.token = nullptr;
    --watched_;
  }

  int Wait(int64_t timeout_ns, std::vector<ReadyEvent>* out) override {
    int n = SysPoll(pollfds_.data(), pollfds_.size(), timeout_ns);
    if (n <= 0) return n;
    for (size_t i = 0; i < pollfds_.size() && n > 0; ++i) {
      short e = pollfds_[i].revents;
      if (e == 0) continue;
      --n;
      uint32_t ready = 0;
      if (e & (POLLIN | POLLPRI)) ready |= kReadable;
      if (e & POLLOUT) ready |= kWritable;
      if (e & POLLRDHUP) ready |= kReadable | kReadClosed;
      if (e & (POLLERR | POLLHUP | POLLNVAL)) {
        ready |= kReadable | kWritable | kReadClosed | kWriteClosed;
      }
      out->push_back({tokens_[i], ready});
    }
    return 0;
  }

  size_t watched() const override { return watched_; }

 private:
  static constexpr size_t kNoSlot = ~size_t{0};
  struct Watch {
    void* token = nullptr;
    size_t slot = kNoSlot;  // index in pollfds_ while some task waits
  };

  // Moves the last slot into `watch`'s so the array stays dense.
  void DropSlot(Watch& watch) {
    size_t slot = watch.slot;
    size_t last = pollfds_.size() - 1;
    if (slot != last) {
      pollfds_[slot] = pollfds_[last];
      tokens_[slot] = tokens_[last];
      by_fd_[pollfds_[slot].fd].slot = slot;
    }
    pollfds_.pop_back();
    tokens_.pop_back();
    watch.slot = kNoSlot;
  }

  std::vector<struct pollfd> pollfds_;
  std::vector<void*> tokens_;  // parallel to pollfds_
  std::vector<Watch> by_fd_;   // indexed by descriptor number
  size_t watched_ = 0;
};

}  // namespace

std::unique_ptr<Backend> MakePollBackend() {
  return std::make_unique<PollBackend>();
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

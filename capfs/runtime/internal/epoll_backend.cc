// The epoll(7) backend: every descriptor is added once, edge-triggered, for
// the directions it may be waited on (both, for a task's descriptor), so
// waiting and re-waiting cost no epoll_ctl at all and a wait's cost does not
// grow with the number of idle descriptors.

#include <errno.h>
#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/backend.h"
#include "capfs/status.h"
#include "capfs/sys/io.h"

namespace capfs {
namespace runtime {
namespace internal {
namespace {

class EpollBackend final : public Backend {
 public:
  explicit EpollBackend(Fd epoll) : epoll_(std::move(epoll)) {}

  const char* name() const override { return "epoll"; }

  int Add(int fd, void* token, uint32_t directions) override {
    struct epoll_event event = {};
    event.events = EPOLLET;
    if (directions & kReadable) event.events |= EPOLLIN | EPOLLRDHUP;
    if (directions & kWritable) event.events |= EPOLLOUT;
    event.data.ptr = token;
    int r = SysEpollCtl(epoll_.get(), EPOLL_CTL_ADD, fd, &event);
    if (r == 0) ++watched_;
    return r;
  }

  // Edge-triggered over both directions: nothing to change.
  void SetInterest(int, uint32_t) override {}

  void Remove(int fd) override {
    SysEpollCtl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    --watched_;
  }

  int Wait(int64_t timeout_ns, std::vector<ReadyEvent>* out) override {
    int n = SysEpollWait(epoll_.get(), events_, kMaxEvents, timeout_ns);
    if (n < 0) return n;
    for (int i = 0; i < n; ++i) {
      uint32_t e = events_[i].events;
      uint32_t ready = 0;
      if (e & (EPOLLIN | EPOLLPRI)) ready |= kReadable;
      if (e & EPOLLOUT) ready |= kWritable;
      if (e & EPOLLRDHUP) ready |= kReadable | kReadClosed;
      if (e & (EPOLLERR | EPOLLHUP)) {
        ready |= kReadable | kWritable | kReadClosed | kWriteClosed;
      }
      out->push_back({events_[i].data.ptr, ready});
    }
    return 0;
  }

  size_t watched() const override { return watched_; }

 private:
  static constexpr int kMaxEvents = 256;

  Fd epoll_;
  size_t watched_ = 0;
  struct epoll_event events_[kMaxEvents];
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeEpollBackend() {
  int fd = SysEpollCreate();
  if (fd < 0) return ErrnoError(-fd, "epoll_create1", "");
  return std::make_unique<EpollBackend>(Fd(fd));
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

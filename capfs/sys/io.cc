#include "capfs/sys/io.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "capfs/sys/fs.h"

namespace capfs {
namespace runtime {
namespace internal {
namespace {

using ::capfs::internal::RetryEintr;

struct timespec ToTimespec(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  return ts;
}

// Milliseconds for epoll_wait(2), rounded up so a timer is never woken early.
int ToMillisRoundedUp(int64_t ns) {
  if (ns < 0) return -1;
  int64_t ms = (ns + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

// Set once epoll_pwait2 turns out to be missing (Linux < 5.11).
std::atomic<bool> no_epoll_pwait2{false};

}  // namespace

int SysEpollCreate() {
  return RetryEintr([] { return ::epoll_create1(EPOLL_CLOEXEC); });
}

int SysEpollCtl(int epfd, int op, int fd, struct epoll_event* event) {
  return RetryEintr([&] { return ::epoll_ctl(epfd, op, fd, event); });
}

int SysEpollWait(int epfd, struct epoll_event* events, int max_events,
                 int64_t timeout_ns) {
  int r;
  if (!no_epoll_pwait2.load(std::memory_order_relaxed)) {
    struct timespec ts = ToTimespec(timeout_ns);
    r = ::epoll_pwait2(epfd, events, max_events, timeout_ns < 0 ? nullptr : &ts,
                       nullptr);
    if (r >= 0) return r;
    if (errno != ENOSYS) return errno == EINTR ? 0 : -errno;
    no_epoll_pwait2.store(true, std::memory_order_relaxed);
  }
  r = ::epoll_wait(epfd, events, max_events, ToMillisRoundedUp(timeout_ns));
  if (r >= 0) return r;
  return errno == EINTR ? 0 : -errno;
}

int SysPoll(struct pollfd* fds, size_t count, int64_t timeout_ns) {
  struct timespec ts = ToTimespec(timeout_ns);
  int r = ::ppoll(fds, count, timeout_ns < 0 ? nullptr : &ts, nullptr);
  if (r >= 0) return r;
  return errno == EINTR ? 0 : -errno;
}

int SysPollNow(struct pollfd* fd) {
  return RetryEintr([&] { return ::poll(fd, 1, 0); });
}

ssize_t SysRecv(int fd, void* buf, size_t size, int flags) {
  return RetryEintr([&] { return ::recv(fd, buf, size, flags); });
}

ssize_t SysSend(int fd, const void* buf, size_t size, int flags) {
  return RetryEintr([&] { return ::send(fd, buf, size, flags); });
}

ssize_t SysRecvmsg(int fd, struct msghdr* msg, int flags) {
  return RetryEintr([&] { return ::recvmsg(fd, msg, flags); });
}

ssize_t SysSendmsg(int fd, const struct msghdr* msg, int flags) {
  return RetryEintr([&] { return ::sendmsg(fd, msg, flags); });
}

int SysEventfd() {
  return RetryEintr([] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); });
}

int SysPipe(int fds[2], bool nonblocking) {
  int flags = O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0);
  return RetryEintr([&] { return ::pipe2(fds, flags); });
}

int64_t MonotonicNowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

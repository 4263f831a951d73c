#include "capfs/sys/net.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "capfs/sys/fs.h"

namespace capfs {
namespace runtime {
namespace internal {
namespace {

using ::capfs::internal::RetryEintr;

// Blocks SIGPIPE on this thread for its lifetime, unless it already was;
// after an EPIPE, takes back the SIGPIPE the kernel queued for this thread.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t old;
    // pthread_sigmask cannot fail with valid arguments.
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old);
    blocked_here_ = !sigismember(&old, SIGPIPE);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    if (blocked_here_) ::pthread_sigmask(SIG_UNBLOCK, &pipe_, nullptr);
  }

  // The call gave `r`: after EPIPE, the signal it raised is pending on this
  // thread (send_sig to the writer); take it, so it never arrives.
  void After(ssize_t r) {
    if (r != -EPIPE) return;
    const struct timespec zero = {0, 0};
    int s;
    do {
      s = ::sigtimedwait(&pipe_, nullptr, &zero);
    } while (s < 0 && errno == EINTR);
  }

 private:
  sigset_t pipe_;
  bool blocked_here_ = false;
};

}  // namespace

int SysSocket(int domain, int type, int protocol) {
  return RetryEintr([&] {
    return ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  });
}

int SysSocketpair(int domain, int type, int protocol, int fds[2]) {
  return RetryEintr([&] {
    return ::socketpair(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol,
                        fds);
  });
}

int SysBind(int fd, const struct sockaddr* addr, socklen_t len) {
  return RetryEintr([&] { return ::bind(fd, addr, len); });
}

int SysListen(int fd, int backlog) {
  return RetryEintr([&] { return ::listen(fd, backlog); });
}

int SysAccept(int fd, struct sockaddr* addr, socklen_t* len) {
  return RetryEintr(
      [&] { return ::accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC); });
}

int SysConnect(int fd, const struct sockaddr* addr, socklen_t len) {
  int r = ::connect(fd, addr, len);
  if (r == 0) return 0;
  return errno == EINTR ? -EINPROGRESS : -errno;
}

int SysGetsockopt(int fd, int level, int name, void* value, socklen_t* len) {
  return RetryEintr([&] { return ::getsockopt(fd, level, name, value, len); });
}

int SysSetsockopt(int fd, int level, int name, const void* value,
                  socklen_t len) {
  return RetryEintr([&] { return ::setsockopt(fd, level, name, value, len); });
}

int SysGetsockname(int fd, struct sockaddr* addr, socklen_t* len) {
  return RetryEintr([&] { return ::getsockname(fd, addr, len); });
}

int SysGetpeername(int fd, struct sockaddr* addr, socklen_t* len) {
  return RetryEintr([&] { return ::getpeername(fd, addr, len); });
}

int SysShutdown(int fd, int how) {
  return RetryEintr([&] { return ::shutdown(fd, how); });
}

ssize_t SysSendto(int fd, const void* buf, size_t size, int flags,
                  const struct sockaddr* addr, socklen_t len) {
  return RetryEintr([&] { return ::sendto(fd, buf, size, flags, addr, len); });
}

ssize_t SysRecvfrom(int fd, void* buf, size_t size, int flags,
                    struct sockaddr* addr, socklen_t* len) {
  return RetryEintr(
      [&] { return ::recvfrom(fd, buf, size, flags, addr, len); });
}

ssize_t SysWriteNoSigpipe(int fd, const void* buf, size_t size) {
  SigpipeBlock block;
  ssize_t r = RetryEintr([&] { return ::write(fd, buf, size); });
  block.After(r);
  return r;
}

ssize_t SysWritevNoSigpipe(int fd, const struct iovec* iov, int count) {
  SigpipeBlock block;
  ssize_t r = RetryEintr([&] { return ::writev(fd, iov, count); });
  block.After(r);
  return r;
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

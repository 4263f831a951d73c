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

// How SIGPIPE stands on this thread (see net.h): blocked by capfs for good
// (a worker), or until the outermost EndSigpipeHold.
thread_local bool sigpipe_held = false;
thread_local bool sigpipe_held_for_good = false;
// capfs blocked it (the owner had not): unblock when the hold ends.
thread_local bool sigpipe_unblock_at_end = false;
thread_local int sigpipe_hold_scopes = 0;

sigset_t SigpipeOnly() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  return pipe;
}

// Blocks SIGPIPE on this thread; true if it was not blocked before.
// pthread_sigmask cannot fail with valid arguments.
bool BlockSigpipe() {
  const sigset_t pipe = SigpipeOnly();
  sigset_t old;
  ::pthread_sigmask(SIG_BLOCK, &pipe, &old);
  return !sigismember(&old, SIGPIPE);
}

void UnblockSigpipe() {
  const sigset_t pipe = SigpipeOnly();
  ::pthread_sigmask(SIG_UNBLOCK, &pipe, nullptr);
}

// After EPIPE, the signal the call raised is pending on this thread
// (send_sig to the writer); take it, so it never arrives.
void TakeSigpipeAfter(ssize_t r) {
  if (r != -EPIPE) return;
  const sigset_t pipe = SigpipeOnly();
  const struct timespec zero = {0, 0};
  int s;
  do {
    s = ::sigtimedwait(&pipe, nullptr, &zero);
  } while (s < 0 && errno == EINTR);
}

// Runs `call` (a write returning a count or -errno) with SIGPIPE blocked
// on this thread, as net.h says.
template <typename Call>
ssize_t WithoutSigpipe(Call call) {
  if (!sigpipe_held && sigpipe_hold_scopes > 0) {
    sigpipe_unblock_at_end = BlockSigpipe();
    sigpipe_held = true;
  }
  if (sigpipe_held) {
    ssize_t r = RetryEintr(call);
    TakeSigpipeAfter(r);
    return r;
  }
  const bool blocked_here = BlockSigpipe();
  ssize_t r = RetryEintr(call);
  TakeSigpipeAfter(r);
  if (blocked_here) UnblockSigpipe();
  return r;
}

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
  return WithoutSigpipe([&] { return ::write(fd, buf, size); });
}

ssize_t SysWritevNoSigpipe(int fd, const struct iovec* iov, int count) {
  return WithoutSigpipe([&] { return ::writev(fd, iov, count); });
}

void HoldSigpipeOnThisThread() {
  BlockSigpipe();
  sigpipe_held = true;
  sigpipe_held_for_good = true;
  sigpipe_unblock_at_end = false;
}

void BeginSigpipeHold() { ++sigpipe_hold_scopes; }

void EndSigpipeHold() {
  if (--sigpipe_hold_scopes > 0 || !sigpipe_held || sigpipe_held_for_good) {
    return;
  }
  if (sigpipe_unblock_at_end) UnblockSigpipe();
  sigpipe_held = false;
  sigpipe_unblock_at_end = false;
}

bool SigpipeHeldOnlyByCapfs() { return sigpipe_held && sigpipe_unblock_at_end; }

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

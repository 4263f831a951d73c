// The system calls of the event loop (waits, eventfd, pipes, send/recv), each
// behind one wrapper.
//
// Same conventions as capfs/sys/fs.h: EINTR is retried (except by
// the waits, which return early so that their caller recomputes the timeout),
// results are the call's own or -errno, and every descriptor created is
// close-on-exec.
//
// Not part of the API.

#ifndef CAPFS_SYS_IO_H_
#define CAPFS_SYS_IO_H_

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

namespace capfs {
namespace runtime {
namespace internal {

int SysEpollCreate();
int SysEpollCtl(int epfd, int op, int fd, struct epoll_event* event);
// epoll_pwait2(2) with a nanosecond timeout (-1: none). EINTR gives 0.
int SysEpollWait(int epfd, struct epoll_event* events, int max_events,
                 int64_t timeout_ns);
// ppoll(2) with a nanosecond timeout (-1: none). EINTR gives 0.
int SysPoll(struct pollfd* fds, size_t count, int64_t timeout_ns);
// poll(2) of one descriptor with no timeout: a look, retried on EINTR.
int SysPollNow(struct pollfd* fd);
// recv(2), send(2), recvmsg(2), sendmsg(2).
ssize_t SysRecv(int fd, void* buf, size_t size, int flags);
ssize_t SysSend(int fd, const void* buf, size_t size, int flags);
ssize_t SysRecvmsg(int fd, struct msghdr* msg, int flags);
ssize_t SysSendmsg(int fd, const struct msghdr* msg, int flags);
// An eventfd(2) counter, nonblocking.
int SysEventfd();
// pipe2(2), both ends nonblocking when `nonblocking`.
int SysPipe(int fds[2], bool nonblocking);
// Nanoseconds on CLOCK_MONOTONIC.
int64_t MonotonicNowNs();

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_SYS_IO_H_

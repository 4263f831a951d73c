// The system calls of sockets (socket, bind, listen, accept4, connect,
// socket options and names, shutdown, sendto, recvfrom, socketpair) and of
// SIGPIPE handling, each behind one wrapper.
//
// Same conventions as capfs/sys/fs.h: EINTR is retried, results are the
// call's own or -errno, and every descriptor created is close-on-exec (and,
// here, nonblocking: the runtime serves every socket on its loop).
//
// Not part of the API.

#ifndef CAPFS_SYS_NET_H_
#define CAPFS_SYS_NET_H_

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace capfs {
namespace runtime {
namespace internal {

// socket(2) and socketpair(2) with SOCK_NONBLOCK | SOCK_CLOEXEC added.
int SysSocket(int domain, int type, int protocol);
int SysSocketpair(int domain, int type, int protocol, int fds[2]);
int SysBind(int fd, const struct sockaddr* addr, socklen_t len);
int SysListen(int fd, int backlog);
// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
int SysAccept(int fd, struct sockaddr* addr, socklen_t* len);
// connect(2). EINTR is not retried (a retry would say EALREADY): it gives
// -EINPROGRESS, which is what it means for a nonblocking socket.
int SysConnect(int fd, const struct sockaddr* addr, socklen_t len);
int SysGetsockopt(int fd, int level, int name, void* value, socklen_t* len);
int SysSetsockopt(int fd, int level, int name, const void* value,
                  socklen_t len);
int SysGetsockname(int fd, struct sockaddr* addr, socklen_t* len);
int SysGetpeername(int fd, struct sockaddr* addr, socklen_t* len);
int SysShutdown(int fd, int how);
ssize_t SysSendto(int fd, const void* buf, size_t size, int flags,
                  const struct sockaddr* addr, socklen_t len);
ssize_t SysRecvfrom(int fd, void* buf, size_t size, int flags,
                    struct sockaddr* addr, socklen_t* len);

// write(2) and writev(2) that never raise SIGPIPE, for descriptors that are
// not sockets (pipes, FIFOs, ttys: MSG_NOSIGNAL needs a socket). SIGPIPE is
// blocked on the calling thread for the call, and the one an EPIPE leaves
// pending on this thread is taken back (sigtimedwait with a zero timeout).
// Signal dispositions are not touched. How long it stays blocked depends on
// the thread:
//  - a thread capfs runs (a worker: HoldSigpipeOnThisThread) has it blocked
//    for good, and a write costs no mask change;
//  - a thread running a loop (inside a SigpipeHoldScope) has it blocked by
//    its first write until the scope ends, which restores the mask as it
//    was: no mask change per write either;
//  - any other thread has it blocked around each call (two
//    rt_sigprocmask), unless it already was.
// When SIGPIPE was already blocked, a SIGPIPE pending on the thread before
// an EPIPE is indistinguishable from the one the EPIPE raised, and is taken
// too.
ssize_t SysWriteNoSigpipe(int fd, const void* buf, size_t size);
ssize_t SysWritevNoSigpipe(int fd, const struct iovec* iov, int count);

// For a thread capfs starts and owns (a worker): blocks SIGPIPE on it for
// the rest of its life.
void HoldSigpipeOnThisThread();

// Bracket a thread's run of a loop (Loop::Run): the thread's writes to pipes
// keep SIGPIPE blocked from the first one until the outermost bracket ends,
// which unblocks it if capfs blocked it (a thread whose owner had it blocked
// keeps it blocked). Meanwhile a raw write(2) by other code on the thread
// gets EPIPE and leaves its SIGPIPE pending until then, and threads and
// processes started from the thread inherit the mask (Spawn's children do
// not: SysSpawn hands them the mask without capfs's hold).
void BeginSigpipeHold();
void EndSigpipeHold();

// True when SIGPIPE is blocked on this thread by BeginSigpipeHold's hold
// and was not blocked by the thread's owner: a child spawned from here must
// get it unblocked, as its parent's own mask has it.
bool SigpipeHeldOnlyByCapfs();

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_SYS_NET_H_

// io_uring(7) through liburing: a ring, its submissions and its completions.
//
// The runtime gives each loop a ring, kept by its thread for the next loop
// (capfs/runtime/internal/uring_ring.h); this is the part that talks to the
// kernel. Preparing a submission and
// taking completions only touch memory; Submit and SubmitAndWait are the
// syscalls. The ring's descriptor is close-on-exec (the kernel makes it so)
// and readable (poll(2), epoll(7)) while completions wait to be taken.
//
// Not part of the API.

#ifndef CAPFS_SYS_URING_H_
#define CAPFS_SYS_URING_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <memory>

#include "capfs/sys/fs.h"

struct io_uring;
struct io_uring_sqe;
struct iovec;
struct statx;

namespace capfs {
namespace internal {

class SysUring {
 public:
  // A ring with room for `sq_entries` submissions and `cq_entries`
  // completions at once, whose every opcode the runtime uses is supported.
  // 0, or -errno: ENOSYS (no io_uring), EPERM (seccomp,
  // kernel.io_uring_disabled), EOPNOTSUPP (an opcode is missing), ...
  // Raises the calling thread's limit on the kernel's workers for bound
  // work (RaiseBoundWorkers, below), for all its rings; a kernel that
  // refuses (before Linux 5.15) keeps its own.
  static int Create(unsigned sq_entries, unsigned cq_entries,
                    std::unique_ptr<SysUring>* out);
  SysUring(const SysUring&) = delete;
  SysUring& operator=(const SysUring&) = delete;
  ~SysUring();

  unsigned sq_entries() const;
  unsigned cq_entries() const;
  // The ring's descriptor, for poll(2) and epoll(7).
  int fd() const;
  // True when SubmitAndWait can be given a timeout (IORING_FEAT_EXT_ARG,
  // Linux 5.11).
  bool waits_with_timeout() const;

  // A free submission slot, or nullptr when the submission queue is full
  // (Submit first).
  struct io_uring_sqe* GetSqe();
  // Hands every prepared submission to the kernel: the count, or -errno.
  int Submit();
  // Hands every prepared submission to the kernel and, in the same
  // io_uring_enter, waits until a completion is posted or `timeout_ns`
  // passes (-1: no limit; else only when waits_with_timeout()). A signal
  // ends the wait early, as a timeout does. 0, or -errno for anything else.
  int SubmitAndWait(int64_t timeout_ns);
  // Prepared submissions the kernel has not taken yet.
  unsigned unsubmitted() const;
  // io_uring_enter(2) with nothing to submit and nothing to wait for: 0 when
  // the descriptor is still a ring this thread may enter, else -errno (EPERM
  // or ENOSYS from a seccomp filter installed since, EBADF or EOPNOTSUPP
  // when the descriptor was closed, or its number reused by something else).
  int Ping();
  // Unmaps the ring's memory without closing its descriptor, which is no
  // longer this ring's to close (the process is a fork of the one that set
  // it up, or the number was closed behind capfs's back); the destructor
  // then does nothing more.
  void Abandon();

  // Calls `fn(user_data, res)` for every completion posted now and consumes
  // them; returns how many there were.
  template <typename Fn>
  unsigned Reap(Fn fn) {
    unsigned n = 0;
    uint64_t user_data;
    int res;
    while (PeekOne(&user_data, &res)) {
      ++n;
      fn(user_data, res);
    }
    return n;
  }

  // Preparing submissions: each fills `sqe` and tags it with `user_data`.
  // Paths and structures must stay put until the completion arrives.
  static void PrepOpenat2(struct io_uring_sqe* sqe, int dirfd, const char* path,
                          OpenHow* how);
  static void PrepMkdirat(struct io_uring_sqe* sqe, int dirfd, const char* path,
                          mode_t mode);
  // statx(2) of `path` beneath `dirfd` with `flags` (AT_*), the basic
  // fields (STATX_BASIC_STATS) into `*out`. The kernel always makes it on
  // one of its workers.
  static void PrepStatx(struct io_uring_sqe* sqe, int dirfd, const char* path,
                        int flags, struct statx* out);
  static void PrepUnlinkat(struct io_uring_sqe* sqe, int dirfd,
                           const char* path, int flags);
  static void PrepRenameat(struct io_uring_sqe* sqe, int old_dirfd,
                           const char* old_path, int new_dirfd,
                           const char* new_path);
  static void PrepSymlinkat(struct io_uring_sqe* sqe, const char* target,
                            int dirfd, const char* path);
  static void PrepLinkat(struct io_uring_sqe* sqe, int old_dirfd,
                         const char* old_path, int new_dirfd,
                         const char* new_path);
  // read(2), write(2), readv(2), writev(2) at the file's position (offset
  // -1: the position is used and advanced, as those calls do). At most
  // MAX_RW_COUNT bytes are asked for, as read(2) and write(2) cap them.
  static void PrepRead(struct io_uring_sqe* sqe, int fd, void* buf,
                       size_t size);
  static void PrepWrite(struct io_uring_sqe* sqe, int fd, const void* buf,
                        size_t size);
  static void PrepReadv(struct io_uring_sqe* sqe, int fd,
                        const struct iovec* iov, unsigned count);
  static void PrepWritev(struct io_uring_sqe* sqe, int fd,
                         const struct iovec* iov, unsigned count);
  // A one-shot poll(2) of `fd` for POLLIN (IORING_OP_POLL_ADD): completes
  // when `fd` is readable.
  static void PrepPollIn(struct io_uring_sqe* sqe, int fd);
  // close(2) of `fd` (IORING_OP_CLOSE).
  static void PrepClose(struct io_uring_sqe* sqe, int fd);
  // Cancels the submission tagged `target` (IORING_OP_ASYNC_CANCEL).
  static void PrepCancel(struct io_uring_sqe* sqe, uint64_t target);
  // Makes the kernel run the submission from its workers rather than try it
  // inline without blocking first (IOSQE_ASYNC).
  static void ForceAsync(struct io_uring_sqe* sqe);
  // Makes the kernel start the next submission of the same io_uring_enter
  // only once this one has completed, whatever its result
  // (IOSQE_IO_HARDLINK): from its workers, the same worker runs the next
  // without queueing it again. The next submission must be handed over in
  // the same io_uring_enter as this one.
  static void HardLinkToNext(struct io_uring_sqe* sqe);
  static void SetUserData(struct io_uring_sqe* sqe, uint64_t user_data);

 private:
  SysUring();
  // The kernel's workers (io-wq) of the calling thread make at most min(SQ
  // entries of the thread's first ring, 4 x online CPUs) "bound" calls at
  // once (opens, stats, mkdir, unlink, rename, link, symlink, reads and
  // writes of regular files), the rest waiting in the kernel's queue behind
  // them; "unbound" ones (reads and writes of pipes, sockets, ttys) are
  // limited by RLIMIT_NPROC. An open is bound work whatever it opens, and a
  // plain open of a FIFO waits in a worker for the other end, so 4 FIFOs
  // opened at once on the thread that made capfs/runtime's 4-entry probe
  // ring first (8 on a 2-CPU machine otherwise) stalled every later bound
  // call of the thread's rings until a writer came: an untrusted tree could
  // wedge a loop that way. The thread's bound limit is raised to
  // RLIMIT_NPROC, as if each waiting call had a thread of its own, as a
  // blocking open(2) does; the thread's other rings get it too. The kernel
  // starts a worker for a call (IOSQE_ASYNC) when none is free, so a burst
  // of calls that wait for I/O (a cold disk, NFS) may now start up to one
  // per call in flight (the loop keeps 1,887 in flight at most), each
  // counted against RLIMIT_NPROC until it has been idle for about 5 s; a
  // burst of calls that never wait starts fewer, but more than before (6 to
  // 41 here for 1,000 opens in flight on tmpfs, against 4).
  void RaiseBoundWorkers();
  bool PeekOne(uint64_t* user_data, int* res);

  std::unique_ptr<struct io_uring> ring_;
  bool live_ = false;  // set up, so to be torn down
};

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_SYS_URING_H_

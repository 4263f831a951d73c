#include "capfs/sys/uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <limits>

namespace capfs {
namespace internal {

SysUring::SysUring() : ring_(new struct io_uring()) {}

SysUring::~SysUring() {
  if (live_) io_uring_queue_exit(ring_.get());
}

int SysUring::Create(unsigned sq_entries, unsigned cq_entries,
                     std::unique_ptr<SysUring>* out) {
  std::unique_ptr<SysUring> ring(new SysUring());
  // Completions the kernel's workers post wait for the loop's thread to
  // enter the kernel (COOP_TASKRUN: at its next syscall or interrupt)
  // instead of interrupting it with an IPI, which on a VM is an exit to the
  // hypervisor; TASKRUN_FLAG marks the ring while some wait, so that
  // PeekOne (liburing's peek) enters the kernel to post them when it finds
  // none in memory. Before Linux 5.19, EINVAL: the plain ring.
  int r;
  for (unsigned coop :
       {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0u}) {
    struct io_uring_params params = {};
    params.flags = IORING_SETUP_CQSIZE | coop;
    params.cq_entries = cq_entries;
    do {
      r = io_uring_queue_init_params(sq_entries, ring->ring_.get(), &params);
    } while (r == -EINTR);
    if (r != -EINVAL) break;
  }
  if (r < 0) return r;
  ring->live_ = true;
  struct io_uring_probe* probe = io_uring_get_probe_ring(ring->ring_.get());
  if (probe == nullptr) return -EOPNOTSUPP;
  bool supported = true;
  for (int op : {IORING_OP_OPENAT2, IORING_OP_STATX, IORING_OP_MKDIRAT,
                 IORING_OP_UNLINKAT, IORING_OP_RENAMEAT, IORING_OP_SYMLINKAT,
                 IORING_OP_LINKAT, IORING_OP_READ, IORING_OP_WRITE,
                 IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_CLOSE,
                 IORING_OP_ASYNC_CANCEL, IORING_OP_POLL_ADD}) {
    supported = supported && io_uring_opcode_supported(probe, op);
  }
  io_uring_free_probe(probe);
  if (!supported) return -EOPNOTSUPP;
  ring->RaiseBoundWorkers();
  *out = std::move(ring);
  return 0;
}

void SysUring::RaiseBoundWorkers() {
  // [bound, unbound]: INT_MAX, which the kernel lowers to RLIMIT_NPROC (the
  // most it takes), and 0, which leaves the unbound limit alone. Not asked
  // first: the kernel reports an unbound limit above INT_MAX (RLIMIT_NPROC
  // unlimited, as in many containers) as 0.
  unsigned limits[2] = {static_cast<unsigned>(std::numeric_limits<int>::max()),
                        0};
  int r;
  do {
    r = io_uring_register_iowq_max_workers(ring_.get(), limits);
  } while (r == -EINTR);
  // Failure (EINVAL before Linux 5.15, a seccomp filter's errno) leaves the
  // kernel's limit: the ring works, with the stall described in uring.h.
}

unsigned SysUring::sq_entries() const { return ring_->sq.ring_entries; }

unsigned SysUring::cq_entries() const { return ring_->cq.ring_entries; }

int SysUring::fd() const { return ring_->ring_fd; }

bool SysUring::waits_with_timeout() const {
  return (ring_->features & IORING_FEAT_EXT_ARG) != 0;
}

struct io_uring_sqe* SysUring::GetSqe() {
  return io_uring_get_sqe(ring_.get());
}

int SysUring::Submit() {
  int r;
  do {
    r = io_uring_submit(ring_.get());
  } while (r == -EINTR);
  return r;
}

int SysUring::SubmitAndWait(int64_t timeout_ns) {
  int r;
  if (timeout_ns < 0) {
    r = io_uring_submit_and_wait(ring_.get(), 1);
  } else {
    // With IORING_FEAT_EXT_ARG the timeout is the enter's own argument (no
    // submission slot is taken for it).
    struct __kernel_timespec ts;
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    struct io_uring_cqe* cqe = nullptr;
    r = io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, &ts, nullptr);
  }
  if (r == -ETIME || r == -EINTR) return 0;
  return r < 0 ? r : 0;
}

unsigned SysUring::unsubmitted() const {
  return io_uring_sq_ready(ring_.get());
}

int SysUring::Ping() {
  int r;
  do {
    r = io_uring_enter(ring_->ring_fd, 0, 0, 0, nullptr);
  } while (r == -EINTR);
  return r < 0 ? r : 0;
}

void SysUring::Abandon() {
  if (!live_) return;
  // io_uring_queue_exit unmaps, then closes ring_fd: -1 makes that close
  // fail harmlessly (EBADF) instead of closing a descriptor not ours.
  ring_->ring_fd = -1;
  io_uring_queue_exit(ring_.get());
  live_ = false;
}

bool SysUring::PeekOne(uint64_t* user_data, int* res) {
  struct io_uring* ring = ring_.get();
  struct io_uring_cqe* cqe = nullptr;
  // A completion in memory is taken without more ado. When there is none,
  // io_uring_peek_cqe enters the kernel only if the kernel marked the ring
  // (completions waiting as task work, or an overflow to flush): that mark
  // is checked here first, since liburing's own check of it is not inline
  // and every Reap ends with a peek that finds nothing.
  if (__io_uring_peek_cqe(ring, &cqe, nullptr) != 0) return false;
  if (cqe == nullptr) {
    const unsigned kflags = IO_URING_READ_ONCE(*ring->sq.kflags);
    if ((kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0) {
      return false;
    }
    if (io_uring_peek_cqe(ring, &cqe) != 0 || cqe == nullptr) return false;
  }
  *user_data = cqe->user_data;
  *res = cqe->res;
  io_uring_cqe_seen(ring_.get(), cqe);
  return true;
}

void SysUring::PrepOpenat2(struct io_uring_sqe* sqe, int dirfd,
                           const char* path, OpenHow* how) {
  static_assert(sizeof(OpenHow) == sizeof(struct open_how));
  how->flags |= O_CLOEXEC;
  io_uring_prep_openat2(sqe, dirfd, path,
                        reinterpret_cast<struct open_how*>(how));
}

void SysUring::PrepStatx(struct io_uring_sqe* sqe, int dirfd, const char* path,
                         int flags, struct statx* out) {
  io_uring_prep_statx(sqe, dirfd, path, flags, STATX_BASIC_STATS, out);
}

void SysUring::PrepMkdirat(struct io_uring_sqe* sqe, int dirfd,
                           const char* path, mode_t mode) {
  io_uring_prep_mkdirat(sqe, dirfd, path, mode);
}

void SysUring::PrepUnlinkat(struct io_uring_sqe* sqe, int dirfd,
                            const char* path, int flags) {
  io_uring_prep_unlinkat(sqe, dirfd, path, flags);
}

void SysUring::PrepRenameat(struct io_uring_sqe* sqe, int old_dirfd,
                            const char* old_path, int new_dirfd,
                            const char* new_path) {
  io_uring_prep_renameat(sqe, old_dirfd, old_path, new_dirfd, new_path, 0);
}

void SysUring::PrepSymlinkat(struct io_uring_sqe* sqe, const char* target,
                             int dirfd, const char* path) {
  io_uring_prep_symlinkat(sqe, target, dirfd, path);
}

void SysUring::PrepLinkat(struct io_uring_sqe* sqe, int old_dirfd,
                          const char* old_path, int new_dirfd,
                          const char* new_path) {
  io_uring_prep_linkat(sqe, old_dirfd, old_path, new_dirfd, new_path, 0);
}

namespace {

// read(2) and write(2) move at most this much at once (MAX_RW_COUNT); the
// submission's length is 32 bits.
constexpr size_t kMaxRwCount = 0x7ffff000;

// The file's position, not an offset (-1 as the submission's u64).
constexpr uint64_t kCurrentPosition = static_cast<uint64_t>(-1);

}  // namespace

void SysUring::PrepRead(struct io_uring_sqe* sqe, int fd, void* buf,
                        size_t size) {
  io_uring_prep_read(sqe, fd, buf,
                     static_cast<unsigned>(std::min(size, kMaxRwCount)),
                     kCurrentPosition);
}

void SysUring::PrepWrite(struct io_uring_sqe* sqe, int fd, const void* buf,
                         size_t size) {
  io_uring_prep_write(sqe, fd, buf,
                      static_cast<unsigned>(std::min(size, kMaxRwCount)),
                      kCurrentPosition);
}

void SysUring::PrepReadv(struct io_uring_sqe* sqe, int fd,
                         const struct iovec* iov, unsigned count) {
  io_uring_prep_readv(sqe, fd, iov, count, kCurrentPosition);
}

void SysUring::PrepWritev(struct io_uring_sqe* sqe, int fd,
                          const struct iovec* iov, unsigned count) {
  io_uring_prep_writev(sqe, fd, iov, count, kCurrentPosition);
}

void SysUring::PrepPollIn(struct io_uring_sqe* sqe, int fd) {
  io_uring_prep_poll_add(sqe, fd, POLLIN);
}

void SysUring::PrepClose(struct io_uring_sqe* sqe, int fd) {
  io_uring_prep_close(sqe, fd);
}

void SysUring::PrepCancel(struct io_uring_sqe* sqe, uint64_t target) {
  io_uring_prep_cancel64(sqe, target, 0);
}

void SysUring::ForceAsync(struct io_uring_sqe* sqe) {
  io_uring_sqe_set_flags(sqe, sqe->flags | IOSQE_ASYNC);
}

void SysUring::HardLinkToNext(struct io_uring_sqe* sqe) {
  io_uring_sqe_set_flags(sqe, sqe->flags | IOSQE_IO_HARDLINK);
}

void SysUring::SetUserData(struct io_uring_sqe* sqe, uint64_t user_data) {
  io_uring_sqe_set_data64(sqe, user_data);
}

}  // namespace internal
}  // namespace capfs

#include "capfs/runtime/async_dir.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <coroutine>
#include <optional>
#include <utility>

#include "capfs/internal/file_stat.h"
#include "capfs/internal/nonblocking.h"
#include "capfs/internal/open_flags.h"
#include "capfs/internal/resolve.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/fs_counts.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/runtime/run_blocking.h"
#include "capfs/status.h"
#include "capfs/sys/fs.h"
#include "capfs/sys/uring.h"

namespace capfs {
namespace runtime {
namespace {

namespace core = ::capfs::internal;
using ::capfs::internal::OpenHow;
using ::capfs::internal::SysUring;
using internal::UringCall;
using internal::UringOp;
using internal::UringRing;

// AsyncFsCounts, one counter each.
std::atomic<uint64_t> g_on_loop{0};
std::atomic<uint64_t> g_io_uring{0};
std::atomic<uint64_t> g_workers{0};
std::atomic<uint64_t> g_loop_misses{0};
std::atomic<uint64_t> g_io_uring_misses{0};
std::atomic<uint64_t> g_rings_set_up{0};
std::atomic<uint64_t> g_rings_reused{0};

void Count(std::atomic<uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

// The path a call is on, as the task that makes it sees it.
struct Paths {
  internal::Scheduler* scheduler;
  bool cancelled;
  bool on_loop;
};

Paths PathsOf(internal::Fiber* fiber, const Dir& dir) {
  internal::Scheduler* s = fiber->scheduler();
  return Paths{s, fiber->cancelled(),
               s->fs_options().on_loop && core::NonblockingEligible(dir)};
}

// The loop's ring, when it may serve a call on `dir` (its openat2 made by
// io_uring is the kernel resolver's), else nullptr.
UringRing* RingFor(const Paths& paths, const Dir& dir) {
  if (!paths.scheduler->fs_options().io_uring || !core::KernelResolved(dir)) {
    return nullptr;
  }
  return paths.scheduler->ring();
}

// Closes what a call on the loop opened for itself (the O_PATH descriptor
// of a Stat) through the loop's ring, with the turn's other submissions;
// at once when there is no ring. The ring is looked up only then: a
// one-component stat opens nothing.
class RingCloser final : public core::FdCloser {
 public:
  RingCloser(const Paths& paths, const Dir& dir) : paths_(paths), dir_(dir) {}
  void CloseLater(Fd fd) override {
    if (UringRing* ring = RingFor(paths_, dir_)) {
      ring->CloseLater(std::move(fd));
    }
  }

 private:
  const Paths& paths_;
  const Dir& dir_;
};

// Today's path: the Dir call on a worker.
template <typename Fn>
auto OnWorkers(Fn fn) -> Task<std::invoke_result_t<Fn&>> {
  Count(g_workers);
  co_return co_await RunBlocking(std::move(fn));
}

// A loop-path result: counted, or a miss.
template <typename T>
std::optional<T> Counted(std::optional<T> r) {
  Count(r.has_value() ? g_on_loop : g_loop_misses);
  return r;
}

// openat2 of `path` beneath `dir` for `op` through `ring`, awaited in the
// calling task's own frame (it is no coroutine of its own, so the call costs
// no task of its own): Dir::OpenAt's checks first (PrepareOpen; a refusal
// is the result, before any syscall, as the Dir call does), then the
// submission with the Dir's open_how, so that confinement is the kernel's,
// exactly as in the sync kernel resolver. co_await gives the descriptor, an
// error, kCancelled as a status (what the call opened, if it ran anyway, is
// closed), or nullopt: make the blocking call (counted as an io_uring miss).
class RingOpenCall final : public UringOp {
 public:
  // `path` must stay put until the call is done.
  RingOpenCall(UringRing* ring, const Dir& dir, absl::string_view op,
               const std::string& path, int flags, mode_t mode)
      : ring_(ring), op_(op), path_(path) {
    checked_ = core::PrepareOpen(dir, op, path, &flags, &mode);
    if (!checked_.ok()) return;
    how_ = core::KernelOpenHow(dir, flags, mode);
    dir_fd_ = dir.fd();
    // The kernel's inline attempt adds O_NONBLOCK to the open (then drops
    // the flag), so a FIFO would open without waiting for its other end: a
    // plain open goes straight to the kernel's workers, which open as
    // open(2) does.
    force_async_ = !(flags & (O_PATH | O_DIRECTORY | O_NONBLOCK));
    if (force_async_) GoesToWorkers();
  }

  bool await_ready() noexcept { return !checked_.ok(); }
  template <internal::RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Start(ring_, self.promise().fiber(), self);
  }
  std::optional<absl::StatusOr<Fd>> await_resume() {
    if (!checked_.ok()) {
      Count(g_on_loop);  // refused before any syscall, as the Dir call does
      return absl::StatusOr<Fd>(std::move(checked_));
    }
    switch (outcome()) {
      case UringOp::Outcome::kDone:
        break;
      case UringOp::Outcome::kDoneCancelled:
        if (result() >= 0) Fd closer(result());
        return absl::StatusOr<Fd>(absl::CancelledError(op_));
      default:
        return absl::StatusOr<Fd>(absl::CancelledError(op_));
    }
    Fd out;
    core::ResolveResult r = core::KernelOpenResult(result(), &out);
    if (r.Is(core::ResolveResult::Kind::kWouldBlock)) {
      Count(g_io_uring_misses);
      return std::nullopt;
    }
    Count(g_io_uring);
    if (!r.ok()) return absl::StatusOr<Fd>(core::DirCallError(r, op_, path_));
    return absl::StatusOr<Fd>(std::move(out));
  }

 private:
  void Prepare(struct io_uring_sqe* sqe) override {
    // The checks found no NUL in the path: its own buffer is the C string.
    SysUring::PrepOpenat2(sqe, dir_fd_, path_.c_str(), &how_);
    if (force_async_) SysUring::ForceAsync(sqe);
  }

  UringRing* ring_;
  absl::string_view op_;
  const std::string& path_;
  absl::Status checked_;
  OpenHow how_ = {};
  int dir_fd_ = -1;
  bool force_async_ = false;
};

// The metadata of `name` in `dir_fd`, not following a symlink, as
// Dir::Stat's fstatat(AT_SYMLINK_NOFOLLOW) gives it: a STATX through
// `ring` (AT_STATX_SYNC_AS_STAT, so the fields are stat(2)'s), or, with
// AllowLoopToMake, that very fstatat made in user space by the loop or a
// worker of its pool (call_share.h). co_await gives the outcome; result()
// is the call's return value, and with kDone and 0, the rest is read here.
class RingStatCall final : public UringOp {
 public:
  // `name` must stay put until the call is done.
  RingStatCall(UringRing* ring, int dir_fd, const char* name)
      : ring_(ring), dir_fd_(dir_fd), name_(name) {}

  bool await_ready() noexcept { return false; }
  template <internal::RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    return Start(ring_, self.promise().fiber(), self);
  }
  UringOp::Outcome await_resume() noexcept { return outcome(); }

  bool names_symlink() const {
    return S_ISLNK(made_in_user_space() ? out_.st.st_mode : out_.stx.stx_mode);
  }
  FileStat file_stat() const {
    return made_in_user_space() ? core::FileStatOf(out_.st)
                                : core::FileStatOfStatx(out_.stx);
  }

 private:
  void Prepare(struct io_uring_sqe* sqe) override {
    SysUring::PrepStatx(sqe, dir_fd_, name_,
                        AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT, &out_.stx);
  }
  int MakeInUserSpace() override {
    return core::SysFstatAt(dir_fd_, name_, &out_.st, AT_SYMLINK_NOFOLLOW);
  }

  UringRing* ring_;
  int dir_fd_;
  const char* name_;
  union {  // the kernel's STATX fills stx; the fstatat in user space, st
    struct statx stx;
    struct stat st;
  } out_;
};

// A name-acting *at call through `ring`: its return value (0 or -errno), or
// nullopt when the task was cancelled.
template <typename Prepare>
Task<std::optional<int>> RingAt(UringRing* ring, Prepare prepare) {
  UringCall call(ring, std::move(prepare));
  UringOp::Outcome outcome = co_await call;
  if (outcome != UringOp::Outcome::kDone) co_return std::nullopt;
  co_return call.result();
}

// A call whose names are resolved on the loop and whose *at call the ring
// makes: `prepare(&target)` resolves them (nonblocking; nullopt: it would
// block), the ring's submission is `prepare_sqe(sqe, target)`, its status
// `result(r)`. nullopt: make the blocking call.
template <typename Target, typename Prepare, typename PrepareSqe,
          typename Result>
Task<std::optional<absl::Status>> RingPreparedCall(UringRing* ring,
                                                   absl::string_view op,
                                                   Prepare prepare,
                                                   PrepareSqe prepare_sqe,
                                                   Result result) {
  Target target;
  std::optional<absl::Status> prepared = prepare(&target);
  if (!prepared.has_value()) {
    Count(g_loop_misses);
    co_return std::nullopt;
  }
  if (!prepared->ok()) {
    Count(g_on_loop);
    co_return *prepared;
  }
  std::optional<int> r = co_await RingAt(
      ring, [&](struct io_uring_sqe* sqe) { prepare_sqe(sqe, target); });
  if (!r.has_value()) co_return absl::CancelledError(op);
  Count(g_io_uring);
  co_return result(*r);
}

// The name-acting calls: the parent resolved on the loop (nonblocking), the
// *at call by `ring` as `make_prepare(parent_fd, name)` prepares it.
// nullopt: make the blocking call. `dir`, `path` and what `make_prepare`
// refers to must outlive the awaited task.
template <typename MakePrepare>
Task<std::optional<absl::Status>> RingNameCall(UringRing* ring, const Dir& dir,
                                               absl::string_view op,
                                               absl::string_view path,
                                               int root_errno,
                                               MakePrepare make_prepare) {
  return RingPreparedCall<core::AtTarget>(
      ring, op,
      [dir = &dir, op, path, root_errno](core::AtTarget* target) {
        return core::PrepareAt(*dir, op, path, root_errno,
                               /*nonblocking=*/true, target);
      },
      [make_prepare = std::move(make_prepare)](struct io_uring_sqe* sqe,
                                               const core::AtTarget& t) {
        make_prepare(t.parent.fd, t.parent.last)(sqe);
      },
      [op, path](int r) { return core::AtCallResult(r, op, path); });
}

}  // namespace

namespace internal {

void CountFsPath(FsPath path) {
  switch (path) {
    case FsPath::kOnLoop:
      return Count(g_on_loop);
    case FsPath::kIoUring:
      return Count(g_io_uring);
    case FsPath::kWorkers:
      return Count(g_workers);
    case FsPath::kLoopMiss:
      return Count(g_loop_misses);
    case FsPath::kIoUringMiss:
      return Count(g_io_uring_misses);
  }
}

void CountRing(RingEvent event) {
  Count(event == RingEvent::kSetUp ? g_rings_set_up : g_rings_reused);
}

}  // namespace internal

AsyncFsCounts AsyncFsCountsNow() {
  AsyncFsCounts c;
  c.on_loop = g_on_loop.load(std::memory_order_relaxed);
  c.io_uring = g_io_uring.load(std::memory_order_relaxed);
  c.workers = g_workers.load(std::memory_order_relaxed);
  c.loop_misses = g_loop_misses.load(std::memory_order_relaxed);
  c.io_uring_misses = g_io_uring_misses.load(std::memory_order_relaxed);
  c.rings_set_up = g_rings_set_up.load(std::memory_order_relaxed);
  c.rings_reused = g_rings_reused.load(std::memory_order_relaxed);
  return c;
}

// Each coroutine keeps its arguments in its frame, which stays alive (the
// task is suspended) while a worker or the kernel uses them.

namespace {

// Tasks that must be ready to run on the loop, besides the calling one, for
// a call the loop would make itself (a Stat of a plain name, an O_PATH open,
// OpenDir's included) to go to the ring instead. Below it, the loop's own
// syscall answers sooner.
constexpr size_t kRingBurst = 16;

// The loop's ring when the loop is in a burst of calls (kRingBurst tasks or
// more ready besides this one) and the ring may serve `dir`, else nullptr.
// An open the loop makes costs a syscall of its own; through the ring, one
// io_uring_enter submits 128 of the turn's opens, which the kernel makes
// inline in it (an O_PATH open of a cached path never blocks), and the
// turn's tasks resume on their completions. On a kernel that flushes
// the TLB at every syscall entry (page-table isolation without PCID), 1,000
// concurrent O_PATH opens take about 0.6 of the loop's time that way.
UringRing* BurstRing(const Paths& paths, const Dir& dir) {
  if (paths.scheduler->runnable() < kRingBurst) return nullptr;
  return RingFor(paths, dir);
}

// The loop's part of an OpenAt on the loop's path (paths.on_loop): the
// call's result when the loop settles it, else nullopt with `*ring` the
// ring that is to make it, or nullptr for the workers. An open that cannot
// wait is tried on the loop (a decline is a loop miss) and the ring looked
// up only then, since a loop's first look sets one up. An open that may
// wait (a plain one, one that writes) is not tried, so it is no loop miss;
// when the workers are to make it, Dir::OpenAt's checks are made here, so
// that a refusal is the result at once, as it is through the ring
// (RingOpenCall). Not a coroutine: its locals take no room in OpenAt's
// frame.
std::optional<absl::StatusOr<Fd>> OpenOnLoop(const Paths& paths, const Dir& dir,
                                             absl::string_view path, int flags,
                                             mode_t mode, UringRing** ring) {
  if (core::OpenCannotWait(flags)) {
    if (auto r = Counted(core::TryOpenAt(dir, path, flags, mode))) return r;
    *ring = RingFor(paths, dir);
    return std::nullopt;
  }
  *ring = RingFor(paths, dir);
  if (*ring != nullptr) return std::nullopt;
  if (absl::Status s = core::PrepareOpen(dir, "openat", path, &flags, &mode);
      !s.ok()) {
    Count(g_on_loop);
    return absl::StatusOr<Fd>(std::move(s));
  }
  return std::nullopt;
}

}  // namespace

Task<absl::StatusOr<Fd>> OpenAt(const Dir& dir, std::string path, int flags,
                                mode_t mode) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("openat");
  // Only an O_PATH open goes to the ring in a burst: it opens nothing of
  // the filesystem's (no driver, no FUSE daemon), so it never blocks inline.
  UringRing* ring =
      paths.on_loop && (flags & O_PATH) ? BurstRing(paths, dir) : nullptr;
  if (ring == nullptr) {
    if (!paths.on_loop) {
      ring = RingFor(paths, dir);
    } else if (auto r = OpenOnLoop(paths, dir, path, flags, mode, &ring)) {
      co_return *std::move(r);
    }
  }
  if (ring != nullptr) {
    if (auto r =
            co_await RingOpenCall(ring, dir, "openat", path, flags, mode)) {
      co_return *std::move(r);
    }
  }
  co_return co_await OnWorkers([&] { return dir.OpenAt(path, flags, mode); });
}

Task<absl::StatusOr<Dir>> OpenDir(const Dir& dir, std::string path) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("opendir");
  UringRing* burst = paths.on_loop ? BurstRing(paths, dir) : nullptr;
  if (paths.on_loop && burst == nullptr) {
    if (auto r = Counted(core::TryOpenDir(dir, path))) co_return *std::move(r);
  }
  if (UringRing* ring = burst != nullptr ? burst : RingFor(paths, dir)) {
    if (auto r = co_await RingOpenCall(ring, dir, "opendir", path,
                                       O_PATH | O_DIRECTORY, 0)) {
      if (!r->ok()) co_return r->status();
      co_return core::ChildDir(dir, **std::move(r));
    }
  }
  co_return co_await OnWorkers([&] { return dir.OpenDir(path); });
}

namespace {

// True when a Stat of `path` beneath `dir` is one fstatat(AT_SYMLINK_
// NOFOLLOW) of the name on the Dir's own descriptor, as Dir::Stat makes it
// (confined without a walk: one name, not "..", not followed): 1 to
// kNameMax bytes, no '/', no NUL byte.
bool StatIsOneName(const Dir& dir, absl::string_view path) {
  return dir.confined() && dir.fd() >= 0 && !path.empty() &&
         path.size() <= kNameMax &&
         path.find_first_of(absl::string_view("/\0", 2)) ==
             absl::string_view::npos &&
         path != "..";
}

Task<absl::StatusOr<FileStat>> StatOrLstat(const Dir& dir, std::string path,
                                           bool follow) {
  const char* op = follow ? "stat" : "lstat";
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError(op);
  // A burst of Stats of plain names on one loop: each a statx through the
  // ring, which the kernel always hands to its workers, so that they run on
  // the other cores while the loop goes on with the rest of the burst
  // (the loop making every fstatat itself cannot beat a sync loop of them),
  // or on tmpfs the fstatat shared between the loop and a worker (below).
  // It is the syscall Dir::Stat makes, on the same descriptor and name,
  // with AT_SYMLINK_NOFOLLOW, and AT_STATX_SYNC_AS_STAT so the fields are
  // stat(2)'s. A symlink to follow takes the usual path below.
  if (StatIsOneName(dir, path)) {
    if (UringRing* ring = BurstRing(paths, dir)) {
      RingStatCall call(ring, dir.fd(), path.c_str());
      // On tmpfs a lookup never waits for I/O (only a mount point there
      // reaches another filesystem). Where the loop's path serves, the
      // burst's fstatat calls are shared between the loop, which makes a
      // plain fstatat there outside a burst too, and one worker of its pool
      // (call_share.h): handing a STATX to the ring costs the loop about
      // as much as making the fstatat, a list move for the worker next to
      // nothing. Otherwise they go to the kernel's workers in chains, a
      // worker woken once a chain.
      if (core::FilesystemClassOf(dir) == core::kFilesystemInMemory) {
        if (paths.on_loop) {
          call.AllowLoopToMake();
        } else {
          call.AllowChaining();
        }
      }
      if (co_await call != UringOp::Outcome::kDone) {
        co_return absl::CancelledError(op);
      }
      // ECANCELED, with no cancellation asked for: the kernel could not
      // submit the call before this one in its chain (out of memory for
      // its name, say), which cancels the rest of the chain even when it
      // is hard-linked. This call then goes the usual way, below.
      if (call.result() != -ECANCELED) {
        Count(call.made_by_worker()       ? g_workers
              : call.made_in_user_space() ? g_on_loop
                                          : g_io_uring);
        if (call.result() < 0) co_return ErrnoError(-call.result(), op, path);
        if (!follow || !call.names_symlink()) co_return call.file_stat();
      }
    }
  }
  // Any other Stat in a burst skips the loop's own openat2: the ring opens
  // it (O_PATH, inline in the io_uring_enter that hands 128 of them over)
  // and the loop stats the descriptor, as for a loop miss below.
  UringRing* burst = paths.on_loop ? BurstRing(paths, dir) : nullptr;
  if (paths.on_loop && burst == nullptr) {
    RingCloser closer(paths, dir);
    if (auto r = Counted(core::TryStat(dir, path, follow, &closer))) {
      co_return *std::move(r);
    }
  }
  // The ring opens (O_PATH, as the kernel resolver's stat does); fstat of
  // the descriptor is then made here, where it cannot block: on a local
  // filesystem (IORING_OP_STATX always runs on the kernel's workers). The
  // ring closes the descriptor with the turn's other submissions.
  UringRing* ring = burst != nullptr ? burst : RingFor(paths, dir);
  if (ring != nullptr &&
      core::FilesystemClassOf(dir) != core::kFilesystemOther) {
    if (auto r = co_await RingOpenCall(ring, dir, op, path,
                                       O_PATH | (follow ? 0 : O_NOFOLLOW), 0)) {
      if (!r->ok()) co_return r->status();
      struct stat st;
      const int e = core::SysFstat((*r)->get(), &st);
      ring->CloseLater(*std::move(*r));
      if (e < 0) co_return ErrnoError(-e, op, path);
      co_return FileStatFromStat(st);
    }
  }
  co_return co_await OnWorkers(
      [&] { return follow ? dir.Stat(path) : dir.Lstat(path); });
}

}  // namespace

Task<absl::StatusOr<FileStat>> Stat(const Dir& dir, std::string path) {
  return StatOrLstat(dir, std::move(path), /*follow=*/true);
}

Task<absl::StatusOr<FileStat>> Lstat(const Dir& dir, std::string path) {
  return StatOrLstat(dir, std::move(path), /*follow=*/false);
}

Task<absl::Status> Mkdir(const Dir& dir, std::string path, mode_t mode) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("mkdir");
  if (UringRing* ring = RingFor(paths, dir)) {
    if (auto r = co_await RingNameCall(
            ring, dir, "mkdir", path, EEXIST, [&](int fd, const char* name) {
              return [fd, name, mode](struct io_uring_sqe* sqe) {
                SysUring::PrepMkdirat(sqe, fd, name, mode & 07777);
              };
            })) {
      co_return *r;
    }
  }
  co_return co_await OnWorkers([&] { return dir.Mkdir(path, mode); });
}

namespace {

Task<absl::Status> UnlinkOrRmdir(const Dir& dir, std::string path,
                                 bool directory) {
  const char* op = directory ? "rmdir" : "unlink";
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError(op);
  if (UringRing* ring = RingFor(paths, dir)) {
    const int flags = directory ? AT_REMOVEDIR : 0;
    if (auto r = co_await RingNameCall(
            ring, dir, op, path, directory ? EBUSY : EISDIR,
            [&](int fd, const char* name) {
              return [fd, name, flags](struct io_uring_sqe* sqe) {
                SysUring::PrepUnlinkat(sqe, fd, name, flags);
              };
            })) {
      co_return *r;
    }
  }
  co_return co_await OnWorkers(
      [&] { return directory ? dir.Rmdir(path) : dir.Unlink(path); });
}

}  // namespace

Task<absl::Status> Unlink(const Dir& dir, std::string path) {
  return UnlinkOrRmdir(dir, std::move(path), /*directory=*/false);
}

Task<absl::Status> Rmdir(const Dir& dir, std::string path) {
  return UnlinkOrRmdir(dir, std::move(path), /*directory=*/true);
}

Task<absl::Status> Rename(const Dir& dir, std::string from, const Dir& to_dir,
                          std::string to) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("rename");
  UringRing* ring = RingFor(paths, dir);
  if (ring != nullptr && core::KernelResolved(to_dir)) {
    if (auto r = co_await RingPreparedCall<core::RenameTarget>(
            ring, "rename",
            [&](core::RenameTarget* target) {
              return core::PrepareRename(dir, from, to_dir, to,
                                         /*nonblocking=*/true, target);
            },
            [](struct io_uring_sqe* sqe, const core::RenameTarget& t) {
              SysUring::PrepRenameat(sqe, t.from_parent.fd, t.from_parent.last,
                                     t.to_parent.fd, t.to_parent.last);
            },
            [&](int r) { return core::RenameCallResult(r, from, to); })) {
      co_return *r;
    }
  }
  co_return co_await OnWorkers([&] { return dir.Rename(from, to_dir, to); });
}

Task<absl::Status> Link(const Dir& dir, std::string from, const Dir& to_dir,
                        std::string to) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("link");
  UringRing* ring = RingFor(paths, dir);
  if (ring != nullptr && core::KernelResolved(to_dir)) {
    if (auto r = co_await RingPreparedCall<core::RenameTarget>(
            ring, "link",
            [&](core::RenameTarget* target) {
              return core::PrepareLinkNonblocking(dir, from, to_dir, to,
                                                  target);
            },
            [](struct io_uring_sqe* sqe, const core::RenameTarget& t) {
              SysUring::PrepLinkat(sqe, t.from_parent.fd, t.from_parent.last,
                                   t.to_parent.fd, t.to_parent.last);
            },
            [&](int r) { return core::LinkCallResult(r, from, to); })) {
      co_return *r;
    }
  }
  co_return co_await OnWorkers([&] { return dir.Link(from, to_dir, to); });
}

Task<absl::Status> Symlink(const Dir& dir, std::string target,
                           std::string link_path) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("symlink");
  if (UringRing* ring = RingFor(paths, dir)) {
    if (absl::Status s = core::CheckSymlinkTarget(target); !s.ok()) {
      Count(g_on_loop);
      co_return s;
    }
    const char* stored = target.c_str();
    if (auto r = co_await RingNameCall(
            ring, dir, "symlink", link_path, EEXIST,
            [&](int fd, const char* name) {
              return [stored, fd, name](struct io_uring_sqe* sqe) {
                SysUring::PrepSymlinkat(sqe, stored, fd, name);
              };
            })) {
      co_return *r;
    }
  }
  co_return co_await OnWorkers([&] { return dir.Symlink(target, link_path); });
}

Task<absl::StatusOr<std::string>> ReadLink(const Dir& dir, std::string path) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("readlink");
  if (paths.on_loop) {
    if (auto r = Counted(core::TryReadLink(dir, path))) co_return *std::move(r);
  }
  co_return co_await OnWorkers([&] { return dir.ReadLink(path); });
}

Task<absl::StatusOr<std::vector<DirEntry>>> ReadDir(const Dir& dir,
                                                    std::string path) {
  const Paths paths = PathsOf(co_await internal::CurrentFiber(), dir);
  if (paths.cancelled) co_return absl::CancelledError("readdir");
  co_return co_await OnWorkers([&] { return dir.ReadDir(path); });
}

}  // namespace runtime
}  // namespace capfs

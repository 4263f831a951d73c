// Helpers for the runtime's tests: every suite runs once per backend.

#ifndef CAPFS_TEST_RUNTIME_RUNTIME_TEST_UTIL_H_
#define CAPFS_TEST_RUNTIME_RUNTIME_TEST_UTIL_H_

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "capfs/runtime/internal/fiber.h"
#include "capfs/runtime/internal/scheduler.h"
#include "capfs/runtime/runtime.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace testing {

// A test fixture whose parameter is the backend the loop uses.
class BackendTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  LoopOptions Options() const {
    LoopOptions options;
    options.backend = GetParam();
    return options;
  }
  // Runs `main()` on a fresh loop; `main` stays alive until it is done.
  template <typename Main>
  auto RunMain(Main main) {
    return ::capfs::runtime::Run(main(), Options());
  }
};

inline std::string BackendTestName(
    const ::testing::TestParamInfo<IoBackend>& info) {
  return IoBackendName(info.param);
}

#define CAPFS_INSTANTIATE_FOR_BACKENDS(Suite)                \
  INSTANTIATE_TEST_SUITE_P(                                  \
      Backends, Suite,                                       \
      ::testing::Values(::capfs::runtime::IoBackend::kEpoll, \
                        ::capfs::runtime::IoBackend::kPoll), \
      ::capfs::runtime::testing::BackendTestName)

// Turns a hang into a failure. Unless Disarm() is called within `patience`,
// runs `rescue` on a thread of its own (it should unblock what hangs: write
// what a reader waits for, drain what a writer fills), and fired() then
// says so. The destructor disarms it and waits for that thread.
class Watchdog {
 public:
  Watchdog(absl::Duration patience, std::function<void()> rescue)
      : thread_([this, patience, rescue = std::move(rescue)] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, absl::ToChronoNanoseconds(patience),
                           [&] { return disarmed_; })) {
            return;
          }
          fired_ = true;
          lock.unlock();
          rescue();
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    Disarm();
    thread_.join();
  }

  void Disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    disarmed_ = true;
    cv_.notify_all();
  }
  bool fired() const { return fired_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;  // guarded by mu_
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

// Yields until the task whose fiber `*fiber` names (set by that task, e.g.
// with `fiber = co_await internal::CurrentFiber();`) is suspended in a wait
// of type W: so that a test acts on a task in exactly that wait, not one
// still on its way there. kDeadlineExceeded after 20 s of yields (that task
// never waited so, or went past that wait unseen).
template <typename W = internal::Waiter>
Task<absl::Status> YieldUntilWaitingIn(internal::Fiber* const* fiber) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (uint64_t i = 0;; ++i) {
    if (*fiber != nullptr && dynamic_cast<W*>((*fiber)->waiting()) != nullptr) {
      co_return absl::OkStatus();
    }
    if (i % 1024 == 0 && absl::Now() > deadline) {
      co_return absl::DeadlineExceededError(
          "the task never waited where the test expected it to");
    }
    if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
  }
}

// 0 when the kernel sets a small ring up for this process now, else the
// errno io_uring_setup(2) gave. The raw syscall, never capfs's probe (whose
// answer a process caches).
inline int RawRingSetupErrno() {
  struct io_uring_params params = {};
  long fd = syscall(__NR_io_uring_setup, 4, &params);
  if (fd < 0) return errno;
  close(static_cast<int>(fd));
  return 0;
}

// True for what io_uring_setup(2) says when a resource is spent for now:
// the user's locked memory (ENOMEM), which parallel test processes share,
// or descriptors (EMFILE, ENFILE).
inline bool TransientRingErrno(int err) {
  return err == ENOMEM || err == EMFILE || err == ENFILE;
}

// IoUringAvailable(), asked again for up to 20 s while the kernel's only
// objection to a ring is a resource spent for now (ENOMEM from the user's
// locked memory, which parallel test processes share; EMFILE, ENFILE): that
// answer is not cached (fs_paths.h), so a test deciding what to expect
// from it must settle it first, once.
inline bool IoUringUsable() {
  int raw_ok = 0;
  for (int i = 0; i < 200; ++i) {
    if (IoUringAvailable()) return true;
    const int err = RawRingSetupErrno();
    if (err == 0) {
      // The kernel sets rings up, and capfs said no past its back-off:
      // refused for good (CAPFS_IO_URING=0, a missing opcode).
      if (++raw_ok > 2) return false;
    } else if (!TransientRingErrno(err)) {
      return false;  // ENOSYS, EPERM: refused for good
    }
    usleep(110'000);  // past the probe's 100 ms back-off
  }
  return false;
}

// Waits until the running loop has its io_uring. A loop set up while its
// user's locked memory was spent (parallel test processes set rings up and
// tear them down) serves its calls on its workers and gets its ring on a
// call 100 ms later or more (docs/runtime.md): asked here every 20 ms.
// kDeadlineExceeded after 20 s.
inline Task<absl::Status> WaitForRing() {
  internal::Scheduler* scheduler =
      (co_await internal::CurrentFiber())->scheduler();
  for (int i = 0; i < 1000; ++i) {
    if (scheduler->ring() != nullptr) co_return absl::OkStatus();
    if (absl::Status s = co_await Sleep(absl::Milliseconds(20)); !s.ok()) {
      co_return s;
    }
  }
  co_return absl::DeadlineExceededError(
      "the loop got no io_uring in 20 s: the user's locked memory is spent");
}

// Runs `task` on a loop set up as `options` say, after WaitForRing when
// `ring` is true: for a test whose checks need the loop's ring.
template <typename T>
T RunWithRing(Task<T> task, const LoopOptions& options, bool ring) {
  return ::capfs::runtime::Run(
      [](Task<T> task, bool ring) -> Task<T> {
        if (ring) {
          if (absl::Status s = co_await WaitForRing(); !s.ok()) co_return s;
        }
        co_return co_await std::move(task);
      }(std::move(task), ring),
      options);
}

// Opens the FIFO at `fifo` for writing once a reader waits in the kernel
// (ENXIO until then): bounded retries, about 2 s. The descriptor, or -1.
inline int OpenFifoWriter(const std::string& fifo) {
  for (int i = 0; i < 2000; ++i) {
    int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) return fd;
    usleep(1000);
  }
  return -1;
}

// Sets `*done` when it goes out of scope: shows that a task's frame ended.
class SetOnExit {
 public:
  explicit SetOnExit(bool* done) : done_(done) {}
  ~SetOnExit() { *done_ = true; }

 private:
  bool* done_;
};

}  // namespace testing
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_TEST_RUNTIME_RUNTIME_TEST_UTIL_H_

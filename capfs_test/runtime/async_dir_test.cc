// Awaitable Dir operations against a temporary directory.

#include "capfs/runtime/async_dir.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "capfs/dir.h"
#include "capfs/file.h"
#include "capfs/internal/nonblocking.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class AsyncDirTest : public BackendTest {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    std::string templ = absl::StrCat(base ? base : "/tmp", "/async_dir_XXXXXX");
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    path_ = templ;
    absl::StatusOr<Dir> dir = Dir::Open(path_);
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
  }
  void TearDown() override {
    dir_.reset();
    std::string cmd = absl::StrCat("rm -rf '", path_, "'");
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  const Dir& dir() { return *dir_; }

  std::string path_;
  std::optional<Dir> dir_;
};
CAPFS_INSTANTIATE_FOR_BACKENDS(AsyncDirTest);

TEST_P(AsyncDirTest, EveryOperationWorksThroughTheWorkers) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    // Each step names the operation; the first failure is the result.
    if (absl::Status r = co_await Mkdir(dir(), "sub"); !r.ok()) co_return r;
    absl::StatusOr<Fd> f =
        co_await OpenAt(dir(), "sub/file", O_WRONLY | O_CREAT, 0640);
    if (!f.ok()) co_return f.status();
    // The write goes to a worker too (a plain capfs::WriteAll would block
    // the loop).
    if (absl::Status r =
            co_await RunBlocking([&] { return capfs::WriteAll(*f, "12345"); });
        !r.ok()) {
      co_return r;
    }
    absl::StatusOr<FileStat> st = co_await Stat(dir(), "sub/file");
    if (!st.ok()) co_return st.status();
    EXPECT_EQ(st->kind, FileKind::kRegular);
    EXPECT_EQ(st->size, 5u);
    EXPECT_EQ(st->perm, 0640u);
    if (absl::Status r = co_await Symlink(dir(), "sub/file", "link"); !r.ok()) {
      co_return r;
    }
    absl::StatusOr<std::string> target = co_await ReadLink(dir(), "link");
    if (!target.ok()) co_return target.status();
    EXPECT_EQ(*target, "sub/file");
    absl::StatusOr<FileStat> lst = co_await Lstat(dir(), "link");
    if (!lst.ok()) co_return lst.status();
    EXPECT_EQ(lst->kind, FileKind::kSymlink);
    absl::StatusOr<Dir> sub = co_await OpenDir(dir(), "sub");
    if (!sub.ok()) co_return sub.status();
    if (absl::Status r = co_await Rename(*sub, "file", dir(), "moved");
        !r.ok()) {
      co_return r;
    }
    absl::StatusOr<std::vector<DirEntry>> entries =
        co_await ReadDir(dir(), ".");
    if (!entries.ok()) co_return entries.status();
    std::vector<std::string> names;
    for (const DirEntry& e : *entries) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"link", "moved", "sub"}));
    if (absl::Status r = co_await Unlink(dir(), "link"); !r.ok()) co_return r;
    if (absl::Status r = co_await Unlink(dir(), "moved"); !r.ok()) co_return r;
    if (absl::Status r = co_await Rmdir(dir(), "sub"); !r.ok()) co_return r;
    absl::StatusOr<std::vector<DirEntry>> empty = co_await ReadDir(dir(), ".");
    if (!empty.ok()) co_return empty.status();
    EXPECT_TRUE(empty->empty());
    co_return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

// Confinement and errors are the Dir's own, unchanged by the detour.
TEST_P(AsyncDirTest, ErrorsAndRefusalsAreTheDirs) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    absl::StatusOr<Fd> missing = co_await OpenAt(dir(), "nope", O_RDONLY);
    EXPECT_EQ(ErrnoOf(missing.status()), ENOENT) << missing.status();
    absl::StatusOr<Fd> escape = co_await OpenAt(dir(), "../x", O_RDONLY);
    EXPECT_EQ(ViolationOf(escape.status()), Violation::kEscape)
        << escape.status();
    absl::Status twice = co_await Mkdir(dir(), "d");
    EXPECT_TRUE(twice.ok()) << twice;
    twice = co_await Mkdir(dir(), "d");
    EXPECT_EQ(ErrnoOf(twice), EEXIST) << twice;
    co_return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(AsyncDirTest, CancelledBeforeStartingDoesNothing) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      scope.Cancel();
      co_return co_await Mkdir(dir(), "never");
    });
  });
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_NE(access(absl::StrCat(path_, "/never").c_str(), F_OK), 0);
}

// The paths a loop may use (fs_paths.h), one suite each, on both backends.
struct PathsCase {
  const char* name;
  AsyncFsOptions paths;
  IoBackend backend;
};

// The same error as the sync call's: code, errno and violation.
void ExpectSameError(const absl::Status& got, const absl::Status& want) {
  EXPECT_EQ(got.code(), want.code());
  EXPECT_EQ(ErrnoOf(got), ErrnoOf(want));
  EXPECT_EQ(ViolationOf(got), ViolationOf(want));
}

// The same result as the sync Stat's or Lstat's: the same error, or the
// same fields. Following a symlink sets its access time, and a burst
// follows them: a symlink's atime is not the same from one call to the
// next.
void ExpectSameStat(const absl::StatusOr<FileStat>& got,
                    const absl::StatusOr<FileStat>& want) {
  ASSERT_EQ(got.ok(), want.ok()) << got.status() << " / " << want.status();
  if (!want.ok()) {
    ExpectSameError(got.status(), want.status());
    return;
  }
  EXPECT_EQ(got->kind, want->kind);
  EXPECT_EQ(got->size, want->size);
  EXPECT_EQ(got->perm, want->perm);
  EXPECT_EQ(got->ino, want->ino);
  EXPECT_EQ(got->dev, want->dev);
  EXPECT_EQ(got->nlink, want->nlink);
  EXPECT_EQ(got->uid, want->uid);
  EXPECT_EQ(got->gid, want->gid);
  if (want->kind != FileKind::kSymlink) {
    EXPECT_EQ(got->atime, want->atime);
  }
  EXPECT_EQ(got->mtime, want->mtime);
  EXPECT_EQ(got->ctime, want->ctime);
}

// True when `path` is on tmpfs: where a burst's Stats of plain names go to
// the kernel's workers in chains (AllowChaining), which they do on no other
// filesystem. capfs_test::TempDir makes its directories on /dev/shm when
// that is a writable tmpfs.
bool OnTmpfs(const std::string& path) {
  struct statfs fs;
  return statfs(path.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

class AsyncDirPathsTest : public ::testing::TestWithParam<PathsCase> {
 protected:
  void SetUp() override {
    ASSERT_NE(mkdtemp(templ_.data()), nullptr);
    path_ = templ_;
    absl::StatusOr<Dir> dir = Dir::Open(path_);
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    ASSERT_EQ(mkfifo(absl::StrCat(path_, "/fifo").c_str(), 0600), 0);
    ASSERT_EQ(mkdir(absl::StrCat(path_, "/d").c_str(), 0755), 0);
    int fd = open(absl::StrCat(path_, "/d/file").c_str(),
                  O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  void TearDown() override {
    dir_.reset();
    std::string cmd = absl::StrCat("rm -rf '", path_, "'");
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  LoopOptions Options() const {
    LoopOptions options;
    options.backend = GetParam().backend;
    options.fs = GetParam().paths;
    return options;
  }
  // Settled once per test (IoUringUsable), so that every check of the test
  // expects the same path.
  bool uses_ring() {
    if (!uses_ring_.has_value()) {
      uses_ring_ = GetParam().paths.io_uring && testing::IoUringUsable();
    }
    return *uses_ring_;
  }
  const Dir& dir() { return *dir_; }
  std::optional<bool> uses_ring_;
  bool Exists(const char* rel) {
    return access(absl::StrCat(path_, "/", rel).c_str(), F_OK) == 0;
  }
  // Runs `call(c)` (a Task<absl::Status>) for every element of `calls`, each
  // in a task of its own, all spawned in one scope before any of them runs:
  // a burst on the loop.
  template <typename Call, typename Fn>
  absl::Status RunAllAtOnce(std::vector<Call>& calls, Fn call) {
    return testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            for (Call& c : calls) scope.Spawn([&call, &c] { return call(c); });
            co_return co_await scope.Join();
          });
        }(),
        Options(), uses_ring());
  }

  std::string templ_ = absl::StrCat(
      getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/paths_XXXXXX");
  std::string path_;
  std::optional<Dir> dir_;
};

// Every call started by a task already cancelled gives kCancelled and does
// nothing, whichever path would have served it.
TEST_P(AsyncDirPathsTest, CancelledBeforeSubmittingDoesNothing) {
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Cancel();
          std::vector<absl::Status> got;
          got.push_back((co_await OpenAt(dir(), "d/file", O_RDONLY)).status());
          got.push_back(
              (co_await OpenAt(dir(), "d/new", O_WRONLY | O_CREAT, 0600))
                  .status());
          got.push_back((co_await OpenDir(dir(), "d")).status());
          got.push_back((co_await Stat(dir(), "d/file")).status());
          got.push_back((co_await Lstat(dir(), "d/file")).status());
          got.push_back((co_await ReadLink(dir(), "d/file")).status());
          got.push_back((co_await ReadDir(dir(), "d")).status());
          got.push_back(co_await Mkdir(dir(), "d/m"));
          got.push_back(co_await Unlink(dir(), "d/file"));
          got.push_back(co_await Rmdir(dir(), "d"));
          got.push_back(co_await Symlink(dir(), "x", "d/s"));
          got.push_back(co_await Rename(dir(), "d/file", dir(), "d/r"));
          got.push_back(co_await Link(dir(), "d/file", dir(), "d/l"));
          for (const absl::Status& g : got) {
            EXPECT_TRUE(absl::IsCancelled(g)) << g;
          }
          co_return absl::OkStatus();
        });
      }(),
      Options(), uses_ring());
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(Exists("d/file"));
  EXPECT_FALSE(Exists("d/new"));
  EXPECT_FALSE(Exists("d/m"));
  EXPECT_FALSE(Exists("d/s"));
  EXPECT_FALSE(Exists("d/r"));
  EXPECT_FALSE(Exists("d/l"));
  const AsyncFsCounts after = AsyncFsCountsNow();
  EXPECT_EQ(after.on_loop + after.io_uring + after.workers,
            before.on_loop + before.io_uring + before.workers);
}

// A call waiting in the kernel (opening a FIFO nobody writes to blocks
// until a writer comes) is cancelled there: kCancelled, and no descriptor
// is left behind. A watchdog opens the other end should the cancellation
// not reach the call, and the test then fails instead of hanging.
TEST_P(AsyncDirPathsTest, CancelledWhileInFlight) {
  const std::string fifo = absl::StrCat(path_, "/fifo");
  testing::Watchdog watchdog(absl::Seconds(20), [&] {
    // Bounded: the open may never have come.
    int fd = testing::OpenFifoWriter(fifo);
    if (fd >= 0) close(fd);
  });
  absl::StatusOr<Fd> opened;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          internal::Fiber* fiber = nullptr;
          scope.Spawn([&]() -> Task<absl::Status> {
            fiber = co_await internal::CurrentFiber();
            opened = co_await OpenAt(dir(), "fifo", O_RDONLY);
            co_return absl::OkStatus();
          });
          // Until the open waits in the kernel or on a worker.
          if (uses_ring()) {
            if (absl::Status y =
                    co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                        &fiber);
                !y.ok()) {
              co_return y;
            }
          } else {
            if (absl::Status y = co_await testing::YieldUntilWaitingIn<
                    internal::BlockingJob>(&fiber);
                !y.ok()) {
              co_return y;
            }
          }
          if (!uses_ring()) {
            // A worker's open cannot be interrupted: let it finish.
            int fd = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd >= 0) close(fd);
          }
          scope.Cancel();
          // The task uses this body's locals: wait for it.
          co_return co_await scope.Join();
        });
      }(),
      Options(), uses_ring());
  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the cancellation did not reach the open";
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(absl::IsCancelled(opened.status())) << opened.status();
}

// A plain open of a FIFO waits for the other end, as open(2) does, on every
// path: it must never be tried with O_NONBLOCK (a reader would open at
// once, a writer would fail with ENXIO). The test opens the other end only
// once the awaitable open waits (in the kernel or on a worker) and checks
// that it had not finished before; a watchdog opens it should the test go
// wrong, so that nothing hangs.
struct FifoCase {
  const char* name;
  int flags;        // the awaitable open's
  int other_flags;  // the other end's, nonblocking
};

TEST_P(AsyncDirPathsTest, OpeningAFifoWaitsForTheOtherEnd) {
  const std::string fifo = absl::StrCat(path_, "/fifo");
  for (const FifoCase& c :
       {FifoCase{"reader", O_RDONLY, O_WRONLY | O_NONBLOCK},
        FifoCase{"writer", O_WRONLY, O_RDONLY | O_NONBLOCK}}) {
    SCOPED_TRACE(c.name);
    Fd other;
    testing::Watchdog watchdog(absl::Seconds(20), [&] {
      // Never blocks, so that a test whose open never came still ends: a
      // reader opens at once (O_NONBLOCK) and wakes a waiting writer; a
      // writer is opened once a reader waits, within bounded retries.
      int fd = (c.other_flags & O_ACCMODE) == O_WRONLY
                   ? testing::OpenFifoWriter(fifo)
                   : open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) close(fd);
    });
    absl::StatusOr<Fd> opened = absl::UnknownError("not finished");
    bool finished_early = false;
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            internal::Fiber* fiber = nullptr;
            scope.Spawn([&]() -> Task<absl::Status> {
              fiber = co_await internal::CurrentFiber();
              opened = co_await OpenAt(dir(), "fifo", c.flags);
              co_return absl::OkStatus();
            });
            if (uses_ring()) {
              if (absl::Status y =
                      co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                          &fiber);
                  !y.ok()) {
                co_return y;
              }
            } else if (absl::Status y = co_await testing::YieldUntilWaitingIn<
                           internal::BlockingJob>(&fiber);
                       !y.ok()) {
              co_return y;
            }
            // Long enough for a wrongly nonblocking open to have come back.
            if (absl::Status z = co_await Sleep(absl::Milliseconds(20));
                !z.ok()) {
              co_return z;
            }
            finished_early = fiber->waiting() == nullptr;
            // The other end; a writer needs the reader to be in the kernel
            // already (ENXIO until then): bounded retries.
            for (int i = 0; i < 1000 && !other.valid(); ++i) {
              int fd = open(fifo.c_str(), c.other_flags | O_CLOEXEC);
              if (fd >= 0) {
                other = Fd(fd);
              } else if (absl::Status z = co_await Sleep(absl::Milliseconds(5));
                         !z.ok()) {
                co_return z;
              }
            }
            co_return co_await scope.Join();
          });
        }(),
        Options(), uses_ring());
    watchdog.Disarm();
    EXPECT_FALSE(watchdog.fired());
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_FALSE(finished_early) << "the open did not wait for the other end";
    EXPECT_TRUE(other.valid());
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(fcntl(opened->get(), F_GETFL) & O_NONBLOCK, 0);
  }
}

// Cancellation that comes while the call runs in the kernel's workers but
// too late to stop it (a quick open of a file): the call's result is
// released (the Fd closed: the leak check of test_main would see it) and
// the result is kCancelled; or the cancellation won. Either way, kCancelled.
// Configurations with an io_uring path only.
class AsyncDirRingTest : public AsyncDirPathsTest {};

TEST_P(AsyncDirRingTest, CancellationLosingTheRaceReleasesTheResult) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  // The rounds share one loop, so one ring: a ring per round, torn down by
  // the kernel some time after its loop ends, could spend the user's
  // RLIMIT_MEMLOCK under parallel test runs, and a loop without a ring
  // serves the open on its workers (docs/runtime.md).
  constexpr int kRounds = 50;
  std::vector<absl::Status> scopes(kRounds);
  std::vector<absl::StatusOr<Fd>> opened(kRounds);
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        for (int i = 0; i < kRounds; ++i) {
          scopes[i] = co_await WithScope([&](Scope& scope)
                                             -> Task<absl::Status> {
            internal::Fiber* fiber = nullptr;
            scope.Spawn([&]() -> Task<absl::Status> {
              fiber = co_await internal::CurrentFiber();
              // A plain open: sent to the kernel's workers.
              opened[i] = co_await OpenAt(dir(), "d/file", O_RDONLY);
              co_return absl::OkStatus();
            });
            if (absl::Status y =
                    co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                        &fiber);
                !y.ok()) {
              co_return y;
            }
            scope.Cancel();
            co_return co_await scope.Join();
          });
        }
        co_return absl::OkStatus();
      }(),
      Options(), uses_ring());
  ASSERT_TRUE(s.ok()) << s;
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_TRUE(absl::IsCancelled(scopes[i])) << i << ": " << scopes[i];
    EXPECT_TRUE(absl::IsCancelled(opened[i].status()))
        << i << ": " << opened[i].status();
  }
}

// A loop whose only descriptor wait is a call in the ring sleeps in the
// ring's own io_uring_enter: a worker job that ends meanwhile (a post from
// another thread) must still wake it. The open in the kernel waits for a
// writer, which the task opens only after the job's result came back; the
// watchdog opens one should the post not wake the loop.
TEST_P(AsyncDirRingTest, AWorkerJobEndsWhileACallWaitsInTheKernel) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  const std::string fifo = absl::StrCat(path_, "/fifo");
  testing::Watchdog watchdog(absl::Seconds(20), [&] {
    int fd = testing::OpenFifoWriter(fifo);
    if (fd >= 0) close(fd);
  });
  absl::StatusOr<Fd> opened;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          internal::Fiber* fiber = nullptr;
          scope.Spawn([&]() -> Task<absl::Status> {
            fiber = co_await internal::CurrentFiber();
            opened = co_await OpenAt(dir(), "fifo", O_RDONLY);
            co_return absl::OkStatus();
          });
          if (absl::Status y =
                  co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                      &fiber);
              !y.ok()) {
            co_return y;
          }
          absl::StatusOr<int> job =
              co_await RunBlocking([] { return absl::StatusOr<int>(7); });
          EXPECT_EQ(job.value_or(0), 7);
          Fd writer(testing::OpenFifoWriter(fifo));
          EXPECT_TRUE(writer.valid());
          co_return co_await scope.Join();
        });
      }(),
      Options(), uses_ring());
  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the post did not wake the loop";
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(opened.ok()) << opened.status();
}

// Opens each FIFO in `fifos` whose reader is not `opened` yet for writing
// once, without waiting (ENXIO while no reader waits in the kernel), and
// closes it at once: a waiting reader's open then completes. True when
// every reader has opened.
bool OpenWritersOnce(const std::vector<std::string>& fifos,
                     const std::vector<std::atomic<bool>>& opened) {
  bool all = true;
  for (size_t i = 0; i < fifos.size(); ++i) {
    if (opened[i].load()) continue;
    all = false;
    int fd = open(fifos[i].c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) close(fd);
  }
  return all;
}

// A watchdog's action: OpenWritersOnce, 1 ms apart, until every reader has
// opened or 10 s have passed.
void OpenWritersForAWhile(const std::vector<std::string>& fifos,
                          const std::vector<std::atomic<bool>>& opened) {
  for (int i = 0; i < 10000 && !OpenWritersOnce(fifos, opened); ++i) {
    usleep(1000);
  }
}

// Plain opens of FIFOs waiting for their other end, more of them than the
// kernel's workers make bound calls at once by default (min(SQ entries of
// the thread's first ring, 4 x online CPUs): 4 on this test's thread, whose
// first ring is capfs's probe), do not stall the loop's other calls through
// the ring: each call of the table completes while they all wait, before
// any writer came, and they complete once writers come. A stalled call is
// never answered, and the watchdog's writers end the test. 4 x CPUs + 2
// FIFOs, 58 at most: more than the default on a thread whose first ring was
// any other (up to 14 CPUs), fewer than the smallest ring keeps in flight
// (63), which a loop gets when locked memory is short.
struct StallCase {
  const char* name;
  std::function<Task<absl::Status>(const Dir&)> call;
};

TEST_P(AsyncDirRingTest, WaitingFifoOpensDoNotStallOtherCalls) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  const int kFifos = std::min(4 * get_nprocs_conf(), 56) + 2;
  std::vector<std::string> fifos;
  for (int i = 0; i < kFifos; ++i) {
    fifos.push_back(absl::StrCat(path_, "/fifo", i));
    ASSERT_EQ(mkfifo(fifos.back().c_str(), 0600), 0);
  }
  const StallCase cases[] = {
      {"mkdir",
       [](const Dir& dir) -> Task<absl::Status> {
         co_return co_await Mkdir(dir, "made");
       }},
      {"open a regular file",
       [](const Dir& dir) -> Task<absl::Status> {
         co_return (co_await OpenAt(dir, "d/file", O_RDONLY)).status();
       }},
  };
  for (const StallCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::atomic<bool>> opened(kFifos);
    std::vector<absl::Status> results(kFifos);
    testing::Watchdog watchdog(absl::Seconds(20),
                               [&] { OpenWritersForAWhile(fifos, opened); });
    absl::Status call_result = absl::UnknownError("not made");
    int opened_before_the_call_returned = -1;
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            std::vector<internal::Fiber*> fibers(kFifos, nullptr);
            for (int i = 0; i < kFifos; ++i) {
              scope.Spawn([&, i]() -> Task<absl::Status> {
                fibers[i] = co_await internal::CurrentFiber();
                absl::StatusOr<Fd> fd =
                    co_await OpenAt(dir(), absl::StrCat("fifo", i), O_RDONLY);
                results[i] = fd.status();
                opened[i] = true;
                co_return absl::OkStatus();
              });
            }
            for (int i = 0; i < kFifos; ++i) {
              if (absl::Status y =
                      co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                          &fibers[i]);
                  !y.ok()) {
                co_return y;
              }
            }
            // The opens go to the kernel first; the call comes after them.
            if (absl::Status z = co_await Sleep(absl::Milliseconds(20));
                !z.ok()) {
              co_return z;
            }
            call_result = co_await c.call(dir());
            opened_before_the_call_returned = static_cast<int>(
                std::count(opened.begin(), opened.end(), true));
            for (int i = 0; i < 10000 && !OpenWritersOnce(fifos, opened); ++i) {
              if (absl::Status z = co_await Sleep(absl::Milliseconds(1));
                  !z.ok()) {
                co_return z;
              }
            }
            co_return co_await scope.Join();
          });
        }(),
        Options(), uses_ring());
    watchdog.Disarm();
    EXPECT_FALSE(watchdog.fired()) << "the call waited for the FIFOs' writers";
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(call_result.ok()) << call_result;
    EXPECT_EQ(opened_before_the_call_returned, 0)
        << "the call came back once FIFOs had writers";
    for (int i = 0; i < kFifos; ++i) {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
    }
  }
}

// The ring of the loop running the awaiting task.
class CurrentRing {
 public:
  bool await_ready() noexcept { return false; }
  template <internal::RuntimePromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    ring_ = self.promise().fiber()->scheduler()->ring();
    return false;
  }
  internal::UringRing* await_resume() noexcept { return ring_; }

 private:
  internal::UringRing* ring_ = nullptr;
};

// More plain opens than the ring hands over at once (they go to the
// kernel's workers 32 at a time: kPacedBatch, uring_ring.cc), all of FIFOs
// waiting for a writer, started in one turn, and a plain open of a regular
// file started after them: the file's open completes while they all wait,
// and a hand-over held calls back (paced_holds). The loop sleeps in its ring
// (nothing else waits), or in its backend (a task also waits to read a pipe);
// either way the calls held back go to the kernel, after a bounded sleep or
// before the backend's: the loop never begins a sleep in its backend while
// calls are held back (an incidental wakeup, such as the kernel starting a
// worker through the loop's thread, could otherwise hide one). A call held back
// for good is never answered, and the watchdog's writers end the test. 40
// FIFOs: fewer than the smallest ring keeps in flight (63).
struct HeldBackCase {
  const char* name;
  bool backend_wait;
};

TEST_P(AsyncDirRingTest, OpensQueuedBehindWaitingOnesAreHandedOver) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  constexpr int kFifos = 40;
  std::vector<std::string> fifos;
  for (int i = 0; i < kFifos; ++i) {
    fifos.push_back(absl::StrCat(path_, "/fifo", i));
    ASSERT_EQ(mkfifo(fifos.back().c_str(), 0600), 0);
  }
  const HeldBackCase cases[] = {
      {"the loop sleeps in its ring", false},
      {"the loop sleeps in its backend", true},
  };
  for (const HeldBackCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::atomic<bool>> opened(kFifos);
    std::vector<absl::Status> results(kFifos);
    testing::Watchdog watchdog(absl::Seconds(20),
                               [&] { OpenWritersForAWhile(fifos, opened); });
    absl::StatusOr<Fd> file = absl::UnknownError("not opened");
    int opened_before_the_file = -1;
    absl::Status read_result;
    uint64_t held_back_sleeps = 1;
    uint64_t paced_holds = 0;
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          internal::UringRing* ring = co_await CurrentRing();
          if (ring == nullptr) co_return absl::InternalError("no ring");
          const uint64_t held_back_before = ring->backend_sleeps_holding_back();
          const uint64_t paced_holds_before = ring->paced_holds();
          absl::Status scoped =
              co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
                absl::StatusOr<PipeEnds> pipe =
                    absl::FailedPreconditionError("no pipe in this case");
                if (c.backend_wait) {
                  pipe = Pipe(scope);
                  if (!pipe.ok()) co_return pipe.status();
                  internal::Fiber* reader = nullptr;
                  scope.Spawn([&]() -> Task<absl::Status> {
                    reader = co_await internal::CurrentFiber();
                    char ch;
                    read_result =
                        (co_await Read(pipe->read, absl::MakeSpan(&ch, 1)))
                            .status();
                    co_return absl::OkStatus();
                  });
                  // The opens start once the loop waits on the pipe too.
                  if (absl::Status y = co_await testing::YieldUntilWaitingIn<
                          internal::FdReadyAwaiter>(&reader);
                      !y.ok()) {
                    co_return y;
                  }
                }
                for (int i = 0; i < kFifos; ++i) {
                  scope.Spawn([&, i]() -> Task<absl::Status> {
                    absl::StatusOr<Fd> fd = co_await OpenAt(
                        dir(), absl::StrCat("fifo", i), O_RDONLY);
                    results[i] = fd.status();
                    opened[i] = true;
                    co_return absl::OkStatus();
                  });
                }
                scope.Spawn([&]() -> Task<absl::Status> {
                  file = co_await OpenAt(dir(), "d/file", O_RDONLY);
                  opened_before_the_file = static_cast<int>(
                      std::count(opened.begin(), opened.end(), true));
                  for (int i = 0; i < 10000 && !OpenWritersOnce(fifos, opened);
                       ++i) {
                    if (absl::Status z = co_await Sleep(absl::Milliseconds(1));
                        !z.ok()) {
                      co_return z;
                    }
                  }
                  if (!pipe.ok()) co_return absl::OkStatus();
                  co_return co_await WriteAll(pipe->write, "x");
                });
                co_return co_await scope.Join();
              });
          held_back_sleeps =
              ring->backend_sleeps_holding_back() - held_back_before;
          paced_holds = ring->paced_holds() - paced_holds_before;
          co_return scoped;
        }(),
        Options(), uses_ring());
    watchdog.Disarm();
    EXPECT_FALSE(watchdog.fired()) << "the file's open was held back";
    EXPECT_EQ(held_back_sleeps, 0u)
        << "the loop slept in its backend with calls held back";
    EXPECT_GE(paced_holds, 1u) << "the 41 opens went over in one hand-over";
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(opened_before_the_file, 0)
        << "the file opened once FIFOs had writers";
    EXPECT_TRUE(read_result.ok()) << read_result;
    for (int i = 0; i < kFifos; ++i) {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
    }
  }
}

// A call made while the loop has nothing else to do sleeps in the ring
// itself, in its await_suspend (Scheduler::SleepInRingFromCall), and its task
// goes on without suspending; the results are the sync calls'. One task
// alone on the loop makes a directory, stats it and opens it through the
// ring.
TEST_P(AsyncDirRingTest, ACallAloneSleepsInTheRingItself) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  uint64_t done_before = 0, done_after = 0;
  absl::Status made;
  absl::StatusOr<FileStat> st;
  absl::StatusOr<Fd> opened;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        internal::UringRing* ring = co_await CurrentRing();
        if (ring == nullptr) co_return absl::InternalError("no ring");
        done_before = ring->calls_done_in_own_sleep();
        made = co_await Mkdir(dir(), "d/alone");
        st = co_await Stat(dir(), "d/alone");
        opened = co_await OpenAt(dir(), "d/alone", O_PATH | O_DIRECTORY);
        done_after = ring->calls_done_in_own_sleep();
        co_return absl::OkStatus();
      }(),
      Options(), uses_ring());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(made.ok()) << made;
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->kind, FileKind::kDirectory);
  EXPECT_TRUE(opened.ok()) << opened.status();
  // Mkdir always goes to the ring; Stat and OpenAt do when the loop's own
  // path is off. Each completed in its own sleep: no task suspended.
  EXPECT_GE(done_after, done_before + (GetParam().paths.on_loop ? 1 : 3));
}

// A burst larger than the ring's batch (128 calls in one io_uring_enter):
// every call succeeds, and no call is left queued unsubmitted while the
// loop sleeps (the test would hang). An O_PATH open
// completes inline in its enter, and the loop runs a batch's tasks, which
// close their descriptors, before it hands over more: the burst holds two
// batches of descriptors at once at most (the turn's end hands one over
// while the last one's tasks wait to run), so the highest number given
// stays below the first free one plus 256 and the loop's own few (handed
// over at once, the burst's 1,000 would all be open together). A plain
// open runs in the kernel's workers, so when its descriptor is closed
// depends on them: only its results are checked, over fewer calls (all of
// them may be open at once; the test must stay far from RLIMIT_NOFILE).
// The bound tells the two apart on the ring of the first size (1,887 calls
// in flight at most) and the second (351), not on the smallest (63), which
// a loop gets only when locked memory is short.
struct BatchCase {
  const char* name;
  int flags;
  int calls;
  bool bounded;  // descriptors held at once bounded by two batches
};

TEST_P(AsyncDirRingTest, ABurstHoldsTwoBatchesOfDescriptorsAtMost) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  const BatchCase cases[] = {
      {"o_path", O_PATH, 1000, true},
      {"o_rdonly", O_RDONLY, 300, false},
  };
  for (const BatchCase& c : cases) {
    SCOPED_TRACE(c.name);
    struct Call {
      absl::Status got = absl::UnknownError("not run");
      int fd = -1;
    };
    std::vector<Call> calls(c.calls);
    // The lowest free number now: the loop's own descriptors (its backend,
    // wakeup eventfd and ring: fewer than 16) and the burst's are numbered
    // from it up.
    int first_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(first_free, 0);
    close(first_free);
    const AsyncFsCounts before = AsyncFsCountsNow();
    absl::Status s = RunAllAtOnce(calls, [&](Call& call) -> Task<absl::Status> {
      absl::StatusOr<Fd> fd = co_await OpenAt(dir(), "d/file", c.flags);
      call.got = fd.status();
      if (fd.ok()) call.fd = fd->get();
      co_return absl::OkStatus();  // the descriptor is closed here
    });
    ASSERT_TRUE(s.ok()) << s;
    const AsyncFsCounts after = AsyncFsCountsNow();
    int highest = -1;
    for (const Call& call : calls) {
      ASSERT_TRUE(call.got.ok()) << call.got;
      highest = std::max(highest, call.fd);
    }
    // Most of the burst went to the ring (its last 16 O_PATH opens, with
    // fewer than 16 others ready, may open on the loop), unless the loop's
    // own path serves plain opens.
    if (c.flags == O_PATH || !GetParam().paths.on_loop) {
      EXPECT_GE(after.io_uring - before.io_uring, c.calls - 20u);
    }
    if (c.bounded) {
      EXPECT_LT(highest, first_free + 256 + 16);
    }
  }
}

// A call whose WithTimeout deadline has already passed is withdrawn before
// the kernel sees it, although nothing else would run first: the timer
// fires in the loop's turn, so the call does not sleep in the ring itself.
TEST_P(AsyncDirRingTest, ACallPastItsDeadlineIsWithdrawnUnmade) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  absl::Status made;
  uint64_t slept_before = 0, slept_after = 0;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        internal::UringRing* ring = co_await CurrentRing();
        if (ring == nullptr) co_return absl::InternalError("no ring");
        slept_before = ring->sleeps_from_calls();
        made = co_await WithTimeout(absl::Seconds(-1), Mkdir(dir(), "d/late"));
        slept_after = ring->sleeps_from_calls();
        co_return absl::OkStatus();
      }(),
      Options(), uses_ring());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(absl::IsDeadlineExceeded(made)) << made;
  EXPECT_FALSE(Exists("d/late"));
  EXPECT_EQ(slept_after, slept_before) << "the call slept past its deadline";
}

// True once the thread `tid` of this process sleeps in io_uring_enter(2)
// (its state in /proc is 'S' and its syscall 426), as a call that sleeps in
// the ring itself makes it.
bool SleepsInIoUringEnter(pid_t tid) {
  std::string dir = absl::StrCat("/proc/self/task/", tid, "/");
  char buf[512];
  auto read = [&](const std::string& name) -> std::string {
    int fd = open((dir + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
    close(fd);
    return std::string(buf, n > 0 ? n : 0);
  };
  const std::string stat = read("stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() ||
      stat[paren + 2] != 'S') {
    return false;
  }
  return absl::StartsWith(read("syscall"), "426 ");
}

// A post from another thread ends a call's own sleep in the ring as it ends
// the loop's. One task waits for a worker job; the other then opens a FIFO
// nobody writes to, which waits in the kernel with nothing else to run, so
// it sleeps in the ring itself. The job ends (a post) only once the loop's
// thread sleeps in io_uring_enter; its task then opens the writer, which
// lets the open finish. The watchdog opens a writer should the post not end
// the sleep.
TEST_P(AsyncDirRingTest, APostEndsTheSleepOfACall) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  const pid_t loop_tid = gettid();
  if (access(absl::StrCat("/proc/self/task/", loop_tid, "/syscall").c_str(),
             R_OK) != 0) {
    GTEST_SKIP() << "no /proc/<tid>/syscall to see where the loop sleeps";
  }
  const std::string fifo = absl::StrCat(path_, "/fifo");
  testing::Watchdog watchdog(absl::Seconds(20), [&] {
    int fd = testing::OpenFifoWriter(fifo);
    if (fd >= 0) close(fd);
  });
  uint64_t slept_before = 0, slept_after = 0, done_before = 0, done_after = 0;
  bool job_saw_sleep = false;
  absl::StatusOr<Fd> opened;
  Fd writer;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        internal::UringRing* ring = co_await CurrentRing();
        if (ring == nullptr) co_return absl::InternalError("no ring");
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          scope.Spawn([&]() -> Task<absl::Status> {
            absl::StatusOr<bool> saw = co_await RunBlocking([&] {
              // Bounded: 20 s at most, the watchdog's patience.
              for (int i = 0; i < 20000; ++i) {
                if (SleepsInIoUringEnter(loop_tid)) {
                  return absl::StatusOr<bool>(true);
                }
                usleep(1000);
              }
              return absl::StatusOr<bool>(false);
            });
            job_saw_sleep = saw.value_or(false);
            writer = Fd(testing::OpenFifoWriter(fifo));
            co_return absl::OkStatus();
          });
          // The job's task runs first and waits for it.
          if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
          slept_before = ring->sleeps_from_calls();
          done_before = ring->calls_done_in_own_sleep();
          opened = co_await OpenAt(dir(), "fifo", O_RDONLY);
          slept_after = ring->sleeps_from_calls();
          done_after = ring->calls_done_in_own_sleep();
          co_return co_await scope.Join();
        });
      }(),
      Options(), uses_ring());
  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the post did not end the call's sleep";
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(job_saw_sleep);
  EXPECT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(writer.valid());
  // It slept in the ring itself, and the post, not its completion, ended
  // that sleep.
  EXPECT_EQ(slept_after, slept_before + 1);
  EXPECT_EQ(done_after, done_before);
}

// A loop that also waits on another descriptor sleeps in its backend
// (epoll or poll): a completion posted to the ring meanwhile must wake it
// there. One task's open waits in the kernel for a writer, which a thread
// opens; that task then writes to a pipe another task waits to read. The
// watchdog writes to the pipe should the completion not wake the loop.
TEST_P(AsyncDirRingTest, ACompletionWakesALoopWaitingOnADescriptor) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  const std::string fifo = absl::StrCat(path_, "/fifo");
  std::atomic<int> rescue_fd{-1};
  testing::Watchdog watchdog(absl::Seconds(20), [&] {
    int fd = rescue_fd.load();
    if (fd >= 0) (void)!write(fd, "w", 1);
  });
  std::thread writer;
  Fd writer_end;
  absl::StatusOr<Fd> opened;
  absl::StatusOr<size_t> read;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<PipeEnds> pipe = Pipe(scope);
          if (!pipe.ok()) co_return pipe.status();
          rescue_fd.store(pipe->write.get());
          internal::Fiber* opener = nullptr;
          scope.Spawn([&]() -> Task<absl::Status> {
            opener = co_await internal::CurrentFiber();
            opened = co_await OpenAt(dir(), "fifo", O_RDONLY);
            co_return co_await WriteAll(pipe->write, "x");
          });
          scope.Spawn([&]() -> Task<absl::Status> {
            char c;
            read = co_await Read(pipe->read, absl::MakeSpan(&c, 1));
            co_return absl::OkStatus();
          });
          if (absl::Status y =
                  co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                      &opener);
              !y.ok()) {
            co_return y;
          }
          writer = std::thread(
              [&] { writer_end = Fd(testing::OpenFifoWriter(fifo)); });
          absl::Status joined = co_await scope.Join();
          rescue_fd.store(-1);  // the scope closes the pipe
          co_return joined;
        });
      }(),
      Options(), uses_ring());
  if (writer.joinable()) writer.join();
  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the completion did not wake the loop";
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(writer_end.valid());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 1u);
}

// A completion the kernel's workers post reaches a loop that never sleeps
// and makes no syscall of its own: with IORING_SETUP_COOP_TASKRUN the kernel
// posts it when the loop's thread next enters the kernel (or at a timer
// tick), and the loop, which looks at the ring's memory every 64 resumes,
// enters at once when the ring says some are waiting (TASKRUN_FLAG). Which
// of the two posted it is a matter of time, which this does not measure: it
// checks that the completion arrives. One task opens a file (a plain open:
// the kernel's workers make it); the body yields until it is done, at most
// kMaxYields times (under a second here), never sleeping, since a task is
// always ready. Without the loop's look at the ring between resumes, every
// round reaches the bound.
TEST_P(AsyncDirRingTest, ACompletionReachesALoopThatNeverSleeps) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  constexpr int kMaxYields = 20000000;
  for (int round = 0; round < 5; ++round) {
    bool done = false;
    int yields = 0;
    absl::StatusOr<Fd> opened;
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            scope.Spawn([&]() -> Task<absl::Status> {
              opened = co_await OpenAt(dir(), "d/file", O_RDONLY);
              done = true;
              co_return absl::OkStatus();
            });
            while (!done && yields < kMaxYields) {
              if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
              ++yields;
            }
            co_return co_await scope.Join();
          });
        }(),
        Options(), uses_ring());
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(opened.ok()) << opened.status();
    EXPECT_LT(yields, kMaxYields)
        << "the open's completion never reached the spinning loop";
  }
}

// A call that completed before the cancellation came, but whose task has
// not resumed yet, keeps its result: the cancellation is the next wait's.
TEST_P(AsyncDirPathsTest, CompletedBeforeResumingKeepsItsResult) {
  absl::StatusOr<FileStat> st;
  absl::Status mkdir_status;
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          internal::Fiber* fiber = nullptr;
          bool resumed = false;
          scope.Spawn([&]() -> Task<absl::Status> {
            fiber = co_await internal::CurrentFiber();
            mkdir_status = co_await Mkdir(dir(), "d/made");
            resumed = true;
            co_return absl::OkStatus();
          });
          // Until the task waits, then until its wait is over: it is queued
          // to resume and has not run.
          while (fiber == nullptr || fiber->waiting() == nullptr) {
            if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
          }
          while (fiber->waiting() != nullptr) {
            if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
          }
          EXPECT_FALSE(resumed);
          scope.Cancel();
          // The task uses this body's locals: wait for it.
          co_return co_await scope.Join();
        });
      }(),
      Options(), uses_ring());
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(mkdir_status.ok()) << mkdir_status;
  EXPECT_TRUE(Exists("d/made"));
}

// Stats and Lstats of plain names, many at once (a burst: where the ring
// serves, each a statx on the kernel's workers), give what the sync calls
// give, field for field, for every kind of name: a file, a directory, a
// FIFO, the Dir itself, a missing name, symlinks to a file, to nowhere,
// out through "..", and to an absolute path (followed by the resolver,
// refused as escapes). 160 calls in one scope, so that most of them start
// with more than the burst's threshold (16) of others ready to run.
// One Stat (follow) or Lstat of `path` among a burst's, and what it gave.
struct StatCall {
  std::string path;
  bool follow;
  absl::StatusOr<FileStat> got = absl::UnknownError("not run");
};

// Makes `c`'s call (Stat or Lstat) in `dir`, keeping its result. One
// co_await a statement: g++ 12 destroys the temporaries of a conditional
// expression with two wrongly.
Task<absl::Status> MakeStatCall(const Dir& dir, StatCall& c) {
  if (c.follow) {
    c.got = co_await Stat(dir, c.path);
  } else {
    c.got = co_await Lstat(dir, c.path);
  }
  co_return absl::OkStatus();
}

TEST_P(AsyncDirPathsTest, BurstOfStatsGivesTheSyncResults) {
  ASSERT_EQ(symlink("d/file", absl::StrCat(path_, "/link").c_str()), 0);
  ASSERT_EQ(symlink("nowhere", absl::StrCat(path_, "/dangling").c_str()), 0);
  ASSERT_EQ(symlink("../..", absl::StrCat(path_, "/up").c_str()), 0);
  ASSERT_EQ(symlink("/etc", absl::StrCat(path_, "/abs").c_str()), 0);
  ASSERT_EQ(truncate(absl::StrCat(path_, "/d/file").c_str(), 12345), 0);
  // Eight plain names, and two paths that are not (the usual path).
  const std::vector<std::string> names = {"d",      "fifo",     ".",  "missing",
                                          "link",   "dangling", "up", "abs",
                                          "d/file", "d/../link"};
  std::vector<StatCall> calls;
  for (int round = 0; round < 8; ++round) {
    for (const std::string& n : names) {
      calls.push_back(StatCall{n, true});
      calls.push_back(StatCall{n, false});
    }
  }
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = RunAllAtOnce(calls, [&](StatCall& c) -> Task<absl::Status> {
    co_return co_await MakeStatCall(dir(), c);
  });
  ASSERT_TRUE(s.ok()) << s;
  const AsyncFsCounts after = AsyncFsCountsNow();
  for (const StatCall& c : calls) {
    SCOPED_TRACE(absl::StrCat(c.follow ? "Stat(" : "Lstat(", c.path, ")"));
    ExpectSameStat(c.got, c.follow ? dir().Stat(c.path) : dir().Lstat(c.path));
  }
  // The calls that met a burst went to the ring where it serves, at least
  // while 16 others or more were ready, which is the first 140 or so of
  // the 160: the plain names as STATX, the others as an O_PATH open through
  // the ring, stat'ed on the loop. On the loop: the burst's last calls, and
  // the symlinks a STATX found, to follow, whose task resumed with fewer
  // than 16 others ready (timing: up to about 28 in all). One run made 13
  // and 11 (epoll, poll); 45 when every path of more than one name was
  // made there.
  // Where TEST_TMPDIR is on tmpfs and the loop's path serves, the burst's
  // plain names (128 of the 160) go to the ring's CallShare instead, made
  // by the loop and a worker (TheLoopAndAWorkerShareABurst); only the rest
  // go to the ring.
  if (uses_ring() && OnTmpfs(path_) && GetParam().paths.on_loop) {
    EXPECT_GE(after.io_uring - before.io_uring, 16u);
    EXPECT_GE(
        (after.workers - before.workers) + (after.on_loop - before.on_loop),
        100u);
  } else if (uses_ring()) {
    EXPECT_GE(after.io_uring - before.io_uring, 100u);
    EXPECT_LE(after.on_loop - before.on_loop, 30u);
  } else {
    EXPECT_EQ(after.io_uring, before.io_uring);
  }
}

// Makes, in `path` on tmpfs, a directory "d", a FIFO "fifo", a file "file"
// of 12,345 bytes, a symlink "link" to it and a dangling one "dangling",
// and opens `path` as `*dir`.
void MakeNamesOnTmpfs(const std::string& path, std::optional<Dir>* dir) {
  ASSERT_TRUE(OnTmpfs(path)) << path << " is not on tmpfs";
  ASSERT_EQ(mkdir(absl::StrCat(path, "/d").c_str(), 0755), 0);
  ASSERT_EQ(mkfifo(absl::StrCat(path, "/fifo").c_str(), 0600), 0);
  int fd = open(absl::StrCat(path, "/file").c_str(),
                O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 12345), 0);
  close(fd);
  ASSERT_EQ(symlink("file", absl::StrCat(path, "/link").c_str()), 0);
  ASSERT_EQ(symlink("nowhere", absl::StrCat(path, "/dangling").c_str()), 0);
  absl::StatusOr<Dir> opened = Dir::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  dir->emplace(*std::move(opened));
}

// A burst of 1,000 Stats and Lstats of plain names in a Dir on tmpfs, where
// the ring serves them in chains the kernel's workers make one call after
// another, gives what the sync calls give: names of every kind, and
// missing ones (ENOENT) among them, so that most chains hold a failure
// before other calls. The chains are hard-linked so that a failure does not
// cancel the calls after it: Linux 5.x severed a plain link on a failed
// STATX, which this test then catches; 6.18 severs it on no STATX result.
// Where only the ring serves, most calls went in chains, never more than 16
// in flight (128 calls; without that bound, 29 to 36 were). Where the
// loop's path serves too, none did: the calls went to the ring's CallShare,
// whose worker and the loop made them (how many each depends on the
// worker's timing: see TheLoopAndAWorkerShareABurst), counted as made on
// the workers and on the loop.
TEST_P(AsyncDirPathsTest, ChainedStatsOnTmpfsGiveTheSyncResults) {
  capfs_test::TempDir tmp;
  std::optional<Dir> shm;
  ASSERT_NO_FATAL_FAILURE(MakeNamesOnTmpfs(tmp.path(), &shm));
  const std::vector<std::string> names = {
      "d",    "missing", "file",     "fifo",     "gone",
      "link", "absent",  "dangling", "nowhere2", "."};
  std::vector<StatCall> calls;
  for (int i = 0; i < 1000; ++i) {
    calls.push_back(
        StatCall{names[i % names.size()], (i / names.size()) % 2 == 0});
  }
  uint64_t chained = 0;
  uint64_t made_on_loop = 0;
  uint64_t made_by_worker = 0;
  unsigned peak_chains = 0;
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        internal::UringRing* ring = co_await CurrentRing();
        const uint64_t chained_before =
            ring == nullptr ? 0 : ring->chained_calls();
        const uint64_t made_before = ring == nullptr ? 0 : ring->made_on_loop();
        const uint64_t worker_before =
            ring == nullptr ? 0 : ring->made_by_worker();
        absl::Status joined =
            co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
              for (StatCall& c : calls) {
                scope.Spawn([&c, &shm]() -> Task<absl::Status> {
                  co_return co_await MakeStatCall(*shm, c);
                });
              }
              co_return co_await scope.Join();
            });
        if (ring != nullptr) {
          chained = ring->chained_calls() - chained_before;
          made_on_loop = ring->made_on_loop() - made_before;
          made_by_worker = ring->made_by_worker() - worker_before;
          peak_chains = ring->peak_chains_in_flight();
        }
        co_return joined;
      }(),
      Options(), uses_ring());
  ASSERT_TRUE(s.ok()) << s;
  for (const StatCall& c : calls) {
    SCOPED_TRACE(absl::StrCat(c.follow ? "Stat(" : "Lstat(", c.path, ")"));
    ExpectSameStat(c.got, c.follow ? shm->Stat(c.path) : shm->Lstat(c.path));
  }
  const AsyncFsCounts after = AsyncFsCountsNow();
  if (uses_ring()) {
    // All but the burst's last 16 or so are plain names met in a burst:
    // each went in a chain (each chain's first call is not chained to
    // another), or was made by the share's worker or the loop.
    if (GetParam().paths.on_loop) {
      EXPECT_GE(made_on_loop + made_by_worker, 900u);
      EXPECT_EQ(chained, 0u);
      EXPECT_EQ(peak_chains, 0u);
      EXPECT_GE(after.on_loop - before.on_loop, made_on_loop);
      EXPECT_GE(after.workers - before.workers, made_by_worker);
    } else {
      EXPECT_GE(chained, 700u);
      EXPECT_GE(peak_chains, 2u);
      EXPECT_LE(peak_chains, 16u);
      EXPECT_EQ(made_on_loop + made_by_worker, 0u);
      EXPECT_EQ(after.on_loop, before.on_loop);
    }
  } else {
    EXPECT_EQ(chained, 0u);
  }
}

// A burst of Stats and Lstats of plain names on tmpfs, where the loop's path
// serves: each call waits in the ring's CallShare, which the loop and one
// worker of its pool take from, and never reaches the kernel's ring. Each
// case settles who makes them:
//  - the worker, every one: a task keeps the loop busy (it spins, never
//    suspending, until the worker has made them all, 10 s at most), so the
//    loop never takes any;
//  - the loop, every one: the pool's only thread is busy with a blocking
//    read of a pipe the test writes once the burst is over, so the share's
//    job waits in the pool's queue. The loop makes the calls rather than
//    sleep; without that it would sleep until the burst's 10 s timeout.
//    With a task waiting on a descriptor too (a pipe the first Stat to
//    finish writes to), that task still gets its turn while the loop makes
//    the calls (within kResumesPerPoll, 64, resumes), not after all 120.
//    With a task that yields until the burst is done (10 s at most), the
//    loop is never idle, and still makes them, 8 every 64 resumes;
//  - no one: with the pool busy as above, a task that runs before the loop
//    is idle cancels the burst, and every call is withdrawn, never made.
// Each call gives the sync call's result (or kCancelled in the last case),
// counted as made on the workers or on the loop, never through io_uring.
// With the loop's path off there is no share: each call goes to the ring
// (in chains), counted as io_uring's.
// Each call is one fstatat: a symlink is only lstat'ed.
enum class ShareMaker { kWorker, kLoop, kNoOne, kRing };

struct ShareCase {
  const char* name;
  ShareMaker maker;
  bool descriptor_waits;
  bool yields_meanwhile;  // a task yields until the burst is done
};

TEST_P(AsyncDirRingTest, TheLoopAndAWorkerShareABurst) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  capfs_test::TempDir tmp;
  std::optional<Dir> shm;
  ASSERT_NO_FATAL_FAILURE(MakeNamesOnTmpfs(tmp.path(), &shm));
  std::vector<StatCall> stat_calls;
  for (int round = 0; round < 10; ++round) {
    for (const char* name : {"d", "file", "fifo", ".", "missing"}) {
      stat_calls.push_back(StatCall{name, true});
      stat_calls.push_back(StatCall{name, false});
    }
    for (const char* name : {"link", "dangling"}) {
      stat_calls.push_back(StatCall{name, false});
    }
  }
  const uint64_t kStats = stat_calls.size();
  const ShareCase with_loop[] = {
      {"the_worker_makes_them_while_the_loop_is_busy", ShareMaker::kWorker,
       false, false},
      {"the_loop_makes_them_while_the_workers_are_busy", ShareMaker::kLoop,
       false, false},
      {"the_loop_makes_them_and_a_descriptor_waiter_runs", ShareMaker::kLoop,
       true, false},
      {"the_loop_makes_them_while_a_task_yields", ShareMaker::kLoop, false,
       true},
      {"cancelled_before_anyone_takes_them", ShareMaker::kNoOne, false, false},
  };
  const ShareCase without_loop[] = {
      {"no_share_with_the_loop_path_off", ShareMaker::kRing, false, false},
  };
  const absl::Span<const ShareCase> cases =
      GetParam().paths.on_loop ? absl::Span<const ShareCase>(with_loop)
                               : absl::Span<const ShareCase>(without_loop);
  for (const ShareCase& c : cases) {
    SCOPED_TRACE(c.name);
    const bool pool_busy =
        c.maker == ShareMaker::kLoop || c.maker == ShareMaker::kNoOne;
    int gate[2];
    ASSERT_EQ(pipe2(gate, O_CLOEXEC), 0);
    Fd gate_read(gate[0]), gate_write(gate[1]);
    for (StatCall& call : stat_calls) call.got = absl::UnknownError("not run");
    WorkerPool pool({.max_threads = 1});
    LoopOptions options = Options();
    options.workers = &pool;
    uint64_t made_on_loop = 0;
    uint64_t made_by_worker = 0;
    uint64_t made_when_read = 0;
    uint64_t stats_done = 0;
    AsyncFsCounts before, after;
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          internal::UringRing* ring = co_await CurrentRing();
          if (ring == nullptr) co_return absl::InternalError("no ring");
          const uint64_t loop_before = ring->made_on_loop();
          const uint64_t worker_before = ring->made_by_worker();
          before = AsyncFsCountsNow();
          absl::Status joined =
              co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
                // The blocking read below ends only with the gate written:
                // on every way out of this body, so that the scope's end
                // never waits for it in vain.
                absl::Cleanup open_gate = [&] {
                  if (pool_busy && write(gate_write.get(), "x", 1) != 1) {
                    ADD_FAILURE() << "write to the gate";
                  }
                };
                absl::StatusOr<PipeEnds> other = Pipe(scope);
                if (!other.ok()) co_return other.status();
                if (c.yields_meanwhile) {
                  scope.Spawn([&]() -> Task<absl::Status> {
                    const absl::Time deadline = absl::Now() + absl::Seconds(10);
                    while (stats_done < kStats) {
                      if (absl::Now() > deadline) {
                        co_return absl::DeadlineExceededError(
                            "the burst made no progress while a task yielded");
                      }
                      if (absl::Status y = co_await Yield(); !y.ok()) {
                        co_return y;
                      }
                    }
                    co_return absl::OkStatus();
                  });
                }
                if (pool_busy) {
                  // The pool's only thread, until the gate is written.
                  scope.Spawn([&]() -> Task<absl::Status> {
                    co_return co_await RunBlocking([&]() -> absl::Status {
                      char byte;
                      if (read(gate_read.get(), &byte, 1) != 1) {
                        return absl::InternalError("read of the gate");
                      }
                      return absl::OkStatus();
                    });
                  });
                }
                if (c.descriptor_waits) {
                  scope.Spawn([&]() -> Task<absl::Status> {
                    char byte;
                    absl::StatusOr<size_t> n =
                        co_await Read(other->read, absl::MakeSpan(&byte, 1));
                    made_when_read = ring->made_on_loop() - loop_before;
                    co_return n.status();
                  });
                }
                Scope* burst_scope = nullptr;
                absl::Status burst = co_await WithTimeout(
                    absl::Seconds(10),
                    WithScope([&](Scope& calls) -> Task<absl::Status> {
                      burst_scope = &calls;
                      bool first = true;
                      for (StatCall& sc : stat_calls) {
                        calls.Spawn([&, call = &sc]() -> Task<absl::Status> {
                          absl::Status m = co_await MakeStatCall(*shm, *call);
                          ++stats_done;
                          if (c.descriptor_waits &&
                              std::exchange(first, false) &&
                              write(other->write.get(), "x", 1) != 1) {
                            co_return absl::InternalError("write to the pipe");
                          }
                          co_return m;
                        });
                      }
                      // Ready behind the Stats, so that each meets a burst
                      // (16 other tasks ready or more) and goes to the ring.
                      for (int i = 0; i < 16; ++i) {
                        calls.Spawn([]() -> Task<absl::Status> {
                          co_return absl::OkStatus();
                        });
                      }
                      // In the same turn as the Stats, after each has put
                      // its call in the share.
                      if (c.maker == ShareMaker::kWorker) {
                        calls.Spawn([&]() -> Task<absl::Status> {
                          const absl::Time deadline =
                              absl::Now() + absl::Seconds(10);
                          while (ring->made_by_worker() - worker_before <
                                 kStats) {
                            if (absl::Now() > deadline) {
                              co_return absl::DeadlineExceededError(
                                  "the worker made too few calls");
                            }
                            std::this_thread::yield();
                          }
                          co_return absl::OkStatus();
                        });
                      } else if (c.maker == ShareMaker::kNoOne) {
                        calls.Spawn([&]() -> Task<absl::Status> {
                          burst_scope->Cancel();
                          co_return absl::OkStatus();
                        });
                      }
                      co_return co_await calls.Join();
                    }));
                if (c.maker == ShareMaker::kNoOne) {
                  if (!absl::IsCancelled(burst)) {
                    co_return absl::InternalError(absl::StrCat(
                        "the burst was not cancelled: ", burst.ToString()));
                  }
                } else if (!burst.ok()) {
                  co_return burst;
                }
                std::move(open_gate).Invoke();
                co_return co_await scope.Join();
              });
          made_on_loop = ring->made_on_loop() - loop_before;
          made_by_worker = ring->made_by_worker() - worker_before;
          after = AsyncFsCountsNow();
          co_return joined;
        }(),
        options, /*ring=*/true);
    ASSERT_TRUE(s.ok()) << s;
    switch (c.maker) {
      case ShareMaker::kWorker:
        EXPECT_EQ(made_by_worker, kStats);
        EXPECT_EQ(made_on_loop, 0u);
        break;
      case ShareMaker::kLoop:
        EXPECT_EQ(made_on_loop, kStats);
        EXPECT_EQ(made_by_worker, 0u);
        break;
      case ShareMaker::kNoOne:
      case ShareMaker::kRing:
        EXPECT_EQ(made_on_loop + made_by_worker, 0u);
        break;
    }
    EXPECT_EQ(after.workers - before.workers, made_by_worker);
    EXPECT_EQ(after.on_loop - before.on_loop, made_on_loop);
    EXPECT_EQ(after.io_uring - before.io_uring,
              c.maker == ShareMaker::kRing ? kStats : 0u);
    if (c.descriptor_waits) {
      EXPECT_LT(made_when_read, kStats)
          << "the task waiting on the pipe ran only once every queued call "
             "was made";
    }
    for (const StatCall& sc : stat_calls) {
      SCOPED_TRACE(absl::StrCat(sc.follow ? "Stat(" : "Lstat(", sc.path, ")"));
      if (c.maker == ShareMaker::kNoOne) {
        EXPECT_TRUE(absl::IsCancelled(sc.got.status())) << sc.got.status();
      } else {
        ExpectSameStat(sc.got,
                       sc.follow ? shm->Stat(sc.path) : shm->Lstat(sc.path));
      }
      if (::testing::Test::HasFailure()) break;  // the first one says it
    }
  }
}

// A burst of Stats of plain names cancelled while its calls are in the
// ring: queued, done, or in the kernel, as the kernel's timing has it. On
// the test's directory each is a STATX of its own on the kernel's workers.
// On tmpfs they go in
// chains, and the cancellation comes once chains were handed to the kernel,
// where a call waiting behind another of its chain cannot be found by the
// kernel's cancellation; where the loop's path serves, they go to the
// ring's CallShare instead, and the cancellation comes once its worker or
// the loop has made some: calls the worker has taken are made, the rest
// withdrawn. A third of the
// names are missing. Each call ends with the sync call's result or with
// kCancelled, nothing else, and the loop ends: no completion is lost, and what
// is still in flight is waited for.
struct CancelledBurstCase {
  const char* name;
  bool on_tmpfs;
  int calls;
};

TEST_P(AsyncDirRingTest, BurstOfStatsCancelledInFlight) {
  if (!uses_ring()) GTEST_SKIP() << "io_uring is not usable here";
  const CancelledBurstCase cases[] = {
      {"one_statx_each", false, 64},
      {"chained_on_tmpfs", true, 400},
  };
  for (const CancelledBurstCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::optional<capfs_test::TempDir> tmp;
    std::optional<Dir> tmpfs_dir;
    if (c.on_tmpfs) {
      tmp.emplace();
      ASSERT_TRUE(OnTmpfs(tmp->path())) << tmp->path() << " is not on tmpfs";
      ASSERT_EQ(mkdir(absl::StrCat(tmp->path(), "/d").c_str(), 0755), 0);
      absl::StatusOr<Dir> opened = Dir::Open(tmp->path());
      ASSERT_TRUE(opened.ok()) << opened.status();
      tmpfs_dir.emplace(*std::move(opened));
    }
    const Dir& d = c.on_tmpfs ? *tmpfs_dir : dir();
    std::vector<absl::StatusOr<FileStat>> got(c.calls,
                                              absl::UnknownError("not run"));
    uint64_t handed_at_cancel = 0;
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            internal::UringRing* ring = co_await CurrentRing();
            if (ring == nullptr) co_return absl::InternalError("no ring");
            // Calls made so far by the kernel's chains, the share's worker
            // or the loop.
            auto handed = [ring] {
              return ring->chained_calls() + ring->made_by_worker() +
                     ring->made_on_loop();
            };
            const uint64_t handed_before = handed();
            internal::Fiber* first = nullptr;
            for (int i = 0; i < c.calls; ++i) {
              scope.Spawn([&, i]() -> Task<absl::Status> {
                if (i == 0) first = co_await internal::CurrentFiber();
                got[i] = co_await Stat(d, i % 3 == 1 ? "missing" : "d");
                co_return absl::OkStatus();
              });
            }
            if (absl::Status y =
                    co_await testing::YieldUntilWaitingIn<internal::UringOp>(
                        &first);
                !y.ok()) {
              co_return y;
            }
            // The calls were queued in this turn, handed over at its end.
            // The share's worker may take a while to start (a thread); the
            // loop, yielding meanwhile, makes some of the calls itself.
            const absl::Time deadline = absl::Now() + absl::Seconds(10);
            while (c.on_tmpfs && absl::Now() < deadline &&
                   handed() == handed_before) {
              if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
              std::this_thread::yield();
            }
            handed_at_cancel = handed() - handed_before;
            scope.Cancel();
            co_return co_await scope.Join();
          });
        }(),
        Options(), uses_ring());
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
    if (c.on_tmpfs) {
      EXPECT_GT(handed_at_cancel, 0u);
    }
    for (int i = 0; i < c.calls; ++i) {
      SCOPED_TRACE(i);
      if (absl::IsCancelled(got[i].status())) continue;
      if (i % 3 == 1) {
        ASSERT_FALSE(got[i].ok());
        EXPECT_EQ(ErrnoOf(got[i].status()), ENOENT) << got[i].status();
      } else {
        ASSERT_TRUE(got[i].ok()) << got[i].status();
        EXPECT_EQ(got[i]->kind, FileKind::kDirectory);
      }
    }
  }
}

// A burst of O_PATH opens (OpenDir's are O_PATH too) gives what the sync
// calls give: the same error (errno and violation), or a descriptor of the
// same inode with the same status flags, for every kind of path: plain
// names, a walk down and back up, a FIFO (O_PATH never waits for its other
// end), the Dir itself, a missing name, symlinks followed and not, out
// through "..", absolute, and "..". 240 calls in one scope, so that most of
// them start with more than the burst's threshold (16) of others ready to
// run: those go to the ring where it serves (its openat2 with the Dir's
// open_how), not to the loop's own openat2.
TEST_P(AsyncDirPathsTest, BurstOfOpensGivesTheSyncResults) {
  ASSERT_EQ(symlink("d/file", absl::StrCat(path_, "/link").c_str()), 0);
  ASSERT_EQ(symlink("d", absl::StrCat(path_, "/dlink").c_str()), 0);
  ASSERT_EQ(symlink("../..", absl::StrCat(path_, "/up").c_str()), 0);
  ASSERT_EQ(symlink("/etc", absl::StrCat(path_, "/abs").c_str()), 0);
  const std::vector<std::string> paths = {
      "d",    "d/file", "d/../d/file", "fifo", ".",
      "link", "dlink",  "up",          "abs",  ".."};
  enum class Kind { kPath, kPathNoFollow, kDir };
  struct Call {
    std::string path;
    Kind kind;
    absl::StatusOr<Fd> got;
  };
  std::vector<Call> calls;
  for (int round = 0; round < 8; ++round) {
    for (const std::string& p : paths) {
      for (Kind kind : {Kind::kPath, Kind::kPathNoFollow, Kind::kDir}) {
        calls.push_back(Call{p, kind, absl::UnknownError("not run")});
      }
    }
  }
  // The descriptor a call gives: OpenDir's is its Dir's, duplicated.
  auto sync_call = [&](const Call& c) -> absl::StatusOr<Fd> {
    switch (c.kind) {
      case Kind::kPath:
        return dir().OpenAt(c.path, O_PATH);
      case Kind::kPathNoFollow:
        return dir().OpenAt(c.path, O_PATH | O_NOFOLLOW);
      case Kind::kDir:
        break;
    }
    absl::StatusOr<Dir> d = dir().OpenDir(c.path);
    if (!d.ok()) return d.status();
    return Fd(fcntl(d->fd(), F_DUPFD_CLOEXEC, 0));
  };
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = RunAllAtOnce(calls, [&](Call& c) -> Task<absl::Status> {
    // Not a conditional expression with two co_awaits: g++ 12 destroys
    // their temporaries wrongly.
    if (c.kind == Kind::kPath) {
      c.got = co_await OpenAt(dir(), c.path, O_PATH);
    } else if (c.kind == Kind::kPathNoFollow) {
      c.got = co_await OpenAt(dir(), c.path, O_PATH | O_NOFOLLOW);
    } else {
      absl::StatusOr<Dir> d = co_await OpenDir(dir(), c.path);
      if (d.ok()) {
        c.got = Fd(fcntl(d->fd(), F_DUPFD_CLOEXEC, 0));
      } else {
        c.got = d.status();
      }
    }
    co_return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  const AsyncFsCounts after = AsyncFsCountsNow();
  for (const Call& c : calls) {
    SCOPED_TRACE(
        absl::StrCat(c.kind == Kind::kDir ? "OpenDir(" : "OpenAt(", c.path,
                     c.kind == Kind::kPathNoFollow ? ", O_NOFOLLOW" : "", ")"));
    absl::StatusOr<Fd> want = sync_call(c);
    ASSERT_EQ(c.got.ok(), want.ok())
        << c.got.status() << " / " << want.status();
    if (!want.ok()) {
      ExpectSameError(c.got.status(), want.status());
      continue;
    }
    struct stat got_st, want_st;
    ASSERT_EQ(fstat(c.got->get(), &got_st), 0);
    ASSERT_EQ(fstat(want->get(), &want_st), 0);
    EXPECT_EQ(got_st.st_dev, want_st.st_dev);
    EXPECT_EQ(got_st.st_ino, want_st.st_ino);
    // A Dir's descriptor may keep the O_NOFOLLOW its last step was opened
    // with, or not: its status flags are no part of OpenDir's result.
    if (c.kind != Kind::kDir) {
      EXPECT_EQ(fcntl(c.got->get(), F_GETFL), fcntl(want->get(), F_GETFL));
    }
    EXPECT_EQ(fcntl(c.got->get(), F_GETFD), FD_CLOEXEC);
  }
  // The calls that met a burst went to the ring where it serves: at least
  // the first 200 or so of the 240 started with more than 16 others ready.
  if (uses_ring()) {
    EXPECT_GE(after.io_uring - before.io_uring, 150u);
  } else {
    EXPECT_EQ(after.io_uring, before.io_uring);
  }
}

// Which path served: the counters move for the paths allowed, and only
// for them.
TEST_P(AsyncDirPathsTest, CountersSayWhichPathServed) {
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = testing::RunWithRing(
      [&]() -> Task<absl::Status> {
        absl::StatusOr<FileStat> st = co_await Stat(dir(), "d/file");
        if (!st.ok()) co_return st.status();
        co_return co_await Mkdir(dir(), "d/counted");
      }(),
      Options(), uses_ring());
  ASSERT_TRUE(s.ok()) << s;
  const AsyncFsCounts after = AsyncFsCountsNow();
  const AsyncFsOptions& paths = GetParam().paths;
  if (paths.on_loop) {
    EXPECT_GE(after.on_loop, before.on_loop + 1);  // the stat, cached
  } else {
    EXPECT_EQ(after.on_loop, before.on_loop);
  }
  if (uses_ring()) {
    EXPECT_GE(after.io_uring, before.io_uring + 1);  // the mkdir
  } else {
    EXPECT_EQ(after.io_uring, before.io_uring);
    EXPECT_GE(after.workers, before.workers + 1);
  }
}

struct OpenPathCase {
  const char* name;
  int flags;
  bool cannot_wait;  // made on the loop where the loop's path serves
  bool refused;      // Dir::OpenAt refuses it before any syscall (EINVAL)
};

// An open that may wait (a plain one; one that writes) is never tried on
// the loop, so it is no loop miss: the ring or the workers make it. One
// that cannot wait is made on the loop where the loop's path serves (the
// file's dentries are cached: the fixture made it). A refusal is the
// result where it is found, before any syscall: on the loop where the
// loop's path or the ring serves (counted there), else on a worker.
TEST_P(AsyncDirPathsTest, OpensThatMayWaitAreNotTriedOnTheLoop) {
  const OpenPathCase cases[] = {
      {"plain", O_RDONLY, false, false},
      {"writes", O_WRONLY, false, false},
      {"creates", O_RDWR | O_CREAT, false, false},
      {"writes_nonblock", O_WRONLY | O_NONBLOCK, false, false},
      {"o_path", O_PATH, true, false},
      {"o_path_wronly", O_PATH | O_WRONLY, true, false},  // O_PATH drops it
      {"o_nonblock", O_RDONLY | O_NONBLOCK, true, false},
      {"refused_tmpfile", O_RDONLY | O_TMPFILE, false, true},
  };
  const bool loop_serves =
      GetParam().paths.on_loop && ::capfs::internal::NonblockingEligible(dir());
  const bool ring_serves =
      uses_ring() && ::capfs::internal::KernelResolved(dir());
  for (const OpenPathCase& c : cases) {
    SCOPED_TRACE(c.name);
    const AsyncFsCounts before = AsyncFsCountsNow();
    absl::Status got = absl::UnknownError("not run");
    absl::Status s = testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          got = (co_await OpenAt(dir(), "d/file", c.flags, 0644)).status();
          co_return absl::OkStatus();
        }(),
        Options(), uses_ring());
    ASSERT_TRUE(s.ok()) << s;
    if (c.refused) {
      EXPECT_TRUE(absl::IsInvalidArgument(got)) << got;
    } else {
      EXPECT_TRUE(got.ok()) << got;
    }
    const AsyncFsCounts after = AsyncFsCountsNow();
    EXPECT_EQ(after.loop_misses, before.loop_misses);
    EXPECT_EQ(after.io_uring_misses, before.io_uring_misses);
    const bool on_loop =
        c.refused ? loop_serves || ring_serves : c.cannot_wait && loop_serves;
    const bool by_ring = !on_loop && ring_serves;
    EXPECT_EQ(after.on_loop - before.on_loop, on_loop ? 1u : 0u);
    EXPECT_EQ(after.io_uring - before.io_uring, by_ring ? 1u : 0u);
    EXPECT_EQ(after.workers - before.workers, !on_loop && !by_ring ? 1u : 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, AsyncDirPathsTest,
    ::testing::Values(
        PathsCase{"epoll_default", {true, true}, IoBackend::kEpoll},
        PathsCase{"poll_default", {true, true}, IoBackend::kPoll},
        PathsCase{"epoll_io_uring_only", {false, true}, IoBackend::kEpoll},
        PathsCase{"poll_io_uring_only", {false, true}, IoBackend::kPoll},
        PathsCase{"epoll_loop_only", {true, false}, IoBackend::kEpoll},
        PathsCase{"epoll_workers_only", {false, false}, IoBackend::kEpoll}),
    [](const ::testing::TestParamInfo<PathsCase>& info) {
      return std::string(info.param.name);
    });

INSTANTIATE_TEST_SUITE_P(
    Paths, AsyncDirRingTest,
    ::testing::Values(
        PathsCase{"epoll_default", {true, true}, IoBackend::kEpoll},
        PathsCase{"poll_default", {true, true}, IoBackend::kPoll},
        PathsCase{"epoll_io_uring_only", {false, true}, IoBackend::kEpoll},
        PathsCase{"poll_io_uring_only", {false, true}, IoBackend::kPoll}),
    [](const ::testing::TestParamInfo<PathsCase>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace runtime
}  // namespace capfs

// Awaitable descriptor I/O: pipes, vectored calls, EAGAIN, end of file,
// close while waiting, blocking descriptors, regular files, no leaks.

#include "capfs/runtime/fd_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "capfs/file.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

using testing::BackendTest;

class FdIoTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(FdIoTest);

// Reads until end of file.
Task<absl::StatusOr<std::string>> ReadToEnd(AsyncFd& fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    absl::StatusOr<size_t> n = co_await Read(fd, absl::MakeSpan(buf));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return out;
    out.append(buf, *n);
  }
}

// More than a pipe holds (64 KiB by default), so the writer must wait for
// the reader: the EAGAIN -> wait -> retry path in both directions.
TEST_P(FdIoTest, PipeCarriesMoreThanItsCapacity) {
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::string received;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      EXPECT_TRUE(pipe->read.on_loop());
      scope.Spawn([&]() -> Task<absl::Status> {
        absl::StatusOr<std::string> got = co_await ReadToEnd(pipe->read);
        if (!got.ok()) co_return got.status();
        received = *std::move(got);
        co_return absl::OkStatus();
      });
      absl::Status w = co_await WriteAll(pipe->write, data);
      if (w.ok()) w = pipe->write.Close();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(received == data);
}

// Copy moves everything to end of file between two pipes, through more than
// either holds, and counts it; a write side that fails ends it with that
// error.
TEST_P(FdIoTest, CopyMovesEverythingToEndOfFileAndCountsIt) {
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 5);
  std::string received;
  absl::StatusOr<size_t> copied = 0;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> in = Pipe(scope);
      absl::StatusOr<PipeEnds> out = Pipe(scope);
      if (!in.ok()) co_return in.status();
      if (!out.ok()) co_return out.status();
      scope.Spawn([&]() -> Task<absl::Status> {
        absl::Status w = co_await WriteAll(in->write, data);
        if (!w.ok()) co_return w;
        co_return in->write.Close();
      });
      scope.Spawn([&]() -> Task<absl::Status> {
        copied = co_await Copy(in->read, out->write);
        co_return out->write.Close();
      });
      absl::StatusOr<std::string> got = co_await ReadToEnd(out->read);
      if (got.ok()) received = *std::move(got);
      co_return co_await scope.Join(got.status());
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, data.size());
  EXPECT_TRUE(received == data);
}

TEST_P(FdIoTest, CopyToAPipeWithNoReaderIsEpipe) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> in = Pipe(scope);
      absl::StatusOr<PipeEnds> out = Pipe(scope);
      if (!in.ok()) co_return in.status();
      if (!out.ok()) co_return out.status();
      if (absl::Status c = out->read.Close(); !c.ok()) co_return c;
      absl::StatusOr<size_t> n = co_await Write(in->write, "x");
      if (!n.ok()) co_return n.status();
      co_return (co_await Copy(in->read, out->write)).status();
    });
  });
  EXPECT_EQ(ErrnoOf(s), EPIPE) << s;
}

TEST_P(FdIoTest, VectoredCallsGatherAndScatter) {
  std::string first(3, '.'), second(5, '.');
  size_t got = 0;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      std::string a = "abc", b = "defgh";
      struct iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
      absl::StatusOr<size_t> n = co_await WriteV(pipe->write, out);
      if (!n.ok()) co_return n.status();
      struct iovec in[2] = {{first.data(), first.size()},
                            {second.data(), second.size()}};
      absl::StatusOr<size_t> m = co_await ReadV(pipe->read, in);
      if (!m.ok()) co_return m.status();
      got = *m;
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, 8u);
  EXPECT_EQ(first, "abc");
  EXPECT_EQ(second, "defgh");
}

TEST_P(FdIoTest, ReadGivesZeroAtEndOfFileEveryTime) {
  std::vector<size_t> counts;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      if (absl::Status w = co_await WriteAll(pipe->write, "hi"); !w.ok()) {
        co_return w;
      }
      if (absl::Status c = pipe->write.Close(); !c.ok()) co_return c;
      char buf[16];
      for (int i = 0; i < 3; ++i) {
        absl::StatusOr<size_t> n =
            co_await Read(pipe->read, absl::MakeSpan(buf));
        if (!n.ok()) co_return n.status();
        counts.push_back(*n);
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(counts, (std::vector<size_t>{2, 0, 0}));
}

// The reader waits first; then, in one turn, the writer writes and closes, so
// one backend report carries both the data and the hangup. After a short
// read of the data, the end of file must still be seen.
TEST_P(FdIoTest, EndOfFileReportedWithTheLastDataIsNotLost) {
  std::vector<size_t> counts;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      internal::Fiber* reader = nullptr;
      scope.Spawn([&]() -> Task<absl::Status> {
        reader = co_await internal::CurrentFiber();
        char buf[64];
        for (int i = 0; i < 2; ++i) {
          // A lost end of file would hang here: fail instead.
          absl::StatusOr<size_t> n = co_await WithTimeout(
              absl::Seconds(10), Read(pipe->read, absl::MakeSpan(buf)));
          if (!n.ok()) co_return n.status();
          counts.push_back(*n);
        }
        co_return absl::OkStatus();
      });
      absl::Status w =
          co_await testing::YieldUntilWaitingIn<internal::FdReadyAwaiter>(
              &reader);
      if (w.ok()) w = co_await WriteAll(pipe->write, "last");
      if (w.ok()) w = pipe->write.Close();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(counts, (std::vector<size_t>{4, 0}));
}

TEST_P(FdIoTest, WriteToAPipeWithNoReaderIsEpipe) {
  // SIGPIPE keeps its default action: the write must not raise it.
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      if (absl::Status c = pipe->read.Close(); !c.ok()) co_return c;
      absl::StatusOr<size_t> n = co_await Write(pipe->write, "x");
      co_return n.status();
    });
  });
  EXPECT_EQ(ErrnoOf(s), EPIPE) << s;
}

TEST_P(FdIoTest, CloseWhileWaitingEndsTheWaitWithEbadf) {
  absl::Status read_result;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      Event reading;
      scope.Spawn([&]() -> Task<absl::Status> {
        char byte;
        reading.Set();
        read_result =
            (co_await Read(pipe->read, absl::MakeSpan(&byte, 1))).status();
        co_return absl::OkStatus();
      });
      absl::Status w = co_await reading.Wait();
      if (w.ok()) w = co_await Yield();
      if (w.ok()) w = co_await Yield();
      if (w.ok()) w = pipe->read.Close();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(read_result), EBADF) << read_result;
}

// After a close, the number is free for reuse; the new descriptor under the
// same number must work, and nothing of the old one may be polled.
TEST_P(FdIoTest, ClosedNumberIsNeverPolledAgain) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    Loop* loop = Loop::Current();
    size_t watched_before = loop->watched_fds();
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> old_pipe = Pipe(scope);
      if (!old_pipe.ok()) co_return old_pipe.status();
      int old_number = old_pipe->read.get();
      absl::Status old_result;
      scope.Spawn([&]() -> Task<absl::Status> {
        char byte;
        old_result =
            (co_await Read(old_pipe->read, absl::MakeSpan(&byte, 1))).status();
        co_return absl::OkStatus();
      });
      absl::Status closed = co_await Yield();
      if (closed.ok()) closed = co_await Yield();
      if (closed.ok()) closed = old_pipe->read.Close();
      if (closed.ok()) closed = old_pipe->write.Close();
      closed = co_await scope.Join(std::move(closed));
      if (!closed.ok()) co_return closed;
      EXPECT_EQ(loop->watched_fds(), watched_before);
      absl::StatusOr<PipeEnds> new_pipe = Pipe(scope);
      if (!new_pipe.ok()) co_return new_pipe.status();
      EXPECT_EQ(new_pipe->read.get(), old_number);  // lowest free number
      if (absl::Status w = co_await WriteAll(new_pipe->write, "n"); !w.ok()) {
        co_return w;
      }
      char byte = 0;
      absl::StatusOr<size_t> n =
          co_await Read(new_pipe->read, absl::MakeSpan(&byte, 1));
      if (!n.ok()) co_return n.status();
      EXPECT_EQ(byte, 'n');
      EXPECT_EQ(ErrnoOf(old_result), EBADF) << old_result;
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
}

TEST_P(FdIoTest, OperationsOnAClosedDescriptorFailWithEbadf) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<PipeEnds> pipe = Pipe(scope);
      if (!pipe.ok()) co_return pipe.status();
      if (absl::Status c = pipe->write.Close(); !c.ok()) co_return c;
      EXPECT_TRUE(pipe->write.Close().ok());  // twice is fine
      co_return (co_await Write(pipe->write, "x")).status();
    });
  });
  EXPECT_EQ(ErrnoOf(s), EBADF) << s;
}

// A pipe whose ends are blocking (as a stdin shared with a parent would be):
// the task waits for readiness on the loop and calls on a worker.
TEST_P(FdIoTest, BlockingDescriptorsAreServedByWorkers) {
  std::string received;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0)
        co_return ErrnoError(errno, "pipe2", "");
      absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(scope, Fd(fds[0]));
      absl::StatusOr<AsyncFd> out = AsyncFd::Adopt(scope, Fd(fds[1]));
      if (!in.ok()) co_return in.status();
      if (!out.ok()) co_return out.status();
      EXPECT_FALSE(in->on_loop());
      EXPECT_EQ(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);  // left as it was
      internal::Fiber* reader = nullptr;
      scope.Spawn([&]() -> Task<absl::Status> {
        reader = co_await internal::CurrentFiber();
        absl::StatusOr<std::string> got = co_await ReadToEnd(*in);
        if (!got.ok()) co_return got.status();
        received = *std::move(got);
        co_return absl::OkStatus();
      });
      // The reader waits for readiness on the loop first.
      absl::Status w =
          co_await testing::YieldUntilWaitingIn<internal::FdReadyAwaiter>(
              &reader);
      if (w.ok()) w = co_await WriteAll(*out, "through workers");
      if (w.ok()) w = out->Close();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(received, "through workers");
}

TEST_P(FdIoTest, NonblockingModeSetsTheFlag) {
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0)
        co_return ErrnoError(errno, "pipe2", "");
      Fd keep_write(fds[1]);
      absl::StatusOr<AsyncFd> in =
          AsyncFd::Adopt(scope, Fd(fds[0]), IoMode::kNonblocking);
      if (!in.ok()) co_return in.status();
      EXPECT_TRUE(in->on_loop());
      EXPECT_NE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
}

// With io_uring off (file_io_test has the ring's own cases).
TEST_P(FdIoTest, RegularFilesAreServedByWorkers) {
  std::string path =
      absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                   "/fd_io_regular_", getpid());
  std::string back;
  LoopOptions options = Options();
  options.fs.io_uring = false;
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                           0600);
          if (raw < 0) co_return ErrnoError(errno, "open", path);
          absl::StatusOr<AsyncFd> file =
              AsyncFd::Adopt(scope, Fd(raw), IoMode::kNonblocking);
          if (!file.ok()) co_return file.status();
          EXPECT_FALSE(file->on_loop());
          if (absl::Status w = co_await WriteAll(*file, "on disk"); !w.ok()) {
            co_return w;
          }
          if (::lseek(file->get(), 0, SEEK_SET) != 0) {
            co_return ErrnoError(errno, "lseek", path);
          }
          absl::StatusOr<std::string> got = co_await ReadToEnd(*file);
          if (!got.ok()) co_return got.status();
          back = *std::move(got);
          co_return absl::OkStatus();
        });
      }(),
      options);
  const AsyncFsCounts after = AsyncFsCountsNow();
  ::unlink(path.c_str());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(back, "on disk");
  EXPECT_GT(after.workers, before.workers);
  EXPECT_EQ(after.io_uring, before.io_uring);
}

TEST_P(FdIoTest, EventfdsWork) {
  uint64_t got = 0;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> efd =
          AsyncFd::Adopt(scope, Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)));
      if (!efd.ok()) co_return efd.status();
      internal::Fiber* reader = nullptr;
      scope.Spawn([&]() -> Task<absl::Status> {
        reader = co_await internal::CurrentFiber();
        absl::StatusOr<size_t> n = co_await Read(
            *efd, absl::MakeSpan(reinterpret_cast<char*>(&got), sizeof(got)));
        co_return n.status();
      });
      absl::Status w =
          co_await testing::YieldUntilWaitingIn<internal::FdReadyAwaiter>(
              &reader);
      uint64_t five = 5;
      if (w.ok()) {
        w = (co_await Write(*efd,
                            absl::string_view(reinterpret_cast<char*>(&five),
                                              sizeof(five))))
                .status();
      }
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, 5u);
}

std::string TestPath(absl::string_view name) {
  const char* base = getenv("TEST_TMPDIR");
  return absl::StrCat(base != nullptr ? base : "/tmp", "/", name, "_",
                      getpid());
}

// A FIFO whose writer leaves gives end of file with a hangup; then a new
// writer comes. The next read says EAGAIN: it must wait for data like any
// read, not take the old hangup as "ready for good" and retry at once,
// forever, with the loop's other tasks and timers starved.
TEST_P(FdIoTest, HangupFollowedByANewWriterWaitsAgain) {
  const std::string path =
      TestPath(absl::StrCat("fifo_", IoBackendName(GetParam())));
  ::unlink(path.c_str());
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << strerror(errno);
  // If the loop spins, its own writer never runs: this one ends the read.
  testing::Watchdog dog(absl::Seconds(10), [&] {
    Fd w(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    (void)!::write(w.get(), "w", 1);
  });
  std::vector<std::string> reads;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(
          scope, Fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)));
      if (!in.ok()) co_return in.status();
      Fd first(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
      if (::write(first.get(), "a", 1) != 1)
        co_return ErrnoError(errno, "write", "");
      if (absl::Status c = first.Close(); !c.ok()) co_return c;
      char buf[16];
      for (int i = 0; i < 2; ++i) {  // "a", then end of file
        absl::StatusOr<size_t> n = co_await Read(*in, absl::MakeSpan(buf));
        if (!n.ok()) co_return n.status();
        reads.emplace_back(buf, *n);
      }
      Fd second(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
      internal::Fiber* reader = nullptr;
      scope.Spawn([&]() -> Task<absl::Status> {
        reader = co_await internal::CurrentFiber();
        absl::StatusOr<size_t> n = co_await Read(*in, absl::MakeSpan(buf));
        if (!n.ok()) co_return n.status();
        reads.emplace_back(buf, *n);
        co_return absl::OkStatus();
      });
      // Write once the read has said EAGAIN and waits. (A spinning read
      // never waits; the watchdog's byte then ends it.)
      absl::Status w;
      while (w.ok() && reads.size() < 3 &&
             dynamic_cast<internal::FdReadyAwaiter*>(
                 reader == nullptr ? nullptr : reader->waiting()) == nullptr) {
        w = co_await Yield();
      }
      if (w.ok() && reads.size() < 3 && ::write(second.get(), "b", 1) != 1) {
        w = ErrnoError(errno, "write", "");
      }
      co_return co_await scope.Join(std::move(w));
    });
  });
  dog.Disarm();
  ::unlink(path.c_str());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(dog.fired()) << "the loop spun on EAGAIN";
  EXPECT_EQ(reads, (std::vector<std::string>{"a", "", "b"}));
}

// A blocking pipe, served by workers. The first read takes "a" on a worker;
// while that call is still in flight, "b" arrives and the loop handles its
// readiness report. The second read must see "b", not trust what the first
// call's short read implied.
TEST_P(FdIoTest, WorkerServedReadSeesDataThatCameDuringTheLastCall) {
  std::string second;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0)
        co_return ErrnoError(errno, "pipe2", "");
      Fd out(fds[1]);
      absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(scope, Fd(fds[0]));
      if (!in.ok()) co_return in.status();
      EXPECT_FALSE(in->on_loop());
      if (::write(out.get(), "a", 1) != 1)
        co_return ErrnoError(errno, "write", "");
      Loop* loop = Loop::Current();
      char buf[64];
      absl::StatusOr<size_t> n =
          co_await DoIo(*in, Direction::kRead, "read", sizeof(buf),
                        [&](const IoTarget& t) -> ssize_t {
                          ssize_t r = ::read(t.fd, buf, sizeof(buf));
                          if (::write(out.get(), "b", 1) != 1) return -errno;
                          // The loop handles the report of "b" before it runs
                          // this.
                          absl::Notification seen;
                          loop->Post([&] { seen.Notify(); });
                          seen.WaitForNotification();
                          return r;
                        });
      if (!n.ok()) co_return n.status();
      EXPECT_EQ(*n, 1u);
      n = co_await WithTimeout(absl::Seconds(10),
                               Read(*in, absl::MakeSpan(buf)));
      if (!n.ok()) co_return n.status();
      second.assign(buf, *n);
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(second, "b");
}

// Writes `data` with WriteV, two buffers a call.
Task<absl::Status> WriteAllV(AsyncFd& fd, absl::string_view data) {
  while (!data.empty()) {
    absl::string_view a = data.substr(0, data.size() / 2);
    absl::string_view b = data.substr(a.size());
    struct iovec iov[2] = {{const_cast<char*>(a.data()), a.size()},
                           {const_cast<char*>(b.data()), b.size()}};
    absl::StatusOr<size_t> n = co_await WriteV(fd, iov);
    if (!n.ok()) co_return n.status();
    data.remove_prefix(*n);
  }
  co_return absl::OkStatus();
}

// A blocking descriptor nobody reads: readiness to write promises only some
// room, so a write that asks for more must not block a worker (or the loop)
// until someone reads. A timeout around it must end it at its time.
// A watchdog's rescue: reads `fd` until nothing more comes for 200 ms (the
// writer has given up), waiting for data with poll(2). Bounded: it reads at
// most 1 GiB.
void DrainUntilQuiet(int fd) {
  char buf[65536];
  for (size_t total = 0; total < (size_t{1} << 30);) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) return;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    total += static_cast<size_t>(n);
  }
}

struct BlockingWriteCase {
  std::string name;
  bool socket;  // a socketpair, else a pipe
  bool vectored;
};

void PrintTo(const BlockingWriteCase& c, std::ostream* os) { *os << c.name; }

class BlockingWriteTest : public ::testing::TestWithParam<
                              std::tuple<IoBackend, BlockingWriteCase>> {};

TEST_P(BlockingWriteTest, TimeoutEndsAWriteNobodyReads) {
  const IoBackend backend = std::get<0>(GetParam());
  const auto& c = std::get<1>(GetParam());
  int fds[2];
  if (c.socket) {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  } else {
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  }
  Fd reader(fds[0]);
  // If the write hangs, drain it so the test ends (and fails).
  testing::Watchdog dog(absl::Seconds(10),
                        [&] { DrainUntilQuiet(reader.get()); });
  LoopOptions options;
  options.backend = backend;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> out = AsyncFd::Adopt(scope, Fd(fds[1]));
          if (!out.ok()) co_return out.status();
          // Its flags are left alone; a socket is still served on the loop.
          EXPECT_EQ(::fcntl(out->get(), F_GETFL) & O_NONBLOCK, 0);
          EXPECT_EQ(out->on_loop(), c.socket);
          std::string big(1 << 20, 'x');
          // (Not a ?: inside the co_await: g++ 12 misplaces its temporary.)
          Task<absl::Status> write = WriteAll(*out, big);
          if (c.vectored) write = WriteAllV(*out, big);
          co_return co_await WithTimeout(absl::Milliseconds(50),
                                         std::move(write));
        });
      }(),
      options);
  dog.Disarm();
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_FALSE(dog.fired()) << "the write blocked until the pipe was drained";
}

INSTANTIATE_TEST_SUITE_P(
    Backends, BlockingWriteTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(BlockingWriteCase{"Pipe", false, false},
                          BlockingWriteCase{"PipeWriteV", false, true},
                          BlockingWriteCase{"Socket", true, false},
                          BlockingWriteCase{"SocketWriteV", true, true})),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// One worker thread, a blocking pipe, a writer and a reader on the same
// loop: the writer's calls must each end without waiting for the reader, or
// the reader's call never gets the thread.
TEST_P(FdIoTest, OneWorkerServesBothEndsOfABlockingPipe) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  Fd rescue_end(::fcntl(fds[0], F_DUPFD_CLOEXEC, 0));
  testing::Watchdog dog(absl::Seconds(10),
                        [&] { DrainUntilQuiet(rescue_end.get()); });
  LoopOptions options = Options();
  options.worker_options.max_threads = 1;
  const std::string data(256 << 10, 'd');
  std::string received;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(scope, Fd(fds[0]));
          absl::StatusOr<AsyncFd> out = AsyncFd::Adopt(scope, Fd(fds[1]));
          if (!in.ok()) co_return in.status();
          if (!out.ok()) co_return out.status();
          scope.Spawn([&]() -> Task<absl::Status> {
            absl::StatusOr<std::string> got = co_await ReadToEnd(*in);
            if (!got.ok()) co_return got.status();
            received = *std::move(got);
            co_return absl::OkStatus();
          });
          absl::Status w = co_await WriteAll(*out, data);
          if (w.ok()) w = out->Close();
          co_return co_await scope.Join(std::move(w));
        });
      }(),
      options);
  dog.Disarm();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(dog.fired()) << "writer and reader deadlocked on the worker";
  EXPECT_TRUE(received == data) << received.size() << " bytes";
}

// Closing a descriptor takes back a call queued for a worker but not
// started: it ends with EBADF at once and never runs.
TEST_P(FdIoTest, CloseWithdrawsACallQueuedForAWorker) {
  const std::string path =
      TestPath(absl::StrCat("close_queued_", IoBackendName(GetParam())));
  std::atomic<bool> blocker_started{false};
  absl::Notification release;
  absl::StatusOr<size_t> wrote = absl::UnknownError("not run");
  LoopOptions options = Options();
  options.worker_options.max_threads = 1;
  // The workers serve the file (file_io_test has the io_uring path's own).
  options.fs.io_uring = false;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> file = AsyncFd::Adopt(
              scope,
              Fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0600)));
          if (!file.ok()) co_return file.status();
          scope.Spawn([&]() -> Task<absl::Status> {  // holds the only thread
            co_return co_await RunBlocking([&] {
              blocker_started = true;
              release.WaitForNotification();
              return absl::OkStatus();
            });
          });
          absl::Status y;
          while (!blocker_started && y.ok()) y = co_await Yield();
          internal::Fiber* writer = nullptr;
          scope.Spawn([&]() -> Task<absl::Status> {
            writer = co_await internal::CurrentFiber();
            wrote = co_await Write(*file, "written after close");
            co_return absl::OkStatus();
          });
          if (y.ok()) {
            y = co_await testing::YieldUntilWaitingIn<internal::BlockingJob>(
                &writer);
          }
          if (y.ok()) y = file->Close();
          release.Notify();
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      options);
  struct stat st;
  int r = ::stat(path.c_str(), &st);
  ::unlink(path.c_str());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(wrote.status()), EBADF) << wrote.status();
  ASSERT_EQ(r, 0);
  EXPECT_EQ(st.st_size, 0);
}

// A call a worker has started cannot be stopped: closing during it returns
// at once, the call finishes with its own result, and close(2) waits for
// it, so the number stays this file's until then.
TEST_P(FdIoTest, CloseDuringAStartedWorkerCallWaitsForIt) {
  const std::string path =
      TestPath(absl::StrCat("close_started_", IoBackendName(GetParam())));
  std::atomic<bool> started{false};
  absl::Notification release;
  absl::StatusOr<size_t> wrote = absl::UnknownError("not run");
  int raw = -1;
  bool open_after_close = false;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> file = AsyncFd::Adopt(
          scope, Fd(::open(path.c_str(),
                           O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)));
      if (!file.ok()) co_return file.status();
      raw = file->get();
      scope.Spawn([&]() -> Task<absl::Status> {
        wrote = co_await DoIo(*file, Direction::kWrite, "write", 1,
                              [&](const IoTarget& t) -> ssize_t {
                                started = true;
                                release.WaitForNotification();
                                return ::write(t.fd, "x", 1);
                              });
        co_return absl::OkStatus();
      });
      absl::Status y;
      while (!started && y.ok()) y = co_await Yield();
      if (y.ok()) y = file->Close();
      open_after_close = ::fcntl(raw, F_GETFD) != -1;
      release.Notify();
      co_return co_await scope.Join(std::move(y));
    });
  });
  struct stat st;
  int r = ::stat(path.c_str(), &st);
  ::unlink(path.c_str());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(open_after_close);
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  EXPECT_EQ(*wrote, 1u);
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed once the call was done
  ASSERT_EQ(r, 0);
  EXPECT_EQ(st.st_size, 1);
}

// Destroying an AsyncFd, or moving another over it, closes the descriptor
// even while a read on it waits: the read ends with EBADF.
struct DropCase {
  std::string name;
  std::function<void(std::optional<AsyncFd>&)> drop;
};

void PrintTo(const DropCase& c, std::ostream* os) { *os << c.name; }

class DropWhileWaitingTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, DropCase>> {};

TEST_P(DropWhileWaitingTest, ClosesAndTheWaitEndsWithEbadf) {
  const IoBackend backend = std::get<0>(GetParam());
  const auto& c = std::get<1>(GetParam());
  LoopOptions options;
  options.backend = backend;
  absl::Status read_result = absl::UnknownError("not run");
  int number = -1;
  bool closed = false;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<PipeEnds> pipe = Pipe(scope);
          if (!pipe.ok()) co_return pipe.status();
          std::optional<AsyncFd> conn(std::move(pipe->read));
          number = conn->get();
          internal::Fiber* reader = nullptr;
          scope.Spawn([&]() -> Task<absl::Status> {
            reader = co_await internal::CurrentFiber();
            char byte;
            read_result =
                (co_await WithTimeout(absl::Seconds(10),
                                      Read(*conn, absl::MakeSpan(&byte, 1))))
                    .status();
            co_return absl::OkStatus();
          });
          absl::Status y =
              co_await testing::YieldUntilWaitingIn<internal::FdReadyAwaiter>(
                  &reader);
          c.drop(conn);
          closed = ::fcntl(number, F_GETFD) == -1;
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(read_result), EBADF) << read_result;
  EXPECT_TRUE(closed);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, DropWhileWaitingTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(
            DropCase{"Destroyed",
                     [](std::optional<AsyncFd>& fd) { fd.reset(); }},
            DropCase{"MovedOver",
                     [](std::optional<AsyncFd>& fd) { *fd = AsyncFd(); }})),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// A descriptor the backend does not watch (a regular file) never gets a
// readiness report: if its call says EAGAIN, that is the result, not a wait
// that would never end.
TEST_P(FdIoTest, EagainOnAnUnwatchedDescriptorIsTheResult) {
  const std::string path =
      TestPath(absl::StrCat("unwatched_", IoBackendName(GetParam())));
  absl::StatusOr<size_t> n;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> file = AsyncFd::Adopt(
          scope, Fd(::open(path.c_str(),
                           O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600)));
      if (!file.ok()) co_return file.status();
      n = co_await WithTimeout(
          absl::Seconds(10),
          DoIo(*file, Direction::kRead, "read", 1,
               [](const IoTarget&) -> ssize_t { return -EAGAIN; }));
      co_return absl::OkStatus();
    });
  });
  ::unlink(path.c_str());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(n.status()), EAGAIN) << n.status();
}

// Adopt sets close-on-exec, whatever kind of descriptor it is given.
struct CloexecCase {
  std::string name;
  std::function<int()> open_without_cloexec;
};

void PrintTo(const CloexecCase& c, std::ostream* os) { *os << c.name; }

class AdoptCloexecTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, CloexecCase>> {};

TEST_P(AdoptCloexecTest, SetsCloseOnExec) {
  const IoBackend backend = std::get<0>(GetParam());
  const auto& c = std::get<1>(GetParam());
  LoopOptions options;
  options.backend = backend;
  int fd = c.open_without_cloexec();
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  int flags = -1;
  absl::Status s = runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> adopted = AsyncFd::Adopt(scope, Fd(fd));
          if (!adopted.ok()) co_return adopted.status();
          flags = ::fcntl(adopted->get(), F_GETFD);
          co_return absl::OkStatus();
        });
      }(),
      options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_NE(flags & FD_CLOEXEC, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, AdoptCloexecTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(
            CloexecCase{"Dup", [] { return ::dup(STDERR_FILENO); }},
            CloexecCase{"Pipe",
                        [] {
                          int fds[2];
                          if (::pipe(fds) != 0) return -1;
                          ::close(fds[1]);
                          return fds[0];
                        }},
            CloexecCase{"Eventfd", [] { return ::eventfd(0, EFD_NONBLOCK); }},
            CloexecCase{"RegularFile",
                        [] { return ::open("/proc/self/stat", O_RDONLY); }})),
    [](const auto& info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param).name);
    });

// A pipe in packet mode (O_DIRECT) gives one packet per read, however large
// the buffer: a short read there does not mean the pipe is empty. Two
// packets arrive while the reader waits, in one readiness report; the
// second must be read without another report (edge-triggered epoll sends
// none). Should the read wait anyway, the watchdog writes a third packet to
// end the wait, and the test fails.
TEST_P(FdIoTest, PacketPipeShortReadDoesNotHideTheNextPacket) {
  int ends[2];
  ASSERT_EQ(::pipe2(ends, O_DIRECT | O_NONBLOCK | O_CLOEXEC), 0)
      << strerror(errno);
  Fd write_end(ends[1]);
  std::vector<std::string> got;
  std::optional<testing::Watchdog> watchdog;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(scope, Fd(ends[0]));
      if (!in.ok()) co_return in.status();
      EXPECT_TRUE(in->on_loop());
      internal::Fiber* reader = nullptr;
      scope.Spawn([&]() -> Task<absl::Status> {
        reader = co_await internal::CurrentFiber();
        char buf[4096];
        for (int i = 0; i < 2; ++i) {
          if (i == 1) {
            watchdog.emplace(absl::Seconds(10), [&write_end] {
              (void)!::write(write_end.get(), "third", 5);
            });
          }
          absl::StatusOr<size_t> n = co_await Read(*in, absl::MakeSpan(buf));
          if (!n.ok()) co_return n.status();
          got.emplace_back(buf, *n);
        }
        watchdog->Disarm();
        co_return absl::OkStatus();
      });
      absl::Status y =
          co_await testing::YieldUntilWaitingIn<internal::FdReadyAwaiter>(
              &reader);
      if (!y.ok()) co_return co_await scope.Join(std::move(y));
      EXPECT_EQ(::write(write_end.get(), "first", 5), 5);
      EXPECT_EQ(::write(write_end.get(), "second", 6), 6);
      co_return co_await scope.Join();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(watchdog.has_value());
  EXPECT_FALSE(watchdog->fired()) << "the second read waited for a report";
  EXPECT_EQ(got, (std::vector<std::string>{"first", "second"}));
}

// A call a worker has started runs to its end even when its task is
// cancelled meanwhile; what it moved must be returned, not dropped with a
// kCancelled (a retry would then read past, or write twice, those bytes).
// The task meets the cancellation at its next wait.
TEST_P(FdIoTest, CancelledStartedWorkerCallKeepsItsCount) {
  const std::string path =
      TestPath(absl::StrCat("cancel_started_", IoBackendName(GetParam())));
  std::atomic<bool> started{false};
  absl::Notification release;
  absl::StatusOr<size_t> moved = absl::UnknownError("not run");
  absl::Status after = absl::UnknownError("not run");
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> file = AsyncFd::Adopt(
          scope, Fd(::open(path.c_str(),
                           O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)));
      if (!file.ok()) co_return file.status();
      EXPECT_FALSE(file->on_loop());
      scope.Spawn([&]() -> Task<absl::Status> {
        moved = co_await DoIo(*file, Direction::kWrite, "write", 3,
                              [&](const IoTarget& t) -> ssize_t {
                                started = true;
                                release.WaitForNotification();
                                return ::write(t.fd, "abc", 3);
                              });
        after = co_await Yield();
        co_return after;
      });
      absl::Status y;
      while (!started && y.ok()) y = co_await Yield();
      if (!y.ok()) co_return y;
      scope.Cancel();
      release.Notify();
      co_return co_await scope.Join();
    });
  });
  struct stat st;
  int r = ::stat(path.c_str(), &st);
  ::unlink(path.c_str());
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 3u);
  EXPECT_EQ(after.code(), absl::StatusCode::kCancelled) << after;
  ASSERT_EQ(r, 0);
  EXPECT_EQ(st.st_size, 3);
}

TEST_P(FdIoTest, NoDescriptorLeaksAcrossALoopsLife) {
  std::set<int> before = ::capfs_test::OpenFdNumbers();
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<PipeEnds> pipe = Pipe(scope);
        if (!pipe.ok()) co_return pipe.status();
        scope.Spawn([p = std::move(*pipe)]() mutable -> Task<absl::Status> {
          if (absl::Status w = co_await WriteAll(p.write, "x"); !w.ok()) {
            co_return w;
          }
          char byte;
          co_return (co_await Read(p.read, absl::MakeSpan(&byte, 1))).status();
        });
      }
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(::capfs_test::OpenFdNumbers(), before);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

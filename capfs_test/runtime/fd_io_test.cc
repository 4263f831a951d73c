// Awaitable descriptor I/O: pipes, vectored calls, EAGAIN, end of file,
// close while waiting, blocking descriptors, regular files, no leaks.

#include "capfs/runtime/fd_io.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "capfs/file.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
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
        absl::StatusOr<size_t> n = co_await Read(pipe->read, absl::MakeSpan(buf));
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
      scope.Spawn([&]() -> Task<absl::Status> {
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
      absl::Status w = co_await Sleep(absl::Milliseconds(2));  // reader waits
      if (w.ok()) w = co_await WriteAll(pipe->write, "last");
      if (w.ok()) w = pipe->write.Close();
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(counts, (std::vector<size_t>{4, 0}));
}

TEST_P(FdIoTest, WriteToAPipeWithNoReaderIsEpipe) {
  ::signal(SIGPIPE, SIG_IGN);  // else the write kills the test
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
      if (::pipe2(fds, O_CLOEXEC) != 0) co_return ErrnoError(errno, "pipe2", "");
      absl::StatusOr<AsyncFd> in = AsyncFd::Adopt(scope, Fd(fds[0]));
      absl::StatusOr<AsyncFd> out = AsyncFd::Adopt(scope, Fd(fds[1]));
      if (!in.ok()) co_return in.status();
      if (!out.ok()) co_return out.status();
      EXPECT_FALSE(in->on_loop());
      EXPECT_EQ(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);  // left as it was
      scope.Spawn([&]() -> Task<absl::Status> {
        absl::StatusOr<std::string> got = co_await ReadToEnd(*in);
        if (!got.ok()) co_return got.status();
        received = *std::move(got);
        co_return absl::OkStatus();
      });
      // Give the reader time to wait for readiness first.
      absl::Status w = co_await Sleep(absl::Milliseconds(5));
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
      if (::pipe2(fds, O_CLOEXEC) != 0) co_return ErrnoError(errno, "pipe2", "");
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

TEST_P(FdIoTest, RegularFilesAreServedByWorkers) {
  std::string path = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR")
                                                        : "/tmp",
                                  "/fd_io_regular_", getpid());
  std::string back;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
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
  });
  ::unlink(path.c_str());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(back, "on disk");
}

TEST_P(FdIoTest, EventfdsWork) {
  uint64_t got = 0;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> efd = AsyncFd::Adopt(
          scope, Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)));
      if (!efd.ok()) co_return efd.status();
      scope.Spawn([&]() -> Task<absl::Status> {
        absl::StatusOr<size_t> n = co_await Read(
            *efd, absl::MakeSpan(reinterpret_cast<char*>(&got), sizeof(got)));
        co_return n.status();
      });
      absl::Status w = co_await Sleep(absl::Milliseconds(2));
      uint64_t five = 5;
      if (w.ok()) {
        w = (co_await Write(*efd, absl::string_view(
                                      reinterpret_cast<char*>(&five),
                                      sizeof(five))))
                .status();
      }
      co_return co_await scope.Join(std::move(w));
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, 5u);
}

TEST_P(FdIoTest, NoDescriptorLeaksAcrossALoopsLife) {
  std::set<int> before = testing::OpenFds();
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<PipeEnds> pipe = Pipe(scope);
        if (!pipe.ok()) co_return pipe.status();
        scope.Spawn([p = std::move(*pipe)]() mutable
                    -> Task<absl::Status> {
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
  EXPECT_EQ(testing::OpenFds(), before);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

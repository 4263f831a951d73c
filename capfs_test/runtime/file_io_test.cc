// Awaitable I/O on regular files (fd_io.h): through the loop's io_uring
// when it may serve them, else on the worker pool; either way read(2)'s and
// write(2)'s results, the file position used and advanced as they do, and
// cancellation that never loses bytes.
//
// Every test runs once per configuration of the loop: io_uring allowed
// (both backends) and io_uring forced off (the workers).

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "capfs/fd.h"
#include "capfs/runtime/internal/blocking_job.h"
#include "capfs/runtime/internal/uring_ring.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

struct Config {
  const char* name;
  AsyncFsOptions paths;
  IoBackend backend;
};

class FileIoTest : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    ASSERT_NE(mkdtemp(templ_.data()), nullptr);
    dir_ = templ_;
  }
  void TearDown() override {
    std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

  // Settled once per test (IoUringUsable), so that every check of the test
  // expects the same path.
  bool uses_ring() {
    if (!uses_ring_.has_value()) {
      uses_ring_ = GetParam().paths.io_uring && testing::IoUringUsable();
    }
    return *uses_ring_;
  }
  std::optional<bool> uses_ring_;
  std::string PathOf(const char* name) const {
    return absl::StrCat(dir_, "/", name);
  }
  // A file `name` holding `contents`; its path.
  std::string MakeFile(const char* name, absl::string_view contents) {
    std::string path = PathOf(name);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    close(fd);
    return path;
  }
  std::string Contents(const std::string& path) {
    std::string out;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
    close(fd);
    return out;
  }

  // Runs `body(file)` on a fresh loop with `path` opened with `flags` and
  // adopted as an AsyncFd; `*position` is the file position afterwards.
  absl::Status RunOnFile(
      const std::string& path, int flags,
      std::function<Task<absl::Status>(Scope&, AsyncFd&)> body,
      off_t* position = nullptr) {
    LoopOptions options;
    options.backend = GetParam().backend;
    options.fs = GetParam().paths;
    return testing::RunWithRing(
        [&]() -> Task<absl::Status> {
          co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
            int raw = open(path.c_str(), flags | O_CLOEXEC);
            if (raw < 0) co_return ErrnoError(errno, "open", path);
            absl::StatusOr<AsyncFd> file = AsyncFd::Adopt(scope, Fd(raw));
            if (!file.ok()) co_return file.status();
            absl::Status s = co_await body(scope, *file);
            if (position != nullptr)
              *position = lseek(file->get(), 0, SEEK_CUR);
            co_return s;
          });
        }(),
        options, uses_ring());
  }

  std::string templ_ =
      absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                   "/file_io_XXXXXX");
  std::string dir_;
};

// Reads from `file` until `want` bytes or end of file; the bytes.
Task<absl::StatusOr<std::string>> ReadUpTo(AsyncFd& file, size_t want,
                                           size_t chunk) {
  std::string out;
  std::vector<char> buf(chunk);
  while (out.size() < want) {
    absl::StatusOr<size_t> n = co_await Read(
        file, absl::MakeSpan(buf.data(), std::min(chunk, want - out.size())));
    if (!n.ok()) co_return n.status();
    if (*n == 0) break;
    out.append(buf.data(), *n);
  }
  co_return out;
}

TEST_P(FileIoTest, ReadsAdvanceThePositionAndStopAtEndOfFile) {
  const std::string path = MakeFile("f", "0123456789");
  std::vector<std::string> got;
  off_t position = -1;
  absl::Status s = RunOnFile(
      path, O_RDONLY,
      [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        char buf[4];
        for (int i = 0; i < 4; ++i) {
          absl::StatusOr<size_t> n = co_await Read(file, absl::MakeSpan(buf));
          if (!n.ok()) co_return n.status();
          got.emplace_back(buf, *n);
        }
        co_return absl::OkStatus();
      },
      &position);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, (std::vector<std::string>{"0123", "4567", "89", ""}));
  EXPECT_EQ(position, 10);
}

TEST_P(FileIoTest, ReadStartsAtAPositionSetOutsideTheRuntime) {
  const std::string path = MakeFile("f", "0123456789");
  std::string got;
  off_t position = -1;
  absl::Status s = RunOnFile(
      path, O_RDONLY,
      [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        if (lseek(file.get(), 3, SEEK_SET) != 3) {
          co_return ErrnoError(errno, "lseek", "");
        }
        absl::StatusOr<std::string> r = co_await ReadUpTo(file, 2, 2);
        if (!r.ok()) co_return r.status();
        got = *r;
        co_return absl::OkStatus();
      },
      &position);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, "34");
  EXPECT_EQ(position, 5);
}

TEST_P(FileIoTest, WritesAdvanceThePosition) {
  const std::string path = MakeFile("f", "..........");
  off_t position = -1;
  absl::Status s = RunOnFile(
      path, O_RDWR,
      [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        if (absl::Status w = co_await WriteAll(file, "abc"); !w.ok()) {
          co_return w;
        }
        co_return co_await WriteAll(file, "de");
      },
      &position);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Contents(path), "abcde.....");
  EXPECT_EQ(position, 5);
}

TEST_P(FileIoTest, AppendWritesAtTheEnd) {
  const std::string path = MakeFile("f", "xy");
  absl::Status s = RunOnFile(path, O_WRONLY | O_APPEND,
                             [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
                               if (lseek(file.get(), 0, SEEK_SET) != 0) {
                                 co_return ErrnoError(errno, "lseek", "");
                               }
                               co_return co_await WriteAll(file, "z");
                             });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Contents(path), "xyz");
}

TEST_P(FileIoTest, VectorCallsMoveEveryBuffer) {
  const std::string path = MakeFile("f", "");
  std::string got;
  absl::Status s =
      RunOnFile(path, O_RDWR, [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        char a[] = "hello ", b[] = "world";
        struct iovec out[] = {{a, 6}, {b, 5}};
        absl::StatusOr<size_t> n = co_await WriteV(file, out);
        if (!n.ok()) co_return n.status();
        EXPECT_EQ(*n, 11u);
        if (lseek(file.get(), 0, SEEK_SET) != 0) {
          co_return ErrnoError(errno, "lseek", "");
        }
        char c[4], d[16];
        struct iovec in[] = {{c, sizeof(c)}, {d, sizeof(d)}};
        n = co_await ReadV(file, in);
        if (!n.ok()) co_return n.status();
        EXPECT_EQ(*n, 11u);
        got = absl::StrCat(absl::string_view(c, 4), absl::string_view(d, 7));
        co_return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, "hello world");
}

TEST_P(FileIoTest, EightMebibytesRoundTrip) {
  const std::string path = MakeFile("f", "");
  std::string data(8 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>((i * 7919) >> 5);
  }
  std::string back;
  off_t position = -1;
  absl::Status s = RunOnFile(
      path, O_RDWR,
      [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        if (absl::Status w = co_await WriteAll(file, data); !w.ok()) {
          co_return w;
        }
        if (lseek(file.get(), 0, SEEK_SET) != 0) {
          co_return ErrnoError(errno, "lseek", "");
        }
        // One read asks for all of it, and one more for the end of file.
        absl::StatusOr<std::string> r =
            co_await ReadUpTo(file, data.size() + 1, data.size() + 1);
        if (!r.ok()) co_return r.status();
        back = *std::move(r);
        co_return absl::OkStatus();
      },
      &position);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "the bytes read back differ";
  EXPECT_EQ(position, static_cast<off_t>(data.size()));
}

// Concurrent reads of one file each take bytes no other read took: the
// position is used and advanced one call at a time, as with read(2).
TEST_P(FileIoTest, ConcurrentReadsNeverReadTheSameBytes) {
  std::string contents;
  for (int i = 0; i < 64; ++i) contents.push_back(static_cast<char>('A' + i));
  const std::string path = MakeFile("f", contents);
  std::vector<std::string> got(64);
  absl::Status s = RunOnFile(
      path, O_RDONLY, [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          for (int i = 0; i < 64; ++i) {
            scope.Spawn([&, i]() -> Task<absl::Status> {
              char c;
              absl::StatusOr<size_t> n =
                  co_await Read(file, absl::MakeSpan(&c, 1));
              if (!n.ok()) co_return n.status();
              got[i] = std::string(&c, *n);
              co_return absl::OkStatus();
            });
          }
          co_return co_await scope.Join();
        });
      });
  ASSERT_TRUE(s.ok()) << s;
  std::sort(got.begin(), got.end());
  std::string all;
  for (const std::string& g : got) all += g;
  EXPECT_EQ(all, contents);
}

TEST_P(FileIoTest, ErrorsAreTheSyscallsErrors) {
  const std::string path = MakeFile("f", "data");
  absl::Status write_status;
  absl::Status read_status;
  absl::Status s = RunOnFile(
      path, O_RDONLY, [&](Scope& scope, AsyncFd& file) -> Task<absl::Status> {
        write_status = (co_await Write(file, "x")).status();
        int raw = open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (raw < 0) co_return ErrnoError(errno, "open", path);
        absl::StatusOr<AsyncFd> w = AsyncFd::Adopt(scope, Fd(raw));
        if (!w.ok()) co_return w.status();
        char c;
        read_status = (co_await Read(*w, absl::MakeSpan(&c, 1))).status();
        co_return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(write_status), EBADF) << write_status;
  EXPECT_EQ(ErrnoOf(read_status), EBADF) << read_status;
}

TEST_P(FileIoTest, ClosedDescriptorIsEbadf) {
  const std::string path = MakeFile("f", "data");
  absl::Status read_status;
  absl::Status s = RunOnFile(
      path, O_RDONLY, [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        if (absl::Status c = file.Close(); !c.ok()) co_return c;
        char c;
        read_status = (co_await Read(file, absl::MakeSpan(&c, 1))).status();
        co_return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ErrnoOf(read_status), EBADF) << read_status;
}

// Closed while the read waits for the kernel or a worker: the read ends
// with its own result (the bytes) or EBADF, never touches another file,
// and the descriptor is closed once it is over (test_main's leak check).
TEST_P(FileIoTest, ClosingDuringAReadDefersTheClose) {
  const std::string path = MakeFile("f", std::string(1 << 20, 'r'));
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<size_t> n;
    std::vector<char> buf(1 << 20);
    absl::Status s = RunOnFile(
        path, O_RDONLY, [&](Scope& scope, AsyncFd& file) -> Task<absl::Status> {
          internal::Fiber* fiber = nullptr;
          scope.Spawn([&]() -> Task<absl::Status> {
            fiber = co_await internal::CurrentFiber();
            n = co_await Read(file, absl::MakeSpan(buf));
            co_return absl::OkStatus();
          });
          while (fiber == nullptr || fiber->waiting() == nullptr) {
            if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
          }
          if (absl::Status c = file.Close(); !c.ok()) co_return c;
          co_return absl::OkStatus();
        });
    ASSERT_TRUE(s.ok()) << s;
    if (n.ok()) {
      EXPECT_EQ(*n, buf.size());
    } else {
      EXPECT_EQ(ErrnoOf(n.status()), EBADF) << n.status();
    }
  }
}

TEST_P(FileIoTest, CancelledBeforeStartingMovesNothing) {
  const std::string path = MakeFile("f", "0123456789");
  absl::StatusOr<size_t> n;
  off_t position = -1;
  absl::Status s = RunOnFile(
      path, O_RDONLY,
      [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        absl::Status inner =
            co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
              scope.Cancel();
              char buf[4];
              n = co_await Read(file, absl::MakeSpan(buf));
              co_return absl::OkStatus();
            });
        EXPECT_TRUE(absl::IsCancelled(inner)) << inner;
        co_return absl::OkStatus();
      },
      &position);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(absl::IsCancelled(n.status())) << n.status();
  EXPECT_EQ(position, 0);
}

// Cancelled while the read is with the kernel or a worker: either it never
// ran (kCancelled, the position where it was), or it ran anyway and keeps
// its count, which is exactly how far the position moved: no byte taken
// from the file is lost.
TEST_P(FileIoTest, CancelledInFlightLosesNoBytes) {
  const std::string path = MakeFile("f", std::string(1 << 20, 'c'));
  int kept = 0, stopped = 0;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<size_t> n;
    std::vector<char> buf(1 << 20);
    off_t position = -1;
    absl::Status s = RunOnFile(
        path, O_RDONLY,
        [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
          absl::Status inner = co_await WithScope([&](Scope& scope)
                                                      -> Task<absl::Status> {
            internal::Fiber* fiber = nullptr;
            scope.Spawn([&]() -> Task<absl::Status> {
              fiber = co_await internal::CurrentFiber();
              n = co_await Read(file, absl::MakeSpan(buf));
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
            scope.Cancel();
            co_return co_await scope.Join();
          });
          EXPECT_TRUE(absl::IsCancelled(inner)) << inner;
          co_return absl::OkStatus();
        },
        &position);
    ASSERT_TRUE(s.ok()) << s;
    if (n.ok()) {
      ++kept;
      EXPECT_EQ(static_cast<off_t>(*n), position);
    } else {
      ++stopped;
      EXPECT_TRUE(absl::IsCancelled(n.status())) << n.status();
      EXPECT_EQ(position, 0);
    }
  }
  EXPECT_EQ(kept + stopped, 40);
}

TEST_P(FileIoTest, CountersSayWhichPathServed) {
  const std::string path = MakeFile("f", "data");
  const AsyncFsCounts before = AsyncFsCountsNow();
  absl::Status s = RunOnFile(
      path, O_RDONLY, [&](Scope&, AsyncFd& file) -> Task<absl::Status> {
        char buf[8];
        co_return (co_await Read(file, absl::MakeSpan(buf))).status();
      });
  ASSERT_TRUE(s.ok()) << s;
  const AsyncFsCounts after = AsyncFsCountsNow();
  if (uses_ring()) {
    EXPECT_EQ(after.io_uring, before.io_uring + 1);
    EXPECT_EQ(after.workers, before.workers);
  } else {
    EXPECT_EQ(after.io_uring, before.io_uring);
    EXPECT_EQ(after.workers, before.workers + 1);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, FileIoTest,
    ::testing::Values(Config{"epoll_io_uring", {true, true}, IoBackend::kEpoll},
                      Config{"poll_io_uring", {true, true}, IoBackend::kPoll},
                      Config{"epoll_workers", {true, false}, IoBackend::kEpoll},
                      Config{"poll_workers", {false, false}, IoBackend::kPoll}),
    [](const ::testing::TestParamInfo<Config>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace runtime
}  // namespace capfs

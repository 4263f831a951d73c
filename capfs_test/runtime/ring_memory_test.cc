// A loop's ring when the kernel will not set it up: too little memory for
// the larger sizes (ENOMEM: the user's RLIMIT_MEMLOCK spent, as under many
// loops of one unprivileged user), for any size, or io_uring refused
// outright. A seccomp filter on io_uring_setup(2) makes each case, in a
// child process of the test (a filter cannot be removed, and the probe
// behind IoUringAvailable() is cached per process: the test process itself
// never makes it).

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/child.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

struct Case {
  const char* name;
  int error;               // io_uring_setup's errno under the filter
  unsigned refused_above;  // for entries above this (0: every call)
  bool available;          // IoUringAvailable() under the filter
  bool ring_serves;        // the loop's calls go through a ring
};

// The probe's ring has 4 entries, a loop's smallest 64, its first 256.
constexpr Case kCases[] = {
    {"larger_rings_short_of_memory", ENOMEM, 64, true, true},
    {"every_loop_ring_short_of_memory", ENOMEM, 4, true, false},
    {"no_memory_for_any_ring", ENOMEM, 0, false, false},
    {"refused_by_a_seccomp_profile", EPERM, 0, false, false},
    {"kernel_without_io_uring", ENOSYS, 0, false, false},
};

// "" when this process may set a ring up, else why not (for the skip):
// checked with the raw syscall, so that the test process never caches
// capfs's probe. A resource spent for now (the user's locked memory, which
// parallel test processes share; descriptors) is waited out, up to 20 s,
// rather than taken for a kernel that refuses rings.
std::string WhyNoRings() {
  int err = 0;
  for (int i = 0; i < 200; ++i) {
    err = testing::RawRingSetupErrno();
    if (err == 0) return "";
    if (!testing::TransientRingErrno(err)) {
      return absl::StrCat("io_uring is not usable here: ", strerror(err));
    }
    usleep(100'000);
  }
  return absl::StrCat("no ring could be set up for 20 s (", strerror(err),
                      "): the user's locked memory or descriptors stayed "
                      "spent");
}

absl::Status InstallFilter(const Case& c) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return absl::InternalError("seccomp_init failed");
  int r = c.refused_above == 0
              ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(c.error),
                                 SCMP_SYS(io_uring_setup), 0)
              : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(c.error),
                                 SCMP_SYS(io_uring_setup), 1,
                                 SCMP_A0(SCMP_CMP_GT, c.refused_above));
  if (r == 0) r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r != 0) {
    return absl::InternalError(
        absl::StrCat("seccomp filter not loaded: ", strerror(-r)));
  }
  return absl::OkStatus();
}

// In the child: "" when every check held, else what failed.
std::string CheckUnderFilter(const Case& c, const std::string& path) {
  if (absl::Status s = InstallFilter(c); !s.ok()) return s.ToString();
  // The probe may also meet the real limit: this child has no
  // CAP_IPC_LOCK in Bazel's sandbox, and its user's locked memory is shared
  // with parallel test processes. That answer is not cached: ask again.
  bool available = IoUringAvailable();
  for (int i = 0; c.available && !available && i < 200; ++i) {
    usleep(100'000);
    available = IoUringAvailable();
  }
  if (available != c.available) {
    return absl::StrCat("IoUringAvailable() is ", available);
  }
  absl::StatusOr<Dir> dir = Dir::Open(path);
  if (!dir.ok()) return dir.status().ToString();
  LoopOptions options;
  options.fs.on_loop = false;  // the ring, else the workers
  options.fs.keep_ring = true;
  const AsyncFsCounts before = AsyncFsCountsNow();
  // Opens only: whether the other calls may use the ring depends on the
  // filesystem (docs/runtime.md); an open's does not.
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        if (c.ring_serves) {
          // As above: the smallest ring may have to wait for memory.
          if (absl::Status w = co_await testing::WaitForRing(); !w.ok()) {
            co_return w;
          }
        }
        for (auto [name, flags] : {std::pair{"d", O_RDONLY | O_DIRECTORY},
                                   std::pair{"d/file", O_WRONLY | O_CREAT},
                                   std::pair{"d", O_PATH}}) {
          absl::StatusOr<Fd> f = co_await OpenAt(*dir, name, flags, 0600);
          if (!f.ok()) co_return f.status();
        }
        co_return absl::OkStatus();
      }(),
      options);
  if (!s.ok()) return s.ToString();
  const AsyncFsCounts after = AsyncFsCountsNow();
  const uint64_t ring = after.io_uring - before.io_uring;
  const uint64_t workers = after.workers - before.workers;
  const uint64_t want_ring = c.ring_serves ? 3 : 0;
  if (ring != want_ring || workers != 3 - want_ring) {
    return absl::StrCat("served by the ring ", ring, ", by the workers ",
                        workers, "; expected ", want_ring, " and ",
                        3 - want_ring);
  }
  // The loop asked to keep its ring, but one smaller than the first size
  // is never kept: the next loop tries the first size again.
  if (after.rings_reused != before.rings_reused) {
    return "the loop took a ring kept before it";
  }
  if (c.ring_serves) {
    absl::Status again = Run(
        [&]() -> Task<absl::Status> {
          co_return (co_await OpenAt(*dir, "d", O_PATH)).status();
        }(),
        options);
    if (!again.ok()) return again.ToString();
    if (AsyncFsCountsNow().rings_reused != after.rings_reused) {
      return "a ring smaller than the first size was kept";
    }
  }
  return "";
}

class RingMemoryTest : public ::testing::TestWithParam<Case> {};

TEST_P(RingMemoryTest, CallsAreServedAndCountedWhereTheyRan) {
  if (std::string why = WhyNoRings(); !why.empty()) GTEST_SKIP() << why;
  const char* base = getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(base ? base : "/tmp", "/ring_memory_XXXXXX");
  ASSERT_NE(mkdtemp(path.data()), nullptr);
  const std::string d = path + "/d", file = d + "/file";
  ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
  const Case c = GetParam();
  absl::StatusOr<std::string> report =
      capfs_test::RunInChild({}, [&] { return CheckUnderFilter(c, path); });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
  EXPECT_EQ(unlink(file.c_str()), 0) << "the child made no file";
  EXPECT_EQ(rmdir(d.c_str()), 0);
  EXPECT_EQ(rmdir(path.c_str()), 0);
}

// In the child, without CAP_IPC_LOCK: "" when every check held, "skip: ..."
// when the hard limit leaves no room to test, else what failed.
std::string CheckRetryOnceMemoryIsFree(const std::string& path) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return "getrlimit failed";
  if (limit.rlim_max < (1 << 20)) return "skip: RLIMIT_MEMLOCK's hard limit";
  const rlim_t hard = limit.rlim_max;
  limit.rlim_cur = 0;  // no ring fits
  if (setrlimit(RLIMIT_MEMLOCK, &limit) != 0) return "setrlimit(0) failed";
  if (IoUringAvailable()) return "IoUringAvailable() with no locked memory";
  absl::StatusOr<Dir> dir = Dir::Open(path);
  if (!dir.ok()) return dir.status().ToString();
  LoopOptions options;
  options.fs.on_loop = false;                 // the ring, else the workers
  const std::string data = path + "/d/data";  // "0123456789"
  std::string failure;
  // One read of `file`, which must give `want` and be served by `path`.
  auto read = [&](AsyncFd& file, char want, bool ring) -> Task<absl::Status> {
    const AsyncFsCounts before = AsyncFsCountsNow();
    char c = 0;
    absl::StatusOr<size_t> n = co_await Read(file, absl::MakeSpan(&c, 1));
    if (!n.ok()) co_return n.status();
    const AsyncFsCounts after = AsyncFsCountsNow();
    if (*n != 1 || c != want) {
      failure = absl::StrCat("read '", std::string(1, c), "', not '",
                             std::string(1, want), "'");
    } else if (after.io_uring - before.io_uring != (ring ? 1u : 0u) ||
               after.workers - before.workers != (ring ? 0u : 1u)) {
      failure = absl::StrCat("a read expected ",
                             ring ? "on the ring" : "on the workers",
                             " went elsewhere");
    }
    co_return absl::OkStatus();
  };
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> first = AsyncFd::Adopt(
              scope, Fd(open(data.c_str(), O_RDONLY | O_CLOEXEC)));
          if (!first.ok()) co_return first.status();
          if (absl::Status r = co_await read(*first, '0', false); !r.ok()) {
            co_return r;
          }
          if (!failure.empty()) co_return absl::OkStatus();
          AsyncFsCounts before = AsyncFsCountsNow();
          absl::StatusOr<Fd> f = co_await OpenAt(*dir, "d", O_RDONLY);
          if (!f.ok()) co_return f.status();
          if (AsyncFsCountsNow().workers != before.workers + 1) {
            failure = "with no locked memory, the open did not go to a worker";
            co_return absl::OkStatus();
          }
          struct rlimit raised = {hard, hard};
          if (setrlimit(RLIMIT_MEMLOCK, &raised) != 0) {
            failure = "setrlimit(hard) failed";
            co_return absl::OkStatus();
          }
          // The loop tries again 100 ms after its last try; the user's other
          // processes may hold its locked memory a while longer.
          bool ring = false;
          for (int i = 0; i < 1000 && !ring; ++i) {
            if (absl::Status z = co_await Sleep(absl::Milliseconds(20));
                !z.ok()) {
              co_return z;
            }
            before = AsyncFsCountsNow();
            f = co_await OpenAt(*dir, "d", O_RDONLY);
            if (!f.ok()) co_return f.status();
            ring = AsyncFsCountsNow().io_uring == before.io_uring + 1;
          }
          if (!ring) {
            failure = "no open went through the ring in 1,000 tries over 20 s";
            co_return absl::OkStatus();
          }
          // The file read on the workers stays there (its position is
          // shared with any worker read still running); a new one uses the
          // ring.
          if (absl::Status r = co_await read(*first, '1', false); !r.ok()) {
            co_return r;
          }
          if (!failure.empty()) co_return absl::OkStatus();
          absl::StatusOr<AsyncFd> second = AsyncFd::Adopt(
              scope, Fd(open(data.c_str(), O_RDONLY | O_CLOEXEC)));
          if (!second.ok()) co_return second.status();
          co_return co_await read(*second, '0', true);
        });
      }(),
      options);
  if (!s.ok()) return s.ToString();
  if (!failure.empty()) return failure;
  if (!IoUringAvailable()) return "IoUringAvailable() once memory is free";
  return "";
}

// A loop that found no locked memory for its ring serves its calls on its
// workers, then gets its ring once memory is free (RLIMIT_MEMLOCK raised),
// and IoUringAvailable() did not cache the first answer. A regular file
// whose reads went to the workers keeps them there; a new one uses the ring.
TEST(RingRetryTest, ALoopGetsItsRingOnceMemoryIsFree) {
  if (std::string why = WhyNoRings(); !why.empty()) GTEST_SKIP() << why;
  const char* base = getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(base ? base : "/tmp", "/ring_retry_XXXXXX");
  ASSERT_NE(mkdtemp(path.data()), nullptr);
  const std::string d = path + "/d", data = d + "/data";
  ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
  {
    Fd out(open(data.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(out.valid());
    ASSERT_EQ(write(out.get(), "0123456789", 10), 10);
  }
  // Without capabilities, CAP_IPC_LOCK included: the kernel counts the
  // ring's memory against RLIMIT_MEMLOCK, as for any unprivileged user.
  capfs_test::ChildOptions options;
  options.drop_privileges = true;
  absl::StatusOr<std::string> report = capfs_test::RunInChild(
      options, [&] { return CheckRetryOnceMemoryIsFree(path); });
  EXPECT_EQ(unlink(data.c_str()), 0);
  EXPECT_EQ(rmdir(d.c_str()), 0);
  EXPECT_EQ(rmdir(path.c_str()), 0);
  ASSERT_TRUE(report.ok()) << report.status();
  if (report->rfind("skip: ", 0) == 0) GTEST_SKIP() << *report;
  EXPECT_EQ(*report, "");
}

INSTANTIATE_TEST_SUITE_P(Cases, RingMemoryTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace runtime
}  // namespace capfs

// Helpers for the socket suites.

#ifndef CAPFS_TEST_RUNTIME_SOCKET_TEST_UTIL_H_
#define CAPFS_TEST_RUNTIME_SOCKET_TEST_UTIL_H_

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "capfs/runtime/runtime.h"
#include "gtest/gtest.h"

// Returns the status of `expr` from the enclosing coroutine unless it is OK.
#define CAPFS_CO_TRY(expr)                                        \
  do {                                                            \
    absl::Status capfs_co_try_status = (expr);                    \
    if (!capfs_co_try_status.ok()) co_return capfs_co_try_status; \
  } while (0)

namespace capfs {
namespace runtime {
namespace testing {

// A short directory for Unix socket paths (sun_path holds 107 bytes, more
// than a test's temporary directory may leave), removed with what is in it.
class SocketDir {
 public:
  SocketDir() {
    char tmpl[] = "/tmp/capfs-sock-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path_ = made == nullptr ? "" : made;
  }
  SocketDir(const SocketDir&) = delete;
  SocketDir& operator=(const SocketDir&) = delete;
  ~SocketDir() {
    if (!path_.empty()) {
      std::string cmd = absl::StrCat("rm -rf '", path_, "'");
      (void)::system(cmd.c_str());
    }
  }
  bool ok() const { return !path_.empty(); }
  std::string Path(const std::string& name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

// Raises the soft RLIMIT_NOFILE to at least `want` (or the hard limit) for
// its lifetime.
class NofileAtLeast {
 public:
  explicit NofileAtLeast(rlim_t want) {
    ::getrlimit(RLIMIT_NOFILE, &old_);
    struct rlimit raised = old_;
    if (raised.rlim_cur < want) {
      raised.rlim_cur = want < raised.rlim_max ? want : raised.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &raised);
    }
  }
  ~NofileAtLeast() { ::setrlimit(RLIMIT_NOFILE, &old_); }
  rlim_t current() const {
    struct rlimit now;
    ::getrlimit(RLIMIT_NOFILE, &now);
    return now.rlim_cur;
  }

 private:
  struct rlimit old_;
};

// Sets the soft RLIMIT_NOFILE to `limit` for its lifetime.
class NofileLimit {
 public:
  explicit NofileLimit(rlim_t limit) {
    ::getrlimit(RLIMIT_NOFILE, &old_);
    struct rlimit lowered = old_;
    lowered.rlim_cur = limit;
    ::setrlimit(RLIMIT_NOFILE, &lowered);
  }
  ~NofileLimit() { ::setrlimit(RLIMIT_NOFILE, &old_); }

 private:
  struct rlimit old_;
};

// Reads from `fd` until end of file (at most `limit` bytes).
inline Task<absl::StatusOr<std::string>> ReadToEnd(AsyncFd& fd,
                                                   size_t limit = 64 << 20) {
  std::string out;
  char buf[16384];
  while (out.size() <= limit) {
    absl::StatusOr<size_t> n = co_await Read(fd, absl::MakeSpan(buf));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return out;
    out.append(buf, *n);
  }
  co_return absl::OutOfRangeError("more data than expected");
}

// Reads exactly `size` bytes from `fd`; end of file first is kDataLoss.
inline Task<absl::StatusOr<std::string>> ReadExactly(AsyncFd& fd, size_t size) {
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    absl::StatusOr<size_t> n =
        co_await Read(fd, absl::MakeSpan(out.data() + got, size - got));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return absl::DataLossError("end of file too early");
    got += *n;
  }
  co_return out;
}

}  // namespace testing
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_TEST_RUNTIME_SOCKET_TEST_UTIL_H_

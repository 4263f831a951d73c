// A Dir handed to another process: a forked child running a fresh loop
// receives it and finds it exactly as attenuated as it was sent; malformed
// messages are refused with nothing left open.

#include "capfs/runtime/dir_passing.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "capfs/dir.h"
#include "capfs/runtime/runtime.h"
#include "capfs/status.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/runtime/socket_test_util.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

// What the child checks, one exit code per failed check (0: all held).
struct ChildCase {
  const char* name;
  capfs::Scope scope;
  bool read_only;
};

class SendDirToChildTest
    : public ::testing::TestWithParam<std::tuple<IoBackend, int, ChildCase>> {};

std::string TypeName(int type) {
  return type == SOCK_STREAM  ? "Stream"
         : type == SOCK_DGRAM ? "Dgram"
                              : "Seqpacket";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SendDirToChildTest,
    ::testing::Combine(
        ::testing::Values(IoBackend::kEpoll, IoBackend::kPoll),
        ::testing::Values(SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET),
        ::testing::Values(
            ChildCase{"BeneathReadOnly", capfs::Scope::kBeneath, true},
            ChildCase{"BeneathWritable", capfs::Scope::kBeneath, false},
            ChildCase{"InRootReadOnly", capfs::Scope::kInRoot, true},
            ChildCase{"InRootWritable", capfs::Scope::kInRoot, false})),
    [](const ::testing::TestParamInfo<std::tuple<IoBackend, int, ChildCase>>&
           info) {
      return absl::StrCat(IoBackendName(std::get<0>(info.param)), "_",
                          TypeName(std::get<1>(info.param)), "_",
                          std::get<2>(info.param).name);
    });

absl::StatusOr<std::string> ReadIn(const Dir& dir, const char* path) {
  absl::StatusOr<Fd> f = dir.OpenAt(path, O_RDONLY);
  if (!f.ok()) return f.status();
  return ReadAll(*f);
}

absl::Status CreateIn(const Dir& dir, const char* path) {
  return dir.OpenAt(path, O_WRONLY | O_CREAT | O_EXCL, 0644).status();
}

// In the child: receives the Dir and checks it. Returns 0 when every check
// held, else the number of the first that failed.
int ChildChecks(int socket_fd, IoBackend backend, const ChildCase& c) {
  LoopOptions options;
  options.backend = backend;
  absl::StatusOr<int> code = ::capfs::runtime::Run(
      [&]() -> Task<absl::StatusOr<int>> {
        absl::StatusOr<int> result = 0;
        absl::Status s =
            co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
              absl::StatusOr<AsyncFd> socket =
                  AsyncFd::Adopt(scope, Fd(socket_fd));
              if (!socket.ok()) co_return socket.status();
              absl::StatusOr<Dir> dir = co_await RecvDir(*socket);
              if (!dir.ok()) {
                result = 10;
                co_return absl::OkStatus();
              }
              const DirOptions& o = dir->options();
              if (o.scope != c.scope) {
                result = 11;
                co_return absl::OkStatus();
              }
              if (o.read_only != c.read_only) {
                result = 12;
                co_return absl::OkStatus();
              }
              if (o.resolver != Resolver::kAuto) {
                result = 13;
                co_return absl::OkStatus();
              }
              // Reads inside.
              absl::StatusOr<std::string> inside = ReadIn(*dir, "inside.txt");
              if (!inside.ok() || *inside != "inside") {
                result = 20;
                co_return absl::OkStatus();
              }
              // ".." out of it: refused (Beneath) or clamped at its root
              // (InRoot).
              absl::StatusOr<std::string> up = ReadIn(*dir, "../secret.txt");
              if (c.scope == capfs::Scope::kBeneath) {
                if (ViolationOf(up.status()) != Violation::kEscape) {
                  result = 21;
                  co_return absl::OkStatus();
                }
              } else if (ErrnoOf(up.status()) != ENOENT) {
                result = 22;  // the root's parent is the root: no secret.txt
                co_return absl::OkStatus();
              }
              absl::StatusOr<std::string> clamped =
                  ReadIn(*dir, "../../inside.txt");
              if (c.scope == capfs::Scope::kInRoot &&
                  (!clamped.ok() || *clamped != "inside")) {
                result = 23;
                co_return absl::OkStatus();
              }
              if (c.scope == capfs::Scope::kBeneath &&
                  ViolationOf(clamped.status()) != Violation::kEscape) {
                result = 24;
                co_return absl::OkStatus();
              }
              // Read-only holds, before any syscall.
              absl::Status w = CreateIn(*dir, "new.txt");
              if (c.read_only && ViolationOf(w) != Violation::kReadOnly) {
                result = 30;
                co_return absl::OkStatus();
              }
              if (!c.read_only && !w.ok()) {
                result = 31;
                co_return absl::OkStatus();
              }
              absl::StatusOr<Dir> sub = dir->OpenDir("sub");
              if (!sub.ok() || sub->options().read_only != c.read_only ||
                  sub->options().scope != c.scope) {
                result = 32;
                co_return absl::OkStatus();
              }
              co_return absl::OkStatus();
            });
        if (!s.ok()) co_return 1;
        co_return result;
      }(),
      options);
  return code.ok() ? *code : 2;
}

TEST_P(SendDirToChildTest, ArrivesExactlyAsAttenuated) {
  const auto [backend, type, c] = GetParam();
  capfs_test::TempDir tmp;
  Fd top(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(top.valid());
  capfs_test::MakeDir(top.get(), "root");
  capfs_test::MakeDir(top.get(), "root/sub");
  capfs_test::MakeFile(top.get(), "root/inside.txt", "inside");
  capfs_test::MakeFile(top.get(), "secret.txt", "secret");
  DirOptions options;
  options.scope = c.scope;
  options.read_only = c.read_only;
  absl::StatusOr<Dir> dir = Dir::Open(tmp.Join("root"), options);
  ASSERT_TRUE(dir.ok()) << dir.status();

  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds), 0);
  Fd parent_end(fds[0]), child_end(fds[1]);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    parent_end.release();  // the child never closes the parent's
    ::_exit(ChildChecks(child_end.release(), backend, c));
  }
  ASSERT_TRUE(child_end.Close().ok());
  LoopOptions loop;
  loop.backend = backend;
  absl::Status s = ::capfs::runtime::Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<AsyncFd> socket =
              AsyncFd::Adopt(scope, std::move(parent_end));
          if (!socket.ok()) co_return socket.status();
          co_return co_await SendDir(*socket, *dir);
        });
      }(),
      loop);
  EXPECT_TRUE(s.ok()) << s;
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's check that failed";
  // The writable cases made the file inside, nowhere else.
  if (!c.read_only) {
    EXPECT_EQ(::faccessat(top.get(), "root/new.txt", F_OK, 0), 0);
  }
  EXPECT_NE(::faccessat(top.get(), "new.txt", F_OK, 0), 0);
}

// ------------------------------------------------- malformed messages

class RecvDirTest : public testing::BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(RecvDirTest);

struct BadMessage {
  const char* name;
  std::string data;
  int fds;       // how many descriptors go with it
  bool regular;  // a regular file's descriptor instead of a directory's
  absl::StatusCode code;
};

TEST_P(RecvDirTest, RefusesWhatIsNotExactlyOneDirAndARecord) {
  const std::string good("capfsDir\x01\x00\x01\x00", 12);
  std::vector<BadMessage> cases = {
      {"NoDescriptor", good, 0, false, absl::StatusCode::kInvalidArgument},
      {"TwoDescriptors", good, 2, false, absl::StatusCode::kInvalidArgument},
      {"NotADirectory", good, 1, true, absl::StatusCode::kFailedPrecondition},
      {"BadMagic", std::string("capfsDiR\x01\x00\x01\x00", 12), 1, false,
       absl::StatusCode::kInvalidArgument},
      {"BadVersion", std::string("capfsDir\x02\x00\x01\x00", 12), 1, false,
       absl::StatusCode::kInvalidArgument},
      {"BadScope", std::string("capfsDir\x01\x02\x01\x00", 12), 1, false,
       absl::StatusCode::kInvalidArgument},
      {"BadReadOnly", std::string("capfsDir\x01\x00\x07\x00", 12), 1, false,
       absl::StatusCode::kInvalidArgument},
      {"BadReserved", std::string("capfsDir\x01\x00\x01\x09", 12), 1, false,
       absl::StatusCode::kInvalidArgument},
      {"TooShort", std::string("capfsDir\x01", 9), 1, false,
       absl::StatusCode::kInvalidArgument},
      {"TooLong", good + "x", 1, false, absl::StatusCode::kInvalidArgument},
  };
  capfs_test::TempDir tmp;
  Fd dir_fd(::open(tmp.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir_fd.valid());
  capfs_test::MakeFile(dir_fd.get(), "f", "file");
  Fd file_fd(::openat(dir_fd.get(), "f", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file_fd.valid());
  for (const BadMessage& m : cases) {
    for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
      // A stream cannot mark where a message ends: "TooLong" is a record
      // followed by the next message's first byte there.
      if (type == SOCK_STREAM && std::string(m.name) == "TooLong") continue;
      absl::Status got;
      std::set<int> before, after;
      absl::Status s = RunMain([&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair =
              SocketPair(scope, type);
          if (!pair.ok()) co_return pair.status();
          std::vector<int> fds(m.fds, m.regular ? file_fd.get() : dir_fd.get());
          before = capfs_test::OpenFdNumbers();
          CAPFS_CO_TRY((co_await SendMsg(pair->first, m.data, fds)).status());
          CAPFS_CO_TRY(pair->first.Close());  // a short record ends there
          got = (co_await RecvDir(pair->second)).status();
          after = capfs_test::OpenFdNumbers();
          co_return absl::OkStatus();
        });
      });
      ASSERT_TRUE(s.ok()) << m.name << ": " << s;
      EXPECT_EQ(got.code(), m.code) << m.name << " " << type << ": " << got;
      // Nothing that arrived is still open (the sender's end is closed).
      after.insert(before.begin(), before.end());
      EXPECT_EQ(after.size(), before.size()) << m.name << " " << type;
    }
  }
}

TEST_P(RecvDirTest, CwdAndUnconfinedCannotBeSent) {
  std::vector<absl::Status> results;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair = SocketPair(scope);
      if (!pair.ok()) co_return pair.status();
      results.push_back(co_await SendDir(pair->first, Dir::Cwd()));
      results.push_back(co_await SendDir(pair->first, Dir::Unconfined()));
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  for (const absl::Status& r : results) {
    EXPECT_EQ(r.code(), absl::StatusCode::kInvalidArgument) << r;
  }
}

// The resolver does not travel: kUserspace sent, kAuto received.
TEST_P(RecvDirTest, TheResolverDoesNotTravel) {
  capfs_test::TempDir tmp;
  DirOptions options;
  options.resolver = Resolver::kUserspace;
  options.read_only = true;
  absl::StatusOr<Dir> dir = Dir::Open(tmp.path(), options);
  ASSERT_TRUE(dir.ok());
  DirOptions got;
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair = SocketPair(scope);
      if (!pair.ok()) co_return pair.status();
      CAPFS_CO_TRY(co_await SendDir(pair->first, *dir));
      absl::StatusOr<Dir> r = co_await RecvDir(pair->second);
      if (!r.ok()) co_return r.status();
      got = r->options();
      co_return absl::OkStatus();
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got.resolver, Resolver::kAuto);
  EXPECT_TRUE(got.read_only);
  EXPECT_EQ(got.scope, capfs::Scope::kBeneath);
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

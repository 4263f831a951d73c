// The socket examples of README.md and docs/runtime.md, kept compiling and
// working here: a TCP echo server, and a Dir sent to a child process.

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/runtime/socket_test_util.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

// --- echo server example begins
// Echoes every connection on `listener`, each in a task of its own.
Task<absl::Status> EchoServer(Scope& scope, AsyncFd& listener) {
  for (;;) {
    absl::StatusOr<AsyncFd> peer = co_await Accept(scope, listener);
    if (!peer.ok()) co_return peer.status();
    scope.Spawn([peer = *std::move(peer)]() mutable -> Task<absl::Status> {
      char buf[4096];
      absl::StatusOr<size_t> n;
      while ((n = co_await Read(peer, absl::MakeSpan(buf))).ok() && *n > 0) {
        if (!(co_await WriteAll(peer, {buf, *n})).ok()) break;
      }
      co_return absl::OkStatus();  // a client's error ends its connection only
    });
  }
}
// In a scope: listener = Listen(scope,
// *SocketAddress::Parse("127.0.0.1:8080"));
//             co_await EchoServer(scope, *listener);
// --- echo server example ends

// --- send a Dir example begins
// The child: receives a Dir on `socket` and reads `path` through it.
Task<absl::StatusOr<std::string>> ReadThroughReceivedDir(Fd socket,
                                                         std::string path) {
  absl::StatusOr<std::string> text;
  absl::Status s = co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
    absl::StatusOr<AsyncFd> from_parent =
        AsyncFd::Adopt(scope, std::move(socket));
    if (!from_parent.ok()) co_return from_parent.status();
    absl::StatusOr<capfs::Dir> dir = co_await RecvDir(*from_parent);
    if (!dir.ok()) co_return dir.status();
    absl::StatusOr<Fd> file = dir->OpenAt(path, O_RDONLY);  // "../x": kEscape
    text = file.ok() ? ReadAll(*file) : file.status();
    co_return absl::OkStatus();
  });
  if (!s.ok()) co_return s;
  co_return text;
}

// The parent: forks a child and hands it `dir`, as attenuated as it is.
absl::StatusOr<pid_t> ShareWithChild(const capfs::Dir& dir, std::string path) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return ErrnoError(errno, "socketpair", "");
  }
  Fd mine(ends[0]), theirs(ends[1]);
  pid_t pid = ::fork();
  if (pid == 0) {  // the child: a fresh loop of its own
    mine.release();
    absl::StatusOr<std::string> text =
        Run(ReadThroughReceivedDir(std::move(theirs), path));
    ::_exit(text.ok() && *text == "shared notes" ? 0 : 1);
  }
  if (pid < 0) return ErrnoError(errno, "fork", "");
  absl::Status sent = Run([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<AsyncFd> to_child = AsyncFd::Adopt(scope, std::move(mine));
      if (!to_child.ok()) co_return to_child.status();
      co_return co_await SendDir(*to_child, dir);
    });
  }());
  if (!sent.ok()) return sent;
  return pid;
}
// --- send a Dir example ends

class SocketExamplesTest : public testing::BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(SocketExamplesTest);

TEST_P(SocketExamplesTest, EchoServerEchoesTwoClientsAtOnce) {
  std::string replies[2];
  absl::Status s = RunMain([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
      if (!any.ok()) co_return any.status();
      absl::StatusOr<AsyncFd> listener = Listen(scope, *any);
      if (!listener.ok()) co_return listener.status();
      absl::StatusOr<SocketAddress> at = LocalAddress(*listener);
      if (!at.ok()) co_return at.status();
      scope.Spawn(EchoServer(scope, *listener));
      absl::StatusOr<AsyncFd> a = co_await Connect(scope, *at);
      absl::StatusOr<AsyncFd> b = co_await Connect(scope, *at);
      if (!a.ok() || !b.ok()) co_return absl::InternalError("connect");
      CAPFS_CO_TRY(co_await WriteAll(*a, "first"));
      CAPFS_CO_TRY(co_await WriteAll(*b, "second"));
      absl::StatusOr<std::string> ra =
          co_await WithTimeout(absl::Seconds(30), testing::ReadExactly(*a, 5));
      absl::StatusOr<std::string> rb =
          co_await WithTimeout(absl::Seconds(30), testing::ReadExactly(*b, 6));
      if (ra.ok()) replies[0] = *ra;
      if (rb.ok()) replies[1] = *rb;
      scope.Cancel();  // the server runs until told to stop
      co_return absl::OkStatus();
    });
  });
  EXPECT_TRUE(s.ok() || absl::IsCancelled(s)) << s;
  EXPECT_EQ(replies[0], "first");
  EXPECT_EQ(replies[1], "second");
}

TEST(SendDirExampleTest, TheChildReadsThroughTheDirAndCannotLeaveIt) {
  capfs_test::TempDir tmp;
  Fd top(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(top.valid());
  capfs_test::MakeDir(top.get(), "data");
  capfs_test::MakeFile(top.get(), "data/notes.txt", "shared notes");
  capfs_test::MakeFile(top.get(), "outside.txt", "shared notes");
  DirOptions read_only;
  read_only.read_only = true;
  absl::StatusOr<capfs::Dir> data =
      capfs::Dir::Open(tmp.Join("data"), read_only);
  ASSERT_TRUE(data.ok()) << data.status();
  for (const auto& [path, code] :
       {std::pair<std::string, int>{"notes.txt", 0}, {"../outside.txt", 1}}) {
    absl::StatusOr<pid_t> child = ShareWithChild(*data, path);
    ASSERT_TRUE(child.ok()) << child.status();
    int status = 0;
    ASSERT_EQ(::waitpid(*child, &status, 0), *child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), code) << path;
  }
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

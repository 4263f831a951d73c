// The socket examples of README.md, kept compiling and working here, and
// kept identical to the README's text (ReadmeShowsTheExamplesAsTheyAreHere):
// a TCP echo server, and a Dir sent to a child process.

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/runtime/socket_test_util.h"
#include "capfs_test/testing/runfiles.h"
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
      (void)co_await Copy(peer, peer);  // a client's error ends it alone
      co_return absl::OkStatus();
    });
  }
}
// --- echo server example ends

// --- send a Dir example begins
// Forks a child that reads `path` through `dir`, handed over a socketpair.
absl::StatusOr<pid_t> ShareWithChild(const capfs::Dir& dir, std::string path) {
  absl::StatusOr<std::pair<Fd, Fd>> ends = SocketPairFds();
  if (!ends.ok()) return ends.status();
  pid_t pid = ::fork();
  if (pid == 0) {  // the child: a loop of its own receives the Dir
    absl::StatusOr<capfs::Dir> got = Run(RecvDir(std::move(ends->second)));
    ::_exit(got.ok() && got->ReadFile(path).ok() ? 0 : 1);  // "../x": kEscape
  }
  if (pid < 0) return ErrnoError(errno, "fork", "");
  absl::Status sent = Run(SendDir(std::move(ends->first), dir));
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

std::string ReadRunfile(absl::string_view rel) {
  std::ifstream in(::capfs_test::RunfilePath(rel));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Each example, from its "begins" marker line to its "ends" marker line in
// this file, is a code block of README.md, character for character.
TEST(ReadmeExamplesTest, ReadmeShowsTheExamplesAsTheyAreHere) {
  const std::string readme = ReadRunfile("README.md");
  const std::string self =
      ReadRunfile("capfs_test/runtime/socket_examples_test.cc");
  ASSERT_FALSE(readme.empty());
  ASSERT_FALSE(self.empty());
  for (const char* name : {"echo server", "send a Dir"}) {
    const std::string begins =
        absl::StrCat("// --- ", name, " example begins\n");
    const std::string ends = absl::StrCat("// --- ", name, " example ends\n");
    const size_t from = self.find(begins);
    const size_t to = self.find(ends);
    ASSERT_NE(from, std::string::npos) << name;
    ASSERT_NE(to, std::string::npos) << name;
    const std::string code =
        self.substr(from + begins.size(), to - from - begins.size());
    EXPECT_NE(readme.find(absl::StrCat("```c++\n", code, "```\n")),
              std::string::npos)
        << "README.md does not show the " << name << " example as:\n"
        << code;
  }
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// The "run a plugin in a sandbox" example of README.md, kept compiling and
// working here: a shell plugin that may read `in`, write `out`, run the
// system's programs, and nothing else.

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/runtime/process_test_util.h"
#include "capfs_test/runtime/runtime_test_util.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace runtime {
namespace {

// --- example begins
// Runs `script` under /bin/sh in `out`, able to read `in`, write `out` and
// run what `programs` hold (/usr, /bin, ...), nothing else: no other file, no
// TCP, no abstract socket or signal out of the sandbox.
Task<absl::StatusOr<ExitStatus>> RunPlugin(Scope& scope, const Dir& in,
                                           const Dir& out,
                                           const std::vector<Dir>& programs,
                                           std::string script) {
  std::vector<LandlockRule> rules = {{&in, Access::kRead},
                                     {&out, Access::kReadWrite}};
  for (const Dir& d : programs) rules.push_back({&d, Access::kReadExec});
  absl::StatusOr<Landlock> sandbox = Landlock::Build(
      rules, {.strict = true, .deny_tcp = true, .scope_ipc = true});
  if (!sandbox.ok()) co_return sandbox.status();
  SpawnOptions options;
  options.program = "/bin/sh";
  options.argv = {"sh", "-c", std::move(script)};
  options.env = std::vector<std::string>{"PATH=/usr/bin:/bin"};
  options.cwd = &out;
  options.new_session = true;  // no tty of ours to write into
  options.landlock = &*sandbox;
  absl::StatusOr<Child> plugin = Spawn(scope, std::move(options));
  if (!plugin.ok()) co_return plugin.status();  // names the step that failed
  co_return co_await plugin->Wait();
}
// --- example ends

using ::capfs::runtime::testing::BackendTest;
using ::capfs::runtime::testing::ChildrenOfThisProcess;

class ProcessExampleTest : public BackendTest {};
CAPFS_INSTANTIATE_FOR_BACKENDS(ProcessExampleTest);

TEST_P(ProcessExampleTest, RunsConfined) {
  ::capfs_test::TempDir tmp;
  ASSERT_EQ(::mkdir(tmp.Join("in").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(tmp.Join("out").c_str(), 0755), 0);
  std::ofstream(tmp.Join("in/words")) << "b\na\nc\n";
  std::ofstream(tmp.Join("secret")) << "secret\n";
  absl::StatusOr<Dir> in = Dir::Open(tmp.Join("in"));
  absl::StatusOr<Dir> out = Dir::Open(tmp.Join("out"));
  ASSERT_TRUE(in.ok() && out.ok());
  std::vector<Dir> programs;
  for (const char* path : {"/usr", "/bin", "/lib", "/lib64"}) {
    if (::access(path, F_OK) != 0) continue;
    absl::StatusOr<Dir> d = Dir::Open(path);
    ASSERT_TRUE(d.ok()) << d.status();
    programs.push_back(*std::move(d));
  }
  const std::string script = "sort " + tmp.Join("in/words") + " > sorted; " +
                             "cat " + tmp.Join("secret") +
                             " > leaked 2>/dev/null; " + "echo x > " +
                             tmp.Join("in/planted") + " 2>/dev/null; exit 4";
  absl::StatusOr<ExitStatus> status =
      RunMain([&]() -> Task<absl::StatusOr<ExitStatus>> {
        co_return co_await WithScope(
            [&](Scope& scope) -> Task<absl::StatusOr<ExitStatus>> {
              co_return co_await RunPlugin(scope, *in, *out, programs, script);
            });
      });
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->ToString(), "exited with 4");
  std::stringstream sorted, leaked;
  sorted << std::ifstream(tmp.Join("out/sorted")).rdbuf();
  EXPECT_EQ(sorted.str(), "a\nb\nc\n");
  // The secret beside the Dirs could not be read (the redirect created an
  // empty file in `out`), nothing could be planted in `in`.
  leaked << std::ifstream(tmp.Join("out/leaked")).rdbuf();
  EXPECT_EQ(leaked.str(), "");
  EXPECT_NE(::access(tmp.Join("in/planted").c_str(), F_OK), 0);
  EXPECT_EQ(ChildrenOfThisProcess(), std::vector<pid_t>{});
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

// Fault injection of the kernel path, for real: a seccomp filter makes
// openat2 fail with ENOSYS (a kernel without it), EPERM (a sandbox whose
// profile predates it) or EAGAIN (a rename racing every ".." step), in a
// child process.
//
//  - The whole conformance table runs in a child under each filter with
//    Resolver::kAuto (and, under EAGAIN, Resolver::kKernel too, which must
//    hand every resolution over to the userspace resolver): every case must
//    pass.
//  - Resolver::kKernel without openat2 must fail clearly: Dir::Open refuses
//    with kUnimplemented, and a kKernel Dir opened while openat2 still
//    worked refuses every call that needs a resolution, changing nothing;
//    a kAuto Dir opened then falls back and gives the userspace answers.

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs/internal/kernel_resolver.h"
#include "capfs_test/conformance/operations.h"
#include "capfs_test/conformance/standard_tree.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/runfiles.h"
#include "capfs_test/testing/syscall_fault.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::Resolver;

// "[==========] 46 tests from 1 test suite ran." -> 46, or -1.
int TestsRan(const std::string& output) {
  const std::string mark = "[==========] ";
  size_t at = output.rfind(mark);
  if (at == std::string::npos) return -1;
  absl::string_view rest = absl::string_view(output).substr(at + mark.size());
  int n = -1;
  if (!absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &n)) return -1;
  return n;
}

struct TableCase {
  SyscallFault fault;
  std::string resolvers;  // CAPFS_CONFORMANCE_RESOLVERS
};

class ConformanceUnderFaultTest : public testing::TestWithParam<TableCase> {};

TEST_P(ConformanceUnderFaultTest, EveryCasePasses) {
  const TableCase& c = GetParam();
  ChildRun run = RunUnderFault(
      c.fault, RunfilePath("capfs_test/conformance_test"), {"--gtest_brief=1"},
      {absl::StrCat("CAPFS_CONFORMANCE_RESOLVERS=", c.resolvers)});
  // One test a case: both scopes, every operation, every path.
  const int want =
      static_cast<int>(2 * AllOps().size() * StandardPaths().size());
  const int ran = TestsRan(run.output);
  std::string tail = run.output.size() > 20000
                         ? run.output.substr(run.output.size() - 20000)
                         : run.output;
  EXPECT_TRUE(run.exited_ok())
      << "conformance table under " << SyscallFaultName(c.fault) << " with "
      << c.resolvers << " (status " << run.status << "):\n"
      << tail;
  EXPECT_EQ(ran, want) << tail;
  std::cout << "[fault] openat2 " << SyscallFaultName(c.fault) << ", "
            << c.resolvers << ": " << ran << " conformance tests ran, exit "
            << (WIFEXITED(run.status) ? WEXITSTATUS(run.status) : -1)
            << std::endl;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, ConformanceUnderFaultTest,
    testing::Values(TableCase{SyscallFault::kEnosys, "auto"},
                    TableCase{SyscallFault::kEperm, "auto"},
                    TableCase{SyscallFault::kEagain, "auto,kernel"}),
    [](const testing::TestParamInfo<TableCase>& info) {
      return SyscallFaultName(info.param.fault);
    });

absl::StatusOr<Dir> OpenWith(const std::string& path, Resolver resolver) {
  DirOptions options;
  options.resolver = resolver;
  return Dir::Open(path, options);
}

// Every operation on `path` (by default "dir/inner", which needs a
// resolution) through `root`, each in words ("OpenRdonly: ok
// root/dir/inner (file)", ...). The tree is rebuilt after a call that
// changed it.
std::vector<std::string> EveryOperation(const std::string& case_dir,
                                        const Dir& root,
                                        std::vector<bool>* changed,
                                        const std::string& path = "dir/inner") {
  const std::string pristine = SnapshotTree(case_dir);
  std::vector<std::string> out;
  for (const Op& op : AllOps()) {
    // RenameAcross's destination, opened anew: a rebuild replaces it.
    absl::StatusOr<Dir> sub =
        OpenWith(case_dir + "/root/dir/sub", Resolver::kUserspace);
    CheckOrDie(sub.ok(), "open dir/sub");
    std::map<ino_t, std::string> inodes = InodePaths(case_dir);
    RawResult r = RunCapfs(op, root, *sub, path);
    if (r.ino != 0 && Mutates(op)) inodes = InodePaths(case_dir);
    out.push_back(absl::StrCat(op.name, ": ", Describe(r, inodes, case_dir)));
    bool was_changed = SnapshotTree(case_dir) != pristine;
    if (changed != nullptr) changed->push_back(was_changed);
    if (was_changed) RebuildStandardTree(case_dir);
  }
  return out;
}

// For each operation, whether the userspace resolver's answer through
// `user` depends on the path: false for an operation refused before any
// lookup (bad flags, say) or failing on its other path (a rename from a
// missing name), which may need no resolution of this one.
std::vector<bool> ReadsPath(const std::string& case_dir, const Dir& user) {
  std::vector<std::string> on_file = EveryOperation(case_dir, user, nullptr);
  std::vector<std::string> on_missing =
      EveryOperation(case_dir, user, nullptr, "missing/x");
  std::vector<bool> out;
  for (size_t i = 0; i < on_file.size(); ++i) {
    out.push_back(on_file[i] != on_missing[i] ||
                  !absl::StrContains(on_file[i], ": errno "));
  }
  return out;
}

class KernelResolverUnderFaultTest
    : public testing::TestWithParam<SyscallFault> {
 protected:
  void SetUp() override {
    case_dir_ = temp_.Join("case");
    CheckOrDie(mkdir(case_dir_.c_str(), 0755) == 0, "mkdir case");
    BuildStandardTree(case_dir_);
  }
  std::string root() const { return case_dir_ + "/root"; }

  TempDir temp_;
  std::string case_dir_;
};

// ENOSYS and EPERM: no kernel resolver. Checked in a child that opens its
// Dirs while openat2 still works (the probe has cached "available"), then
// loads the filter.
TEST_P(KernelResolverUnderFaultTest, KernelFailsClearlyAndAutoFallsBack) {
  const SyscallFault fault = GetParam();
  absl::StatusOr<std::string> report = RunInChild({}, [&]() -> std::string {
    std::string failures;
    auto fail = [&](const std::string& what) {
      absl::StrAppend(&failures, what, "\n");
    };
    absl::StatusOr<Dir> user = OpenWith(root(), Resolver::kUserspace);
    if (!user.ok()) return user.status().ToString();
    const std::vector<std::string> want =
        EveryOperation(case_dir_, *user, nullptr);
    const std::vector<bool> reads_path = ReadsPath(case_dir_, *user);
    if (!capfs::internal::KernelResolverAvailable()) {
      return std::string("openat2 unavailable before the filter");
    }
    absl::StatusOr<Dir> kernel = OpenWith(root(), Resolver::kKernel);
    absl::StatusOr<Dir> automatic = OpenWith(root(), Resolver::kAuto);
    if (!kernel.ok() || !automatic.ok()) return std::string("Dir::Open");

    if (absl::Status s = InstallSyscallFault(fault); !s.ok()) {
      return s.ToString();
    }
    const capfs::internal::KernelResolverCounts before =
        capfs::internal::KernelResolverCountsNow();

    // A kKernel Dir opened before: every call that needs a resolution is
    // refused, saying why, and changes nothing.
    std::vector<bool> changed;
    std::vector<std::string> got = EveryOperation(case_dir_, *kernel, &changed);
    for (size_t i = 0; i < got.size(); ++i) {
      // An operation whose answer does not depend on the path (refused
      // before any lookup, or failing on its other path first) may also
      // give that answer, whatever the resolver.
      const bool refused =
          absl::StrContains(got[i], "error without errno") &&
          absl::StrContains(got[i], "Resolver::kKernel needs openat2");
      const bool clear = refused || (!reads_path[i] && got[i] == want[i]);
      if (!clear) fail("kKernel " + got[i]);
      if (changed[i]) fail("kKernel changed the tree: " + got[i]);
    }
    // A single name needs no resolution: the plain *at call on the Dir's
    // descriptor serves it, openat2 or not.
    if (!kernel->Stat("file").ok() || !kernel->OpenAt("file", O_RDONLY).ok()) {
      fail("kKernel on a single name failed");
    }
    // The failures re-probed and cached "unavailable".
    if (capfs::internal::KernelResolverAvailable()) {
      fail("KernelResolverAvailable() still true");
    }
    if (capfs::internal::KernelResolverCountsNow().unavailable ==
        before.unavailable) {
      fail("no call counted openat2 as unavailable");
    }
    // A new kKernel Dir is refused at once, by path and from a descriptor.
    DirOptions kernel_options;
    kernel_options.resolver = Resolver::kKernel;
    absl::StatusOr<Dir> fresh = Dir::Open(root(), kernel_options);
    if (fresh.ok() ||
        fresh.status().code() != absl::StatusCode::kUnimplemented ||
        !absl::StrContains(fresh.status().message(), "openat2")) {
      fail("Dir::Open with kKernel: " + fresh.status().ToString());
    }
    int fd = open(root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    absl::StatusOr<Dir> from_fd = Dir::FromFd(capfs::Fd(fd), kernel_options);
    if (from_fd.ok() ||
        from_fd.status().code() != absl::StatusCode::kUnimplemented) {
      fail("Dir::FromFd with kKernel: " + from_fd.status().ToString());
    }
    // The kAuto Dir opened before falls back: the userspace answers.
    got = EveryOperation(case_dir_, *automatic, nullptr);
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != want[i]) fail("kAuto " + got[i] + " != " + want[i]);
    }
    return failures;
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
}

INSTANTIATE_TEST_SUITE_P(NoOpenat2, KernelResolverUnderFaultTest,
                         testing::Values(SyscallFault::kEnosys,
                                         SyscallFault::kEperm),
                         [](const testing::TestParamInfo<SyscallFault>& i) {
                           return SyscallFaultName(i.param);
                         });

// EAGAIN on every openat2: the kernel resolver retries, then hands each
// resolution to the userspace one, for kKernel too; the answers are the
// userspace resolver's.
TEST(KernelResolverUnderEagainTest, EveryResolutionIsHandedOver) {
  TempDir temp;
  const std::string case_dir = temp.Join("case");
  CheckOrDie(mkdir(case_dir.c_str(), 0755) == 0, "mkdir case");
  BuildStandardTree(case_dir);
  const std::string root = case_dir + "/root";
  absl::StatusOr<std::string> report = RunInChild({}, [&]() -> std::string {
    std::string failures;
    absl::StatusOr<Dir> user = OpenWith(root, Resolver::kUserspace);
    if (!user.ok()) return user.status().ToString();
    std::vector<std::string> want = EveryOperation(case_dir, *user, nullptr);
    std::vector<bool> reads_path = ReadsPath(case_dir, *user);
    const uint64_t resolving = static_cast<uint64_t>(
        std::count(reads_path.begin(), reads_path.end(), true));
    if (absl::Status s = InstallSyscallFault(SyscallFault::kEagain); !s.ok()) {
      return s.ToString();
    }
    for (Resolver r : {Resolver::kKernel, Resolver::kAuto}) {
      absl::StatusOr<Dir> dir = OpenWith(root, r);
      if (!dir.ok()) return dir.status().ToString();
      const uint64_t busy_before =
          capfs::internal::KernelResolverCountsNow().busy;
      std::vector<std::string> got = EveryOperation(case_dir, *dir, nullptr);
      const capfs::internal::KernelResolverCounts after =
          capfs::internal::KernelResolverCountsNow();
      for (size_t i = 0; i < got.size(); ++i) {
        if (got[i] != want[i]) {
          absl::StrAppend(&failures, got[i], " != ", want[i], "\n");
        }
      }
      // At least one hand-over per operation that reads its path (Rename
      // resolves two parents).
      if (after.busy - busy_before < resolving) {
        absl::StrAppend(&failures, "only ", after.busy - busy_before,
                        " hand-overs for ", resolving, " operations\n");
      }
      if (after.unavailable != 0) {
        absl::StrAppend(&failures, "EAGAIN taken for unavailability\n");
      }
    }
    return failures;
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(*report, "");
}

}  // namespace
}  // namespace capfs_test

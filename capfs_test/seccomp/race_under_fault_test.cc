// The kernel resolver's hand-over to the userspace resolver, under attack.
//
// openat2 says EAGAIN when a rename races a ".." step; the kernel resolver
// retries, then hands the resolution over to the userspace resolver. A race
// seldom makes openat2 say EAGAIN that many times in a row, so here the
// race attacks run with Resolver::kKernel in a child whose seccomp filter
// makes every openat2 say EAGAIN: every resolution is handed over while the
// attacker changes the tree, and the attacks' checks (nothing outside
// reached, created or removed) must all hold.

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "capfs_test/testing/iterations.h"
#include "capfs_test/testing/runfiles.h"
#include "capfs_test/testing/syscall_fault.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

// Iterations of each attack in the child when --iterations is not given.
constexpr int kCiIterations = 200;

TEST(RaceUnderFaultTest, KernelHandsEveryResolutionOverUnderAttack) {
  ChildRun run = RunUnderFault(
      SyscallFault::kEagain, RunfilePath("capfs_test/race_test"),
      {"--gtest_filter=*/Kernel*",
       absl::StrCat("--iterations=", IterationsOr(kCiIterations))},
      {});
  const std::string tail = run.output.size() > 30000
                               ? run.output.substr(run.output.size() - 30000)
                               : run.output;
  EXPECT_TRUE(run.exited_ok()) << "status " << run.status << ":\n" << tail;
  // "[race] NAME PARAM: ... openat2 EAGAIN E, handed to userspace H; ..."
  int attacks = 0;
  uint64_t handed = 0;
  for (absl::string_view line : absl::StrSplit(run.output, '\n')) {
    if (!absl::ConsumePrefix(&line, "[race] ")) continue;
    ++attacks;
    size_t at = line.find("handed to userspace ");
    uint64_t h = 0;
    if (at != absl::string_view::npos) {
      absl::string_view n = line.substr(at + 20);
      (void)absl::SimpleAtoi(n.substr(0, n.find(';')), &h);
    }
    handed += h;
    std::cout << "[fault] EAGAIN: " << line.substr(0, line.find(';'))
              << "; handed to userspace " << h << std::endl;
  }
  EXPECT_GT(attacks, 0) << tail;
  EXPECT_GT(handed, 0u) << "no resolution was handed over:\n" << tail;
}

}  // namespace
}  // namespace capfs_test

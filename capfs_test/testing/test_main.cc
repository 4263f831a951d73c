// The main of every capfs test binary: GoogleTest, with the descriptor-leak
// check installed around every test, and capfs's own flags (--iterations,
// see iterations.h) parsed from what GoogleTest leaves.

#include "absl/flags/parse.h"
#include "capfs_test/testing/fd_leak_check.h"
#include "gtest/gtest.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  testing::TestEventListeners& listeners =
      testing::UnitTest::GetInstance()->listeners();
  // The check runs before the printer, so a leak shows on the test's own
  // FAILED line.
  testing::TestEventListener* printer =
      listeners.Release(listeners.default_result_printer());
  listeners.Append(new capfs_test::FdLeakCheck);
  if (printer != nullptr) listeners.Append(printer);
  return RUN_ALL_TESTS();
}

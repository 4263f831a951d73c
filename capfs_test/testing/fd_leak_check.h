// A per-test check that every test leaves the process's descriptors as it
// found them: the same descriptor numbers open, pointing at the same files.
//
// Installed by capfs_test's test main (test_main.cc) in every suite, so a
// test that leaks a descriptor, on a success or an error path, fails.

#ifndef CAPFS_TEST_TESTING_FD_LEAK_CHECK_H_
#define CAPFS_TEST_TESTING_FD_LEAK_CHECK_H_

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace capfs_test {

// The open descriptors of this process, one "N -> target" line each, from
// /proc/self/fd (the listing's own descriptor left out).
std::string OpenFdsSnapshot();

// The numbers of the open descriptors of this process (the listing's own
// descriptor left out).
std::set<int> OpenFdNumbers();

// Fails the current test when its descriptors differ at the end from those at
// its start.
class FdLeakCheck : public testing::EmptyTestEventListener {
 public:
  void OnTestStart(const testing::TestInfo& info) override;
  void OnTestEnd(const testing::TestInfo& info) override;

 private:
  std::string before_;
};

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_FD_LEAK_CHECK_H_

// How many iterations the stress suites run (the race attacks, ...).
//
// Every capfs test binary accepts --iterations=N (test_main parses it), so a
// long run is one flag on any target:
//   bazel test //capfs_test:race_test --test_arg=--iterations=20000
// Without it, each suite runs its own default, sized for CI.

#ifndef CAPFS_TEST_TESTING_ITERATIONS_H_
#define CAPFS_TEST_TESTING_ITERATIONS_H_

namespace capfs_test {

// The --iterations flag when given (a positive number), else `ci_default`.
int IterationsOr(int ci_default);

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_ITERATIONS_H_

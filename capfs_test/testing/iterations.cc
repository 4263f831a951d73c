#include "capfs_test/testing/iterations.h"

#include "absl/flags/flag.h"

ABSL_FLAG(int, iterations, 0,
          "iterations of each stress test (race attacks, ...); 0: the "
          "suite's own default, sized for CI");

namespace capfs_test {

int IterationsOr(int ci_default) {
  int n = absl::GetFlag(FLAGS_iterations);
  return n > 0 ? n : ci_default;
}

}  // namespace capfs_test

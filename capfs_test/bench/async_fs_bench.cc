// The awaitable Dir call benchmarks alone (async_fs_rows.h describes them;
// runtime_bench runs them too, beside the runtime's other rows):
//
//   bazel run -c opt //capfs_test/bench:async_fs_bench
//
// Prints each row, then the ratios of the pairs with their targets and which
// paths served the awaitable calls.

#include <vector>

#include "benchmark/benchmark.h"
#include "capfs_test/bench/async_fs_rows.h"

namespace capfs {
namespace runtime {
namespace {

class Reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    ratios_.Record(runs);
  }
  const AsyncFsRatios& ratios() const { return ratios_; }

 private:
  AsyncFsRatios ratios_;
};

}  // namespace
}  // namespace runtime
}  // namespace capfs

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  capfs::runtime::RegisterAsyncFsBenchmarks();
  capfs::runtime::Reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.ratios().Print();
  capfs::runtime::RemoveAsyncFsTree();
  benchmark::Shutdown();
  return 0;
}

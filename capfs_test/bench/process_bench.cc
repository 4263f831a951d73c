// process_bench: what starting a process costs with capfs::runtime::Spawn,
// next to posix_spawn(3) and fork(2)+execve(2) in the same binary, so that
// ratios come from one run.
//
//   bazel run -c opt //capfs_test/bench:process_bench
//
// Benchmarks (wall-clock per iteration: start /bin/true and reap it):
//   spawn/capfs/resident_mib:<n>        Spawn, then co_await Wait() on the
//                                       loop (epoll)
//   spawn/posix_spawn/resident_mib:<n>  posix_spawn, then waitpid
//   spawn/fork_exec/resident_mib:<n>    fork, execve in the child, waitpid
// with this process holding n MiB of touched anonymous memory (16 and 1024):
// fork copies the page tables of all of it, a CLONE_VM spawn none.
// After the runs, a table of the target ratios.

#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "capfs/runtime/runtime.h"

extern char** environ;

namespace capfs {
namespace runtime {
namespace {

constexpr char kProgram[] = "/bin/true";

// Touched anonymous memory that makes this process `mib` MiB bigger.
class Ballast {
 public:
  void Ensure(size_t mib) {
    if (mib == mib_) return;
    if (base_ != nullptr) ::munmap(base_, mib_ << 20);
    base_ = ::mmap(nullptr, mib << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base_ == MAP_FAILED) {
      base_ = nullptr;
      mib_ = 0;
      return;
    }
    ::memset(base_, 1, mib << 20);
    mib_ = mib;
  }
  bool ok() const { return base_ != nullptr; }

 private:
  void* base_ = nullptr;
  size_t mib_ = 0;
};
Ballast ballast;

void BM_SpawnCapfs(benchmark::State& state) {
  ballast.Ensure(static_cast<size_t>(state.range(0)));
  if (!ballast.ok()) return state.SkipWithError("mmap of the ballast failed");
  absl::Status s = Run([&]() -> Task<absl::Status> {
    co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
      for (auto _ : state) {
        SpawnOptions options;
        options.program = kProgram;
        options.argv = {"true"};
        absl::StatusOr<Child> child = Spawn(scope, std::move(options));
        if (!child.ok()) co_return child.status();
        absl::StatusOr<ExitStatus> st = co_await child->Wait();
        if (!st.ok()) co_return st.status();
        if (!st->success()) co_return absl::InternalError(st->ToString());
      }
      co_return absl::OkStatus();
    });
  }());
  if (!s.ok()) state.SkipWithError(s.ToString().c_str());
}

void BM_PosixSpawn(benchmark::State& state) {
  ballast.Ensure(static_cast<size_t>(state.range(0)));
  if (!ballast.ok()) return state.SkipWithError("mmap of the ballast failed");
  char* argv[] = {const_cast<char*>("true"), nullptr};
  for (auto _ : state) {
    pid_t pid;
    if (::posix_spawn(&pid, kProgram, nullptr, nullptr, argv, environ) != 0) {
      return state.SkipWithError("posix_spawn failed");
    }
    int status;
    ::waitpid(pid, &status, 0);
  }
}

void BM_ForkExec(benchmark::State& state) {
  ballast.Ensure(static_cast<size_t>(state.range(0)));
  if (!ballast.ok()) return state.SkipWithError("mmap of the ballast failed");
  char* argv[] = {const_cast<char*>("true"), nullptr};
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid < 0) return state.SkipWithError("fork failed");
    if (pid == 0) {
      ::execve(kProgram, argv, environ);
      ::_exit(127);
    }
    int status;
    ::waitpid(pid, &status, 0);
  }
}

// Prints what the console reporter does and keeps each benchmark's median
// wall-clock time per iteration for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") {
        continue;
      }
      const double to_us =
          benchmark::GetTimeUnitMultiplier(benchmark::kMicrosecond) /
          benchmark::GetTimeUnitMultiplier(run.time_unit);
      wall_us_[run.run_name.function_name + "/" + run.run_name.args] =
          run.GetAdjustedRealTime() * to_us;
    }
  }

  void PrintRatios() const {
    std::printf(
        "\nMedians of wall time per spawn-and-wait (us) and ratios "
        "(lower is better):\n");
    std::printf("  %-10s %10s %12s %10s %14s %14s\n", "resident", "capfs",
                "posix_spawn", "fork+exec", "capfs/posix", "capfs/fork");
    for (int mib : {16, 1024}) {
      const std::string arg = absl::StrCat("resident_mib:", mib);
      const double capfs = Get("spawn/capfs/" + arg);
      const double posix = Get("spawn/posix_spawn/" + arg);
      const double fork = Get("spawn/fork_exec/" + arg);
      if (capfs <= 0 || posix <= 0 || fork <= 0) continue;
      const double to_posix = capfs / posix, to_fork = capfs / fork;
      std::printf("  %-10s %10.0f %12.0f %10.0f %8.3f (%s) %8.3f (%s)\n",
                  absl::StrCat(mib, " MiB").c_str(), capfs, posix, fork,
                  to_posix, to_posix <= 1.05 ? "met" : "MISSED", to_fork,
                  mib < 1024       ? "-"
                  : to_fork <= 0.2 ? "met"
                                   : "MISSED");
    }
    std::printf(
        "  targets: capfs/posix_spawn <= 1.05 at both sizes; "
        "capfs/fork+exec <= 0.2 at 1 GiB\n");
  }

 private:
  double Get(const std::string& name) const {
    auto it = wall_us_.find(name);
    return it == wall_us_.end() ? 0 : it->second;
  }
  std::map<std::string, double> wall_us_;  // by "function/args"
};

void RegisterAll() {
  for (int mib : {16, 1024}) {
    for (auto [name, fn] : {std::pair{"spawn/capfs", &BM_SpawnCapfs},
                            std::pair{"spawn/posix_spawn", &BM_PosixSpawn},
                            std::pair{"spawn/fork_exec", &BM_ForkExec}}) {
      benchmark::RegisterBenchmark(name, fn)
          ->ArgName("resident_mib")
          ->Arg(mib)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime()
          ->Repetitions(5)
          ->ReportAggregatesOnly(true);
    }
  }
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  capfs::runtime::RegisterAll();
  capfs::runtime::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}

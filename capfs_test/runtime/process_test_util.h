// Helpers for the process tests: the helper child, its output, and the
// children this process has (zombies included).

#ifndef CAPFS_TEST_RUNTIME_PROCESS_TEST_UTIL_H_
#define CAPFS_TEST_RUNTIME_PROCESS_TEST_UTIL_H_

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capfs/runtime/runtime.h"
#include "capfs_test/testing/runfiles.h"

namespace capfs {
namespace runtime {
namespace testing {

// The helper binary (spawn_helper.cc), absolute.
inline std::string HelperPath() {
  std::string path =
      ::capfs_test::RunfilePath("capfs_test/runtime/spawn_helper");
  char buf[4096];
  if (path[0] != '/' && ::getcwd(buf, sizeof(buf)) != nullptr) {
    path = absl::StrCat(buf, "/", path);
  }
  return path;
}

// Options that run the helper with `commands`.
inline SpawnOptions HelperOptions(std::vector<std::string> commands) {
  SpawnOptions options;
  options.program = HelperPath();
  options.argv = {"spawn_helper"};
  for (std::string& c : commands) options.argv.push_back(std::move(c));
  return options;
}

// The pids whose parent is this process, zombies included (from /proc).
inline std::vector<pid_t> ChildrenOfThisProcess() {
  std::vector<pid_t> children;
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (struct dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string path = absl::StrCat("/proc/", e->d_name, "/stat");
    FILE* f = ::fopen(path.c_str(), "re");
    if (f == nullptr) continue;
    char buf[1024];
    size_t n = ::fread(buf, 1, sizeof(buf) - 1, f);
    ::fclose(f);
    buf[n] = '\0';
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    const char* close = ::strrchr(buf, ')');
    if (close == nullptr) continue;
    char state;
    int ppid;
    if (::sscanf(close + 1, " %c %d", &state, &ppid) == 2 && ppid == self) {
      children.push_back(::atoi(e->d_name));
    }
  }
  ::closedir(proc);
  return children;
}

struct Outcome {
  ExitStatus status;
  std::string out;  // what the child wrote on stdout
};

// Spawns `options` with stdout on a pipe, reads until end of file, waits.
inline Task<absl::StatusOr<Outcome>> SpawnAndCollect(SpawnOptions options) {
  Outcome outcome;
  absl::Status s = co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
    absl::StatusOr<PipeEnds> pipe = Pipe(scope);
    if (!pipe.ok()) co_return pipe.status();
    options.fds.push_back({1, pipe->write.get()});
    absl::StatusOr<Child> child = Spawn(scope, std::move(options));
    if (!child.ok()) co_return child.status();
    if (absl::Status c = pipe->write.Close(); !c.ok()) co_return c;
    char buf[4096];
    for (int i = 0; i < 10000; ++i) {
      absl::StatusOr<size_t> n = co_await WithTimeout(
          absl::Seconds(20), Read(pipe->read, absl::MakeSpan(buf)));
      if (!n.ok()) co_return n.status();
      if (*n == 0) break;
      outcome.out.append(buf, *n);
    }
    absl::StatusOr<ExitStatus> status =
        co_await WithTimeout(absl::Seconds(20), child->Wait());
    if (!status.ok()) co_return status.status();
    outcome.status = *status;
    co_return absl::OkStatus();
  });
  if (!s.ok()) co_return s;
  co_return outcome;
}

}  // namespace testing
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_TEST_RUNTIME_PROCESS_TEST_UTIL_H_

// An installed capfs runtime runs a Task on a loop: a timer, then "../x"
// through the worker pool, refused. Exits 0 only then.
#include <fcntl.h>

#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"

namespace rt = capfs::runtime;

rt::Task<absl::Status> Main() {
  absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(".");
  if (!dir.ok()) co_return dir.status();
  absl::Status slept = co_await rt::Sleep(absl::Milliseconds(1));
  if (!slept.ok()) co_return slept;
  absl::StatusOr<capfs::Fd> f = co_await rt::OpenAt(*dir, "../x", O_RDONLY);
  if (capfs::ViolationOf(f.status()) != capfs::Violation::kEscape) {
    co_return absl::InternalError("../x was not refused as an escape");
  }
  co_return absl::OkStatus();
}

int main() { return rt::Run(Main()).ok() ? 0 : 1; }

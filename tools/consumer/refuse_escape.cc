// An installed capfs refuses "../x": exits 0 only on kPermissionDenied/kEscape.
#include <fcntl.h>

#include "capfs/capfs.h"

int main() {
  absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(".");
  if (!dir.ok()) return 1;
  absl::StatusOr<capfs::Fd> f = dir->OpenAt("../x", O_RDONLY);
  return f.status().code() == absl::StatusCode::kPermissionDenied &&
                 capfs::ViolationOf(f.status()) == capfs::Violation::kEscape
             ? 0
             : 1;
}

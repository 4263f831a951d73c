// Awaitable forms of every capfs::Dir operation.
//
//   absl::StatusOr<Fd> f = co_await OpenAt(root, "data/log", O_RDONLY);
//   absl::StatusOr<std::vector<DirEntry>> names = co_await ReadDir(root, ".");
//
// Each gives the Dir call of the same name's result (capfs/dir.h: same
// confinement, same results, same errors) without ever blocking the loop:
// on the loop when the call cannot block, else through the loop's
// io_uring, else on its worker pool (fs_paths.h says which and how to tell).
// Paths are copied into the task, so temporaries are fine; the Dirs must
// outlive the call. Cancellation: a call not started yet never runs; one
// that has started finishes, what it made is released (an opened Fd is
// closed) and the result is kCancelled.

#ifndef CAPFS_RUNTIME_ASYNC_DIR_H_
#define CAPFS_RUNTIME_ASYNC_DIR_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "capfs/dir.h"
#include "capfs/fd.h"
#include "capfs/file.h"
#include "capfs/runtime/task.h"

namespace capfs {
namespace runtime {

Task<absl::StatusOr<Fd>> OpenAt(const Dir& dir, std::string path, int flags,
                                mode_t mode = 0);
Task<absl::StatusOr<Dir>> OpenDir(const Dir& dir, std::string path);
Task<absl::Status> Mkdir(const Dir& dir, std::string path, mode_t mode = 0777);
Task<absl::Status> Unlink(const Dir& dir, std::string path);
Task<absl::Status> Rmdir(const Dir& dir, std::string path);
Task<absl::Status> Rename(const Dir& dir, std::string from, const Dir& to_dir,
                          std::string to);
// A hard link, as Dir::Link: `to` (in `to_dir`) names what `from` names.
Task<absl::Status> Link(const Dir& dir, std::string from, const Dir& to_dir,
                        std::string to);
Task<absl::Status> Symlink(const Dir& dir, std::string target,
                           std::string link_path);
Task<absl::StatusOr<std::string>> ReadLink(const Dir& dir, std::string path);
Task<absl::StatusOr<FileStat>> Stat(const Dir& dir, std::string path);
Task<absl::StatusOr<FileStat>> Lstat(const Dir& dir, std::string path);
Task<absl::StatusOr<std::vector<DirEntry>>> ReadDir(const Dir& dir,
                                                    std::string path);

}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_ASYNC_DIR_H_

#include "capfs/runtime/async_dir.h"

#include <utility>

#include "capfs/runtime/run_blocking.h"

namespace capfs {
namespace runtime {

// Each coroutine keeps its arguments in its frame, which stays alive (the
// task is suspended) while the worker uses them by reference.

Task<absl::StatusOr<Fd>> OpenAt(const Dir& dir, std::string path, int flags,
                                mode_t mode) {
  co_return co_await RunBlocking(
      [&] { return dir.OpenAt(path, flags, mode); });
}

Task<absl::StatusOr<Dir>> OpenDir(const Dir& dir, std::string path) {
  co_return co_await RunBlocking([&] { return dir.OpenDir(path); });
}

Task<absl::Status> Mkdir(const Dir& dir, std::string path, mode_t mode) {
  co_return co_await RunBlocking([&] { return dir.Mkdir(path, mode); });
}

Task<absl::Status> Unlink(const Dir& dir, std::string path) {
  co_return co_await RunBlocking([&] { return dir.Unlink(path); });
}

Task<absl::Status> Rmdir(const Dir& dir, std::string path) {
  co_return co_await RunBlocking([&] { return dir.Rmdir(path); });
}

Task<absl::Status> Rename(const Dir& dir, std::string from, const Dir& to_dir,
                          std::string to) {
  co_return co_await RunBlocking(
      [&] { return dir.Rename(from, to_dir, to); });
}

Task<absl::Status> Symlink(const Dir& dir, std::string target,
                           std::string link_path) {
  co_return co_await RunBlocking(
      [&] { return dir.Symlink(target, link_path); });
}

Task<absl::StatusOr<std::string>> ReadLink(const Dir& dir, std::string path) {
  co_return co_await RunBlocking([&] { return dir.ReadLink(path); });
}

Task<absl::StatusOr<FileStat>> Stat(const Dir& dir, std::string path) {
  co_return co_await RunBlocking([&] { return dir.Stat(path); });
}

Task<absl::StatusOr<FileStat>> Lstat(const Dir& dir, std::string path) {
  co_return co_await RunBlocking([&] { return dir.Lstat(path); });
}

Task<absl::StatusOr<std::vector<DirEntry>>> ReadDir(const Dir& dir,
                                                    std::string path) {
  co_return co_await RunBlocking([&] { return dir.ReadDir(path); });
}

}  // namespace runtime
}  // namespace capfs

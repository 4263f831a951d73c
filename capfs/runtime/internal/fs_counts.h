// Counting which path served an awaitable filesystem call (fs_paths.h's
// AsyncFsCounts), for the calls outside async_dir.cc (regular-file I/O), and
// how loops got their rings.
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_FS_COUNTS_H_
#define CAPFS_RUNTIME_INTERNAL_FS_COUNTS_H_

namespace capfs {
namespace runtime {
namespace internal {

enum class FsPath { kOnLoop, kIoUring, kWorkers, kLoopMiss, kIoUringMiss };

// Adds one to the count of `path`. Any thread.
void CountFsPath(FsPath path);

// A loop got its ring: a new one, or the one its thread kept.
enum class RingEvent { kSetUp, kReused };
void CountRing(RingEvent event);

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_FS_COUNTS_H_

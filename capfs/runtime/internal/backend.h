// Backend: how a loop learns that descriptors are ready.
//
// One interface, two implementations, chosen per loop (LoopOptions::backend):
//
//   epoll  Each descriptor is added once, for the directions it may be waited
//          on, edge-triggered, and removed before it is closed. A wait costs
//          the same whatever the number of descriptors watched; interest
//          changes cost nothing.
//   poll   poll(2) over exactly the descriptors some task waits on, as in
//          Eio's POSIX scheduler. Interest changes are array updates with no
//          syscall; a wait costs time in proportion to the number of waits.
//
// Either way the scheduler reads a report as "this direction may be ready
// now" and lets the I/O call decide, so the difference between edges and
// levels never reaches a task. A descriptor is removed before it is closed,
// so a closed descriptor number is never polled again. Not thread-safe.
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_BACKEND_H_
#define CAPFS_RUNTIME_INTERNAL_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace capfs {
namespace runtime {
namespace internal {

inline constexpr uint32_t kReadable = 1;
inline constexpr uint32_t kWritable = 2;
// The direction has hung up (end of file, a closed peer, an error): it stays
// ready for good, since every later call returns at once. Reported with the
// matching kReadable / kWritable bit.
inline constexpr uint32_t kReadClosed = 4;
inline constexpr uint32_t kWriteClosed = 8;

struct ReadyEvent {
  void* token;     // what Add was given
  uint32_t ready;  // the bits above
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;

  // Starts watching `fd` for `directions` (kReadable, kWritable or both);
  // its events carry `token`. Returns 0, or -errno: -EPERM when `fd` cannot
  // be polled at all (a regular file, a directory).
  virtual int Add(int fd, void* token, uint32_t directions) = 0;

  // The directions (among those it was added for, or 0) that some task now
  // waits on for `fd`, which was added.
  virtual void SetInterest(int fd, uint32_t interest) = 0;

  // Stops watching `fd`, which was added. Call before closing it.
  virtual void Remove(int fd) = 0;

  // Waits until a watched descriptor is ready or `timeout_ns` passes (-1: no
  // limit, 0: only look) and appends what is ready to `out`. A signal ends the
  // wait early with no events, so the caller recomputes its timeout rather
  // than the wait restarting with a stale one. Returns 0 or -errno.
  virtual int Wait(int64_t timeout_ns, std::vector<ReadyEvent>* out) = 0;

  // How many descriptors are watched now.
  virtual size_t watched() const = 0;
};

absl::StatusOr<std::unique_ptr<Backend>> MakeEpollBackend();
std::unique_ptr<Backend> MakePollBackend();

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_BACKEND_H_

// ForkEpoch: telling a forked child from the process it was forked from.
//
// A child made by fork(2) (or _Fork(3), or clone(2) without CLONE_VM, none
// of which need run a handler of ours) has a copy
// of its parent's memory, and with it whatever the parent kept for later:
// an io_uring kept for a thread's next loop, say, whose memory the child
// shares with the parent. ForkEpoch tells such a copy from the original
// without any handler at fork: its number lives in a page the kernel hands
// every child zeroed (MADV_WIPEONFORK).
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_FORK_EPOCH_H_
#define CAPFS_RUNTIME_INTERNAL_FORK_EPOCH_H_

#include <stdint.h>

namespace capfs {
namespace runtime {
namespace internal {

// A number that is the same at every call in one process and, in a child
// forked from it, differs from every number the parent (or any process it
// was forked from) returned. 0 when the kernel cannot tell them apart (no
// MADV_WIPEONFORK, before Linux 4.14, or no memory for the page): then
// nothing may be kept across a fork. Any thread; no syscall once set.
uint64_t ForkEpoch();

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_FORK_EPOCH_H_

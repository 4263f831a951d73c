// The kernel resolver: openat2(2) with RESOLVE_BENEATH or RESOLVE_IN_ROOT,
// always with RESOLVE_NO_MAGICLINKS.
//
// EXDEV from openat2 is the escape (ResolveResult::Escape()). EAGAIN (a
// rename or mount somewhere on the system raced a ".." step) is retried a
// bounded number of times, then kKernelBusy tells the caller to finish in
// userspace; so does an ELOOP, which openat2 may give for an escape or for a
// path within the symlink budget (see kernel_resolver.cc). ENOSYS, or EPERM
// from a seccomp filter, mean there is no kernel resolver here: that is probed
// once and cached (KernelResolverAvailable), and re-probed when a call fails
// that way later, since a filter may be installed at any time.
//
// Operations with no openat2 form (mkdir, unlink, rename, ...) resolve the
// parent with openat2 and call the *at syscall on the last name; a last name
// of ".." is first checked to stay beneath.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_KERNEL_RESOLVER_H_
#define CAPFS_INTERNAL_KERNEL_RESOLVER_H_

#include <stdint.h>
#include <sys/stat.h>

#include "capfs/fd.h"
#include "capfs/internal/resolve.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace internal {

// True when openat2 with RESOLVE_BENEATH works in this process. Probes on
// the first call and caches the answer.
bool KernelResolverAvailable();

// Probes again (a call failed with ENOSYS or EPERM) and caches the answer.
bool ReprobeKernelResolver();

// How many times an EAGAIN from openat2 is retried before kKernelBusy.
inline constexpr int kKernelEagainRetries = 16;

// How often the kernel resolver took its rare paths since the process
// started: for tests and diagnostics (a race test counts the retries its
// attacker caused). Each count is exact; the three are read one at a time,
// so a snapshot taken while other threads resolve may mix moments.
struct KernelResolverCounts {
  uint64_t eagain = 0;       // openat2 said EAGAIN (each retry counts)
  uint64_t busy = 0;         // retries ran out: kKernelBusy, finished in
                             // userspace
  uint64_t unavailable = 0;  // kKernelUnavailable (ENOSYS, seccomp's EPERM)
};
KernelResolverCounts KernelResolverCountsNow();

// `extra_resolve` is added to every openat2's resolve flags. When it is not
// 0 the call is a nonblocking attempt (RESOLVE_CACHED, RESOLVE_NO_XDEV: see
// capfs/internal/nonblocking.h): every answer that the blocking call would
// retry, finish in userspace or tell apart by probing (EAGAIN, ELOOP, EXDEV,
// EINVAL, ENOSYS, EPERM, E2BIG) is kWouldBlock instead.
// The open_how KernelOpen gives openat2 beneath `root` (flags as Dir::OpenAt
// normalized them), for a caller that makes the call itself (io_uring).
OpenHow KernelOpenHowFor(Root root, int flags, mode_t mode);
// What KernelOpen makes of openat2's result `openat2_result` (a descriptor
// or -errno), for such a caller: Ok with the descriptor in `*out`, an errno,
// an escape, or kWouldBlock for every answer KernelOpen would retry, finish
// in userspace or probe (make the blocking call).
ResolveResult KernelOpenResult(int openat2_result, Fd* out);

ResolveResult KernelOpen(Root root, const char* path, int flags, mode_t mode,
                         Fd* out, uint64_t extra_resolve = 0);
// The descriptor it opens goes to `closer` when there is one.
ResolveResult KernelStat(Root root, const char* path, bool follow,
                         struct stat* st, uint64_t extra_resolve = 0,
                         FdCloser* closer = nullptr);
// `path` is modified during the call and restored before it returns.
ResolveResult KernelResolveParent(Root root, char* path, ParentDir* out,
                                  uint64_t extra_resolve = 0);

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_KERNEL_RESOLVER_H_

#include "capfs/runtime/internal/fork_epoch.h"

#include <errno.h>

#include <atomic>
#include <new>

#include "capfs/sys/process.h"

namespace capfs {
namespace runtime {
namespace internal {
namespace {

constexpr size_t kPageSize = 4096;

// The epoch itself, in the page a child sees zeroed.
struct EpochPage {
  std::atomic<uint64_t> epoch;
};
static_assert(sizeof(EpochPage) <= kPageSize);

// The page's address; kNoPage once the kernel refused it (for good: EINVAL,
// no MADV_WIPEONFORK), 0 before it is mapped. Set once by whichever thread
// maps it first; the mapping survives fork, zeroed.
constexpr uintptr_t kNoPage = 1;
std::atomic<uintptr_t> g_page{0};

// The last epoch handed out. A child's copy of it is at least every epoch
// of its parent's, so the child's own (one above) differs from all of them.
std::atomic<uint64_t> g_last_epoch{0};

// The page, or nullptr when there is none (for now, or for good).
EpochPage* Page() {
  uintptr_t page = g_page.load(std::memory_order_acquire);
  if (page == kNoPage) return nullptr;
  if (page != 0) return reinterpret_cast<EpochPage*>(page);
  void* mapped = nullptr;
  int r = ::capfs::internal::SysMapWipeOnFork(kPageSize, &mapped);
  if (r != 0) {
    // ENOMEM may pass: try again at the next call. Anything else is the
    // kernel's lasting answer.
    if (r == -ENOMEM) return nullptr;
    uintptr_t expected = 0;
    g_page.compare_exchange_strong(expected, kNoPage,
                                   std::memory_order_acq_rel);
    return Page();
  }
  new (mapped) EpochPage{};
  uintptr_t expected = 0;
  if (g_page.compare_exchange_strong(expected,
                                     reinterpret_cast<uintptr_t>(mapped),
                                     std::memory_order_acq_rel)) {
    return static_cast<EpochPage*>(mapped);
  }
  ::capfs::internal::SysUnmap(mapped, kPageSize);  // another thread's won
  return Page();
}

}  // namespace

uint64_t ForkEpoch() {
  EpochPage* page = Page();
  if (page == nullptr) return 0;
  uint64_t epoch = page->epoch.load(std::memory_order_acquire);
  if (epoch != 0) return epoch;
  // First call in this process (or in this child, whose page came zeroed).
  const uint64_t fresh =
      g_last_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  if (page->epoch.compare_exchange_strong(epoch, fresh,
                                          std::memory_order_acq_rel)) {
    return fresh;
  }
  return epoch;  // another thread set it first
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

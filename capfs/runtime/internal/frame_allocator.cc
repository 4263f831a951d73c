#include "capfs/runtime/internal/frame_allocator.h"

#include <new>

#if defined(CAPFS_SANITIZER) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
#define CAPFS_FRAME_CACHE 0
#else
#define CAPFS_FRAME_CACHE 1
#endif

namespace capfs {
namespace runtime {
namespace internal {

#if CAPFS_FRAME_CACHE
namespace {

constexpr size_t kStep = 64;
constexpr size_t kClasses = 32;  // up to 2 KiB
// At most this many bytes of free frames per thread, whatever their sizes:
// enough for a few thousand tasks in flight at once (each a stack of
// several frames), whose frames would otherwise go back to malloc, and the
// heap's top to the kernel, at the end of every batch.
constexpr size_t kCachedBytes = 8 << 20;

struct FreeFrameNode {
  FreeFrameNode* next;
};

class FrameCache {
 public:
  ~FrameCache() {
    for (FreeFrameNode*& head : heads_) {
      while (head != nullptr) {
        FreeFrameNode* next = head->next;
        ::operator delete(head);
        head = next;
      }
    }
  }

  void* Take(size_t cls) {
    FreeFrameNode* node = heads_[cls];
    if (node == nullptr) return nullptr;
    heads_[cls] = node->next;
    cached_bytes_ -= (cls + 1) * kStep;
    return node;
  }

  bool Put(size_t cls, void* frame) {
    const size_t bytes = (cls + 1) * kStep;
    if (cached_bytes_ + bytes > kCachedBytes) return false;
    auto* node = static_cast<FreeFrameNode*>(frame);
    node->next = heads_[cls];
    heads_[cls] = node;
    cached_bytes_ += bytes;
    return true;
  }

 private:
  FreeFrameNode* heads_[kClasses] = {};
  size_t cached_bytes_ = 0;
};

thread_local FrameCache cache;

// The class of a frame of `size` bytes, or kClasses when it is not cached.
size_t ClassOf(size_t size) { return (size + kStep - 1) / kStep - 1; }

}  // namespace

void* AllocateFrame(size_t size) {
  size_t cls = ClassOf(size);
  if (cls >= kClasses) return ::operator new(size);
  if (void* frame = cache.Take(cls)) return frame;
  return ::operator new((cls + 1) * kStep);
}

void FreeFrame(void* frame, size_t size) noexcept {
  size_t cls = ClassOf(size);
  if (cls >= kClasses || !cache.Put(cls, frame)) ::operator delete(frame);
}

#else  // !CAPFS_FRAME_CACHE

void* AllocateFrame(size_t size) { return ::operator new(size); }
void FreeFrame(void* frame, size_t) noexcept { ::operator delete(frame); }

#endif  // CAPFS_FRAME_CACHE

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

// Coroutine frame allocation with a small per-thread cache.
//
// Every awaited I/O call is a coroutine, so a busy loop allocates and frees
// frames of a handful of sizes at a high rate. Freed frames go to a
// per-thread list for their size class (64-byte steps up to 2 KiB; at most
// 8 MiB of them per thread) and are handed out again without touching
// malloc.
// Larger frames, and every frame under a sanitizer (which must see each
// allocation to check it), go straight to operator new.
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_FRAME_ALLOCATOR_H_
#define CAPFS_RUNTIME_INTERNAL_FRAME_ALLOCATOR_H_

#include <stddef.h>

namespace capfs {
namespace runtime {
namespace internal {

void* AllocateFrame(size_t size);
void FreeFrame(void* frame, size_t size) noexcept;

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_FRAME_ALLOCATOR_H_

// RunQueue: the coroutines of one loop that are ready to run, in FIFO order.
//
// A growable ring buffer of coroutine handles: pushing and popping touch no
// allocator once the ring has grown to the loop's peak of runnable tasks.
// Not thread-safe: other threads reach the loop through Scheduler::Post.
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_RUN_QUEUE_H_
#define CAPFS_RUNTIME_INTERNAL_RUN_QUEUE_H_

#include <stddef.h>

#include <coroutine>
#include <memory>

namespace capfs {
namespace runtime {
namespace internal {

class RunQueue {
 public:
  RunQueue()
      : slots_(new std::coroutine_handle<>[kInitialCapacity]),
        mask_(kInitialCapacity - 1) {}

  bool empty() const { return head_ == tail_; }
  size_t size() const { return tail_ - head_; }

  void Push(std::coroutine_handle<> handle) {
    if (size() == mask_ + 1) Grow();
    slots_[tail_++ & mask_] = handle;
  }

  // The queue must not be empty.
  std::coroutine_handle<> Pop() { return slots_[head_++ & mask_]; }

 private:
  static constexpr size_t kInitialCapacity = 256;

  void Grow() {
    size_t capacity = (mask_ + 1) * 2;
    std::unique_ptr<std::coroutine_handle<>[]> slots(
        new std::coroutine_handle<>[capacity]);
    size_t n = size();
    for (size_t i = 0; i < n; ++i) slots[i] = slots_[(head_ + i) & mask_];
    slots_ = std::move(slots);
    mask_ = capacity - 1;
    head_ = 0;
    tail_ = n;
  }

  std::unique_ptr<std::coroutine_handle<>[]> slots_;
  size_t mask_;
  size_t head_ = 0;  // both only grow; their difference is the size
  size_t tail_ = 0;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_RUN_QUEUE_H_

// TimerHeap: the pending timers of one loop, soonest first.
//
// A 4-ary min-heap of (deadline, arming order) entries. Each TimerNode
// remembers its slot, so cancelling a timer removes it at once in O(log n)
// instead of leaving a tombstone until it would have fired: a million timers
// armed and cancelled leave nothing behind. Timers with equal deadlines fire
// in the order they were armed.
//
// The node belongs to the waiter (it lives in a coroutine frame), so arming
// allocates only when the heap's array grows. Not thread-safe.
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_TIMER_HEAP_H_
#define CAPFS_RUNTIME_INTERNAL_TIMER_HEAP_H_

#include <stddef.h>
#include <stdint.h>

#include <cassert>
#include <vector>

namespace capfs {
namespace runtime {
namespace internal {

class TimerNode {
 public:
  TimerNode() = default;
  // Only an unarmed node may be moved; the new one starts unarmed.
  TimerNode([[maybe_unused]] TimerNode&& other) noexcept {
    assert(!other.armed());
  }
  TimerNode& operator=(const TimerNode&) = delete;

  bool armed() const { return slot_ != kNotArmed; }

  // Called by the loop when the deadline has passed; the node is no longer
  // armed. Must not run user code (it schedules instead).
  virtual void OnTimerFired() noexcept = 0;

 protected:
  ~TimerNode() = default;

 private:
  friend class TimerHeap;
  static constexpr size_t kNotArmed = ~size_t{0};
  size_t slot_ = kNotArmed;
};

class TimerHeap {
 public:
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  // Arms `node` (which must not be armed) to fire at `deadline_ns` on the
  // monotonic clock.
  void Add(TimerNode* node, int64_t deadline_ns);

  // Disarms `node`, which must be armed.
  void Remove(TimerNode* node);

  // The soonest deadline; the heap must not be empty.
  int64_t next_deadline() const { return entries_.front().deadline; }

  // Disarms and returns the soonest timer if its deadline is <= now_ns, else
  // nullptr.
  TimerNode* PopDue(int64_t now_ns);

 private:
  struct Entry {
    int64_t deadline;
    uint64_t order;
    TimerNode* node;
  };
  static bool Before(const Entry& a, const Entry& b) {
    return a.deadline < b.deadline ||
           (a.deadline == b.deadline && a.order < b.order);
  }
  void Place(size_t slot, const Entry& entry) {
    entries_[slot] = entry;
    entry.node->slot_ = slot;
  }
  void SiftUp(size_t slot, Entry entry);
  void SiftDown(size_t slot, Entry entry);

  std::vector<Entry> entries_;
  uint64_t next_order_ = 0;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_TIMER_HEAP_H_

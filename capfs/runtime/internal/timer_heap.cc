#include "capfs/runtime/internal/timer_heap.h"

#include <cassert>

namespace capfs {
namespace runtime {
namespace internal {
namespace {

// Four children a node: half the depth of a binary heap, and the children
// of one node share a cache line or two.
constexpr size_t kArity = 4;

}  // namespace

void TimerHeap::Add(TimerNode* node, int64_t deadline_ns) {
  assert(!node->armed());
  entries_.push_back({});
  SiftUp(entries_.size() - 1, Entry{deadline_ns, next_order_++, node});
}

void TimerHeap::Remove(TimerNode* node) {
  assert(node->armed());
  size_t slot = node->slot_;
  node->slot_ = TimerNode::kNotArmed;
  Entry last = entries_.back();
  entries_.pop_back();
  if (slot == entries_.size()) return;  // it was the last entry
  // The last entry takes the hole and moves whichever way restores order.
  if (slot > 0 && Before(last, entries_[(slot - 1) / kArity])) {
    SiftUp(slot, last);
  } else {
    SiftDown(slot, last);
  }
}

TimerNode* TimerHeap::PopDue(int64_t now_ns) {
  if (entries_.empty() || entries_.front().deadline > now_ns) return nullptr;
  TimerNode* node = entries_.front().node;
  Remove(node);
  return node;
}

void TimerHeap::SiftUp(size_t slot, Entry entry) {
  while (slot > 0) {
    size_t parent = (slot - 1) / kArity;
    if (!Before(entry, entries_[parent])) break;
    Place(slot, entries_[parent]);
    slot = parent;
  }
  Place(slot, entry);
}

void TimerHeap::SiftDown(size_t slot, Entry entry) {
  const size_t size = entries_.size();
  for (;;) {
    size_t first = slot * kArity + 1;
    if (first >= size) break;
    size_t last = first + kArity < size ? first + kArity : size;
    size_t best = first;
    for (size_t child = first + 1; child < last; ++child) {
      if (Before(entries_[child], entries_[best])) best = child;
    }
    if (!Before(entries_[best], entry)) break;
    Place(slot, entries_[best]);
    slot = best;
  }
  Place(slot, entry);
}

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

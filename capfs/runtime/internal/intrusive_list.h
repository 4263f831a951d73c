// IntrusiveList: a doubly linked list whose links live inside the elements.
//
// The runtime keeps its waiters, fibers and jobs in such lists so that a wait
// costs no allocation and leaving a list (a cancelled wait, a finished fiber)
// is O(1). An element can sit in several lists at once by deriving from one
// ListLink per list, told apart by a tag type:
//
//   struct ScopeTag;  struct ContextTag;
//   class Fiber : public ListLink<ScopeTag>, public ListLink<ContextTag> {};
//   IntrusiveList<Fiber, ScopeTag> children;
//
// The list owns nothing: an element must be removed before it is destroyed.
// Not thread-safe.
//
// Not part of the API.

#ifndef CAPFS_RUNTIME_INTERNAL_INTRUSIVE_LIST_H_
#define CAPFS_RUNTIME_INTERNAL_INTRUSIVE_LIST_H_

#include <stddef.h>

#include <cassert>

namespace capfs {
namespace runtime {
namespace internal {

template <typename Tag>
class ListLink {
 public:
  ListLink() = default;
  // Moving an element (an awaiter handed to WithTimeout, say) is allowed only
  // while it is in no list; the new one starts unlinked.
  ListLink([[maybe_unused]] ListLink&& other) noexcept {
    assert(!other.linked());
  }
  ListLink& operator=(const ListLink&) = delete;

  bool linked() const { return next_ != nullptr; }

 private:
  template <typename, typename>
  friend class IntrusiveList;

  ListLink* prev_ = nullptr;
  ListLink* next_ = nullptr;
};

template <typename T, typename Tag>
class IntrusiveList {
 public:
  using Link = ListLink<Tag>;

  IntrusiveList() { head_.prev_ = head_.next_ = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() { assert(empty()); }

  bool empty() const { return head_.next_ == &head_; }
  size_t size() const { return size_; }

  T* front() { return empty() ? nullptr : FromLink(head_.next_); }
  T* back() { return empty() ? nullptr : FromLink(head_.prev_); }
  const T* back() const {
    return empty() ? nullptr : static_cast<const T*>(head_.prev_);
  }

  void PushBack(T* element) {
    Link* link = element;
    assert(!link->linked());
    link->prev_ = head_.prev_;
    link->next_ = &head_;
    head_.prev_->next_ = link;
    head_.prev_ = link;
    ++size_;
  }

  // `element` must be in this list.
  void Remove(T* element) {
    Link* link = element;
    assert(link->linked());
    link->prev_->next_ = link->next_;
    link->next_->prev_ = link->prev_;
    link->prev_ = link->next_ = nullptr;
    --size_;
  }

  T* PopFront() {
    T* element = front();
    if (element != nullptr) Remove(element);
    return element;
  }

  // Calls fn(T*) on each element in order. `fn` may remove the element it is
  // given, but no other.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (Link* link = head_.next_; link != &head_;) {
      Link* next = link->next_;
      fn(FromLink(link));
      link = next;
    }
  }

 private:
  static T* FromLink(Link* link) { return static_cast<T*>(link); }

  Link head_;
  size_t size_ = 0;
};

}  // namespace internal
}  // namespace runtime
}  // namespace capfs

#endif  // CAPFS_RUNTIME_INTERNAL_INTRUSIVE_LIST_H_

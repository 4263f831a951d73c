// Fd: sole owner of one file descriptor.
//
// An Fd closes its descriptor when destroyed. It is move-only: ownership of a
// descriptor is a type, never a convention, and a function that consumes a
// descriptor takes an Fd by value.
//
// Every descriptor capfs creates is opened with O_CLOEXEC, so none leaks into
// a child process.
//
// Example:
//   capfs::Fd fd(::open("x", O_RDONLY | O_CLOEXEC));
//   if (!fd.valid()) ...
//   absl::Status s = fd.Close();   // or let it go out of scope

#ifndef CAPFS_FD_H_
#define CAPFS_FD_H_

#include "absl/status/status.h"

namespace capfs {

class Fd {
 public:
  // An Fd that owns nothing: valid() is false.
  Fd() = default;
  // Takes ownership of `fd`. A negative `fd` makes an Fd that owns nothing.
  explicit Fd(int fd) : fd_(fd < 0 ? -1 : fd) {}

  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  // Closes what this Fd owned (an error has no one to report to), then
  // takes `other`'s descriptor.
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) CloseQuietly(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  // Closes the descriptor, if any. Inline, as the move operations are: an
  // Fd moved along a call's result chain (StatusOr<Fd>, a task's result)
  // is mostly empty, and its end then costs a compare, not a call.
  ~Fd() {
    if (fd_ >= 0) CloseQuietly(fd_);
  }

  // The descriptor, or -1 when this Fd owns nothing. Ownership stays here.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Gives up ownership: returns the descriptor (or -1) and leaves this Fd
  // empty. The caller must close what it gets.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the descriptor now and reports close(2)'s error, if any. The
  // descriptor is released whatever the outcome (on Linux, close never
  // leaves it open, EINTR included, so it is never retried). Closing an
  // empty Fd is OK.
  absl::Status Close();

 private:
  // close(2), its error ignored.
  static void CloseQuietly(int fd) noexcept;

  int fd_ = -1;
};

}  // namespace capfs

#endif  // CAPFS_FD_H_

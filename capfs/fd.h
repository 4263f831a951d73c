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
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

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
  int fd_ = -1;
};

}  // namespace capfs

#endif  // CAPFS_FD_H_

// ResolveResult: what a resolver answers, and what the calls built on the
// resolvers pass along until the public layer makes it an absl::Status.
//
// Either success, or one of a few kinds of failure, each made by its own
// named constructor:
//
//   ResolveResult r = ResolveResult::Errno(ENOENT);
//   if (r.kind() == ResolveResult::Kind::kEscape) ...
//   if (r.IsErrno(ENOENT)) ...
//
// The syscall wrappers (capfs/sys/fs.h) keep the kernel's convention (the
// result, or -errno); FromSyscall turns one of those into a ResolveResult.
// A result is one int, passed in a register: it sits on the path of every
// open.
//
// Not part of the API: include capfs/capfs.h instead.

#ifndef CAPFS_INTERNAL_RESOLVE_RESULT_H_
#define CAPFS_INTERNAL_RESOLVE_RESULT_H_

namespace capfs {
namespace internal {

class [[nodiscard]] ResolveResult {
 public:
  enum class Kind {
    kOk,
    kErrno,   // the call fails with errno_value()
    kEscape,  // the path leaves the root
    // No openat2 here (kernel resolver only).
    kKernelUnavailable,
    // openat2's answer cannot be relied on (kernel resolver only): it kept
    // saying EAGAIN, or said ELOOP, which it may after counting symlinks
    // twice. Finish in userspace.
    kKernelBusy,
    // A nonblocking attempt (capfs/internal/nonblocking.h) would have to
    // block, or meets an answer only the blocking call can settle: make
    // that call.
    kWouldBlock,
  };

  static constexpr ResolveResult Ok() { return ResolveResult(0); }
  // `err` is a positive errno.
  static constexpr ResolveResult Errno(int err) { return ResolveResult(err); }
  // A syscall wrapper's return: success when >= 0, else -errno.
  static constexpr ResolveResult FromSyscall(long r) {
    return ResolveResult(r >= 0 ? 0 : static_cast<int>(-r));
  }
  static constexpr ResolveResult Escape() { return ResolveResult(kEscapeCode); }
  static constexpr ResolveResult KernelUnavailable() {
    return ResolveResult(kKernelUnavailableCode);
  }
  static constexpr ResolveResult KernelBusy() {
    return ResolveResult(kKernelBusyCode);
  }
  static constexpr ResolveResult WouldBlock() {
    return ResolveResult(kWouldBlockCode);
  }

  constexpr bool ok() const { return code_ == 0; }
  constexpr Kind kind() const {
    switch (code_) {
      case 0:
        return Kind::kOk;
      case kEscapeCode:
        return Kind::kEscape;
      case kKernelUnavailableCode:
        return Kind::kKernelUnavailable;
      case kKernelBusyCode:
        return Kind::kKernelBusy;
      case kWouldBlockCode:
        return Kind::kWouldBlock;
      default:
        return Kind::kErrno;
    }
  }
  // The errno when kind() is kErrno, else 0.
  constexpr int errno_value() const { return code_ > 0 ? code_ : 0; }
  constexpr bool IsErrno(int err) const { return code_ == err && err > 0; }
  constexpr bool Is(Kind k) const { return kind() == k; }

  friend constexpr bool operator==(ResolveResult a, ResolveResult b) {
    return a.code_ == b.code_;
  }
  friend constexpr bool operator!=(ResolveResult a, ResolveResult b) {
    return a.code_ != b.code_;
  }

 private:
  // The encoding: 0, a positive errno, or one of these.
  static constexpr int kEscapeCode = -1;
  static constexpr int kKernelUnavailableCode = -2;
  static constexpr int kKernelBusyCode = -3;
  static constexpr int kWouldBlockCode = -4;

  explicit constexpr ResolveResult(int code) : code_(code) {}

  int code_;
};

}  // namespace internal
}  // namespace capfs

#endif  // CAPFS_INTERNAL_RESOLVE_RESULT_H_

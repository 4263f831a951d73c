#include "capfs/runtime/fd_passing.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "capfs/status.h"
#include "capfs/sys/io.h"
#include "capfs/sys/net.h"

namespace capfs {
namespace runtime {
namespace {

// A control buffer for `n` descriptors, aligned for cmsghdr. Room for a few
// is inline (no allocation in the common case).
class ControlBuffer {
 public:
  explicit ControlBuffer(size_t n)
      : bytes_(n == 0 ? 0 : CMSG_SPACE(n * sizeof(int))) {
    words_.resize((bytes_ + sizeof(Word) - 1) / sizeof(Word));
  }
  void* data() { return words_.data(); }
  size_t size() const { return bytes_; }

 private:
  using Word = struct cmsghdr;  // alignment and granularity of the buffer
  size_t bytes_;
  absl::InlinedVector<Word, 1 + (CMSG_SPACE(4 * sizeof(int)) / sizeof(Word))>
      words_;
};

}  // namespace

Task<absl::StatusOr<size_t>> SendMsg(AsyncFd& socket, absl::string_view data,
                                     absl::Span<const int> fds) {
  if (fds.size() > kMaxFdsPerMsg) {
    co_return absl::InvalidArgumentError(absl::StrCat(
        "sendmsg: ", fds.size(), " descriptors in one message (at most ",
        kMaxFdsPerMsg, ")"));
  }
  if (data.empty() && !fds.empty() && socket.valid()) {
    int type = 0;
    socklen_t len = sizeof(type);
    int r =
        internal::SysGetsockopt(socket.get(), SOL_SOCKET, SO_TYPE, &type, &len);
    if (r == 0 && type == SOCK_STREAM) {
      co_return absl::InvalidArgumentError(
          "sendmsg: descriptors on a stream socket need at least one byte of "
          "data to travel with");
    }
  }
  ControlBuffer control(fds.size());
  if (!fds.empty()) {
    memset(control.data(), 0, control.size());
    struct cmsghdr* c = reinterpret_cast<struct cmsghdr*>(control.data());
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  co_return co_await DoIo(
      socket, Direction::kWrite, "sendmsg", data.size(),
      [data, &control](const IoTarget& t) -> ssize_t {
        struct iovec iov = {const_cast<char*>(data.data()),
                            std::min(data.size(), t.max_bytes)};
        struct msghdr msg = {};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (control.size() > 0) {
          msg.msg_control = control.data();
          msg.msg_controllen = control.size();
        }
        return internal::SysSendmsg(t.fd, &msg, t.msg_flags | MSG_NOSIGNAL);
      });
}

Task<absl::StatusOr<ReceivedMsg>> RecvMsg(AsyncFd& socket, absl::Span<char> buf,
                                          size_t max_fds) {
  max_fds = std::min(max_fds, kMaxFdsPerMsg);
  ControlBuffer control(max_fds);
  struct msghdr msg = {};
  struct iovec iov = {buf.data(), buf.size()};
  absl::StatusOr<size_t> n = co_await DoIo(
      socket, Direction::kRead, "recvmsg", buf.size(),
      [&msg, &iov, &control](const IoTarget& t) -> ssize_t {
        msg = {};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (control.size() > 0) {
          msg.msg_control = control.data();
          msg.msg_controllen = control.size();
        }
        return internal::SysRecvmsg(t.fd, &msg, t.msg_flags | MSG_CMSG_CLOEXEC);
      });
  if (!n.ok()) co_return n.status();
  ReceivedMsg received{*n, {}};
  // Own every descriptor that arrived before looking at anything else, so
  // that each is closed on every way out.
  if (msg.msg_controllen > 0) {
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* p = CMSG_DATA(c);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, p + i * sizeof(int), sizeof(int));
        received.fds.emplace_back(fd);
      }
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    const size_t arrived = received.fds.size();
    received.fds.clear();  // closes them
    co_return absl::ResourceExhaustedError(absl::StrCat(
        "recvmsg: control message truncated (more descriptors than the ",
        max_fds, " asked for, or this process at its descriptor limit); the ",
        arrived, " that arrived were closed, and the message's ", *n,
        " bytes of data dropped"));
  }
  co_return received;
}

}  // namespace runtime
}  // namespace capfs

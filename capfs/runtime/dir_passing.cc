#include "capfs/runtime/dir_passing.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "capfs/runtime/fd_io.h"
#include "capfs/runtime/fd_passing.h"
#include "capfs/runtime/scope.h"
#include "capfs/status.h"
#include "capfs/sys/net.h"

namespace capfs {
namespace runtime {
namespace {

// The options record: magic, version, scope, read-only, a zero byte.
constexpr absl::string_view kMagic = "capfsDir";  // 8 bytes
constexpr unsigned char kVersion = 1;
constexpr size_t kRecordSize = 12;

std::string EncodeOptions(const DirOptions& options) {
  std::string record(kMagic);
  record.push_back(static_cast<char>(kVersion));
  record.push_back(options.scope == capfs::Scope::kInRoot ? 1 : 0);
  record.push_back(options.read_only ? 1 : 0);
  record.push_back(0);
  return record;
}

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("RecvDir: ", why));
}

absl::StatusOr<DirOptions> DecodeOptions(absl::string_view record) {
  if (record.size() != kRecordSize) {
    return Malformed(absl::StrCat("an options record of ", record.size(),
                                  " bytes (expected ", kRecordSize, ")"));
  }
  if (record.substr(0, kMagic.size()) != kMagic) {
    return Malformed("not a capfs Dir message (bad magic)");
  }
  const auto byte = [&](size_t i) {
    return static_cast<unsigned char>(record[kMagic.size() + i]);
  };
  if (byte(0) != kVersion) {
    return Malformed(absl::StrCat("options record version ", byte(0),
                                  " (this capfs reads ", kVersion, ")"));
  }
  if (byte(1) > 1 || byte(2) > 1 || byte(3) != 0) {
    return Malformed("malformed options record");
  }
  DirOptions options;  // resolver: kAuto, whatever the sender used
  options.scope = byte(1) == 1 ? capfs::Scope::kInRoot : capfs::Scope::kBeneath;
  options.read_only = byte(2) == 1;
  return options;
}

}  // namespace

Task<absl::Status> SendDir(AsyncFd& socket, const Dir& dir) {
  if (dir.fd() < 0 || !dir.confined()) {
    co_return absl::InvalidArgumentError(
        "SendDir: Dir::Cwd() and Dir::Unconfined() have no descriptor of "
        "their own to send");
  }
  const std::string record = EncodeOptions(dir.options());
  const int fds[1] = {dir.fd()};
  absl::StatusOr<size_t> n = co_await SendMsg(socket, record, fds);
  if (!n.ok()) co_return n.status();
  // A stream socket may take part of the record; the descriptor went with
  // the first byte.
  co_return co_await WriteAll(socket, absl::string_view(record).substr(*n));
}

Task<absl::StatusOr<Dir>> RecvDir(AsyncFd& socket) {
  int type = 0;
  socklen_t type_len = sizeof(type);
  if (socket.valid()) {
    int r = internal::SysGetsockopt(socket.get(), SOL_SOCKET, SO_TYPE, &type,
                                    &type_len);
    if (r < 0) co_return ErrnoError(-r, "getsockopt(SO_TYPE)", "");
  }
  // One byte more than a record on a datagram or seqpacket socket, to see
  // a message that is longer than one.
  char buf[kRecordSize + 1];
  const size_t want = type == SOCK_STREAM ? kRecordSize : kRecordSize + 1;
  absl::StatusOr<ReceivedMsg> m =
      co_await RecvMsg(socket, absl::MakeSpan(buf, want), 1);
  if (!m.ok()) {
    if (absl::IsResourceExhausted(m.status())) {
      co_return Malformed(
          absl::StrCat("more than one descriptor: ", m.status().message()));
    }
    co_return m.status();
  }
  if (m->size == 0 && m->fds.empty()) {
    co_return absl::UnavailableError("RecvDir: end of stream before a Dir");
  }
  if (m->fds.size() != 1) {
    co_return Malformed(
        absl::StrCat(m->fds.size(), " descriptors (expected exactly one)"));
  }
  size_t got = m->size;
  // The rest of the record on a stream socket (a short read).
  while (type == SOCK_STREAM && got > 0 && got < kRecordSize) {
    absl::StatusOr<size_t> more =
        co_await Read(socket, absl::MakeSpan(buf + got, kRecordSize - got));
    if (!more.ok()) co_return more.status();
    if (*more == 0) break;  // end of stream: too short, below
    got += *more;
  }
  absl::StatusOr<DirOptions> options =
      DecodeOptions(absl::string_view(buf, got));
  if (!options.ok()) co_return options.status();
  co_return Dir::FromFd(std::move(m->fds[0]), *options);
}

Task<absl::Status> SendDir(Fd socket, const Dir& dir) {
  co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
    absl::StatusOr<AsyncFd> fd = AsyncFd::Adopt(scope, std::move(socket));
    if (!fd.ok()) co_return fd.status();
    co_return co_await SendDir(*fd, dir);
  });
}

Task<absl::StatusOr<Dir>> RecvDir(Fd socket) {
  absl::StatusOr<Dir> dir = absl::UnknownError("RecvDir: nothing received");
  absl::Status s = co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
    absl::StatusOr<AsyncFd> fd = AsyncFd::Adopt(scope, std::move(socket));
    if (!fd.ok()) co_return fd.status();
    dir = co_await RecvDir(*fd);
    co_return absl::OkStatus();
  });
  if (!s.ok()) co_return s;
  co_return dir;
}

}  // namespace runtime
}  // namespace capfs

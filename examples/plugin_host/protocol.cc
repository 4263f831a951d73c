#include "examples/plugin_host/protocol.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "capfs/runtime/runtime.h"

namespace plugin_host {

using capfs::runtime::AsyncFd;
using capfs::runtime::Task;

Task<absl::Status> SendMessage(AsyncFd& socket, absl::string_view message) {
  if (message.empty() || message.size() > kMaxMessage) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("message of ", message.size(), " bytes"));
  }
  // One write of a seqpacket socket is one packet, sent whole or not at all.
  co_return co_await capfs::runtime::WriteAll(socket, message);
}

Task<absl::StatusOr<std::optional<std::string>>> ReceiveMessage(
    AsyncFd& socket) {
  // One byte more than allowed: a longer packet is cut there and refused.
  std::string buf(kMaxMessage + 1, '\0');
  absl::StatusOr<size_t> n =
      co_await capfs::runtime::Read(socket, absl::MakeSpan(buf));
  if (!n.ok()) co_return n.status();
  if (*n == 0) co_return std::nullopt;
  if (*n > kMaxMessage) {
    co_return absl::InvalidArgumentError("message longer than 4096 bytes");
  }
  buf.resize(*n);
  for (char c : buf) {
    if (c < 0x20 || c > 0x7e) {
      co_return absl::InvalidArgumentError("message with a non-printable byte");
    }
  }
  co_return std::optional<std::string>(std::move(buf));
}

absl::flat_hash_map<std::string, std::string> ParseFields(
    absl::string_view message) {
  absl::flat_hash_map<std::string, std::string> fields;
  std::vector<absl::string_view> words =
      absl::StrSplit(message, ' ', absl::SkipEmpty());
  for (size_t i = 1; i < words.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(words[i], '=');
    fields[kv.first] = kv.second;
  }
  return fields;
}

}  // namespace plugin_host

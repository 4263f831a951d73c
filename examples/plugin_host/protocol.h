// The plugin host's protocol: what a host and its plugin say to each other.
//
// The host starts the plugin with one end of a SOCK_SEQPACKET socketpair as
// the plugin's descriptor 3 (kPluginSocketFd). Sequenced packets keep message
// boundaries, so one message is one packet and needs no framing. In order:
//
//   host -> plugin   SendDir(data)      the data directory, read-only
//   host -> plugin   SendDir(scratch)   a scratch directory, read-write
//   plugin -> host   "CONFIG"
//   host -> plugin   "CONFIG key=value ..." (abstract=@NAME tcp=HOST:PORT
//                    sentinel=/PATH host_pid=N: what a hostile plugin is
//                    told, so that it can try its best)
//   plugin -> host   any number of, with no reply:
//                    "REPORT <attempt> <refused|ESCAPED|gap> <detail>"
//                    "OUTPUT <path in scratch> <bytes>"
//   plugin -> host   "DONE"
//   host -> plugin   "BYE"
//
// A message is at most kMaxMessage bytes of printable text; the host checks
// every message it gets, since the plugin is not trusted.

#ifndef CAPFS_EXAMPLES_PLUGIN_HOST_PROTOCOL_H_
#define CAPFS_EXAMPLES_PLUGIN_HOST_PROTOCOL_H_

#include <stddef.h>

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "capfs/runtime/runtime.h"

namespace plugin_host {

// The plugin's end of the socketpair.
constexpr int kPluginSocketFd = 3;
constexpr size_t kMaxMessage = 4096;

// Sends one message (at most kMaxMessage bytes).
capfs::runtime::Task<absl::Status> SendMessage(capfs::runtime::AsyncFd& socket,
                                               absl::string_view message);

// Receives one message; nullopt when the peer has closed its end. A message
// that is empty, too long or not printable ASCII is kInvalidArgument.
capfs::runtime::Task<absl::StatusOr<std::optional<std::string>>> ReceiveMessage(
    capfs::runtime::AsyncFd& socket);

// The key=value words after the first word of `message`.
absl::flat_hash_map<std::string, std::string> ParseFields(
    absl::string_view message);

}  // namespace plugin_host

#endif  // CAPFS_EXAMPLES_PLUGIN_HOST_PROTOCOL_H_

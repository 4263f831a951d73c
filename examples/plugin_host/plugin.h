// What every plugin of the plugin host does around its own work: take its
// end of the socketpair (descriptor 3), receive the data and scratch Dirs
// (RecvDir), ask for the CONFIG, run the work, say DONE and wait for BYE.
//
//   int main() {
//     return plugin_host::RunPlugin([](Session& s) -> Task<absl::Status> {
//       ... s.data.OpenAt("input.txt", O_RDONLY) ...
//       co_return co_await s.Report("attempt", "refused", "detail");
//     });
//   }

#ifndef CAPFS_EXAMPLES_PLUGIN_HOST_PLUGIN_H_
#define CAPFS_EXAMPLES_PLUGIN_HOST_PLUGIN_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"

namespace plugin_host {

struct Session {
  capfs::runtime::AsyncFd& socket;
  capfs::Dir& data;     // read-only
  capfs::Dir& scratch;  // read-write
  absl::flat_hash_map<std::string, std::string> config;

  // Sends "REPORT attempt outcome detail" (detail made printable).
  capfs::runtime::Task<absl::Status> Report(absl::string_view attempt,
                                            absl::string_view outcome,
                                            absl::string_view detail);
  // Sends "OUTPUT path bytes".
  capfs::runtime::Task<absl::Status> Output(absl::string_view path,
                                            size_t bytes);
};

// Runs a plugin's `work` as described above; returns the process's exit
// code (0 when everything, the work included, succeeded).
int RunPlugin(std::function<capfs::runtime::Task<absl::Status>(Session&)> work);

}  // namespace plugin_host

#endif  // CAPFS_EXAMPLES_PLUGIN_HOST_PLUGIN_H_

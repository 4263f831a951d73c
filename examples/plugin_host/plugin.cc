#include "examples/plugin_host/plugin.h"

#include <stdio.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "examples/plugin_host/protocol.h"

namespace plugin_host {

using capfs::runtime::AsyncFd;
using capfs::runtime::Task;

Task<absl::Status> Session::Report(absl::string_view attempt,
                                   absl::string_view outcome,
                                   absl::string_view detail) {
  std::string text = absl::StrCat("REPORT ", attempt, " ", outcome, " ",
                                  detail.substr(0, 1024));
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  co_return co_await SendMessage(socket, text);
}

Task<absl::Status> Session::Output(absl::string_view path, size_t bytes) {
  co_return co_await SendMessage(socket,
                                 absl::StrCat("OUTPUT ", path, " ", bytes));
}

namespace {

Task<absl::Status> Plugin(
    const std::function<Task<absl::Status>(Session&)>& work) {
  co_return co_await capfs::runtime::WithScope(
      [&](capfs::runtime::Scope& scope) -> Task<absl::Status> {
        absl::StatusOr<AsyncFd> socket =
            AsyncFd::Adopt(scope, capfs::Fd(kPluginSocketFd));
        if (!socket.ok()) co_return socket.status();
        absl::StatusOr<capfs::Dir> data =
            co_await capfs::runtime::RecvDir(*socket);
        if (!data.ok()) co_return data.status();
        absl::StatusOr<capfs::Dir> scratch =
            co_await capfs::runtime::RecvDir(*socket);
        if (!scratch.ok()) co_return scratch.status();
        if (absl::Status s = co_await SendMessage(*socket, "CONFIG"); !s.ok()) {
          co_return s;
        }
        absl::StatusOr<std::optional<std::string>> config =
            co_await ReceiveMessage(*socket);
        if (!config.ok()) co_return config.status();
        if (!config->has_value()) {
          co_return absl::UnavailableError("the host hung up before CONFIG");
        }
        Session session{*socket, *data, *scratch, ParseFields(**config)};
        absl::Status worked = co_await work(session);
        if (!worked.ok()) co_return worked;
        if (absl::Status s = co_await SendMessage(*socket, "DONE"); !s.ok()) {
          co_return s;
        }
        absl::StatusOr<std::optional<std::string>> bye =
            co_await ReceiveMessage(*socket);
        if (!bye.ok()) co_return bye.status();
        if (!bye->has_value() || **bye != "BYE") {
          co_return absl::UnavailableError("no BYE from the host");
        }
        co_return absl::OkStatus();
      });
}

}  // namespace

int RunPlugin(std::function<Task<absl::Status>(Session&)> work) {
  absl::Status s = capfs::runtime::Run(Plugin(work));
  if (!s.ok()) {
    absl::FPrintF(stderr, "plugin: %s\n", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace plugin_host

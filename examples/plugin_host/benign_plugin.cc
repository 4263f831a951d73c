// The well-behaved plugin: reads input.txt from the data Dir it was sent,
// writes a word count to summary.txt in the scratch Dir, and touches nothing
// else. Everything goes through the received capfs::Dirs.

#include <fcntl.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "examples/plugin_host/plugin.h"

namespace plugin_host {
namespace {

using capfs::runtime::Task;

Task<absl::Status> CountWords(Session& session) {
  absl::StatusOr<capfs::Fd> in = session.data.OpenAt("input.txt", O_RDONLY);
  if (!in.ok()) co_return in.status();
  absl::StatusOr<std::string> text = capfs::ReadAll(*in);
  if (!text.ok()) co_return text.status();
  std::vector<absl::string_view> lines =
      absl::StrSplit(*text, '\n', absl::SkipEmpty());
  std::vector<absl::string_view> words =
      absl::StrSplit(*text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  const std::string summary =
      absl::StrCat("lines ", lines.size(), "\nwords ", words.size(), "\nbytes ",
                   text->size(), "\n");

  absl::StatusOr<capfs::Fd> out =
      session.scratch.OpenAt("summary.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!out.ok()) co_return out.status();
  if (absl::Status s = capfs::WriteAll(*out, summary); !s.ok()) co_return s;
  if (absl::Status s = out->Close(); !s.ok()) co_return s;
  co_return co_await session.Output("summary.txt", summary.size());
}

}  // namespace
}  // namespace plugin_host

int main() { return plugin_host::RunPlugin(plugin_host::CountWords); }

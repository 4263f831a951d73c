// A plugin host: runs an untrusted plugin program so that it can touch
// nothing but the two directories it is handed.
//
//   plugin_host --plugin=PATH --data=DIR --scratch=DIR [--sentinel=PATH]
//               [--unconfined]
//
// The host opens DIR as a read-only capfs::Dir (the data) and SCRATCH as a
// read-write one, builds one Landlock ruleset anchored on those same Dirs
// (read for the data, read-write for the scratch area) plus read and execute
// on the plugin's own directory and on the system library directories (the
// plugins are dynamic programs: the loader and libc live there), with TCP
// and abstract-socket/signal scoping denied, and starts the plugin under it
// in a session of its own, with an empty environment and nothing open but
// descriptors 0-2 and its end of a socketpair as descriptor 3. It then sends
// the two Dirs over the socketpair (SendDir) and serves the plugin's
// requests (protocol.h), printing each report.
//
// Landlock makes the Dirs' attenuation hold against a plugin that does not
// play along: the received descriptors are ordinary directory descriptors,
// and `openat(fd, "..")` or opening the data for writing is refused by the
// kernel, not by capfs. To catch a plugin that gets out anyway, the host
// listens on an abstract Unix socket and on a loopback TCP port (told to the
// plugin in CONFIG) and reports how many connections each accepted; the
// caller checks the sentinel file (told too) and the trees on disk.
//
// --unconfined starts the plugin without the Landlock ruleset (everything
// else the same): the test's control run, which shows what Landlock adds
// and that the test sees an escape when there is one.
//
// Landlock is strict here: on a kernel that cannot enforce all of it (older
// than Linux 6.12, ABI 6) the host refuses to start the plugin. Exit code 0
// when the plugin ran to its end ("DONE") and exited 0; 1 otherwise; 2 for a
// usage error.

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/landlock.h"
#include "capfs/runtime/runtime.h"
#include "examples/plugin_host/protocol.h"

namespace plugin_host {
namespace {

using capfs::runtime::AsyncFd;
using capfs::runtime::Child;
using capfs::runtime::ExitStatus;
using capfs::runtime::Task;

struct HostFlags {
  std::string plugin;
  std::string data;
  std::string scratch;
  std::string sentinel;
  bool unconfined = false;
};

std::optional<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr),
                                              &free);
  if (real == nullptr) return std::nullopt;
  return std::string(real.get());
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// What the plugin may reach, each a Dir the ruleset is anchored on.
struct Grants {
  capfs::Dir data;
  capfs::Dir scratch;
  std::vector<capfs::Dir> program_dirs;  // read and execute
};

absl::StatusOr<Grants> OpenGrants(const HostFlags& flags,
                                  const std::string& plugin_real) {
  absl::StatusOr<capfs::Dir> data =
      capfs::Dir::Open(flags.data, {.read_only = true});
  if (!data.ok()) return data.status();
  absl::StatusOr<capfs::Dir> scratch = capfs::Dir::Open(flags.scratch);
  if (!scratch.ok()) return scratch.status();
  Grants grants{*std::move(data), *std::move(scratch), {}};
  // The plugin's own directory, and where the dynamic loader and the
  // libraries are (on a merged-/usr system /lib and /lib64 are symlinks into
  // /usr: each real directory once).
  std::vector<std::string> seen;
  for (const std::string& path :
       {DirName(plugin_real), std::string("/lib"), std::string("/lib64"),
        std::string("/usr/lib"), std::string("/usr/lib64")}) {
    std::optional<std::string> real = RealPath(path);
    if (!real.has_value()) continue;
    bool dup = false;
    for (const std::string& s : seen) dup = dup || s == *real;
    if (dup) continue;
    seen.push_back(*real);
    absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(*real);
    if (!dir.ok()) return dir.status();
    grants.program_dirs.push_back(*std::move(dir));
  }
#ifdef CAPFS_SANITIZER
  // A sanitized plugin reads /proc/self/maps before main; grant /proc for
  // reading in sanitizer builds only. Landlock still checks every file
  // reached through /proc's magic links (/proc/self/root/etc/passwd is
  // /etc/passwd to it).
  absl::StatusOr<capfs::Dir> proc = capfs::Dir::Open("/proc");
  if (proc.ok()) grants.program_dirs.push_back(*std::move(proc));
#endif
  return grants;
}

absl::StatusOr<capfs::Landlock> BuildSandbox(const Grants& grants) {
  std::vector<capfs::LandlockRule> rules = {
      {&grants.data, capfs::Access::kRead},
      {&grants.scratch, capfs::Access::kReadWrite},
  };
  for (const capfs::Dir& dir : grants.program_dirs) {
    rules.push_back({&dir, capfs::Access::kReadExec});
  }
#ifdef CAPFS_SANITIZER
  // The last program dir is /proc (see OpenGrants): read only.
  if (!grants.program_dirs.empty()) rules.back().access = capfs::Access::kRead;
#endif
  return capfs::Landlock::Build(
      rules, {.strict = true, .deny_tcp = true, .scope_ipc = true});
}

// Counts the connections `listener` accepts, until it is closed.
Task<absl::Status> CountConnections(capfs::runtime::Scope& scope,
                                    AsyncFd& listener, int* count,
                                    const bool* finished) {
  for (;;) {
    absl::StatusOr<AsyncFd> connection =
        co_await capfs::runtime::Accept(scope, listener);
    if (*finished) co_return absl::OkStatus();
    if (!connection.ok()) co_return connection.status();
    ++*count;
  }
}

// Sends the Dirs, then answers the plugin until it says DONE or hangs up.
// Sets `*done` when it said DONE.
Task<absl::Status> Serve(AsyncFd& socket, const Grants& grants,
                         const std::string& config, bool* done) {
  if (absl::Status s = co_await capfs::runtime::SendDir(socket, grants.data);
      !s.ok()) {
    co_return s;
  }
  if (absl::Status s = co_await capfs::runtime::SendDir(socket, grants.scratch);
      !s.ok()) {
    co_return s;
  }
  for (;;) {
    absl::StatusOr<std::optional<std::string>> message =
        co_await ReceiveMessage(socket);
    if (!message.ok()) co_return message.status();
    if (!message->has_value()) co_return absl::OkStatus();  // hung up
    const std::string& text = **message;
    if (text == "CONFIG") {
      if (absl::Status s = co_await SendMessage(socket, config); !s.ok()) {
        co_return s;
      }
    } else if (absl::StartsWith(text, "REPORT ") ||
               absl::StartsWith(text, "OUTPUT ")) {
      absl::PrintF("plugin: %s\n", text);
    } else if (text == "DONE") {
      *done = true;
      co_return co_await SendMessage(socket, "BYE");
    } else {
      co_return absl::InvalidArgumentError(
          absl::StrCat("unknown request from the plugin: ", text));
    }
  }
}

Task<absl::Status> Host(const HostFlags& flags, const std::string& plugin_real,
                        const Grants& grants, const capfs::Landlock& sandbox,
                        bool* plugin_ok) {
  co_return co_await capfs::runtime::WithScope([&](capfs::runtime::Scope& scope)
                                                   -> Task<absl::Status> {
    absl::StatusOr<std::pair<AsyncFd, AsyncFd>> pair =
        capfs::runtime::SocketPair(scope, SOCK_SEQPACKET);
    if (!pair.ok()) co_return pair.status();
    // Bait: a hostile plugin is told both and must reach neither.
    absl::StatusOr<capfs::runtime::SocketAddress> abstract_address =
        capfs::runtime::SocketAddress::Parse(
            absl::StrCat("unix:@capfs-plugin-host-", getpid()));
    if (!abstract_address.ok()) co_return abstract_address.status();
    absl::StatusOr<AsyncFd> abstract =
        capfs::runtime::Listen(scope, *abstract_address);
    if (!abstract.ok()) co_return abstract.status();
    absl::StatusOr<capfs::runtime::SocketAddress> tcp_address =
        capfs::runtime::SocketAddress::Parse("127.0.0.1:0");
    if (!tcp_address.ok()) co_return tcp_address.status();
    absl::StatusOr<AsyncFd> tcp = capfs::runtime::Listen(scope, *tcp_address);
    if (!tcp.ok()) co_return tcp.status();
    absl::StatusOr<capfs::runtime::SocketAddress> tcp_bound =
        capfs::runtime::LocalAddress(*tcp);
    if (!tcp_bound.ok()) co_return tcp_bound.status();

    bool finished = false;
    int abstract_count = 0;
    int tcp_count = 0;
    scope.Spawn([&]() {
      return CountConnections(scope, *abstract, &abstract_count, &finished);
    });
    scope.Spawn(
        [&]() { return CountConnections(scope, *tcp, &tcp_count, &finished); });

    capfs::runtime::SpawnOptions options;
    options.program = plugin_real;
    options.argv = {plugin_real};
    options.env = std::vector<std::string>{};
    options.fds = {{kPluginSocketFd, pair->second.get()}};
    options.new_session = true;
    options.landlock = flags.unconfined ? nullptr : &sandbox;
    absl::StatusOr<Child> child = capfs::runtime::Spawn(scope, options);
    absl::Status result = child.status();
    pair->second.Close().IgnoreError();  // the plugin has its copy
    if (child.ok()) {
      absl::PrintF("host: started %s (pid %d)\n", flags.plugin, child->pid());
      const std::string config = absl::StrCat(
          "CONFIG abstract=", abstract_address->ToString().substr(5),
          " tcp=", tcp_bound->ToString(), " sentinel=", flags.sentinel,
          " host_pid=", getpid());
      bool done = false;
      result = co_await capfs::runtime::WithTimeout(
          absl::Seconds(30), Serve(pair->first, grants, config, &done));
      pair->first.Close().IgnoreError();  // a plugin still reading: EOF
      absl::StatusOr<ExitStatus> exit = co_await capfs::runtime::WithTimeout(
          absl::Seconds(10), child->Wait());
      if (!exit.ok()) {
        if (result.ok()) result = exit.status();
      } else {
        absl::PrintF("host: plugin %s\n", exit->ToString());
        *plugin_ok = done && exit->success();
      }
    }
    finished = true;
    abstract->Close().IgnoreError();
    tcp->Close().IgnoreError();
    absl::Status joined = co_await scope.Join(result);
    absl::PrintF(
        "host: connections accepted: abstract socket %s: %d; TCP %s: %d\n",
        abstract_address->ToString(), abstract_count, tcp_bound->ToString(),
        tcp_count);
    co_return joined;
  });
}

int Usage(absl::string_view message) {
  absl::FPrintF(stderr,
                "plugin_host: %s\nUsage: plugin_host --plugin=PATH --data=DIR "
                "--scratch=DIR [--sentinel=PATH] [--unconfined]\n",
                message);
  return 2;
}

int Main(int argc, char** argv) {
  HostFlags flags;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    bool known = false;
    if (arg == "--unconfined") {
      flags.unconfined = true;
      continue;
    }
    for (auto [name, field] : {std::pair<absl::string_view, std::string*>{
                                   "--plugin=", &flags.plugin},
                               {"--data=", &flags.data},
                               {"--scratch=", &flags.scratch},
                               {"--sentinel=", &flags.sentinel}}) {
      if (absl::StartsWith(arg, name)) {
        *field = std::string(arg.substr(name.size()));
        known = true;
      }
    }
    if (!known) return Usage(absl::StrCat("unknown argument ", arg));
  }
  if (flags.plugin.empty() || flags.data.empty() || flags.scratch.empty()) {
    return Usage("--plugin, --data and --scratch are required");
  }
  if (flags.sentinel.empty()) flags.sentinel = "/etc/passwd";
  std::optional<std::string> plugin_real = RealPath(flags.plugin);
  if (!plugin_real.has_value()) {
    return Usage(absl::StrCat("no plugin at ", flags.plugin));
  }
  absl::StatusOr<Grants> grants = OpenGrants(flags, *plugin_real);
  if (!grants.ok()) {
    absl::FPrintF(stderr, "plugin_host: %s\n", grants.status().ToString());
    return 1;
  }
  absl::StatusOr<capfs::Landlock> sandbox = BuildSandbox(*grants);
  if (!sandbox.ok()) {
    absl::FPrintF(stderr, "plugin_host: %s\n", sandbox.status().ToString());
    return 1;
  }
  absl::PrintF("host: %s\n",
               flags.unconfined
                   ? "--unconfined: the plugin runs WITHOUT Landlock"
                   : sandbox->Describe());
  bool plugin_ok = false;
  absl::Status s = capfs::runtime::Run(
      Host(flags, *plugin_real, *grants, *sandbox, &plugin_ok));
  if (!s.ok()) {
    absl::FPrintF(stderr, "plugin_host: %s\n", s.ToString());
    return 1;
  }
  return plugin_ok ? 0 : 1;
}

}  // namespace
}  // namespace plugin_host

int main(int argc, char** argv) {
  // Standard output is read by the test as the plugin's reports arrive.
  setvbuf(stdout, nullptr, _IOLBF, 0);
  return plugin_host::Main(argc, argv);
}

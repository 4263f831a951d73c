// The hostile plugin: tries every way out of the Dirs it was sent that it
// knows, through capfs and around it with raw system calls on the received
// descriptors, and reports each result to the host: "refused" (with the
// errno or capfs's reason), "ESCAPED" (with what it got), or "gap" for what
// Landlock is documented not to restrict (metadata: stat works anywhere).
//
// Whatever it says, the host and the test check the effects themselves: the
// sentinel file is unchanged, nothing was created outside the scratch area,
// and the host's bait sockets accepted no connection.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "capfs/capfs.h"
#include "capfs/runtime/runtime.h"
#include "examples/plugin_host/plugin.h"

namespace plugin_host {
namespace {

using capfs::runtime::Task;

struct Outcome {
  std::string outcome;  // "refused", "ESCAPED" or "gap"
  std::string detail;
};

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return absl::StrCat(name != nullptr ? name : "E?", " (", strerror(err), ")");
}

// A raw call's result: -1 (errno set) is a refusal.
Outcome Raw(long result, absl::string_view got) {
  if (result < 0) return {"refused", ErrnoText(errno)};
  return {"ESCAPED", std::string(got)};
}

// A capfs call's result.
Outcome Capfs(const absl::Status& status, absl::string_view got) {
  if (!status.ok()) return {"refused", capfs::ReasonOf(status)};
  return {"ESCAPED", std::string(got)};
}

// Opens with a raw openat; on success reads (or, for a write, scribbles on)
// the file so that an escape shows on disk, and says what it got.
Outcome RawOpen(int dirfd, const std::string& path, int flags) {
  const int fd = openat(dirfd, path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return {"refused", ErrnoText(errno)};
  std::string got;
  if ((flags & O_ACCMODE) == O_RDONLY) {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    got = absl::StrCat("opened and read ", n < 0 ? 0 : n, " bytes");
  } else {
    ssize_t n = write(fd, "escaped\n", 8);
    got =
        absl::StrCat("opened for writing and wrote ", n < 0 ? 0 : n, " bytes");
  }
  close(fd);
  return {"ESCAPED", got};
}

// fork, then execve `program` in the child: refused when execve fails.
Outcome RawExec(const char* program) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return {"refused", ErrnoText(errno)};
  const pid_t pid = fork();
  if (pid < 0) {
    close(report[0]);
    close(report[1]);
    return {"refused", ErrnoText(errno)};
  }
  if (pid == 0) {
    char* const argv[] = {const_cast<char*>(program), nullptr};
    char* const envp[] = {nullptr};
    execve(program, argv, envp);
    const int err = errno;
    [[maybe_unused]] ssize_t n = write(report[1], &err, sizeof(err));
    _exit(127);
  }
  close(report[1]);
  int err = 0;
  const ssize_t n = read(report[0], &err, sizeof(err));
  close(report[0]);
  int status;
  waitpid(pid, &status, 0);
  if (n == sizeof(err)) return {"refused", ErrnoText(err)};
  return {"ESCAPED", absl::StrCat("executed ", program)};
}

Outcome RawConnect(const struct sockaddr* address, socklen_t size, int family) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {"refused", ErrnoText(errno)};
  const int r = connect(fd, address, size);
  const int err = errno;
  close(fd);
  if (r < 0) return {"refused", ErrnoText(err)};
  return {"ESCAPED", "connected"};
}

Outcome ConnectAbstract(const std::string& name) {  // "@name"
  struct sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  std::string bare(absl::StripPrefix(name, "@"));
  if (bare.size() + 1 > sizeof(address.sun_path)) {
    return {"refused", "bad name from the host"};
  }
  memcpy(address.sun_path + 1, bare.data(), bare.size());
  return RawConnect(reinterpret_cast<const struct sockaddr*>(&address),
                    offsetof(struct sockaddr_un, sun_path) + 1 + bare.size(),
                    AF_UNIX);
}

Outcome ConnectTcp(const std::string& host_port) {  // "127.0.0.1:PORT"
  size_t colon = host_port.rfind(':');
  int port = 0;
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &port) ||
      inet_pton(AF_INET, host_port.substr(0, colon).c_str(),
                &address.sin_addr) != 1) {
    return {"refused", "bad address from the host"};
  }
  address.sin_port = htons(static_cast<uint16_t>(port));
  return RawConnect(reinterpret_cast<const struct sockaddr*>(&address),
                    sizeof(address), AF_INET);
}

Task<absl::Status> TryEverything(Session& s) {
  const std::string sentinel = s.config["sentinel"];  // an absolute path
  // Enough ".." to reach / from anywhere, then the sentinel: the kernel
  // stops ".." at /, capfs calls it an escape.
  std::string up;
  for (int i = 0; i < 40; ++i) up += "../";
  const std::string up_to_sentinel =
      absl::StrCat(up, absl::StripPrefix(sentinel, "/"));
  const int data = s.data.fd();
  const int scratch = s.scratch.fd();

  // Plant the bait in the scratch area (allowed: it is the plugin's to
  // write): symlinks pointing out, and a file to move out.
  s.scratch.Symlink(sentinel, "abs-link").IgnoreError();
  s.scratch.Symlink(up_to_sentinel, "rel-link").IgnoreError();
  s.scratch.Symlink(absl::StrCat(up, "etc/passwd"), "passwd-link")
      .IgnoreError();
  if (absl::StatusOr<capfs::Fd> bait =
          s.scratch.OpenAt("bait.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
      bait.ok()) {
    capfs::WriteAll(*bait, "bait\n").IgnoreError();
  }

  std::vector<std::pair<std::string, std::function<Outcome()>>> attempts = {
      // Through capfs: refused before any syscall or by the resolver.
      {"capfs-dotdot",
       [&] {
         return Capfs(s.data.OpenAt(up_to_sentinel, O_RDONLY).status(),
                      "opened");
       }},
      {"capfs-absolute",
       [&] {
         return Capfs(s.data.OpenAt("/etc/passwd", O_RDONLY).status(),
                      "opened");
       }},
      {"capfs-write-read-only-data",
       [&] {
         return Capfs(s.data.OpenAt("input.txt", O_WRONLY | O_APPEND).status(),
                      "opened for writing");
       }},
      {"capfs-follow-planted-symlink",
       [&] {
         return Capfs(s.scratch.OpenAt("rel-link", O_RDONLY).status(),
                      "opened");
       }},
      // Around capfs, on the raw descriptors: refused by Landlock.
      {"raw-follow-planted-symlink-read",
       [&] { return RawOpen(scratch, "rel-link", O_RDONLY); }},
      {"raw-follow-planted-symlink-write",
       [&] { return RawOpen(scratch, "abs-link", O_WRONLY | O_APPEND); }},
      {"raw-follow-planted-symlink-etc-passwd",
       [&] { return RawOpen(scratch, "passwd-link", O_RDONLY); }},
      {"raw-open-etc-passwd",
       [&] { return RawOpen(AT_FDCWD, "/etc/passwd", O_RDONLY); }},
      {"raw-open-proc-self-root",
       [&] {
         return RawOpen(AT_FDCWD, "/proc/self/root/etc/passwd", O_RDONLY);
       }},
      {"raw-openat-dotdot-list",
       [&] { return RawOpen(data, "..", O_RDONLY | O_DIRECTORY); }},
      {"raw-openat-dotdot-read",
       [&] { return RawOpen(data, up_to_sentinel, O_RDONLY); }},
      {"raw-openat-dotdot-opath-then-read",
       [&] {
         // O_PATH opens are not checked by Landlock; what is opened through
         // the handle is.
         const int parent = openat(data, "..", O_PATH | O_CLOEXEC);
         if (parent < 0) return Outcome{"refused", ErrnoText(errno)};
         Outcome o = RawOpen(parent, up_to_sentinel, O_RDONLY);
         close(parent);
         return o;
       }},
      {"raw-write-read-only-data",
       [&] { return RawOpen(data, "input.txt", O_WRONLY | O_APPEND); }},
      {"raw-create-outside-scratch",
       [&] {
         return RawOpen(scratch, "../escaped.txt", O_WRONLY | O_CREAT | O_EXCL);
       }},
      {"raw-rename-out-of-scratch",
       [&] {
         return Raw(
             renameat(scratch, "bait.txt", scratch, "../escaped-by-rename.txt"),
             "moved bait.txt out");
       }},
      {"raw-hardlink-sentinel-into-scratch",
       [&] {
         return Raw(
             linkat(AT_FDCWD, sentinel.c_str(), scratch, "sentinel-link", 0),
             "linked the sentinel into scratch");
       }},
      {"raw-mkdir-outside",
       [&] {
         return Raw(mkdirat(data, "../escaped-dir", 0755),
                    "made a directory outside");
       }},
      {"raw-exec-shell", [&] { return RawExec("/bin/sh"); }},
      {"abstract-socket-of-host",
       [&] { return ConnectAbstract(s.config["abstract"]); }},
      {"tcp-connect-to-host", [&] { return ConnectTcp(s.config["tcp"]); }},
      {"signal-host",
       [&] {
         int pid = 0;
         if (!absl::SimpleAtoi(s.config["host_pid"], &pid) || pid <= 1) {
           return Outcome{"refused", "no host pid"};
         }
         // SIGURG is ignored by default: harmless if it got through.
         return Raw(kill(pid, SIGURG), "signalled the host");
       }},
      // Documented gap: Landlock does not restrict reading metadata.
      {"raw-stat-outside",
       [&] {
         struct stat st;
         if (fstatat(data, up_to_sentinel.c_str(), &st, 0) < 0) {
           return Outcome{"refused", ErrnoText(errno)};
         }
         return Outcome{"gap",
                        absl::StrCat("stat works outside (size ", st.st_size,
                                     "): Landlock does not restrict "
                                     "metadata")};
       }},
  };
  for (auto& [name, attempt] : attempts) {
    Outcome o = attempt();
    if (absl::Status r = co_await s.Report(name, o.outcome, o.detail);
        !r.ok()) {
      co_return r;
    }
  }
  co_return absl::OkStatus();
}

}  // namespace
}  // namespace plugin_host

int main() { return plugin_host::RunPlugin(plugin_host::TryEverything); }

#include "capfs_test/testing/child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace capfs_test {
namespace {

bool WriteFileText(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// chroot needs CAP_SYS_CHROOT: as an unprivileged user, take it in a new
// user namespace where this user is root.
bool EnterChroot(const std::string& dir) {
  if (geteuid() != 0) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) != 0) return false;
    if (!WriteFileText("/proc/self/setgroups", "deny")) return false;
    if (!WriteFileText("/proc/self/uid_map", absl::StrCat("0 ", uid, " 1"))) {
      return false;
    }
    if (!WriteFileText("/proc/self/gid_map", absl::StrCat("0 ", gid, " 1"))) {
      return false;
    }
  }
  return chroot(dir.c_str()) == 0 && chdir("/") == 0;
}

void WriteAllOrExit(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(3);
    done += static_cast<size_t>(n);
  }
}

}  // namespace

bool DropAllCapabilities() {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  return syscall(SYS_capset, &header, data) == 0;
}

absl::StatusOr<std::string> RunInChild(const ChildOptions& options,
                                       absl::FunctionRef<std::string()> fn) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    close(pipefd[0]);
    if (!options.chroot_dir.empty() && !EnterChroot(options.chroot_dir)) {
      WriteAllOrExit(pipefd[1], absl::StrCat("chroot: ", strerror(errno)));
      _exit(2);
    }
    if (options.drop_privileges && !DropAllCapabilities()) {
      WriteAllOrExit(pipefd[1], absl::StrCat("capset: ", strerror(errno)));
      _exit(2);
    }
    WriteAllOrExit(pipefd[1], fn());
    _exit(0);
  }
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("child failed (status ", status, "): ", out));
  }
  return out;
}

}  // namespace capfs_test

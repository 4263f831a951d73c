// The child the process tests spawn: runs the commands on its command line
// in order and prints what it finds, one result a line, on stdout.
//   exit N            exits with N
//   kill SIGNO        sends itself SIGNO (its default action must end it)
//   sleep SECONDS     sleeps
//   write FD TEXT     writes TEXT to descriptor FD ("ok" or "error ERRNO")
//   fds               the open descriptors, sorted, space-separated
//   cwd               the working directory
//   ids               "uid gid groups..." (real ids; effective ids equal)
//   rlimit NOFILE     "soft hard" of RLIMIT_NOFILE (or CORE)
//   session           "sid=pid pgid=pid" as 0/1 flags, and the pgid
//   nnp               PR_GET_NO_NEW_PRIVS
//   sigs              "usr1=<dfl|ign|handler> usr2=... winch_blocked=<0|1>
//                     pipe_blocked=<0|1>"
//   env NAME          the variable's value, or "(unset)"
//   argv              the arguments, one a line
//   read PATH         "ok <content>" or "error ERRNO"
//   writefile PATH T  "ok" or "error ERRNO"
//   stat PATH         "ok" or "error ERRNO"
//   readfd FD         "ok <content>" or "error ERRNO": reads an inherited fd
//   connect PORT      TCP connect to 127.0.0.1:PORT: "ok" or "error ERRNO"
//   abstract NAME     connect to the abstract Unix socket @NAME: same
// ERRNO is the symbolic name (strerrorname_np): "error EACCES".

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

void Error(int err) { printf("error %s\n", strerrorname_np(err)); }

const char* Disposition(int sig) {
  struct sigaction sa;
  sigaction(sig, nullptr, &sa);
  if (sa.sa_handler == SIG_DFL) return "dfl";
  if (sa.sa_handler == SIG_IGN) return "ign";
  return "handler";
}

void ListFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) {
    Error(errno);
    return;
  }
  std::vector<int> fds;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != dirfd(d)) fds.push_back(fd);
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());
  std::string line;
  for (int fd : fds) {
    if (!line.empty()) line += ' ';
    line += std::to_string(fd);
  }
  printf("%s\n", line.c_str());
}

void ReadFrom(int fd) {
  std::string content;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      Error(errno);
      return;
    }
    if (n == 0) break;
    content.append(buf, n);
  }
  printf("ok %s\n", content.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string cmd = argv[i];
    auto arg = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (cmd == "exit") {
      fflush(stdout);
      _exit(atoi(arg()));
    } else if (cmd == "kill") {
      fflush(stdout);
      kill(getpid(), atoi(arg()));
      pause();
    } else if (cmd == "sleep") {
      fflush(stdout);
      usleep(static_cast<useconds_t>(atof(arg()) * 1e6));
    } else if (cmd == "write") {
      int fd = atoi(arg());
      const char* text = arg();
      if (write(fd, text, strlen(text)) < 0) {
        Error(errno);
      } else {
        printf("ok\n");
      }
    } else if (cmd == "fds") {
      ListFds();
    } else if (cmd == "cwd") {
      char buf[4096];
      printf("%s\n", getcwd(buf, sizeof(buf)) ? buf : "(error)");
    } else if (cmd == "ids") {
      gid_t groups[64];
      int n = getgroups(64, groups);
      std::string line =
          std::to_string(getuid()) + " " + std::to_string(getgid());
      for (int g = 0; g < n; ++g) line += " " + std::to_string(groups[g]);
      if (geteuid() != getuid() || getegid() != getgid()) line += " (!)";
      printf("%s\n", line.c_str());
    } else if (cmd == "rlimit") {
      const std::string which = arg();
      struct rlimit lim;
      getrlimit(which == "CORE" ? RLIMIT_CORE : RLIMIT_NOFILE, &lim);
      printf("%llu %llu\n", static_cast<unsigned long long>(lim.rlim_cur),
             static_cast<unsigned long long>(lim.rlim_max));
    } else if (cmd == "session") {
      pid_t pid = getpid();
      printf("sid=%d pgid=%d\n", getsid(0) == pid, getpgid(0) == pid);
    } else if (cmd == "nnp") {
      printf("%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    } else if (cmd == "sigs") {
      sigset_t mask;
      sigprocmask(SIG_BLOCK, nullptr, &mask);
      printf("usr1=%s usr2=%s winch_blocked=%d pipe_blocked=%d\n",
             Disposition(SIGUSR1), Disposition(SIGUSR2),
             sigismember(&mask, SIGWINCH), sigismember(&mask, SIGPIPE));
    } else if (cmd == "env") {
      const char* v = getenv(arg());
      printf("%s\n", v ? v : "(unset)");
    } else if (cmd == "argv") {
      for (int a = 0; a < argc; ++a) printf("%s\n", argv[a]);
    } else if (cmd == "read") {
      int fd = open(arg(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        Error(errno);
      } else {
        ReadFrom(fd);
        close(fd);
      }
    } else if (cmd == "readfd") {
      ReadFrom(atoi(arg()));
    } else if (cmd == "writefile") {
      const char* path = arg();
      const char* text = arg();
      int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, text, strlen(text)) < 0) {
        Error(errno);
      } else {
        printf("ok\n");
      }
      if (fd >= 0) close(fd);
    } else if (cmd == "stat") {
      struct stat st;
      if (stat(arg(), &st) < 0) {
        Error(errno);
      } else {
        printf("ok\n");
      }
    } else if (cmd == "connect" || cmd == "abstract") {
      const bool tcp = cmd == "connect";
      int s = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int r;
      if (tcp) {
        struct sockaddr_in a = {};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(atoi(arg())));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        r = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      } else {
        const char* name = arg();
        struct sockaddr_un a = {};
        a.sun_family = AF_UNIX;
        size_t len = strlen(name);
        memcpy(a.sun_path + 1, name, len);
        r = connect(
            s, reinterpret_cast<sockaddr*>(&a),
            static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len));
      }
      if (r < 0) {
        Error(errno);
      } else {
        printf("ok\n");
      }
      close(s);
    } else {
      printf("unknown command %s\n", cmd.c_str());
      return 2;
    }
  }
  return 0;
}

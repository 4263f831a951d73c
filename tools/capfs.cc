// capfs: the filesystem beneath one directory, from the command line.
//
//   capfs --root=DIR [--in-root] [--read-only]
//   [--resolver=auto|kernel|userspace]
//         COMMAND ARGS...
//   capfs run [--ro=DIR]... [--rw=DIR]... [FLAGS] -- CMD [ARGS...]
//
// (`capfs run`, a program confined by Landlock, is in run_command.h.)
// Every path argument is resolved beneath --root by capfs::Dir, so "../x",
// "/etc/passwd" or a symlink that leads out are refused instead of followed.
// Errors are one line on stderr; the exit code is 0 on success, 1 when the
// operation failed, 2 for a usage error, 3 when capfs refused the path.

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "tools/run_command.h"

ABSL_FLAG(std::string, root, "",
          "The directory every path is confined to (required).");
// Spelled --in-root or --in_root, --read-only or --read_only on the command
// line.
ABSL_FLAG(bool, in_root, false,
          "Treat --root as the root of its own tree, as after chroot: \"..\" "
          "stops there and absolute paths start there, instead of being "
          "refused.");
ABSL_FLAG(bool, read_only, false,
          "Refuse every command that could change the tree.");
ABSL_FLAG(std::string, resolver, "auto",
          "How paths are walked: auto (the kernel's openat2 when available), "
          "kernel, or userspace.");

namespace {

constexpr char kUsage[] = R"(the filesystem beneath one directory.

Usage: capfs --root=DIR [--in-root] [--read-only] [--resolver=R] COMMAND ARGS
       capfs run [--ro=DIR]... [--rw=DIR]... [FLAGS] -- CMD [ARGS...]

Every PATH is resolved beneath DIR: "..", absolute paths and symlinks that
lead out of DIR are refused, whatever the tree looks like.

Commands:
  ls [PATH]             list a directory (default: DIR itself)
  cat PATH...           print files
  stat PATH...          show a file's metadata (a symlink itself, not its target)
  mkdir PATH...         make directories
  rm PATH...            remove files and symlinks
  rmdir PATH...         remove empty directories
  mv FROM TO            rename
  ln -s TARGET PATH     make a symlink storing TARGET as given
  readlink PATH         print a symlink's target
  put PATH              write standard input to a file (created or replaced)

Sandboxing (no --root; its own flags, see 'capfs run --help'):
  run [FLAGS] -- CMD    run CMD confined by the kernel (Landlock) to the
                        trees given by --ro, --rw, --rox, --rwx

Flags (before the command, as --flag=value):
  --root=DIR            the directory every path is confined to (required)
  --in-root             treat DIR as the root of its own tree, as after chroot:
                        ".." stops at DIR and absolute paths start there,
                        instead of being refused
  --read-only           refuse every command that could change the tree
  --resolver=R          how paths are walked: auto (the kernel's openat2 when
                        available, the default), kernel, or userspace

Exit codes: 0 success, 1 the operation failed, 2 usage error,
3 refused by capfs (the path escapes, is absolute, or the tree is read-only).

Example:
  capfs --root=/srv/data cat reports/today.txt
  capfs --root=/srv/data cat ../etc/passwd   # refused: path escapes
  capfs run --ro=/srv/data -- /bin/cat /srv/data/../etc/passwd   # refused
)";

constexpr int kFailed = 1;
constexpr int kUsageError = 2;
constexpr int kRefused = 3;

// Paths and names are printed escaped, so that no argument can break the
// one-line error format.
std::string Quote(absl::string_view s) { return absl::CHexEscape(s); }

// Reports `status` for `command` as one line; returns the exit code.
int Report(const std::vector<std::string>& command,
           const absl::Status& status) {
  std::vector<std::string> quoted;
  for (const std::string& a : command) quoted.push_back(Quote(a));
  absl::FPrintF(stderr, "capfs: %s: %s\n", absl::StrJoin(quoted, " "),
                capfs::ReasonOf(status));
  return capfs::ViolationOf(status) == capfs::Violation::kNone ? kFailed
                                                               : kRefused;
}

int UsageError(absl::string_view message) {
  absl::FPrintF(stderr, "capfs: %s\nTry 'capfs --help'.\n", message);
  return kUsageError;
}

const char* KindName(capfs::FileKind kind) {
  switch (kind) {
    case capfs::FileKind::kRegular:
      return "regular file";
    case capfs::FileKind::kDirectory:
      return "directory";
    case capfs::FileKind::kSymlink:
      return "symbolic link";
    case capfs::FileKind::kBlockDevice:
      return "block device";
    case capfs::FileKind::kCharDevice:
      return "character device";
    case capfs::FileKind::kFifo:
      return "fifo";
    case capfs::FileKind::kSocket:
      return "socket";
    case capfs::FileKind::kUnknown:
      break;
  }
  return "unknown";
}

absl::Status WriteStdout(absl::string_view data) {
  static const capfs::Fd* out = new capfs::Fd(STDOUT_FILENO);
  return capfs::WriteAll(*out, data);
}

int Ls(const capfs::Dir& dir, const std::vector<std::string>& args) {
  if (args.size() > 2) return UsageError("ls takes at most one PATH");
  std::string path = args.size() == 2 ? args[1] : ".";
  absl::StatusOr<std::vector<capfs::DirEntry>> entries = dir.ReadDir(path);
  if (!entries.ok()) return Report(args, entries.status());
  std::sort(entries->begin(), entries->end(),
            [](const capfs::DirEntry& a, const capfs::DirEntry& b) {
              return a.name < b.name;
            });
  std::string out;
  for (const capfs::DirEntry& e : *entries) {
    const char* suffix = e.kind == capfs::FileKind::kDirectory ? "/"
                         : e.kind == capfs::FileKind::kSymlink ? "@"
                                                               : "";
    absl::StrAppend(&out, Quote(e.name), suffix, "\n");
  }
  if (absl::Status s = WriteStdout(out); !s.ok()) return Report(args, s);
  return 0;
}

int Cat(const capfs::Dir& dir, const std::vector<std::string>& args) {
  if (args.size() < 2) return UsageError("cat needs a PATH");
  int exit_code = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    std::vector<std::string> what = {args[0], args[i]};
    absl::StatusOr<capfs::Fd> f = dir.OpenAt(args[i], O_RDONLY);
    if (!f.ok()) {
      exit_code = std::max(exit_code, Report(what, f.status()));
      continue;
    }
    char buf[64 * 1024];
    for (;;) {
      absl::StatusOr<size_t> n = capfs::Read(*f, absl::MakeSpan(buf));
      if (!n.ok()) {
        exit_code = std::max(exit_code, Report(what, n.status()));
        break;
      }
      if (*n == 0) break;
      if (absl::Status s = WriteStdout(absl::string_view(buf, *n)); !s.ok()) {
        return Report(what, s);
      }
    }
  }
  return exit_code;
}

int Stat(const capfs::Dir& dir, const std::vector<std::string>& args) {
  if (args.size() < 2) return UsageError("stat needs a PATH");
  int exit_code = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::StatusOr<capfs::FileStat> st = dir.Lstat(args[i]);
    if (!st.ok()) {
      exit_code = std::max(exit_code, Report({args[0], args[i]}, st.status()));
      continue;
    }
    std::string out = absl::StrFormat(
        "  File: %s\n  Type: %s\n  Size: %u\n  Mode: %04o\n Inode: %u  "
        "Links: %u\n   Uid: %u  Gid: %u\nModify: %s\n",
        Quote(args[i]), KindName(st->kind), st->size, st->perm, st->ino,
        st->nlink, st->uid, st->gid,
        absl::FormatTime("%Y-%m-%d %H:%M:%E9S %z", st->mtime,
                         absl::LocalTimeZone()));
    if (absl::Status s = WriteStdout(out); !s.ok()) return Report(args, s);
  }
  return exit_code;
}

// Runs `call` on each PATH argument; for mkdir, rm, rmdir.
template <typename Call>
int EachPath(const std::vector<std::string>& args, Call call) {
  if (args.size() < 2)
    return UsageError(absl::StrCat(args[0], " needs a PATH"));
  int exit_code = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    if (absl::Status s = call(args[i]); !s.ok()) {
      exit_code = std::max(exit_code, Report({args[0], args[i]}, s));
    }
  }
  return exit_code;
}

int Put(const capfs::Dir& dir, const std::vector<std::string>& args) {
  if (args.size() != 2) return UsageError("put takes one PATH");
  absl::StatusOr<capfs::Fd> f =
      dir.OpenAt(args[1], O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (!f.ok()) return Report(args, f.status());
  capfs::Fd in(STDIN_FILENO);
  char buf[64 * 1024];
  int exit_code = 0;
  for (;;) {
    absl::StatusOr<size_t> n = capfs::Read(in, absl::MakeSpan(buf));
    if (!n.ok()) {
      exit_code = Report(args, n.status());
      break;
    }
    if (*n == 0) break;
    if (absl::Status s = capfs::WriteAll(*f, absl::string_view(buf, *n));
        !s.ok()) {
      exit_code = Report(args, s);
      break;
    }
  }
  in.release();  // standard input is not ours to close
  if (absl::Status s = f->Close(); !s.ok() && exit_code == 0) {
    exit_code = Report(args, s);
  }
  return exit_code;
}

int Run(const capfs::Dir& dir, const std::vector<std::string>& args) {
  const std::string& command = args[0];
  if (command == "ls") return Ls(dir, args);
  if (command == "cat") return Cat(dir, args);
  if (command == "stat") return Stat(dir, args);
  if (command == "mkdir") {
    return EachPath(args, [&](const std::string& p) { return dir.Mkdir(p); });
  }
  if (command == "rm") {
    return EachPath(args, [&](const std::string& p) { return dir.Unlink(p); });
  }
  if (command == "rmdir") {
    return EachPath(args, [&](const std::string& p) { return dir.Rmdir(p); });
  }
  if (command == "mv") {
    if (args.size() != 3) return UsageError("mv takes FROM and TO");
    absl::Status s = dir.Rename(args[1], dir, args[2]);
    return s.ok() ? 0 : Report(args, s);
  }
  if (command == "ln") {
    if (args.size() != 4 || args[1] != "-s") {
      return UsageError("ln takes -s TARGET PATH (only symbolic links)");
    }
    absl::Status s = dir.Symlink(args[2], args[3]);
    return s.ok() ? 0 : Report(args, s);
  }
  if (command == "readlink") {
    if (args.size() != 2) return UsageError("readlink takes one PATH");
    absl::StatusOr<std::string> target = dir.ReadLink(args[1]);
    if (!target.ok()) return Report(args, target.status());
    if (absl::Status s = WriteStdout(absl::StrCat(*target, "\n")); !s.ok()) {
      return Report(args, s);
    }
    return 0;
  }
  if (command == "put") return Put(dir, args);
  if (command == "run") {
    return UsageError("'run' takes no --root: capfs run [FLAGS] -- CMD");
  }
  return UsageError(absl::StrCat("unknown command '", Quote(command), "'"));
}

}  // namespace

int main(int argc, char** argv) {
  // `capfs run` has flags of its own, parsed there.
  if (argc >= 2 && std::string(argv[1]) == "run") {
    return capfs_tool::RunCommand(argc - 1, argv + 1);
  }
  absl::SetProgramUsageMessage(kUsage);
  for (int i = 1; i < argc && argv[i][0] == '-'; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "-help") {
      absl::PrintF("capfs: %s", kUsage);
      return 0;
    }
  }
  // Flags come before the command; what follows it (e.g. "ln -s", or a path
  // that starts with '-') is the command's own.
  int command_at = 1;
  while (command_at < argc && argv[command_at][0] == '-' &&
         std::string(argv[command_at]) != "--") {
    ++command_at;
  }
  int flag_argc = command_at;
  if (command_at < argc && std::string(argv[command_at]) == "--") ++command_at;
  // Flag names are spelled with hyphens (--in-root) or underscores
  // (--in_root); Abseil knows the latter.
  std::vector<std::string> flag_args(argv, argv + flag_argc);
  std::vector<char*> flag_argv;
  for (std::string& a : flag_args) {
    if (a.rfind("--", 0) == 0) {
      size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + end, '-', '_');
    }
    flag_argv.push_back(a.data());
  }
  absl::ParseCommandLine(flag_argc, flag_argv.data());
  std::vector<std::string> args(argv + command_at, argv + argc);

  if (args.empty()) return UsageError("no COMMAND given");
  std::string root = absl::GetFlag(FLAGS_root);
  if (root.empty()) return UsageError("--root=DIR is required");

  capfs::DirOptions options;
  options.scope = absl::GetFlag(FLAGS_in_root) ? capfs::Scope::kInRoot
                                               : capfs::Scope::kBeneath;
  options.read_only = absl::GetFlag(FLAGS_read_only);
  std::string resolver = absl::GetFlag(FLAGS_resolver);
  if (resolver == "auto") {
    options.resolver = capfs::Resolver::kAuto;
  } else if (resolver == "kernel") {
    options.resolver = capfs::Resolver::kKernel;
  } else if (resolver == "userspace") {
    options.resolver = capfs::Resolver::kUserspace;
  } else {
    return UsageError(
        absl::StrCat("--resolver must be auto, kernel or userspace, not '",
                     Quote(resolver), "'"));
  }

  absl::StatusOr<capfs::Dir> dir = capfs::Dir::Open(root, options);
  if (!dir.ok()) {
    absl::FPrintF(stderr, "capfs: --root=%s: %s\n", Quote(root),
                  capfs::ReasonOf(dir.status()));
    return kFailed;
  }
  return Run(*dir, args);
}

#include "tools/exec_check.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "capfs/capfs.h"

namespace capfs_tool {
namespace {

std::string Quote(absl::string_view s) { return absl::CHexEscape(s); }

std::string DirName(absl::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

// Reads exactly `size` bytes at `offset`, or fails.
absl::Status ReadExactly(const capfs::Fd& fd, char* buf, size_t size,
                         off_t offset) {
  size_t done = 0;
  while (done < size) {
    absl::StatusOr<size_t> n =
        capfs::PRead(fd, absl::MakeSpan(buf + done, size - done),
                     offset + static_cast<off_t>(done));
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::DataLossError("short file");
    done += *n;
  }
  return absl::OkStatus();
}

// PT_INTERP of an ELF file of either class; "" when it has none.
template <typename Ehdr, typename Phdr>
absl::StatusOr<std::string> ElfInterpreter(const capfs::Fd& fd) {
  Ehdr eh;
  if (absl::Status s =
          ReadExactly(fd, reinterpret_cast<char*>(&eh), sizeof(eh), 0);
      !s.ok()) {
    return s;
  }
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum > 4096) {
    return absl::InvalidArgumentError("malformed ELF program headers");
  }
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    if (absl::Status s =
            ReadExactly(fd, reinterpret_cast<char*>(&ph), sizeof(ph),
                        static_cast<off_t>(eh.e_phoff + i * sizeof(Phdr)));
        !s.ok()) {
      return s;
    }
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) {
      return absl::InvalidArgumentError("malformed PT_INTERP");
    }
    std::string interp(ph.p_filesz, '\0');
    if (absl::Status s = ReadExactly(fd, interp.data(), interp.size(),
                                     static_cast<off_t>(ph.p_offset));
        !s.ok()) {
      return s;
    }
    interp.resize(strnlen(interp.data(), interp.size()));
    return interp;
  }
  return std::string();
}

}  // namespace

std::optional<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr),
                                              &free);
  if (real == nullptr) return std::nullopt;
  return std::string(real.get());
}

const GrantedTree* TreeGranting(absl::Span<const GrantedTree> trees,
                                absl::string_view real_path, bool need_exec) {
  for (const GrantedTree& t : trees) {
    if (t.real_path.empty() || (need_exec && !t.exec)) continue;
    if (real_path == t.real_path || t.real_path == "/" ||
        (absl::StartsWith(real_path, t.real_path) &&
         real_path.size() > t.real_path.size() &&
         real_path[t.real_path.size()] == '/')) {
      return &t;
    }
  }
  return nullptr;
}

std::optional<std::string> FindProgram(const std::string& program) {
  const capfs::Dir host = capfs::Dir::Unconfined();
  auto executable_file = [&](const std::string& path) {
    absl::StatusOr<capfs::FileStat> st = host.Stat(path);
    return st.ok() && st->kind == capfs::FileKind::kRegular &&
           (st->perm & 0111) != 0;
  };
  if (program.find('/') != std::string::npos) return program;
  const char* path_env = getenv("PATH");
  // execvp's default search path when PATH is unset.
  std::string search = path_env != nullptr ? path_env : "/bin:/usr/bin";
  for (absl::string_view dir : absl::StrSplit(search, ':')) {
    std::string candidate =
        dir.empty() ? program : absl::StrCat(dir, "/", program);
    if (executable_file(candidate)) return candidate;
  }
  return std::nullopt;
}

absl::StatusOr<Interpreter> InterpreterOf(const std::string& path) {
  absl::StatusOr<capfs::Fd> fd =
      capfs::Dir::Unconfined().OpenAt(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  char head[EI_NIDENT] = {};
  absl::StatusOr<size_t> n = capfs::PRead(*fd, absl::MakeSpan(head), 0);
  if (!n.ok()) return n.status();
  absl::string_view magic(head, *n);
  if (absl::StartsWith(magic, "#!")) {
    // The kernel reads only the first line; the interpreter is its first
    // word.
    char line[256] = {};
    absl::StatusOr<size_t> got = capfs::PRead(*fd, absl::MakeSpan(line), 2);
    if (!got.ok()) return got.status();
    absl::string_view rest(line, *got);
    rest = rest.substr(0, rest.find('\n'));
    rest = absl::StripLeadingAsciiWhitespace(rest);
    return Interpreter{std::string(rest.substr(0, rest.find_first_of(" \t"))),
                       /*script=*/true};
  }
  if (*n < EI_NIDENT || !absl::StartsWith(magic, ELFMAG)) {
    return absl::InvalidArgumentError("neither an ELF file nor a script");
  }
  absl::StatusOr<std::string> interp =
      head[EI_CLASS] == ELFCLASS64 ? ElfInterpreter<Elf64_Ehdr, Elf64_Phdr>(*fd)
      : head[EI_CLASS] == ELFCLASS32
          ? ElfInterpreter<Elf32_Ehdr, Elf32_Phdr>(*fd)
          : absl::InvalidArgumentError("unknown ELF class");
  if (!interp.ok()) return interp.status();
  return Interpreter{*std::move(interp), /*script=*/false};
}

namespace {

// Under Landlock, why the kernel would refuse to execute `path`: the file
// itself ("it (REAL) is outside ..." at depth 0, "PATH (REAL) is outside
// ..." below), or its interpreter ("its loader ..."), outside every exec
// tree. `depth` bounds "#!" chains, as the kernel does.
std::optional<std::string> ExecRefusal(const std::string& path,
                                       absl::Span<const GrantedTree> trees,
                                       int depth) {
  std::optional<std::string> real = RealPath(path);
  if (!real.has_value()) return std::nullopt;
  if (TreeGranting(trees, *real, /*need_exec=*/true) == nullptr) {
    return absl::StrCat(
        depth == 0 ? "it" : Quote(path),
        path != *real ? absl::StrCat(" (", Quote(*real), ")") : std::string(),
        " is outside every --rox/--rwx tree, so Landlock refuses to execute it"
        " (add --rox=",
        Quote(DirName(*real)), ")");
  }
  absl::StatusOr<Interpreter> interp = InterpreterOf(*real);
  if (!interp.ok() || interp->path.empty() || depth >= 4) return std::nullopt;
  std::optional<std::string> why = ExecRefusal(interp->path, trees, depth + 1);
  if (!why.has_value()) return std::nullopt;
  return absl::StrCat(
      interp->script ? "its \"#!\" interpreter " : "its loader ", *why);
}

}  // namespace

std::string ExplainExecFailure(const std::string& program,
                               const absl::Status& status,
                               absl::Span<const GrantedTree> trees,
                               bool landlocked) {
  const int err = capfs::ErrnoOf(status);
  std::optional<std::string> found = FindProgram(program);
  if (!found.has_value()) {
    return absl::StrCat(Quote(program), ": no such program in $PATH");
  }
  std::optional<std::string> real = RealPath(*found);
  if (!real.has_value()) {
    return absl::StrCat(Quote(*found), ": no such file");
  }
  absl::StatusOr<capfs::FileStat> st = capfs::Dir::Unconfined().Stat(*real);
  if (st.ok() && st->kind == capfs::FileKind::kDirectory) {
    return absl::StrCat(Quote(*found), ": is a directory");
  }
  if ((err == EACCES || err == EPERM) && landlocked) {
    if (std::optional<std::string> why = ExecRefusal(*found, trees, 0);
        why.has_value()) {
      return absl::StrCat(Quote(*found), ": ", *why);
    }
  }
  absl::StatusOr<Interpreter> interp = InterpreterOf(*real);
  if (err == ENOENT && interp.ok() && !interp->path.empty() &&
      !RealPath(interp->path).has_value()) {
    return absl::StrCat(Quote(*found), ": its ",
                        interp->script ? "\"#!\" interpreter " : "loader ",
                        Quote(interp->path), " does not exist");
  }
  if ((err == EACCES || err == EPERM) && st.ok() && (st->perm & 0111) == 0) {
    return absl::StrCat(Quote(*found), ": not executable (mode ",
                        absl::StrFormat("%04o", st->perm), ")");
  }
  if (err == ENOEXEC) {
    return absl::StrCat(Quote(*found), ": not a format this kernel executes");
  }
  return absl::StrCat(Quote(*found), ": ", status.message());
}

std::optional<std::string> LibraryHint(const std::string& program,
                                       absl::Span<const GrantedTree> trees) {
  std::optional<std::string> found = FindProgram(program);
  if (!found.has_value()) return std::nullopt;
  std::optional<std::string> real = RealPath(*found);
  if (!real.has_value()) return std::nullopt;
  absl::StatusOr<Interpreter> interp = InterpreterOf(*real);
  if (!interp.ok() || interp->path.empty() || interp->script) {
    return std::nullopt;  // static, unreadable, or a script
  }
  std::optional<std::string> real_interp = RealPath(interp->path);
  if (!real_interp.has_value()) return std::nullopt;
  // The loader looks for libraries beside itself (Debian: the multiarch
  // directory); /etc/ld.so.cache is unreadable when /etc is not granted.
  std::string lib_dir = DirName(*real_interp);
  if (TreeGranting(trees, lib_dir, /*need_exec=*/false) != nullptr) {
    return std::nullopt;
  }
  return absl::StrCat(
      "the libraries of ", Quote(*found), " (beside its loader, in ",
      Quote(lib_dir),
      ") are not readable in the sandbox (add --ro=", Quote(lib_dir), ")");
}

}  // namespace capfs_tool

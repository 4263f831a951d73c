// Why a program could not start in a Landlock sandbox, in words a person can
// act on.
//
// Under Landlock an exec fails with a bare EACCES whether the program itself,
// its ELF interpreter (the dynamic loader, which the kernel opens for
// executing too) or a "#!" interpreter lies outside every tree granted for
// executing; the libraries the loader maps afterwards only need reading.
// ExplainExecFailure looks at the program the way the kernel will and names
// the first of these that no tree grants, with the flag that would grant it:
//
//   std::vector<GrantedTree> trees = ...;   // what `capfs run` was given
//   std::string line = ExplainExecFailure("/opt/tool/bin/x", status, trees);
//   // "/opt/tool/bin/x is outside every --rox/--rwx tree (add
//   --rox=/opt/tool/bin)"
//
// Trees are compared by their real paths (symlinks resolved), which is what
// Landlock's rules are anchored on; a bind mount that shows one tree at two
// places is not seen through, so the answer is a diagnosis, not a proof.

#ifndef CAPFS_TOOLS_EXEC_CHECK_H_
#define CAPFS_TOOLS_EXEC_CHECK_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace capfs_tool {

// A tree a sandboxed program was granted, as the user named it.
struct GrantedTree {
  std::string flag;       // "--ro", "--rw", "--rox", "--rwx", or "default"
  std::string path;       // as given
  std::string real_path;  // symlinks resolved; empty when it does not exist
  bool exec = false;      // executing is granted
};

// The real path of `path` (every symlink resolved), or nullopt when some
// component does not exist or cannot be searched.
std::optional<std::string> RealPath(const std::string& path);

// The tree of `trees` whose real path contains `real_path` (or is it) and,
// when `need_exec`, grants executing; nullptr when none does.
const GrantedTree* TreeGranting(absl::Span<const GrantedTree> trees,
                                absl::string_view real_path, bool need_exec);

// Where execve(2) will find `program`: itself when it contains a '/',
// otherwise the first executable regular file of that name in this process's
// $PATH (as execvp does); nullopt when there is none.
std::optional<std::string> FindProgram(const std::string& program);

// The interpreter the kernel starts for a program file.
struct Interpreter {
  std::string path;     // empty for a static ELF program
  bool script = false;  // named on a "#!" line, not an ELF PT_INTERP
};

// The interpreter of the file at `path`: its ELF PT_INTERP (e.g.
// "/lib64/ld-linux-x86-64.so.2"), or the program named on its "#!" line. An
// error when the file cannot be read or is neither an ELF file nor a script.
absl::StatusOr<Interpreter> InterpreterOf(const std::string& path);

// One line (no newline) saying why `program` did not start, given Spawn's
// failure `status`: the program was not found; or, under Landlock, which of
// the program, its interpreter, or its "#!" interpreter no tree grants for
// executing (and the flag to add); or it is not executable; else the
// status's own reason. `landlocked` is false when no ruleset was applied.
std::string ExplainExecFailure(const std::string& program,
                               const absl::Status& status,
                               absl::Span<const GrantedTree> trees,
                               bool landlocked);

// After a dynamic program exited with 127 (the loader's code for "a library
// could not be loaded"): a hint naming the loader's directory when no tree
// grants reading it, or nullopt.
std::optional<std::string> LibraryHint(const std::string& program,
                                       absl::Span<const GrantedTree> trees);

}  // namespace capfs_tool

#endif  // CAPFS_TOOLS_EXEC_CHECK_H_

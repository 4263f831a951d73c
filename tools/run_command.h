// `capfs run`: runs a program confined by Landlock to the directory trees it
// is given, e.g.
//
//   capfs run --ro=/srv/data --rw=/tmp/out -- /usr/bin/sort /srv/data/x
//
// Each tree is opened as a capfs::Dir and granted to the program through a
// capfs::Landlock ruleset anchored on that Dir's descriptor; the program is
// started by capfs::runtime::Spawn in a session of its own. Its exit status
// is passed through. kRunUsage (below, and `capfs run --help`) is the
// reference for every flag and exit code.

#ifndef CAPFS_TOOLS_RUN_COMMAND_H_
#define CAPFS_TOOLS_RUN_COMMAND_H_

namespace capfs_tool {

// The text of `capfs run --help`.
extern const char kRunUsage[];

// Runs `capfs run` with `args[0]` == "run" and `args[1..count)` its flags,
// "--", the program and its arguments. Returns the process's exit code.
int RunCommand(int count, char** args);

}  // namespace capfs_tool

#endif  // CAPFS_TOOLS_RUN_COMMAND_H_

// The differential fuzzer's input: a small tree and a sequence of Dir
// operations, decoded from arbitrary bytes (every input decodes to some
// program) and encoded back from a program (for the seed corpus).
//
// Paths are built mostly from a table of interesting components (the names
// the tree uses, ".", "..", "", the names of the sentinel, host paths of the
// twin tree, long names) joined with '/', plus raw bytes. A path may stand
// for a different string in each twin: a host path names the twin's own
// directories, so `Render` takes the twin's case directory.
//
// The byte format (all counts wrap, so no input is invalid):
//   header   bit 0: InRoot scope (else Beneath); bits 1-3 all set: read-only
//   tree     1 count byte (mod 17), then per entry:
//              kind byte: bits 0-1 kind (dir, file, symlink, symlink),
//                         bits 2-4 parent (index among the dirs so far, ""
//                         first), bits 5-7 mode (index in the kind's mode
//                         table)
//              name byte: one of kNames
//              symlinks:  a path (the target)
//   ops      until the input ends (at most kMaxOps), per op:
//              op byte:   bits 0-3 kind, bits 4-5 Dir slot, bits 6-7 second
//                         slot (Rename's and Link's destination); kind 15
//                         is followed by a byte choosing among kExtraOps
//              then the kind's arguments: a flags byte (OpenAt: access in
//              bits 0-1, 3 for O_TMPFILE; then O_CREAT, O_EXCL, O_NOFOLLOW,
//              O_DIRECTORY, O_PATH, O_TRUNC, the last meaning O_RDONLY with
//              O_TMPFILE), a mode byte
//              (Mkdir), and one path, or two (Rename: from, to; Symlink:
//              target, link).
//   path     header byte: bits 0-3 component count, bit 4 absolute, bit 5
//            trailing slash, bit 6 "//" as separator, bit 7 trailing "//";
//            per component one byte: 0xE0 + n is n raw bytes that follow,
//            anything else indexes the component table (mod its size).

#ifndef CAPFS_TEST_FUZZ_PROGRAM_H_
#define CAPFS_TEST_FUZZ_PROGRAM_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "capfs/capfs.h"

namespace capfs_fuzz {

// The names tree entries take (one byte picks one).
inline constexpr const char* kNames[] = {"a", "b", "c", "d",
                                         "e", "f", "g", "h"};

// A piece of a path: literal text, or a host path of the twin.
struct Piece {
  enum Kind {
    kText,
    kCaseDir,  // the twin's case directory (holds root/ and outside/)
    kRoot,     // the twin's root/
    kOutside,  // the twin's outside/ (the sentinel)
  };
  Kind kind = kText;
  std::string text;
};
using PathSpec = std::vector<Piece>;

// The path `spec` stands for in the twin whose case directory is `case_dir`.
std::string Render(const PathSpec& spec, absl::string_view case_dir);

// `spec` for humans: host paths as @CASE, @ROOT, @OUT; unprintable bytes
// escaped; long runs abbreviated.
std::string Show(const PathSpec& spec);

struct TreeEntry {
  enum Kind { kDir, kFile, kSymlink };
  Kind kind = kDir;
  std::string path;  // relative to root/, e.g. "a/b"
  mode_t mode = 0;   // dirs and files
  PathSpec target;   // symlinks
};

enum class OpKind {
  kOpenAt,
  kOpenDir,  // a new Dir slot on success (up to kMaxSlots)
  kMkdir,
  kUnlink,
  kRmdir,
  kRename,   // slot's `path` -> to_slot's `path2`
  kSymlink,  // target `path2` at `path`
  kReadLink,
  kStat,
  kLstat,
  kReadDir,
  // The recursive and whole-file calls, reached through op index 15 and an
  // extra byte (kExtraOps in program.cc).
  kMkdirAll,
  kRemoveAll,
  kWalk,
  kWriteFile,
  kReadFile,
  kTruncate,
  kChmod,
  kLink,  // slot's `path` -> to_slot's `path2`
  kSetTimes,
  kChown,
  kLchown,
  // Rename in RenameMode::kNoReplace and kExchange, as kRename.
  kRenameNoReplace,
  kRenameExchange,
};

// True for the calls with a destination Dir (to_slot) and a second path:
// Rename in its three modes, and Link.
inline bool HasDestination(OpKind kind) {
  return kind == OpKind::kRename || kind == OpKind::kLink ||
         kind == OpKind::kRenameNoReplace || kind == OpKind::kRenameExchange;
}

inline constexpr int kMaxSlots = 4;
inline constexpr int kMaxOps = 24;
inline constexpr int kMaxTreeEntries = 16;

struct Operation {
  OpKind kind = OpKind::kStat;
  int slot = 0;     // which Dir (0: the root Dir; then OpenDir's, in order)
  int to_slot = 0;  // the destination Dir of kRename, kLink and the modes
  int flags = 0;    // kOpenAt
  mode_t mode = 0;  // kOpenAt with O_CREAT or O_TMPFILE, kMkdir
  PathSpec path;
  PathSpec path2;
};

struct Program {
  capfs::Scope scope = capfs::Scope::kBeneath;
  bool read_only = false;
  std::vector<TreeEntry> tree;
  std::vector<Operation> ops;
};

// Decodes any bytes into a program.
Program Decode(const uint8_t* data, size_t size);

// The bytes that decode to `program`, or an error when it cannot be
// expressed (a name not in kNames, a parent not created earlier, a mode not
// in the tables, too many components or entries, flags the format lacks).
// Paths are given as text: "@CASE", "@ROOT" and "@OUT" components stand for
// the host paths.
absl::StatusOr<std::string> Encode(const Program& program);

// A path written as text, with "@CASE", "@ROOT" and "@OUT" components for the
// host paths (the inverse of Show for paths without raw bytes).
PathSpec ParsePathSpec(absl::string_view text);

// The program for humans, one line per entry and op.
std::string ShowProgram(const Program& program);
std::string ShowOp(const Operation& op);

}  // namespace capfs_fuzz

#endif  // CAPFS_TEST_FUZZ_PROGRAM_H_

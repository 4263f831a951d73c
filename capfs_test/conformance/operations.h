// The operations the conformance table tries on every path, each done two
// ways: through capfs, and as the plain Linux call that is its oracle.
//
// Both ways describe their result in the same words ("ok root/dir/inner
// (file)", "errno ENOENT", "escape", ...), so a case is one string compare.

#ifndef CAPFS_TEST_CONFORMANCE_OPERATIONS_H_
#define CAPFS_TEST_CONFORMANCE_OPERATIONS_H_

#include <sys/types.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "capfs/capfs.h"

namespace capfs_test {

enum class OpKind {
  kOpen,
  kOpenDir,
  kStat,
  kLstat,
  kReadLink,
  kReadDir,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kRenameFrom,          // path -> "renamed"
  kRenameTo,            // "empty_file" -> path
  kRenameAcross,        // path -> "moved" in a second Dir on dir/sub
  kRenameWithin,        // path -> "renamed" beside it: the same text before the
                        // last component (one parent for both ends)
  kRenameToMissing,     // path -> "missing_dir/x": which side fails first
  kSymlinkEmptyTarget,  // symlink("", path): ENOENT before any lookup
  kLinkFrom,            // link path -> "linked"
  kLinkTo,              // link "file" -> path
  kRenameNoReplace,     // path -> "file", RENAME_NOREPLACE
  kRenameExchange,      // path <-> "file", RENAME_EXCHANGE
  kChmod,               // 0700, following
  kChown,               // 1234:1234, following
  kLchown,              // 1234:1234, not following
  kSetTimes,            // atime 1000000.5, mtime 2000000.7
  kTruncate,            // to 2 bytes
  kMkdirAll,            // mode 0750
  kRemoveAll,
  kReadFile,
  kWriteFile,  // "new data", mode 0640
  kWalk,       // every entry visited, in order
};

struct Op {
  std::string name;
  OpKind kind;
  int flags = 0;    // kOpen
  mode_t mode = 0;  // kOpen with O_CREAT or O_TMPFILE, kMkdir
};

// For gtest's messages.
inline void PrintTo(const Op& op, std::ostream* os) { *os << op.name; }

// Every operation of the table.
const std::vector<Op>& AllOps();

// True when `op` may change the tree.
bool Mutates(const Op& op);

// True when the kernel refuses `op` before it looks any path up (open flags
// it rejects with EINVAL, an empty symlink target): then no path leaves the
// Dir, and every path gives that error.
bool FailsBeforeLookup(const Op& op);

// True when `op` on `path` follows the last component if it is a symlink
// (so that an escaping last link makes the call an escape).
bool FollowsLast(const Op& op, const std::string& path);

// What a call returned, before inode numbers are turned into names.
struct RawResult {
  int err = 0;  // errno, 0 on success
  capfs::Violation violation = capfs::Violation::kNone;
  ino_t ino = 0;     // what was opened or stat'ed, when anything was
  std::string kind;  // its kind, when `ino` is set
  std::string text;  // a symlink's target, a directory's listing
  std::string Serialize() const;
  static RawResult Parse(const std::string& s);
};

// `op` on `path` through capfs: `root` is the Dir, `sub` a second Dir on
// root/dir/sub (for kRenameAcross).
RawResult RunCapfs(const Op& op, const capfs::Dir& root, const capfs::Dir& sub,
                   const std::string& path);

// `op` on `path` as the plain *at call relative to `dirfd` (AT_FDCWD inside a
// chroot), with `subfd` the directory root/dir/sub.
RawResult RunPlain(const Op& op, int dirfd, int subfd, const std::string& path);

// The result in words, with the inode named by `inodes` (ino -> path) and
// `hide` (the case directory, which differs between twins) replaced by
// "<TREE>" in symlink targets.
std::string Describe(const RawResult& r,
                     const std::map<ino_t, std::string>& inodes,
                     const std::string& hide);

}  // namespace capfs_test

#endif  // CAPFS_TEST_CONFORMANCE_OPERATIONS_H_

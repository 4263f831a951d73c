// Path: lexical facts about a path, found without touching the filesystem.
//
// These are the facts every resolver agrees on before the first syscall:
// whether a path is acceptable at all (CheckPath), whether it is absolute,
// where its last component is, and what its components are. Nothing here
// resolves "..", "." or symlinks: that is physical, and the resolvers' job.
//
// Example:
//   capfs::ComponentReader r("a//b/../c/");
//   capfs::Component c;
//   while (r.Next(&c)) { ... }   // "a", "b", "..", "c" (trailing slash)

#ifndef CAPFS_PATH_H_
#define CAPFS_PATH_H_

#include <limits.h>
#include <stddef.h>

#include "absl/strings/string_view.h"

namespace capfs {

// The kernel's limits: a path of kPathMax bytes or more (its NUL included,
// PATH_MAX) and a component longer than kNameMax bytes are ENAMETOOLONG.
inline constexpr size_t kPathMax = PATH_MAX;
inline constexpr size_t kNameMax = NAME_MAX;

// 0 when `path` may be handed to a resolver; otherwise the errno the call must
// fail with before any syscall: EINVAL for a NUL byte, ENOENT for the empty
// path, ENAMETOOLONG for a path of kPathMax bytes or more or a component of
// more than kNameMax bytes.
int CheckPath(absl::string_view path);

// True when `path` starts with '/'.
inline bool IsAbsolute(absl::string_view path) {
  return !path.empty() && path.front() == '/';
}

// True when `path` has a component and ends with '/' ("a/", "a/b//"). A
// trailing slash makes the last component a directory, followed if it is a
// symlink. "/" alone has no component, so no trailing slash.
bool HasTrailingSlash(absl::string_view path);

// What a component is to path resolution.
enum class ComponentKind { kName, kDot, kDotDot };
ComponentKind KindOf(absl::string_view component);

// `path` cut before its last component:
//   "a/b/c"  -> parent "a/b/", last "c"
//   "a/b/c/" -> parent "a/b/", last "c/"   (trailing slashes stay on `last`)
//   "c"      -> parent "",     last "c"
//   "/c"     -> parent "/",    last "c"
//   "//"     -> parent "//",   last ""     (no component)
struct PathSplit {
  absl::string_view parent;
  absl::string_view last;
};
PathSplit SplitLast(absl::string_view path);

// One component of a path, and whether a '/' came right after it.
struct Component {
  absl::string_view name;
  bool slash_follows = false;
};

// Reads the components of a path left to right, skipping empty ones (so
// "a//b" is "a", "b"). Leading slashes are skipped: ask IsAbsolute first.
class ComponentReader {
 public:
  explicit ComponentReader(absl::string_view path) : rest_(path) {}

  // Stores the next component in `*c` and returns true, or returns false
  // when none is left.
  bool Next(Component* c);

  // True when no component is left (only slashes, or nothing).
  bool Done() const;

  // What is left to read, leading slashes included.
  absl::string_view rest() const { return rest_; }

 private:
  absl::string_view rest_;
};

}  // namespace capfs

#endif  // CAPFS_PATH_H_

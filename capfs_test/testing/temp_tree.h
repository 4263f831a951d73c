// Temporary trees for tests: creation, snapshots, and removal.
//
// Every helper aborts the test binary on a setup failure (a test that cannot
// build its tree must not pass by accident).

#ifndef CAPFS_TEST_TESTING_TEMP_TREE_H_
#define CAPFS_TEST_TESTING_TEMP_TREE_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace capfs_test {

// Aborts with `what` and strerror(errno) when `ok` is false.
void CheckOrDie(bool ok, absl::string_view what);

// A new empty directory on /dev/shm when it is a writable tmpfs, else under
// $TEST_TMPDIR (or /tmp); mode 0755, removed with
// everything in it when the TempDir is destroyed.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + rel.
  std::string Join(absl::string_view rel) const;

 private:
  std::string path_;
};

// Removes `path` and everything beneath it, restoring permissions on the way
// so that directories the tests locked are removable. Symlinks are not
// followed.
void RemoveTree(const std::string& path);

// Removes everything beneath the directory `path`, keeping it (mode 0755).
void RemoveContents(const std::string& path);

// Builders relative to `dirfd`, aborting on failure. Modes are applied with
// fchmodat after creation, so the umask does not change them.
void MakeDir(int dirfd, const std::string& rel, mode_t mode = 0755);
void MakeFile(int dirfd, const std::string& rel, absl::string_view content,
              mode_t mode = 0644);
void MakeSymlink(int dirfd, const std::string& target, const std::string& rel);
void ChmodAt(int dirfd, const std::string& rel, mode_t mode);

// A listing of the tree at `path`, one line per entry in sorted order:
// relative path, kind, permission bits, and the content of files or target
// of symlinks. `hide` is replaced by "<TREE>" in symlink targets, so twins
// built at different places compare equal. Does not follow symlinks.
std::string SnapshotTree(const std::string& path, absl::string_view hide = "");

// Every entry beneath `path` (and `path` itself as "."), by inode number,
// without following symlinks: which name a descriptor or stat refers to.
std::map<ino_t, std::string> InodePaths(const std::string& path);

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_TEMP_TREE_H_

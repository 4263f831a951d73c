// The differential check behind the resolver fuzzer and its corpus replay.
//
// A Differential owns three twin case directories, each with root/ (the tree
// a program builds, then operates on) and outside/ (a sentinel nothing may
// reach). Run builds the program's tree in each, runs every operation through
// Resolver::kKernel on twin A and Resolver::kUserspace on twin B and, in
// Beneath scope, as the plain *at call on twin C wherever the kernel is the
// oracle (the path was not refused by capfs's own rules). It reports the
// first of:
//   - the two resolvers disagree: success vs failure, errno, Violation, the
//     inode reached (compared by its path within the twin), what was read;
//   - they agree, but the plain call says otherwise;
//   - the trees differ after an operation that may change them;
//   - a result lies outside the Dir it was asked of (an inode outside that
//     Dir's directory, or outside the twin), or a listing or link target
//     read from outside (the sentinel's marker names); or the plain call
//     reached outside where capfs did not refuse the path;
//   - a sentinel or case directory changed;
//   - a read-only Dir let the tree change or a file be opened for writing;
//   - a descriptor capfs returned lacks close-on-exec, or the run leaked one.
//
// On construction it clears the process's capabilities (when it has any), so
// that permission bits apply to root as to anyone: the programs make
// directories that deny search or listing. Not thread-safe.

#ifndef CAPFS_TEST_FUZZ_DIFFERENTIAL_H_
#define CAPFS_TEST_FUZZ_DIFFERENTIAL_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "capfs_test/fuzz/program.h"
#include "capfs_test/testing/temp_tree.h"

namespace capfs_fuzz {

class Differential {
 public:
  // Aborts when the twins cannot be made, or when this machine has no
  // usable openat2 (the kernel resolver is half of the comparison).
  Differential();
  Differential(const Differential&) = delete;
  Differential& operator=(const Differential&) = delete;
  ~Differential();

  // Runs `program`; returns "" when everything held, else what did not (the
  // operation, and both resolvers' outcomes). When `log` is not null, the
  // program and every outcome are appended to it.
  std::string Run(const Program& program, std::string* log = nullptr);

  // For the fuzzer's own tests: `tamper(twin, case_dir)` runs for twin 0 (A,
  // kernel), 1 (B, userspace) and, in Beneath scope, 2 (C, plain calls) once
  // the trees are built and found equal, before the first operation, so a
  // test can show that each check fires.
  void SetTamperForTest(
      std::function<void(int twin, const std::string& case_dir)> tamper) {
    tamper_ = std::move(tamper);
  }

 private:
  class Sentinel;  // outside/ and the case directory of one twin

  capfs_test::TempDir top_;
  std::unique_ptr<Sentinel> sentinels_[3];  // twins A, B, C
  std::function<void(int, const std::string&)> tamper_;
};

}  // namespace capfs_fuzz

#endif  // CAPFS_TEST_FUZZ_DIFFERENTIAL_H_

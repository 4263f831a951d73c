// An attacker for race tests: something that keeps changing a tree while the
// test resolves paths through it.
//
// The attacker repeats one step (a rename, an exchange, ...) as fast as it
// can, in a thread of the test process or in a forked process, until
// stopped, and counts the steps that changed the tree. The test reads that
// count around each of its own calls to tell which calls overlapped a change.
//
//   Attacker attacker(Attacker::kThread, [&] {
//     return renameat2(fd, "d", fd, "s", RENAME_EXCHANGE) == 0;
//   });
//   attacker.Start();
//   ... resolve through the tree, reading attacker.steps() ...
//   uint64_t steps = attacker.Stop();
//
// The step runs concurrently with the test: it may use only what it owns or
// what stays constant while it runs (descriptors and names fixed before
// Start). In a process attacker it runs after fork(), so it must not take
// locks the test may hold (no allocation, no stdio): plain syscalls.

#ifndef CAPFS_TEST_RACE_ATTACKER_H_
#define CAPFS_TEST_RACE_ATTACKER_H_

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <thread>

namespace capfs_test {

class Attacker {
 public:
  enum Where { kThread, kProcess };

  // `step` changes the tree once and returns true, or returns false when it
  // could not (a name it renames is gone for the moment, say).
  Attacker(Where where, std::function<bool()> step);
  Attacker(const Attacker&) = delete;
  Attacker& operator=(const Attacker&) = delete;
  // Stops the attacker if it still runs.
  ~Attacker();

  // Starts stepping. Call once.
  void Start();

  // Steps that changed the tree so far. Cheap: an atomic load.
  uint64_t steps() const;

  // Waits until a step has changed the tree, or `timeout_ms` has passed;
  // whether one has. (A thread or process takes a moment to start.)
  bool WaitForFirstStep(int timeout_ms) const;

  // Stops after the step in progress and returns the steps that changed the
  // tree. False in `*clean` (when given) if a process attacker did not exit
  // normally.
  uint64_t Stop(bool* clean = nullptr);

 private:
  // In memory shared with a forked attacker, so that both see the same
  // atomics.
  struct Shared {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> steps{0};
  };

  void Loop() const;

  Where where_;
  std::function<bool()> step_;
  Shared* shared_;
  // The attacker writes a byte to [1] after its first step that changed the
  // tree; WaitForFirstStep polls [0].
  int first_step_pipe_[2] = {-1, -1};
  std::thread thread_;
  pid_t pid_ = -1;
  bool running_ = false;
};

}  // namespace capfs_test

#endif  // CAPFS_TEST_RACE_ATTACKER_H_

// Evidence for race tests: who is who in a case directory (Census), and what
// each call through capfs reached while an attacker changed the tree
// (Outcome, Tally).
//
// "No escape" is checked on what calls reach, not on the absence of errors:
// every object that a call opened or stat'ed is looked up by (device, inode)
// in the census, and only the root's own objects are allowed. Objects outside
// carry distinct content and names, so a listing or a read from outside is
// seen too.

#ifndef CAPFS_TEST_RACE_EVIDENCE_H_
#define CAPFS_TEST_RACE_EVIDENCE_H_

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace capfs_test {

// Every object of a case directory by inode: those beneath its root are
// inside, every other one is outside, as are "/", "/etc" and "/etc/passwd".
class Census {
 public:
  // Takes the roll of `case_dir`; `root` is the root's path inside it.
  Census(const std::string& case_dir, const std::string& root);

  // Adds an object made inside after the roll was taken.
  void AddInside(const struct stat& st, const std::string& name);

  bool IsInside(uint64_t dev, uint64_t ino) const;

  // "in:NAME" for an inside object, "OUT:NAME" for a known outside one,
  // "OUT:dev D ino I" for any other.
  std::string Name(uint64_t dev, uint64_t ino) const;

 private:
  dev_t dev_;
  std::map<ino_t, std::string> inside_;
  std::map<std::pair<dev_t, ino_t>, std::string> outside_;
};

// What one call gave: a label for the tally ("in:d/etc/passwd", "ENOENT",
// "escape", ...) and, when the call reached or changed something outside
// the root, what (empty when it did not).
struct Outcome {
  std::string label;
  std::string breach;
};

// The label of a failed call: "escape", "absolute", "read-only", the errno's
// name, or the whole status for a failure without errno.
std::string ErrorLabel(const absl::Status& s);

// Counts, per probe, the outcomes of the calls made while an attacker ran.
class Tally {
 public:
  // The outcome `probe` gives with no attacker: the calm answer.
  void SetCalm(const std::string& probe, const std::string& label);

  // One call of `probe`; `overlapped` when the attacker changed the tree
  // during it.
  void Add(const std::string& probe, const Outcome& outcome, bool overlapped);

  // A breach found outside any one call (the tree outside changed, ...).
  void AddBreach(const std::string& what);

  uint64_t calls() const { return calls_; }
  // Calls whose outcome differs from the calm one: they saw the attack.
  uint64_t raced() const { return raced_; }
  // Calls during which the attacker changed the tree.
  uint64_t overlapped() const { return overlapped_; }
  uint64_t breaches() const { return breaches_; }
  // The first breaches, described.
  const std::vector<std::string>& breach_details() const { return details_; }

  // Every probe with the count of each outcome label it gave.
  const std::map<std::string, std::map<std::string, uint64_t>>& seen() const {
    return seen_;
  }

  // Every probe with its calm outcome and the count of each outcome seen.
  std::string Table() const;

 private:
  std::map<std::string, std::string> calm_;
  std::map<std::string, std::map<std::string, uint64_t>> seen_;
  uint64_t calls_ = 0;
  uint64_t raced_ = 0;
  uint64_t overlapped_ = 0;
  uint64_t breaches_ = 0;
  std::vector<std::string> details_;
};

}  // namespace capfs_test

#endif  // CAPFS_TEST_RACE_EVIDENCE_H_

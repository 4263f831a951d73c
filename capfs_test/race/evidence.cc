#include "capfs_test/race/evidence.h"

#include <string.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "capfs/status.h"
#include "capfs_test/testing/temp_tree.h"

namespace capfs_test {
namespace {

constexpr size_t kMaxDetails = 20;

}  // namespace

Census::Census(const std::string& case_dir, const std::string& root) {
  struct stat st;
  CheckOrDie(stat(case_dir.c_str(), &st) == 0, "stat " + case_dir);
  dev_ = st.st_dev;
  std::string root_path = absl::StrCat(case_dir, "/", root);
  for (const auto& [ino, name] : InodePaths(root_path)) {
    inside_[ino] = name;
  }
  for (const auto& [ino, name] : InodePaths(case_dir)) {
    if (inside_.count(ino) == 0) outside_[{dev_, ino}] = name;
  }
  for (const char* host : {"/", "/etc", "/etc/passwd"}) {
    if (stat(host, &st) == 0) outside_[{st.st_dev, st.st_ino}] = host;
  }
}

void Census::AddInside(const struct stat& st, const std::string& name) {
  inside_[st.st_ino] = name;
}

bool Census::IsInside(uint64_t dev, uint64_t ino) const {
  return dev == dev_ && inside_.count(ino) != 0;
}

std::string Census::Name(uint64_t dev, uint64_t ino) const {
  if (dev == dev_) {
    auto in = inside_.find(ino);
    if (in != inside_.end()) return "in:" + in->second;
  }
  auto out = outside_.find({dev, ino});
  if (out != outside_.end()) return "OUT:" + out->second;
  return absl::StrCat("OUT:dev ", dev, " ino ", ino);
}

std::string ErrorLabel(const absl::Status& s) {
  switch (capfs::ViolationOf(s)) {
    case capfs::Violation::kEscape:
      return "escape";
    case capfs::Violation::kAbsolutePath:
      return "absolute";
    case capfs::Violation::kReadOnly:
      return "read-only";
    case capfs::Violation::kNone:
      break;
  }
  int err = capfs::ErrnoOf(s);
  if (err == 0) return s.ToString();
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : absl::StrCat("errno ", err);
}

void Tally::SetCalm(const std::string& probe, const std::string& label) {
  calm_[probe] = label;
}

void Tally::Add(const std::string& probe, const Outcome& outcome,
                bool overlapped) {
  ++calls_;
  ++seen_[probe][outcome.label];
  if (overlapped) ++overlapped_;
  auto calm = calm_.find(probe);
  if (calm == calm_.end() || calm->second != outcome.label) ++raced_;
  if (!outcome.breach.empty()) {
    AddBreach(absl::StrCat(probe, ": ", outcome.breach));
  }
}

void Tally::AddBreach(const std::string& what) {
  ++breaches_;
  if (details_.size() < kMaxDetails) details_.push_back(what);
}

std::string Tally::Table() const {
  std::string out;
  for (const auto& [probe, outcomes] : seen_) {
    auto calm = calm_.find(probe);
    absl::StrAppend(&out, "  ", probe,
                    " (calm: ", calm == calm_.end() ? "?" : calm->second, "):");
    for (const auto& [label, n] : outcomes) {
      absl::StrAppend(&out, " ", label, " x", n, ";");
    }
    out += "\n";
  }
  return out;
}

}  // namespace capfs_test

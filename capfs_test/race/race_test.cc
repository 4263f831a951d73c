// Race attacks: while capfs resolves paths through a tree, another thread
// (or, for the docker-cp pattern, another process) keeps changing it, and no
// call may ever open, create, stat or remove anything outside the root.
//
// Each attack runs for both resolvers and both scopes, --iterations times
// (a CI-sized default otherwise). Evidence, not the absence of errors:
//  - every object a call opened or stat'ed is looked up by inode in a census
//    of the case directory, and must be one of the root's own; files read
//    must hold inside content; listings must be of an inside directory;
//  - every name a call created, removed or renamed must be found changed in
//    an inside directory;
//  - everything outside has a twin of each name the calls use, so an escaped
//    call would succeed visibly, and the outside tree must be unchanged at
//    the end.
// Each attack reports how many calls saw the attack (an outcome other than
// the calm one), how many overlapped a change of the tree, and how often
// openat2 said EAGAIN and the kernel resolver retried or handed over.

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "capfs/capfs.h"
#include "capfs/internal/kernel_resolver.h"
#include "capfs_test/race/attacker.h"
#include "capfs_test/race/evidence.h"
#include "capfs_test/testing/iterations.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs_test {
namespace {

using capfs::Dir;
using capfs::DirOptions;
using capfs::RenameMode;
using capfs::Resolver;
using capfs::Scope;

// Iterations of each attack per resolver and scope when --iterations is not
// given: all attacks together take about a minute on two cores.
constexpr int kCiIterations = 2000;

// An O_PATH descriptor of an object of the test's own tree.
capfs::Fd OpenPath(int at, const std::string& rel) {
  capfs::Fd fd(openat(at, rel.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  CheckOrDie(fd.valid(), "open " + rel);
  return fd;
}

bool Exists(int dirfd, const char* name, struct stat* st = nullptr) {
  struct stat buf;
  return fstatat(dirfd, name, st != nullptr ? st : &buf, AT_SYMLINK_NOFOLLOW) ==
         0;
}

bool IsSymlink(int dirfd, const char* name) {
  struct stat st;
  return Exists(dirfd, name, &st) && S_ISLNK(st.st_mode);
}

// The marker a directory's listing is recognized by: "in_..." for an inside
// directory, "out_..." for an outside one.
std::string Marker(const std::string& rel, bool inside) {
  std::string m = absl::StrCat(inside ? "in_" : "out_", rel);
  for (char& c : m) {
    if (c == '/') c = '_';
  }
  return m;
}

// The outside twins of the names the changing probes remove, rename and
// exchange, in the directory `prefix` names ("" or ending in '/'), so that
// an escaped call would succeed visibly.
void MakeOutsideTwins(int at, const std::string& prefix) {
  MakeFile(at, prefix + "gone", "OUTSIDE");
  MakeDir(at, prefix + "olddir");
  MakeFile(at, prefix + "r1", "OUTSIDE");
  // An exchange that escaped would swap these two contents.
  MakeFile(at, prefix + "x1", "OUTSIDE x1");
  MakeFile(at, prefix + "x2", "OUTSIDE x2");
}

// The directory the probes work in: `passwd` (a file whose content tells its
// side), its marker, and for an outside twin every name the removing probes
// use, so that an escaped call would find them.
void MakeVictimDir(int at, const std::string& rel, bool inside) {
  MakeDir(at, rel);
  MakeFile(at, rel + "/passwd",
           absl::StrCat(inside ? "inside " : "OUTSIDE ", rel));
  MakeFile(at, rel + "/" + Marker(rel, inside), "");
  MakeSymlink(at, inside ? "inside" : "OUTSIDE", rel + "/link");
  if (!inside) MakeOutsideTwins(at, rel + "/");
}

// One call the victim makes each iteration.
struct Probe {
  std::string name;
  std::function<Outcome()> run;
};

Outcome Failed(const absl::Status& s) { return Outcome{ErrorLabel(s), ""}; }

// The outcome of reaching the object `st`: its census name, and a breach
// unless it is inside.
Outcome Reached(const Census& census, const struct stat& st) {
  Outcome o{census.Name(st.st_dev, st.st_ino), ""};
  if (!census.IsInside(st.st_dev, st.st_ino)) o.breach = "reached " + o.label;
  return o;
}

Outcome OpenProbe(const Dir& dir, const std::string& path, int flags,
                  const Census& census) {
  absl::StatusOr<capfs::Fd> fd = dir.OpenAt(path, flags, 0600);
  if (!fd.ok()) return Failed(fd.status());
  struct stat st;
  CheckOrDie(fstat(fd->get(), &st) == 0, "fstat");
  Outcome o = Reached(census, st);
  if (S_ISREG(st.st_mode) && (flags & O_ACCMODE) != O_WRONLY) {
    char buf[64];
    ssize_t n = pread(fd->get(), buf, sizeof(buf), 0);
    std::string content(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (!absl::StartsWith(content, "inside")) {
      absl::StrAppend(&o.breach, " read \"", content, "\"");
    }
  }
  return o;
}

Outcome StatProbe(const Dir& dir, const std::string& path, bool follow,
                  const Census& census) {
  absl::StatusOr<capfs::FileStat> fs =
      follow ? dir.Stat(path) : dir.Lstat(path);
  if (!fs.ok()) return Failed(fs.status());
  struct stat st = {};
  st.st_dev = fs->dev;
  st.st_ino = fs->ino;
  return Reached(census, st);
}

Outcome OpenDirProbe(const Dir& dir, const std::string& path,
                     const Census& census) {
  absl::StatusOr<Dir> d = dir.OpenDir(path);
  if (!d.ok()) return Failed(d.status());
  struct stat st;
  CheckOrDie(fstat(d->fd(), &st) == 0, "fstat");
  return Reached(census, st);
}

Outcome ReadDirProbe(const Dir& dir, const std::string& path) {
  absl::StatusOr<std::vector<capfs::DirEntry>> entries = dir.ReadDir(path);
  if (!entries.ok()) return Failed(entries.status());
  std::vector<std::string> markers;
  bool inside = false;
  bool outside = false;
  for (const capfs::DirEntry& e : *entries) {
    bool in = absl::StartsWith(e.name, "in_");
    bool out = absl::StartsWith(e.name, "out_");
    if (in || out) markers.push_back(e.name);
    inside = inside || in;
    outside = outside || out;
  }
  Outcome o{"list:" + absl::StrJoin(markers, ","), ""};
  if (!inside || outside) o.breach = "listed a directory that is not inside";
  return o;
}

// The directories a name-changing probe may legitimately land in: the one
// its path names when no attacker runs, and those the attack can make it
// name instead (an absolute link re-rooted in InRoot scope, say). All are
// inside.
struct Landing {
  std::vector<int> fds;
  const Census* census;

  // The census name of the landing directory that has `name` (and, with
  // `ino`, that inode), or "" when none has it.
  std::string Holding(const char* name, ino_t ino = 0) const {
    for (int fd : fds) {
      struct stat st;
      if (Exists(fd, name, &st) && (ino == 0 || st.st_ino == ino)) {
        return NameOf(fd);
      }
    }
    return "";
  }
  // The census name of the landing directory `fd`.
  std::string NameOf(int fd) const {
    struct stat dir;
    CheckOrDie(fstat(fd, &dir) == 0, "fstat landing");
    return census->Name(dir.st_dev, dir.st_ino);
  }
  // The inode of `name` in each landing directory, in the order of `fds`
  // (every one must have it).
  std::vector<ino_t> Inodes(const char* name) const {
    std::vector<ino_t> out;
    for (int fd : fds) {
      struct stat st;
      CheckOrDie(Exists(fd, name, &st), std::string("landing ") + name);
      out.push_back(st.st_ino);
    }
    return out;
  }
  void Ensure(const char* name, bool directory) const {
    for (int fd : fds) {
      if (Exists(fd, name)) continue;
      if (directory) {
        CheckOrDie(mkdirat(fd, name, 0755) == 0, "mkdir landing");
      } else {
        int f = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CheckOrDie(f >= 0, "create landing");
        close(f);
      }
    }
  }
  void Remove(const char* name, bool directory) const {
    for (int fd : fds) unlinkat(fd, name, directory ? AT_REMOVEDIR : 0);
  }
};

Outcome CreateProbe(const Dir& dir, const std::string& path,
                    const Landing& landing) {
  absl::StatusOr<capfs::Fd> fd =
      dir.OpenAt(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!fd.ok()) return Failed(fd.status());
  struct stat st;
  CheckOrDie(fstat(fd->get(), &st) == 0, "fstat");
  std::string where = landing.Holding("new", st.st_ino);
  landing.Remove("new", false);
  if (where.empty()) return Outcome{"created elsewhere", "created outside"};
  return Outcome{"created in " + where, ""};
}

Outcome MkdirProbe(const Dir& dir, const std::string& path,
                   const Landing& landing) {
  absl::Status s = dir.Mkdir(path, 0755);
  if (!s.ok()) return Failed(s);
  std::string where = landing.Holding("newdir");
  landing.Remove("newdir", true);
  if (where.empty()) return Outcome{"made elsewhere", "made a dir outside"};
  return Outcome{"made in " + where, ""};
}

// Unlink or Rmdir of `name` (present in every landing directory before the
// call): success must have removed one of them.
Outcome RemoveProbe(const Dir& dir, const std::string& via, const char* name,
                    bool directory, const Landing& landing) {
  landing.Ensure(name, directory);
  std::string path = absl::StrCat(via, "/", name);
  absl::Status s = directory ? dir.Rmdir(path) : dir.Unlink(path);
  if (!s.ok()) return Failed(s);
  for (int fd : landing.fds) {
    if (!Exists(fd, name)) {
      return Outcome{"removed from " + landing.NameOf(fd), ""};
    }
  }
  return Outcome{"removed elsewhere", "removed something outside"};
}

// Rename of `via`/r1 to `via`/r2 (absent) in `mode` (kReplace or
// kNoReplace): r2 must be in a landing directory.
Outcome RenameProbe(const Dir& dir, const std::string& via, RenameMode mode,
                    const Landing& landing) {
  landing.Ensure("r1", false);
  absl::Status s = dir.Rename(via + "/r1", dir, via + "/r2", mode);
  if (!s.ok()) return Failed(s);
  std::string where = landing.Holding("r2");
  landing.Remove("r2", false);
  if (where.empty()) return Outcome{"renamed elsewhere", "renamed outside"};
  return Outcome{"renamed into " + where, ""};
}

// Rename of `via`/x1 and `via`/x2 in RenameMode::kExchange: landing
// directories must hold each other's (or, as resolved, their own) two files
// under swapped names: x1 in one now the file that was x2 in the other, and
// that one's x2 the file that was x1 in the first.
Outcome ExchangeProbe(const Dir& dir, const std::string& via,
                      const Landing& landing) {
  landing.Ensure("x1", false);
  landing.Ensure("x2", false);
  const std::vector<ino_t> x1_before = landing.Inodes("x1");
  const std::vector<ino_t> x2_before = landing.Inodes("x2");
  absl::Status s =
      dir.Rename(via + "/x1", dir, via + "/x2", RenameMode::kExchange);
  if (!s.ok()) return Failed(s);
  const std::vector<ino_t> x1_after = landing.Inodes("x1");
  const std::vector<ino_t> x2_after = landing.Inodes("x2");
  for (size_t i = 0; i < landing.fds.size(); ++i) {
    for (size_t j = 0; j < landing.fds.size(); ++j) {
      if (x1_after[i] == x2_before[j] && x2_after[j] == x1_before[i]) {
        return Outcome{"exchanged in " + landing.NameOf(landing.fds[i]), ""};
      }
    }
  }
  return Outcome{"exchanged elsewhere", "exchanged outside"};
}

// A call of DESIGN.md 6.1 that follows `via`/passwd and changes it in place
// (Chmod, Chown, SetTimes, Truncate), or changes the symlink `via`/link
// itself (Lchown): the file it reached is not known to the probe, so an
// escape shows in the outside tree, whose snapshot (mode, owner, a
// modification time before 2001, content) the attack compares after the
// run.
Outcome ChangeProbe(const absl::Status& s) {
  if (!s.ok()) return Failed(s);
  return Outcome{"changed", ""};
}

// ReadFile of `via`/passwd: the content must be the inside file's.
Outcome ReadFileProbe(const Dir& dir, const std::string& path) {
  absl::StatusOr<std::string> content = dir.ReadFile(path);
  if (!content.ok()) return Failed(content.status());
  if (!absl::StartsWith(*content, "inside")) {
    return Outcome{"read elsewhere", absl::StrCat("read \"", *content, "\"")};
  }
  return Outcome{"read inside", ""};
}

// Link of `via`/passwd to `via`/hard: the new name must be in a landing
// directory, and name the file one of the inside passwd files is (the
// landing directories' passwd files are all inside).
Outcome LinkProbe(const Dir& dir, const std::string& via,
                  const Landing& landing) {
  absl::Status s = dir.Link(via + "/passwd", dir, via + "/hard");
  if (!s.ok()) return Failed(s);
  std::string where = landing.Holding("hard");
  bool inside_file = false;
  for (int fd : landing.fds) {
    struct stat hard;
    if (Exists(fd, "hard", &hard)) {
      inside_file =
          inside_file || !landing.Holding("passwd", hard.st_ino).empty();
    }
  }
  landing.Remove("hard", false);
  if (where.empty()) return Outcome{"linked elsewhere", "linked outside"};
  if (!inside_file) {
    return Outcome{"linked into " + where, "linked another file"};
  }
  return Outcome{"linked into " + where, ""};
}

// WriteFile of `via`/written (atomic: a temporary name renamed over it):
// the file must be in a landing directory.
Outcome WriteFileProbe(const Dir& dir, const std::string& via,
                       const Landing& landing) {
  absl::Status s = dir.WriteFile(via + "/written", "inside", 0644);
  if (!s.ok()) return Failed(s);
  std::string where = landing.Holding("written");
  landing.Remove("written", false);
  if (where.empty()) return Outcome{"written elsewhere", "wrote outside"};
  return Outcome{"written in " + where, ""};
}

// The probes every directory attack makes through `via`, a path to an
// inside directory made by MakeVictimDir that crosses what the attacker
// changes. With `changes`, also the probes that create and remove.
void AddDirProbes(const Dir& dir, const std::string& via, bool changes,
                  const Census& census, const Landing& landing,
                  std::vector<Probe>* probes) {
  const std::string passwd = via + "/passwd";
  probes->push_back({"read " + passwd, [&dir, passwd, &census] {
                       return OpenProbe(dir, passwd, O_RDONLY, census);
                     }});
  probes->push_back({"stat " + passwd, [&dir, passwd, &census] {
                       return StatProbe(dir, passwd, true, census);
                     }});
  const std::string link = via + "/link";
  probes->push_back({"readlink " + link, [&dir, link] {
                       absl::StatusOr<std::string> t = dir.ReadLink(link);
                       if (!t.ok()) return Failed(t.status());
                       Outcome o{"link:" + *t, ""};
                       if (*t != "inside") o.breach = "read an outside link";
                       return o;
                     }});
  probes->push_back({"lstat " + via, [&dir, via, &census] {
                       return StatProbe(dir, via, false, census);
                     }});
  probes->push_back({"opendir " + via, [&dir, via, &census] {
                       return OpenDirProbe(dir, via, census);
                     }});
  probes->push_back(
      {"readdir " + via, [&dir, via] { return ReadDirProbe(dir, via); }});
  probes->push_back({"readfile " + passwd,
                     [&dir, passwd] { return ReadFileProbe(dir, passwd); }});
  if (!changes) return;
  // The follow-and-act calls change the inside passwd each time; the times
  // and owner they set are the ones the outside snapshot would show.
  probes->push_back({"chmod " + passwd, [&dir, passwd] {
                       return ChangeProbe(dir.Chmod(passwd, 0600));
                     }});
  probes->push_back({"settimes " + passwd, [&dir, passwd] {
                       return ChangeProbe(
                           dir.SetTimes(passwd, absl::FromUnixSeconds(1000000),
                                        absl::FromUnixSeconds(2000000)));
                     }});
  probes->push_back({"truncate " + passwd, [&dir, passwd] {
                       return ChangeProbe(dir.Truncate(passwd, 64));
                     }});
  if (geteuid() == 0) {  // chown to another owner needs CAP_CHOWN
    probes->push_back({"chown " + passwd, [&dir, passwd] {
                         return ChangeProbe(dir.Chown(passwd, 1234, 1234));
                       }});
    // The symlink itself: an outside link's owner would show in the
    // snapshot.
    probes->push_back({"lchown " + link, [&dir, link] {
                         return ChangeProbe(dir.Lchown(link, 1234, 1234));
                       }});
  }
  probes->push_back({"link " + passwd + " -> hard", [&dir, via, &landing] {
                       return LinkProbe(dir, via, landing);
                     }});
  probes->push_back({"writefile " + via + "/written", [&dir, via, &landing] {
                       return WriteFileProbe(dir, via, landing);
                     }});
  probes->push_back({"create " + via + "/new", [&dir, via, &landing] {
                       return CreateProbe(dir, via + "/new", landing);
                     }});
  probes->push_back({"mkdir " + via + "/newdir", [&dir, via, &landing] {
                       return MkdirProbe(dir, via + "/newdir", landing);
                     }});
  probes->push_back({"unlink " + via + "/gone", [&dir, via, &landing] {
                       return RemoveProbe(dir, via, "gone", false, landing);
                     }});
  probes->push_back({"rmdir " + via + "/olddir", [&dir, via, &landing] {
                       return RemoveProbe(dir, via, "olddir", true, landing);
                     }});
  probes->push_back({"rename " + via + "/r1 -> r2", [&dir, via, &landing] {
                       return RenameProbe(dir, via, RenameMode::kReplace,
                                          landing);
                     }});
  probes->push_back(
      {"rename noreplace " + via + "/r1 -> r2", [&dir, via, &landing] {
         return RenameProbe(dir, via, RenameMode::kNoReplace, landing);
       }});
  probes->push_back(
      {"rename exchange " + via + "/x1 <-> x2",
       [&dir, via, &landing] { return ExchangeProbe(dir, via, landing); }});
}

struct RaceParam {
  Resolver resolver;
  Scope scope;
};

std::string ParamName(const RaceParam& p) {
  return absl::StrCat(p.resolver == Resolver::kKernel ? "Kernel" : "Userspace",
                      p.scope == Scope::kBeneath ? "Beneath" : "InRoot");
}

// One attack's case directory: root/ (the Dir) and outside/ beside it.
class CaseDir {
 public:
  CaseDir(const TempDir& temp, const std::string& name)
      : path_(MadeDir(temp.Join(name))), fd_(OpenPath(AT_FDCWD, path_)) {
    MakeDir(fd_.get(), "root");
    MakeDir(fd_.get(), "outside");
    root_ = OpenPath(fd_.get(), "root");
    outside_ = OpenPath(fd_.get(), "outside");
  }
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  int root() const { return root_.get(); }
  int outside() const { return outside_.get(); }

 private:
  static std::string MadeDir(const std::string& path) {
    MakeDir(AT_FDCWD, path);
    return path;
  }

  std::string path_;
  capfs::Fd fd_;
  capfs::Fd root_;
  capfs::Fd outside_;
};

class RaceTest : public testing::TestWithParam<RaceParam> {
 protected:
  RaceTest() : iterations_(IterationsOr(kCiIterations)) {}

  DirOptions Options() const {
    DirOptions o;
    o.resolver = GetParam().resolver;
    o.scope = GetParam().scope;
    return o;
  }

  Dir OpenRoot(const CaseDir& c) const {
    absl::StatusOr<Dir> d = Dir::Open(c.path() + "/root", Options());
    CheckOrDie(d.ok(), "Dir::Open root");
    return *std::move(d);
  }

  // Runs `probes` --iterations times while `attacker` runs, after taking
  // each probe's calm outcome; `settle` puts the tree back in its calm state
  // once the attacker stopped. Checks the evidence and reports the counts
  // under `name`.
  void Attack(const std::string& name, const CaseDir& c, Attacker& attacker,
              const std::vector<Probe>& probes,
              const std::function<void()>& settle) {
    SCOPED_TRACE(name);
    const std::string outside = c.path() + "/outside";
    const std::string outside_before = SnapshotTree(outside);
    Tally tally;
    for (const Probe& p : probes) {
      Outcome calm = p.run();
      tally.SetCalm(p.name, calm.label);
      // A probe that fails with no attacker would prove nothing.
      EXPECT_TRUE(calm.breach.empty() && !IsError(calm.label))
          << p.name << " with no attacker: " << calm.label << " "
          << calm.breach;
    }
    capfs::internal::KernelResolverCounts before =
        capfs::internal::KernelResolverCountsNow();
    attacker.Start();
    // A thread or process takes a moment to start: the victim begins once
    // the attacker has changed the tree (or after ten seconds, when the
    // check on the attacker's steps below fails).
    attacker.WaitForFirstStep(10000);
    // --iterations rounds; more (up to ten times as many) while no call has
    // met the attack yet, which happens when the scheduler keeps the two
    // apart (a busy machine, a short run).
    int rounds = 0;
    for (; rounds < iterations_ || (tally.raced() + tally.overlapped() == 0 &&
                                    rounds < 10 * iterations_);
         ++rounds) {
      for (const Probe& p : probes) {
        uint64_t steps = attacker.steps();
        Outcome o = p.run();
        tally.Add(p.name, o, attacker.steps() != steps);
      }
    }
    bool clean = true;
    uint64_t steps = attacker.Stop(&clean);
    capfs::internal::KernelResolverCounts after =
        capfs::internal::KernelResolverCountsNow();
    settle();
    EXPECT_TRUE(clean) << "the attacker process failed";
    if (SnapshotTree(outside) != outside_before) {
      tally.AddBreach("the tree outside the root changed:\n" +
                      SnapshotTree(outside));
    }
    std::string report = absl::StrCat(
        "[race] ", name, " ", ParamName(GetParam()), ": ", rounds,
        " iterations, ", tally.calls(), " calls, ", tally.raced(),
        " saw the attack, ", tally.overlapped(), " overlapped a change; ",
        "openat2 EAGAIN ", after.eagain - before.eagain,
        ", handed to userspace ", after.busy - before.busy, "; attacker ",
        steps, " changes; breaches ", tally.breaches(), "\n", tally.Table());
    std::cout << report << std::flush;
    RecordProperty(name, absl::StrCat(tally.raced(), " of ", tally.calls(),
                                      " calls saw the attack"));
    EXPECT_EQ(tally.breaches(), 0u)
        << report << absl::StrJoin(tally.breach_details(), "\n");
    EXPECT_GT(steps, 0u) << "the attacker never changed the tree";
    // How often a call lands on the attack depends on the scheduler; that
    // it never did would mean the attack was not tried at all.
    EXPECT_GT(tally.raced() + tally.overlapped(), 0u)
        << "no call saw or overlapped the attack";
    for (const auto& [probe, outcomes] : tally.seen()) {
      for (const auto& [label, n] : outcomes) {
        EXPECT_TRUE(Expected(probe, label))
            << probe << ": unexpected outcome " << label << " x" << n << "\n"
            << report;
      }
    }
  }

  static bool IsError(const std::string& label) {
    for (const char* ok :
         {"in:", "list:", "created in", "made in", "removed from",
          "renamed into", "exchanged in", "link:", "changed", "read inside",
          "linked into", "written in"}) {
      if (absl::StartsWith(label, ok)) return false;
    }
    return true;
  }

  // The outcomes a probe may give besides success on an inside object: the
  // escape refusal (Beneath scope only: InRoot never refuses), ENOENT (a
  // name renamed away, an absolute target re-rooted where nothing is),
  // ELOOP for an O_NOFOLLOW open of what is a symlink at the time, and
  // EAGAIN for an open whose last component kept changing (the userspace
  // resolver's answer to a rename that races it 64 times, as openat2's).
  // No state of the attacked trees gives ENOTDIR or any other error, so
  // neither resolver may: a resolver that looked at a name twice and acted
  // on two states would (the userspace resolver once did, under the
  // exchanges).
  bool Expected(const std::string& probe, const std::string& label) const {
    if (!IsError(label)) return true;
    if (label == "escape") return GetParam().scope == Scope::kBeneath;
    if (label == "ELOOP") return absl::StrContains(probe, "O_NOFOLLOW");
    // MkdirAll meets an existing name it cannot make: in InRoot scope the
    // exchanged-in symlink's climb is re-rooted where nothing is, so it is a
    // dangling symlink then, which mkdir(2) answers with EEXIST too. In
    // Beneath scope following it is an escape, unless the exchange is
    // undone between MkdirAll's EEXIST and its look at what is there, which
    // then finds neither a directory nor an escape and keeps the EEXIST
    // (seen once in 2,000 rounds in CI, userspace resolver). Either way a
    // refusal; a breach is checked apart.
    if (label == "EEXIST") return absl::StartsWith(probe, "mkdirall");
    return label == "ENOENT" || label == "EAGAIN";
  }

  // root/<parent>/d, an inside directory holding etc/ (the probes' victim
  // directory), is exchanged again and again with root/<parent>/s, a
  // symlink to `target`. With `changes`, the calls that create and remove
  // are probed too (only for targets the test owns). InRoot scope re-roots
  // "/" and relative climbs at root/, so root/etc and root/outside/etc are
  // victim directories too.
  void DirSwap(const std::string& name, const std::string& parent,
               const std::string& target, bool changes, Attacker::Where where) {
    CaseDir c(temp_, name);
    const std::string p = parent.empty() ? "" : parent + "/";
    std::string made;
    for (absl::string_view part :
         absl::StrSplit(parent, '/', absl::SkipEmpty())) {
      made = made.empty() ? std::string(part) : absl::StrCat(made, "/", part);
      MakeDir(c.root(), made);
    }
    MakeDir(c.root(), p + "d");
    MakeVictimDir(c.root(), p + "d/etc", true);
    MakeSymlink(c.root(), absl::StrReplaceAll(target, {{"<CASE>", c.path()}}),
                p + "s");
    MakeVictimDir(c.root(), "etc", true);
    MakeDir(c.root(), "outside");
    MakeVictimDir(c.root(), "outside/etc", true);
    MakeVictimDir(c.outside(), "etc", false);
    Census census(c.path(), "root");
    capfs::Fd at = OpenPath(c.root(), parent.empty() ? "." : parent);
    capfs::Fd home = OpenPath(c.root(), p + "d/etc");
    capfs::Fd rerooted = OpenPath(c.root(), "etc");
    capfs::Fd rerooted_outside = OpenPath(c.root(), "outside/etc");
    Landing landing{{home.get(), rerooted.get(), rerooted_outside.get()},
                    &census};
    Dir dir = OpenRoot(c);
    std::vector<Probe> probes;
    const std::string via = p + "d/etc";
    AddDirProbes(dir, via, changes, census, landing, &probes);
    const std::string dotdot = p + "d/etc/../etc/passwd";
    probes.push_back({"read " + dotdot, [&] {
                        return OpenProbe(dir, dotdot, O_RDONLY, census);
                      }});
    const int at_fd = at.get();
    Attacker attacker(where, [at_fd] {
      return renameat2(at_fd, "d", at_fd, "s", RENAME_EXCHANGE) == 0;
    });
    Attack(name, c, attacker, probes, [at_fd] {
      if (IsSymlink(at_fd, "d")) {
        CheckOrDie(renameat2(at_fd, "d", at_fd, "s", RENAME_EXCHANGE) == 0,
                   "settle exchange");
      }
    });
  }

  TempDir temp_;
  int iterations_;
};

// A directory on the path exchanged with a symlink to "/" (read-only calls:
// the host's /etc is not the test's to change) and with an absolute symlink
// to the test's outside directory (every call), at depth 1 and at depth 4.
TEST_P(RaceTest, DirExchangedWithSymlinkToRoot) {
  DirSwap("depth1_to_slash", "", "/", false, Attacker::kThread);
  DirSwap("depth4_to_slash", "a/b/c", "/", false, Attacker::kThread);
}

TEST_P(RaceTest, DirExchangedWithSymlinkToOutsideDir) {
  DirSwap("depth1_to_outside", "", "<CASE>/outside", true, Attacker::kThread);
  DirSwap("depth4_to_outside", "a/b/c", "<CASE>/outside", true,
          Attacker::kThread);
}

// The docker-cp pattern (CVE-2018-15664), with the attacker in another
// process as a container would be: a path component exchanged with a
// relative symlink that climbs out, "../../../../etc"-style. The climb to
// the host's /etc is probed with reads; the climb to the test's outside
// directory with every call.
TEST_P(RaceTest, DockerCpRelativeSymlinkFromAnotherProcess) {
  std::string to_etc;
  for (int i = 0; i < 32; ++i) to_etc += "../";
  DirSwap("docker_cp_to_etc", "a/b", to_etc + "etc", false, Attacker::kProcess);
  DirSwap("docker_cp_to_outside", "a/b", "../../../outside", true,
          Attacker::kProcess);
}

// A directory being walked is moved outside the root while the walk is
// below it, then ".." is used: the attack the userspace resolver's stack of
// opened directories exists for ("foo/../bar" with foo moved away, where
// the kernel's own ".." would lead to the outside directory's bar).
TEST_P(RaceTest, DirMovedOutsideDuringDotDot) {
  CaseDir c(temp_, "moved_out");
  MakeDir(c.root(), "foo");
  MakeDir(c.root(), "foo/a");
  MakeDir(c.root(), "foo/a/b");
  MakeDir(c.root(), "foo/a/b/c");
  MakeFile(c.root(), "passwd", "inside root");
  MakeFile(c.root(), Marker("root", true), "");
  MakeSymlink(c.root(), "inside", "link");
  // What the moved directory's ".." leads to: outside/, with a twin of every
  // name the probes use.
  MakeFile(c.outside(), "passwd", "OUTSIDE");
  MakeFile(c.outside(), Marker("outside", false), "");
  MakeSymlink(c.outside(), "OUTSIDE", "link");
  MakeOutsideTwins(c.outside(), "");
  Census census(c.path(), "root");
  Landing landing{{c.root()}, &census};
  Dir dir = OpenRoot(c);
  std::vector<Probe> probes;
  AddDirProbes(dir, "foo/..", true, census, landing, &probes);
  // Deeper below foo, so that more walks are there when it moves.
  AddDirProbes(dir, "foo/a/b/c/../../../..", true, census, landing, &probes);
  const int root = c.root();
  const int outside = c.outside();
  // Each step moves foo out, or back in.
  Attacker attacker(Attacker::kThread, [root, outside] {
    return renameat(root, "foo", outside, "foo") == 0 ||
           renameat(outside, "foo", root, "foo") == 0;
  });
  Attack("moved_out", c, attacker, probes, [root, outside] {
    if (!Exists(root, "foo")) {
      CheckOrDie(renameat(outside, "foo", root, "foo") == 0, "move foo back");
    }
  });
}

// A file exchanged with a symlink to an outside file while it is opened
// (to read, to write, to create), stat'ed, read as a link and removed, at
// depth 1 (capfs's one-component fast path) and depth 2, with an absolute
// and a relative link. Removing changes the two names, so it runs on its
// own: the victim puts the names back itself after each removal (the
// attacker's exchange fails while one is missing).
TEST_P(RaceTest, FileExchangedWithSymlinkToOutsideFile) {
  struct Variant {
    std::string name;
    std::string dir;     // where f and l are, "" for the root
    std::string target;  // l's target; <CASE> is the case directory
    bool removal;        // probe Unlink only, else every other call
  };
  for (const Variant& v : std::vector<Variant>{
           {"file_depth1_absolute", "", "<CASE>/outside/victim", false},
           {"file_depth2_relative", "d", "../../outside/victim", false},
           {"file_depth1_absolute_unlink", "", "<CASE>/outside/victim", true},
           {"file_depth2_relative_unlink", "d", "../../outside/victim",
            true}}) {
    CaseDir c(temp_, v.name);
    const std::string p = v.dir.empty() ? "" : v.dir + "/";
    if (!v.dir.empty()) MakeDir(c.root(), v.dir);
    const std::string target =
        absl::StrReplaceAll(v.target, {{"<CASE>", c.path()}});
    MakeFile(c.root(), p + "f", "inside f");
    MakeSymlink(c.root(), target, p + "l");
    MakeFile(c.outside(), "victim", "OUTSIDE victim");
    capfs::Fd home = OpenPath(c.root(), v.dir.empty() ? "." : v.dir);
    capfs::Fd victim = OpenPath(c.outside(), "victim");
    Census census(c.path(), "root");
    Dir dir = OpenRoot(c);
    const std::string f = p + "f";
    const int h = home.get();
    std::vector<Probe> probes = {
        {"read " + f, [&] { return OpenProbe(dir, f, O_RDONLY, census); }},
        {"open O_WRONLY " + f,
         [&] { return OpenProbe(dir, f, O_WRONLY, census); }},
        {"open O_WRONLY|O_CREAT " + f,
         [&] { return OpenProbe(dir, f, O_WRONLY | O_CREAT, census); }},
        {"open O_NOFOLLOW " + f,
         [&] { return OpenProbe(dir, f, O_RDONLY | O_NOFOLLOW, census); }},
        {"stat " + f, [&] { return StatProbe(dir, f, true, census); }},
        {"lstat " + f, [&] { return StatProbe(dir, f, false, census); }},
    };
    std::vector<Probe> removal = {
        {"unlink " + f,
         [&] {
           absl::Status s = dir.Unlink(f);
           // Which of the two was at f: the other is at l now.
           Outcome o =
               !s.ok() ? Failed(s)
               : IsSymlink(h, "l")
                   ? Outcome{"removed from in:" +
                                 (v.dir.empty() ? "." : v.dir) + " (the file)",
                             ""}
                   : Outcome{"removed from in:" +
                                 (v.dir.empty() ? "." : v.dir) + " (the link)",
                             ""};
           struct stat st;
           CheckOrDie(fstat(victim.get(), &st) == 0, "fstat victim");
           if (st.st_nlink != 1) o.breach = "the outside file was removed";
           if (!s.ok()) return o;
           // Put f (a file) and l (the link) back. Whichever was at f is
           // gone; the other is at l, and stays there while f is missing.
           // The new object's inode is taken before its name is in place:
           // from then on the attacker may exchange it.
           struct stat made;
           if (IsSymlink(h, "l")) {
             int fd =
                 openat(h, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
             CheckOrDie(fd >= 0 && fstat(fd, &made) == 0 &&
                            write(fd, "inside f", 8) == 8,
                        "remake f");
             close(fd);
             census.AddInside(made, f);
           } else {
             CheckOrDie(renameat(h, "l", h, "f") == 0, "rename l f");
             MakeSymlink(h, target, "l.new");
             CheckOrDie(fstatat(h, "l.new", &made, AT_SYMLINK_NOFOLLOW) == 0,
                        "stat l.new");
             census.AddInside(made, p + "l");
             CheckOrDie(renameat(h, "l.new", h, "l") == 0, "rename l.new");
           }
           return o;
         }},
    };
    Attacker attacker(Attacker::kThread, [h] {
      return renameat2(h, "f", h, "l", RENAME_EXCHANGE) == 0;
    });
    Attack(v.name, c, attacker, v.removal ? removal : probes, [h] {
      if (IsSymlink(h, "f")) {
        CheckOrDie(renameat2(h, "f", h, "l", RENAME_EXCHANGE) == 0,
                   "settle exchange");
      }
    });
  }
}

// The root directory itself renamed while in use: its host path is
// exchanged with an impostor directory of the same shape (kept in outside/,
// so the check of the outside tree covers it). The Dir holds a descriptor,
// so every call must keep landing in the moved root and never in the
// impostor now at the old path.
TEST_P(RaceTest, RootRenamedWhileInUse) {
  CaseDir c(temp_, "root_renamed");
  MakeVictimDir(c.root(), "dir", true);
  MakeDir(c.root(), "dir/sub");
  MakeDir(c.outside(), "impostor");
  MakeVictimDir(c.outside(), "impostor/dir", false);
  MakeDir(c.outside(), "impostor/dir/sub");
  Census census(c.path(), "root");
  capfs::Fd home = OpenPath(c.root(), "dir");
  Landing landing{{home.get()}, &census};
  Dir dir = OpenRoot(c);
  std::vector<Probe> probes;
  AddDirProbes(dir, "dir", true, census, landing, &probes);
  AddDirProbes(dir, "dir/sub/..", true, census, landing, &probes);
  probes.push_back(
      {"stat .", [&] { return StatProbe(dir, ".", true, census); }});
  const int at = c.fd();
  const int outside = c.outside();
  struct stat real_root;
  CheckOrDie(fstat(c.root(), &real_root) == 0, "fstat root");
  Attacker attacker(Attacker::kThread, [at, outside] {
    return renameat2(at, "root", outside, "impostor", RENAME_EXCHANGE) == 0;
  });
  Attack("root_renamed", c, attacker, probes, [at, outside, &real_root] {
    struct stat st;
    CheckOrDie(fstatat(at, "root", &st, 0) == 0, "stat root");
    if (st.st_ino != real_root.st_ino) {
      CheckOrDie(
          renameat2(at, "root", outside, "impostor", RENAME_EXCHANGE) == 0,
          "settle exchange");
    }
  });
}

// The recursive calls (Walk, MkdirAll, RemoveAll) on a subtree in which a
// directory is exchanged again and again with a relative symlink that climbs
// to an outside directory of the same shape: none of them may follow the
// link out (Walk and RemoveAll never follow a symlink below their start;
// MkdirAll follows confined), list, create in or remove anything outside.
// RemoveAll removes the subtree each time; the victim builds it again (under
// another name, renamed into place) before each call.
TEST_P(RaceTest, RecursiveCallsUnderExchange) {
  CaseDir c(temp_, "recursive");
  MakeDir(c.root(), "w");
  MakeDir(c.outside(), "victimdir");
  MakeFile(c.outside(), "victimdir/f1", "OUTSIDE");
  MakeDir(c.outside(), "victimdir/sub");
  MakeFile(c.outside(), "victimdir/sub/f2", "OUTSIDE");
  capfs::Fd w = OpenPath(c.root(), "w");
  const int wfd = w.get();
  const int outside = c.outside();
  auto build = [wfd] {
    struct stat st;
    if (fstatat(wfd, "tmp", &st, AT_SYMLINK_NOFOLLOW) == 0) return;
    mkdirat(wfd, "tmp.new", 0755);
    mkdirat(wfd, "tmp.new/x", 0755);
    mkdirat(wfd, "tmp.new/x/sub", 0755);
    for (const char* f : {"tmp.new/x/f1", "tmp.new/x/sub/f2"}) {
      int fd = openat(wfd, f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
    }
    symlinkat("../../../outside/victimdir", wfd, "tmp.new/sx");
    CheckOrDie(renameat(wfd, "tmp.new", wfd, "tmp") == 0, "rename tmp.new");
  };
  build();
  Census census(c.path(), "root");
  Dir dir = OpenRoot(c);
  // Reached a known outside object (the census names those it took at the
  // start; objects the victim makes later are not in it).
  auto outside_object = [&census](const struct stat& st) {
    std::string name = census.Name(st.st_dev, st.st_ino);
    return absl::StartsWith(name, "OUT:") && !absl::StartsWith(name, "OUT:dev");
  };
  auto outside_changed = [outside] {
    return !Exists(outside, "victimdir/f1") ||
           !Exists(outside, "victimdir/sub/f2") ||
           Exists(outside, "victimdir/new");
  };
  std::vector<Probe> probes = {
      {"walk w/tmp",
       [&] {
         build();
         std::string breach;
         absl::Status s =
             dir.Walk("w/tmp",
                      [&](absl::string_view rel,
                          const capfs::FileStat& fs) -> absl::StatusOr<bool> {
                        struct stat st = {};
                        st.st_dev = fs.dev;
                        st.st_ino = fs.ino;
                        if (outside_object(st)) {
                          absl::StrAppend(&breach, " visited outside ", rel);
                        }
                        return true;
                      });
         if (!s.ok()) return Failed(s);
         return Outcome{"in:walk", breach};
       }},
      {"mkdirall w/tmp/x/new/deeper",
       [&] {
         build();
         absl::Status s = dir.MkdirAll("w/tmp/x/new/deeper", 0755);
         Outcome o = s.ok() ? Outcome{"made in w/tmp/x", ""} : Failed(s);
         if (outside_changed()) o.breach = "made a directory outside";
         return o;
       }},
      {"removeall w/tmp",
       [&] {
         build();
         absl::Status s = dir.RemoveAll("w/tmp");
         Outcome o = s.ok() ? Outcome{"removed from w", ""} : Failed(s);
         if (outside_changed()) o.breach = "removed something outside";
         return o;
       }},
  };
  Attacker attacker(Attacker::kThread, [wfd] {
    return renameat2(wfd, "tmp/x", wfd, "tmp/sx", RENAME_EXCHANGE) == 0;
  });
  Attack("recursive_exchange", c, attacker, probes, [wfd] {
    if (IsSymlink(wfd, "tmp/x")) {
      renameat2(wfd, "tmp/x", wfd, "tmp/sx", RENAME_EXCHANGE);
    }
  });
}

INSTANTIATE_TEST_SUITE_P(
    Resolvers, RaceTest,
    testing::Values(RaceParam{Resolver::kKernel, Scope::kBeneath},
                    RaceParam{Resolver::kUserspace, Scope::kBeneath},
                    RaceParam{Resolver::kKernel, Scope::kInRoot},
                    RaceParam{Resolver::kUserspace, Scope::kInRoot}),
    [](const testing::TestParamInfo<RaceParam>& info) {
      return ParamName(info.param);
    });

}  // namespace
}  // namespace capfs_test

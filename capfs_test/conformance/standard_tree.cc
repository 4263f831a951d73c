#include "capfs_test/conformance/standard_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "capfs_test/testing/temp_tree.h"

namespace capfs_test {
namespace {

void EmptyDir(const std::string& dir) {
  RemoveTree(dir);
  CheckOrDie(mkdir(dir.c_str(), 0755) == 0, "mkdir " + dir);
  CheckOrDie(chmod(dir.c_str(), 0755) == 0, "chmod " + dir);
}

void Fill(const std::string& case_dir) {
  std::string root = case_dir + "/root";
  std::string outside = case_dir + "/outside";
  int o = open(outside.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  CheckOrDie(o >= 0, "open outside");
  MakeFile(o, "secret", "secret");
  MakeDir(o, "dir");
  close(o);

  int r = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  CheckOrDie(r >= 0, "open root");
  MakeFile(r, "file", "file");
  MakeFile(r, "empty_file", "");
  MakeDir(r, "dir");
  MakeFile(r, "dir/inner", "inner");
  MakeDir(r, "dir/sub");
  MakeFile(r, "dir/sub/deep", "deep");
  MakeSymlink(r, "../../../outside/secret", "dir/sub/link_escape");
  MakeSymlink(r, "../file", "dir/link_up_in");
  MakeSymlink(r, "..", "dir/link_dotdot");
  MakeSymlink(r, "/dir/inner", "dir/link_abs_in");
  MakeDir(r, "empty");
  MakeSymlink(r, "file", "link_file");
  MakeSymlink(r, "dir", "link_dir");
  MakeSymlink(r, "dir/", "link_dir_slash");
  MakeSymlink(r, "dir/sub", "link_sub");
  MakeSymlink(r, "link_dir/sub", "link_rel_chain");
  MakeSymlink(r, outside + "/secret", "link_abs_out");
  MakeSymlink(r, "/", "link_abs_root");
  MakeSymlink(r, "..", "link_up");
  MakeSymlink(r, "../outside/secret", "link_out");
  MakeSymlink(r, "../outside", "link_out_dir");
  MakeSymlink(r, "../root/file", "link_out_back");
  MakeSymlink(r, ".", "link_dot");
  MakeSymlink(r, "missing", "dangling");
  MakeSymlink(r, "dir/newfile", "dangling_in_dir");
  MakeSymlink(r, "../outside/created", "dangling_out");
  MakeSymlink(r, "/created_abs", "dangling_abs");
  MakeSymlink(r, "missing_dir/", "dangling_slash");
  MakeSymlink(r, "loop_b", "loop_a");
  MakeSymlink(r, "loop_a", "loop_b");
  MakeSymlink(r, "self_loop", "self_loop");
  MakeSymlink(r, "/proc/self", "proc_self");
  // c1 -> file, c2 -> c1, ..., c41 -> c40: following cN takes N steps.
  MakeSymlink(r, "file", "c1");
  for (int i = 2; i <= 41; ++i) {
    MakeSymlink(r, absl::StrCat("c", i - 1), absl::StrCat("c", i));
  }
  MakeSymlink(r, "dir", "d1");
  for (int i = 2; i <= 40; ++i) {
    MakeSymlink(r, absl::StrCat("d", i - 1), absl::StrCat("d", i));
  }
  // Names longer than NAME_MAX met through links, where the path's own check
  // cannot see them.
  MakeSymlink(r, std::string(256, 'n'), "link_long");
  MakeSymlink(r, std::string(256, 'n') + "/", "link_long_slash");
  MakeSymlink(r, "noexec/" + std::string(256, 'n'), "link_noexec_long");
  // Permissions that root (with its capabilities) would bypass.
  MakeDir(r, "noexec");  // rw-: may list, may not search
  MakeFile(r, "noexec/file", "nx");
  MakeDir(r, "noexec/sub");
  ChmodAt(r, "noexec", 0600);
  MakeDir(r, "noread");  // -wx: may search, may not list
  MakeFile(r, "noread/file", "nr");
  ChmodAt(r, "noread", 0300);
  MakeDir(r, "locked");
  MakeFile(r, "locked/file", "l");
  ChmodAt(r, "locked", 0000);
  MakeFile(r, "secret_file", "s", 0000);
  MakeDir(r, "ro_dir");
  MakeFile(r, "ro_dir/file", "ro");
  ChmodAt(r, "ro_dir", 0555);
  close(r);
}

}  // namespace

void BuildStandardTree(const std::string& case_dir) {
  EmptyDir(case_dir + "/root");
  EmptyDir(case_dir + "/outside");
  Fill(case_dir);
}

void RebuildStandardTree(const std::string& case_dir) {
  for (const char* d : {"/root", "/outside"}) {
    std::string dir = case_dir + d;
    RemoveContents(dir);
    // What chmod and chown of "." changed (the directory itself stays, so
    // that descriptors of it stay valid).
    CheckOrDie(lchown(dir.c_str(), 0, 0) == 0, "lchown " + dir);
    CheckOrDie(chmod(dir.c_str(), 0755) == 0, "chmod " + dir);
  }
  Fill(case_dir);
}

}  // namespace capfs_test

namespace capfs_test {
namespace {

std::vector<PathCase> MakePaths() {
  constexpr Leaves N = Leaves::kNo;
  constexpr Leaves F = Leaves::kWhenFollowed;
  constexpr Leaves Y = Leaves::kYes;
  std::vector<PathCase> paths = {
      // Plain names, directories, trailing slashes, "." and "..".
      {"", N},
      {"file", N},
      {"empty_file", N},
      {"dir", N},
      {"dir/", N},
      {"dir//", N},
      {"dir/inner", N},
      {"dir/inner/", N},
      {"dir/sub/deep", N},
      {"empty", N},
      {"missing", N},
      {"missing/", N},
      {"missing/x", N},
      {"dir/missing", N},
      {".", N},
      {"./", N},
      {"./file", N},
      {".//dir///inner", N},
      {"dir/.", N},
      {"dir/./inner", N},
      {"dir/..", N},
      {"dir/../", N},
      {"dir/../file", N},
      {"dir/sub/../inner", N},
      {"dir/sub/../../file", N},
      {"file/", N},
      {"file/.", N},
      {"file/..", N},
      {"file/x", N},
      // Symlinks that stay inside.
      {"link_file", N},
      {"link_file/", N},
      {"link_dir", N},
      {"link_dir/", N},
      {"link_dir/inner", N},
      {"link_dir/../file", N},
      {"link_dir_slash", N},
      {"link_dir_slash/inner", N},
      {"link_sub/deep", N},
      {"link_sub/../inner", N},
      {"link_rel_chain/deep", N},
      {"dir/link_up_in", N},
      {"dir/link_dotdot", N},
      {"dir/link_dotdot/file", N},
      {"link_dot", N},
      {"link_dot/file", N},
      {"link_dot/link_dot/file", N},
      // Dangling links, loops, and the 40-symlink budget.
      {"dangling", N},
      {"dangling/", N},
      {"dangling_in_dir", N},
      {"dangling_slash", N},
      {"dangling_slash/", N},
      {"loop_a", N},
      {"loop_a/", N},
      {"loop_a/x", N},
      {"self_loop", N},
      {"self_loop/x", N},
      {"c39", N},
      {"c40", N},
      {"c41", N},
      {"c40/", N},
      {"d40/inner", N},
      {"d40/", N},
      {"d39/../c1", N},
      {"d40/../c1", N},
      // Links whose target leaves: an escape only when followed.
      {"link_up", F},
      {"link_up/", F},
      {"link_out", F},
      {"link_out/", F},
      {"link_out_dir", F},
      {"link_out_back", F},
      {"link_out_back/", F},
      {"dangling_out", F},
      {"dangling_out/", F},
      {"dir/sub/link_escape", F},
      {"dir/sub/link_escape/", F},
      {"dir/link_abs_in", F},
      {"dir/link_abs_in/", F},
      {"link_abs_out", F},
      {"link_abs_root", F},
      {"link_abs_root/", F},
      {"dangling_abs", F},
      {"proc_self", F},
      // Paths that leave, or leave and come back: always an escape.
      {"..", Y},
      {"../", Y},
      {"./..", Y},
      {"../outside/secret", Y},
      {"../root/file", Y},
      {"dir/../..", Y},
      {"dir/../../root/file", Y},
      {"dir/sub/../../..", Y},
      {"dir/..//../outside", Y},
      {"link_up/file", Y},
      {"link_up/root/file", Y},
      {"link_out_dir/secret", Y},
      {"link_abs_root/file", Y},
      {"link_sub/../../..", Y},
      {"dir/link_dotdot/..", Y},
      {"link_dot/..", Y},
      {"dir/link_abs_in/../inner", Y},
      // Escapes after more than 20 symlinks: openat2 restarts its walk when
      // ".." leaves the root and counts the first attempt's links again, so
      // it says ELOOP; they are escapes all the same. (The double count
      // needs the d chain cached, which the paths above see to.)
      {"d21/../..", Y},
      {"d39/../..", Y},
      {"d40/../../outside", Y},
      // Absolute paths (kAbsolutePath in Beneath scope).
      {"/", N},
      {"//", N},
      {"/file", N},
      {"/dir/inner", N},
      {"/..", N},
      {"/../file", N},
      {"/../../dir/", N},
      {"/link_abs_root/file", N},
      {"/dir/link_abs_in", N},
      {"/link_up/file", N},
      {"/link_out", N},
      {"/dangling_abs", N},
      // Long names and paths: the kernel's limits.
      {std::string(256, 'a'), N, false, "Name256"},
      {"link_long", N},
      {"link_long_slash", N},
      {"link_long/", N},
      {"link_long_slash/x", N},
      {"dir/" + std::string(255, 'a'), N, false, "Dir_Name255"},
  };
  // 4095 bytes resolve; 4096 are ENAMETOOLONG.
  std::string dots;
  for (int i = 0; i < 2043; ++i) dots += "./";
  paths.push_back({"dir/" + dots + "inner", N, false, "Dir_Dot2043_Inner"});
  paths.push_back({"dir//" + dots + "inner", N, false, "Dir__Dot2043_Inner"});
  std::string ups;
  for (int i = 0; i < 500; ++i) ups += "sub/../";
  paths.push_back({"dir/" + ups + "inner", N, false, "Dir_SubUp500_Inner"});
  // Permission bits (the case runs without capabilities).
  for (const char* p :
       {"noexec", "noexec/", "noexec/file", "noexec/..", "noexec/../file",
        "noexec/sub/..", "noread", "noread/", "noread/file", "noread/..",
        "locked", "locked/file", "secret_file", "ro_dir/new", "ro_dir/file",
        "ro_dir/file/", "link_noexec_long", "link_noexec_long/", "noexec/x/"}) {
    paths.push_back({p, N, true});
  }
  return paths;
}

// One component in CamelCase: "link_file" is LinkFile, "c40" is C40.
std::string ComponentName(absl::string_view component) {
  if (component == ".") return "Dot";
  if (component == "..") return "Up";
  std::string out;
  bool upper = true;
  for (char c : component) {
    if (c == '_') {
      upper = true;
    } else if (c == '.') {
      out += "Dot";
      upper = true;
    } else {
      CheckOrDie(absl::ascii_isalnum(static_cast<unsigned char>(c)),
                 absl::StrCat("no name for a path with '", std::string(1, c),
                              "': give the case a name"));
      out += upper ? absl::ascii_toupper(static_cast<unsigned char>(c)) : c;
      upper = false;
    }
  }
  return out;
}

}  // namespace

std::string PathName(const PathCase& pc) {
  if (!pc.name.empty()) return pc.name;
  if (pc.path.empty()) return "EmptyPath";
  std::vector<std::string> names;
  for (absl::string_view component : absl::StrSplit(pc.path, '/')) {
    names.push_back(ComponentName(component));
  }
  // A leading slash left an empty first component.
  if (pc.path[0] == '/') names[0] = "Abs";
  return absl::StrJoin(names, "_");
}

void PrintTo(const PathCase& pc, std::ostream* os) {
  *os << '"' << pc.path.substr(0, 64) << (pc.path.size() > 64 ? "...\"" : "\"");
}

const std::vector<PathCase>& StandardPaths() {
  static const std::vector<PathCase>* paths = [] {
    auto* out = new std::vector<PathCase>(MakePaths());
    std::map<std::string, std::string> paths_by_name;
    for (const PathCase& pc : *out) {
      std::string name = PathName(pc);
      CheckOrDie(name.size() <= 64, "path case name too long: " + name);
      auto [at, added] = paths_by_name.emplace(name, pc.path);
      CheckOrDie(added, absl::StrCat("path case name twice: ", name, " for \"",
                                     at->second.substr(0, 64), "\" and \"",
                                     pc.path.substr(0, 64), "\""));
    }
    return out;
  }();
  return *paths;
}

}  // namespace capfs_test

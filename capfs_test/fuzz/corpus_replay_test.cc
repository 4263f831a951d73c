// Replays the resolver fuzzer's checked-in corpus and seed programs through
// the same differential check the fuzzer runs, so every CI run keeps what
// fuzzing found; and shows that each of the check's alarms can go off.

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "capfs_test/fuzz/differential.h"
#include "capfs_test/fuzz/program.h"
#include "capfs_test/fuzz/seeds.h"
#include "gtest/gtest.h"

namespace capfs_fuzz {
namespace {

constexpr char kCorpusDir[] = "capfs_test/fuzz/corpus";

// One Differential for the whole binary: it drops the capabilities, and
// keeps descriptors of its sentinels open, so it is made before the first
// test (whose descriptor-leak check would count them).
Differential& Shared() {
  static Differential d;  // removes its trees at exit
  return d;
}

class SharedDifferential : public testing::Environment {
 public:
  void SetUp() override { Shared(); }
};
const testing::Environment* const kShared =
    testing::AddGlobalTestEnvironment(new SharedDifferential);

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> files;
  if (DIR* d = opendir(kCorpusDir)) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') files.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

TEST(SeedsTest, EncodeAndDecodeBackToTheSameProgram) {
  std::vector<Seed> seeds = SeedPrograms();
  ASSERT_GE(seeds.size(), 20u);
  for (const Seed& seed : seeds) {
    absl::StatusOr<std::string> bytes = Encode(seed.program);
    ASSERT_TRUE(bytes.ok()) << seed.name << ": " << bytes.status();
    Program back =
        Decode(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    EXPECT_EQ(ShowProgram(back), ShowProgram(seed.program)) << seed.name;
  }
}

TEST(SeedsTest, ResolversAgreeAndNothingEscapes) {
  for (const Seed& seed : SeedPrograms()) {
    std::string log;
    EXPECT_EQ(Shared().Run(seed.program, &log), "") << seed.name << "\n" << log;
  }
}

// The outcomes each resolver logged for operation `index` of a run's log.
std::string OutcomesOf(const std::string& log, int index) {
  const std::string head = absl::StrCat("\nop #", index, " ");
  size_t start = log.find(head);
  if (start == std::string::npos) return "";
  size_t end = log.find("\nop #", start + head.size());
  return log.substr(start, end == std::string::npos ? end : end - start);
}

// The seed that goes deeper than the userspace resolver's window must reach
// its levels: agreeing on ENOENT everywhere would check nothing.
TEST(SeedsTest, PastTheWindowReachesWhatItNames) {
  struct Expected {
    int op;
    const char* beneath;  // what both resolvers say, in each scope
    const char* in_root;
  };
  const Expected kExpected[] = {
      {0, "ok", "ok"},                     // MkdirAll of 130 levels
      {1, "ok root/a/a", "ok root/a/a"},   // 130 down
      {2, "ok root/a/a", "ok root/a/a"},   // 130 down, 70 up
      {3, "ok root/b", "ok root/b"},       // 70 down, 70 up
      {4, "refused: escape", "ok root "},  // one more up
      {5, "refused: escape", "errno ENOENT"},
      {7, "ok root/b", "ok root/b"},            // through a 70-up symlink
      {10, "refused: escape", "errno ENOENT"},  // a host path
      {12, "ok", "ok"},  // MkdirAll from level 70 to level 140
      {13, "refused: escape", "errno ENOENT"},  // 70 up from level 70
      {14, "refused: escape", "errno ENOENT"},  // 70 down, 140 up
      {15, "ok [", "ok ["},                     // walk 10 levels
      {17, "ok root/b", "ok root/b"},  // down and up the moved level 70
      {20, "ok root/b", "ok root/b"},
  };
  int checked = 0;
  for (const Seed& seed : SeedPrograms()) {
    if (!absl::StartsWith(seed.name, "past-the-window")) continue;
    const bool beneath = seed.program.scope == capfs::Scope::kBeneath;
    std::string log;
    ASSERT_EQ(Shared().Run(seed.program, &log), "") << seed.name << log;
    for (const Expected& e : kExpected) {
      std::string outcomes = OutcomesOf(log, e.op);
      const char* want = beneath ? e.beneath : e.in_root;
      EXPECT_TRUE(
          absl::StrContains(outcomes, absl::StrCat("kernel:    ", want)))
          << seed.name << " op " << e.op << ":" << outcomes;
      EXPECT_TRUE(
          absl::StrContains(outcomes, absl::StrCat("userspace: ", want)))
          << seed.name << " op " << e.op << ":" << outcomes;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * static_cast<int>(std::size(kExpected)));
}

TEST(CorpusTest, ResolversAgreeAndNothingEscapes) {
  std::vector<std::string> files = CorpusFiles();
  // The seeds alone are 40-odd files: an empty or missing corpus is a
  // packaging mistake, not a pass.
  ASSERT_GE(files.size(), 40u) << "corpus not found in " << kCorpusDir;
  for (const std::string& name : files) {
    std::string data = ReadFile(std::string(kCorpusDir) + "/" + name);
    Program program =
        Decode(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    std::string log;
    EXPECT_EQ(Shared().Run(program, &log), "") << name << "\n" << log;
  }
}

TEST(DecodeTest, AnyBytesDecode) {
  // Every prefix of every corpus file, and some patterns, decode without
  // crashing (the sanitizer builds check the memory side).
  std::vector<std::string> inputs = {
      std::string(), std::string(1, '\xff'), std::string(4096, '\xff'),
      std::string(4096, '\0'), std::string(4096, '\xe1')};
  for (const std::string& name : CorpusFiles()) {
    inputs.push_back(ReadFile(std::string(kCorpusDir) + "/" + name));
  }
  size_t ops = 0;
  for (const std::string& in : inputs) {
    for (size_t n = 0; n <= in.size(); n += 1 + n / 8) {
      Program p = Decode(reinterpret_cast<const uint8_t*>(in.data()), n);
      EXPECT_LE(p.ops.size(), static_cast<size_t>(kMaxOps));
      EXPECT_LE(p.tree.size(), static_cast<size_t>(kMaxTreeEntries));
      ops += p.ops.size();
    }
  }
  EXPECT_GT(ops, 0u);
}

// The alarms: each tampering below must be caught.

Program Parse(std::vector<Operation> ops, capfs::Scope scope) {
  Program p;
  p.scope = scope;
  TreeEntry a;
  a.kind = TreeEntry::kFile;
  a.path = "a";
  a.mode = 0644;
  p.tree.push_back(a);
  p.ops = std::move(ops);
  return p;
}

Operation OpOn(OpKind kind, const std::string& path) {
  Operation op;
  op.kind = kind;
  op.path = ParsePathSpec(path);
  return op;
}

class AlarmTest : public testing::TestWithParam<capfs::Scope> {
 protected:
  void TearDown() override { Shared().SetTamperForTest(nullptr); }
};

TEST_P(AlarmTest, ADifferentOutcomeIsADivergence) {
  Shared().SetTamperForTest([](int twin, const std::string& case_dir) {
    if (twin == 1) unlink((case_dir + "/root/a").c_str());
  });
  std::string failure =
      Shared().Run(Parse({OpOn(OpKind::kStat, "a")}, GetParam()));
  EXPECT_TRUE(absl::StartsWith(failure, "DIVERGENCE")) << failure;
}

TEST_P(AlarmTest, ADifferentTreeAfterwardsIsCaught) {
  // Both Unlinks succeed, but twin B had a second name to lose.
  Shared().SetTamperForTest([](int twin, const std::string& case_dir) {
    if (twin == 1) symlink("x", (case_dir + "/root/z").c_str());
  });
  std::string failure =
      Shared().Run(Parse({OpOn(OpKind::kUnlink, "a")}, GetParam()));
  EXPECT_TRUE(absl::StartsWith(failure, "TREES DIFFER")) << failure;
}

TEST_P(AlarmTest, ReachingOutsideIsAnEscape) {
  // A hard link to the sentinel's file: whatever reaches it reached outside.
  Shared().SetTamperForTest([](int, const std::string& case_dir) {
    link((case_dir + "/outside/secret").c_str(),
         (case_dir + "/root/h").c_str());
  });
  std::string failure =
      Shared().Run(Parse({OpOn(OpKind::kStat, "h")}, GetParam()));
  EXPECT_TRUE(absl::StartsWith(failure, "ESCAPE")) << failure;
  EXPECT_TRUE(absl::StrContains(failure, "outside/secret")) << failure;
}

TEST_P(AlarmTest, AMarkerMadeInsideIsNoEscape) {
  // The sentinel's marker name read back is an escape, unless the program
  // made it beneath root/ itself (the fuzzer learns strings it is compared
  // with): no false alarm then.
  Program p = Parse({OpOn(OpKind::kReadDir, "."), OpOn(OpKind::kReadLink, "m")},
                    GetParam());
  Operation link = OpOn(OpKind::kSymlink, "m");
  link.path2 = ParsePathSpec("ESCAPE-MARKER-target");
  p.ops.insert(p.ops.begin(), link);
  Operation file = OpOn(OpKind::kOpenAt, "ESCAPE-MARKER");
  file.flags = O_WRONLY | O_CREAT;
  file.mode = 0640;
  p.ops.insert(p.ops.begin(), file);
  EXPECT_EQ(Shared().Run(p), "");
}

TEST_P(AlarmTest, AChangedSentinelIsCaught) {
  Shared().SetTamperForTest([](int twin, const std::string& case_dir) {
    if (twin == 0) unlink((case_dir + "/outside/secret").c_str());
  });
  std::string failure = Shared().Run(Parse({}, GetParam()));
  EXPECT_TRUE(absl::StartsWith(failure, "OUTSIDE CHANGED")) << failure;
  // And the sentinel is put back for what runs next.
  Shared().SetTamperForTest(nullptr);
  EXPECT_EQ(Shared().Run(Parse({}, GetParam())), "");
}

TEST_P(AlarmTest, ALeakedDescriptorIsCaught) {
  int leaked = -1;
  Shared().SetTamperForTest([&](int twin, const std::string& case_dir) {
    if (twin == 0) leaked = open(case_dir.c_str(), O_PATH | O_CLOEXEC);
  });
  std::string failure = Shared().Run(Parse({}, GetParam()));
  ASSERT_GE(leaked, 0);
  close(leaked);
  EXPECT_TRUE(absl::StartsWith(failure, "FD LEAK")) << failure;
}

TEST(PlainOracleTest, AnAnswerOtherThanThePlainCallsIsCaught) {
  // Beneath scope: twin C (index 2) answers with the plain call.
  Shared().SetTamperForTest([](int twin, const std::string& case_dir) {
    if (twin == 2) unlink((case_dir + "/root/a").c_str());
  });
  std::string failure =
      Shared().Run(Parse({OpOn(OpKind::kStat, "a")}, capfs::Scope::kBeneath));
  Shared().SetTamperForTest(nullptr);
  EXPECT_TRUE(absl::StartsWith(failure, "NOT THE KERNEL'S ANSWER")) << failure;
}

INSTANTIATE_TEST_SUITE_P(Scopes, AlarmTest,
                         testing::Values(capfs::Scope::kBeneath,
                                         capfs::Scope::kInRoot));

}  // namespace
}  // namespace capfs_fuzz

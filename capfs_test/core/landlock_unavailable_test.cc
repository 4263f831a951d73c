// Landlock on a kernel without it: landlock_create_ruleset fails as it does
// there (ENOSYS: not built in; EOPNOTSUPP: disabled at boot), injected with a
// seccomp filter in a forked child. A binary of its own, because LandlockAbi
// is probed once per process: no test here may call it in the parent.

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "capfs/capfs.h"
#include "capfs_test/testing/child.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace {

// Makes every landlock_create_ruleset in this process fail with `err`.
bool FailLandlock(int err) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return false;
  bool ok = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err),
                             SCMP_SYS(landlock_create_ruleset), 0) == 0 &&
            seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

// What a child sees of capfs's Landlock under the filter, one fact a line.
std::string Observe(const std::string& dir_path) {
  std::string out;
  absl::StrAppend(&out, "abi: ", LandlockAbi(), "\n");
  absl::StatusOr<Dir> dir = Dir::Open(dir_path);
  if (!dir.ok()) return dir.status().ToString();
  absl::StatusOr<Landlock> strict =
      Landlock::Build({{&*dir, Access::kRead}}, {.strict = true});
  absl::StrAppend(&out, "strict: ", strict.status().ToString(), "\n");
  absl::StatusOr<Landlock> null_dir =
      Landlock::Build({{nullptr, Access::kRead}});
  absl::StrAppend(&out, "null dir: ",
                  absl::StatusCodeToString(null_dir.status().code()), "\n");
  absl::StatusOr<Landlock> l = Landlock::Build({{&*dir, Access::kRead}});
  if (!l.ok()) return absl::StrCat(out, "build: ", l.status().ToString());
  absl::StrAppend(&out, "built abi: ", l->abi(),
                  ", fully enforced: ", l->fully_enforced(),
                  ", ruleset fd: ", l->ruleset_fd(),
                  ", child flags: ", l->child_restrict_flags(), "\n");
  absl::StrAppend(&out, "describe: ", l->Describe(), "\n");
  absl::StrAppend(&out, "restrict: ", l->RestrictSelf().ToString(), "\n");
  absl::StrAppend(
      &out, "no_new_privs: ", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), "\n");
  int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  absl::StrAppend(&out, "/etc/passwd after: ", fd >= 0 ? "readable" : "refused",
                  "\n");
  if (fd >= 0) close(fd);
  return out;
}

TEST(LandlockUnavailableTest, BestEffortEnforcesNothingAndStrictRefuses) {
  capfs_test::TempDir temp;
  const std::string expected =
      "abi: 0\n"
      "strict: FAILED_PRECONDITION: Landlock::Build (strict): Landlock ABI 0 "
      "cannot enforce filesystem rules (Landlock unavailable, needs ABI 3)\n"
      "null dir: INVALID_ARGUMENT\n"
      "built abi: 0, fully enforced: 0, ruleset fd: -1, child flags: 0\n"
      "describe: Landlock unavailable (the kernel has none or it is "
      "disabled): nothing enforced\n"
      "restrict: OK\n"
      "no_new_privs: 1\n"
      "/etc/passwd after: readable\n";
  for (int err : {ENOSYS, EOPNOTSUPP}) {
    absl::StatusOr<std::string> out =
        capfs_test::RunInChild({}, [&]() -> std::string {
          if (!FailLandlock(err)) return "seccomp filter not loaded";
          return Observe(temp.path());
        });
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, expected) << "errno " << err;
  }
}

}  // namespace
}  // namespace capfs

// Errors: errno and violations survive in the status, and messages name the
// operation and the path without letting a hostile path forge a line.

#include "capfs/status.h"

#include <errno.h>

#include <string>

#include "gtest/gtest.h"

namespace capfs {
namespace {

TEST(StatusTest, ErrnoErrorKeepsErrnoAndCanonicalCode) {
  struct Case {
    int err;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {EEXIST, absl::StatusCode::kAlreadyExists},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {EINVAL, absl::StatusCode::kInvalidArgument},
      {ENAMETOOLONG, absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    absl::Status s = ErrnoError(c.err, "openat", "a/b");
    EXPECT_EQ(s.code(), c.code) << c.err;
    EXPECT_EQ(ErrnoOf(s), c.err);
    EXPECT_EQ(ViolationOf(s), Violation::kNone);
  }
}

TEST(StatusTest, MessageNamesOperationAndPath) {
  EXPECT_EQ(ErrnoError(ENOENT, "mkdir", "d/x").message(),
            "mkdir(\"d/x\"): No such file or directory");
  EXPECT_EQ(ViolationError(Violation::kEscape, "openat", "a/../../x").message(),
            "openat(\"a/../../x\"): path escapes the directory");
  EXPECT_EQ(ErrnoError(EBADF, "close", "").message(),
            "close: Bad file descriptor");
}

TEST(StatusTest, HostilePathCannotForgeAMessage) {
  std::string path = "x\"): ok\nfake";
  path.push_back('\0');
  std::string message(ErrnoError(ENOENT, "stat", path).message());
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(message.find('\0'), std::string::npos);
  EXPECT_NE(message.find("\\\""), std::string::npos);
}

TEST(StatusTest, Violations) {
  absl::Status escape = ViolationError(Violation::kEscape, "stat", "..");
  EXPECT_EQ(escape.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ViolationOf(escape), Violation::kEscape);
  EXPECT_EQ(ErrnoOf(escape), EXDEV);
  EXPECT_EQ(ReasonOf(escape), "path escapes the directory");

  absl::Status absolute = ViolationError(Violation::kAbsolutePath, "stat", "/");
  EXPECT_EQ(ViolationOf(absolute), Violation::kAbsolutePath);
  EXPECT_EQ(ErrnoOf(absolute), 0);

  absl::Status read_only = ViolationError(Violation::kReadOnly, "mkdir", "d");
  EXPECT_EQ(ViolationOf(read_only), Violation::kReadOnly);
  EXPECT_EQ(ErrnoOf(read_only), 0);
  EXPECT_EQ(ReasonOf(read_only), "directory is read-only");
}

TEST(StatusTest, ForeignAndOkStatuses) {
  EXPECT_EQ(ErrnoOf(absl::OkStatus()), 0);
  EXPECT_EQ(ViolationOf(absl::OkStatus()), Violation::kNone);
  absl::Status other = absl::InternalError("boom");
  EXPECT_EQ(ErrnoOf(other), 0);
  EXPECT_EQ(ViolationOf(other), Violation::kNone);
  EXPECT_EQ(ReasonOf(other), "boom");
  EXPECT_EQ(ReasonOf(ErrnoError(ENOENT, "x", "y")),
            "No such file or directory");
}

}  // namespace
}  // namespace capfs

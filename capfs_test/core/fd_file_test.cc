// Fd ownership, and the I/O calls on an open Fd.

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/time/time.h"
#include "capfs/fd.h"
#include "capfs/file.h"
#include "capfs/status.h"
#include "capfs_test/testing/temp_tree.h"
#include "gtest/gtest.h"

namespace capfs {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

TEST(FdTest, OwnsAndCloses) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(FdTest, MoveTransfersOwnership) {
  Fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = a.get();
  Fd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the contract
  EXPECT_EQ(b.get(), raw);
  Fd c(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int replaced = c.get();
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_FALSE(IsOpen(replaced));
}

TEST(FdTest, ReleaseAndClose) {
  Fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = fd.release();
  EXPECT_FALSE(fd.valid());
  EXPECT_TRUE(IsOpen(raw));
  Fd again(raw);
  EXPECT_TRUE(again.Close().ok());
  EXPECT_FALSE(IsOpen(raw));
  EXPECT_TRUE(again.Close().ok());  // closing an empty Fd is OK
  EXPECT_FALSE(Fd(-5).valid());
}

class FileTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string path = temp_.Join("f");
    fd_ = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd_.valid());
  }
  capfs_test::TempDir temp_;
  Fd fd_;
};

TEST_F(FileTest, WriteSeekRead) {
  ASSERT_TRUE(WriteAll(fd_, "hello world").ok());
  absl::StatusOr<off_t> pos = Seek(fd_, 6, Whence::kSet);
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(*pos, 6);
  char buf[16];
  absl::StatusOr<size_t> n = Read(fd_, absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");
  EXPECT_EQ(*Read(fd_, absl::MakeSpan(buf)), 0u);  // end of file
  EXPECT_EQ(*Seek(fd_, -5, Whence::kEnd), 6);
  EXPECT_EQ(*Seek(fd_, 1, Whence::kCurrent), 7);
}

TEST_F(FileTest, PositionalIoLeavesTheOffset) {
  ASSERT_TRUE(PWrite(fd_, "abcdef", 10).ok());
  char buf[3];
  absl::StatusOr<size_t> n = PRead(fd_, absl::MakeSpan(buf), 12);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "cde");
  EXPECT_EQ(*Seek(fd_, 0, Whence::kCurrent), 0);
}

TEST_F(FileTest, VectoredIo) {
  char a[] = "ab", b[] = "cde";
  struct iovec out[] = {{a, 2}, {b, 3}};
  absl::StatusOr<size_t> n = WriteV(fd_, out);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  ASSERT_TRUE(Seek(fd_, 0, Whence::kSet).ok());
  char x[3] = {}, y[2] = {};
  struct iovec in[] = {{x, 3}, {y, 2}};
  n = ReadV(fd_, in);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(x, 3) + std::string(y, 2), "abcde");
}

TEST_F(FileTest, TruncateSyncStat) {
  ASSERT_TRUE(WriteAll(fd_, "0123456789").ok());
  ASSERT_TRUE(Ftruncate(fd_, 4).ok());
  ASSERT_TRUE(Fsync(fd_).ok());
  absl::StatusOr<FileStat> st = Fstat(fd_);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->kind, FileKind::kRegular);
  EXPECT_EQ(st->size, 4u);
  EXPECT_EQ(st->perm, 0600u);
  EXPECT_EQ(st->nlink, 1u);
  ASSERT_TRUE(Seek(fd_, 0, Whence::kSet).ok());
  absl::StatusOr<std::string> all = ReadAll(fd_);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, "0123");
}

TEST_F(FileTest, ReadAllRespectsItsLimit) {
  ASSERT_TRUE(WriteAll(fd_, std::string(100, 'x')).ok());
  ASSERT_TRUE(Seek(fd_, 0, Whence::kSet).ok());
  absl::StatusOr<std::string> all = ReadAll(fd_, 99);
  EXPECT_EQ(ErrnoOf(all.status()), EFBIG);
  // The code file.h documents for it (absl's mapping of EFBIG).
  EXPECT_EQ(all.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(FileErrorsTest, ErrorsKeepErrno) {
  Fd closed;
  char buf[1];
  EXPECT_EQ(ErrnoOf(Read(closed, absl::MakeSpan(buf)).status()), EBADF);
  EXPECT_EQ(ErrnoOf(Write(closed, "x").status()), EBADF);
  EXPECT_EQ(ErrnoOf(Fstat(closed).status()), EBADF);
  EXPECT_EQ(ErrnoOf(Fsync(closed)), EBADF);
  Fd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_EQ(ErrnoOf(Read(dir, absl::MakeSpan(buf)).status()), EISDIR);
}

// FileStatFromStat's timestamps are absl::TimeFromTimespec's, on each side of
// the range its inline conversion takes (whole nanoseconds within about 290
// years of 1970) and of the epoch.
struct TimeCase {
  const char* name;
  struct timespec ts;
};

class StatTimeTest : public testing::TestWithParam<TimeCase> {};

TEST_P(StatTimeTest, MatchesAbseil) {
  struct stat st = {};
  st.st_atim = GetParam().ts;
  st.st_mtim = GetParam().ts;
  st.st_ctim = GetParam().ts;
  FileStat fs = FileStatFromStat(st);
  absl::Time want = absl::TimeFromTimespec(GetParam().ts);
  EXPECT_EQ(fs.atime, want);
  EXPECT_EQ(fs.mtime, want);
  EXPECT_EQ(fs.ctime, want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, StatTimeTest,
    testing::Values(TimeCase{"Epoch", {0, 0}},
                    TimeCase{"JustAfterEpoch", {0, 1}},
                    TimeCase{"JustBeforeEpoch", {-1, 999999999}},
                    TimeCase{"Now", {1796256000, 123456789}},
                    TimeCase{"Year1000", {-30610224000, 5}},
                    TimeCase{"Year3000", {32503680000, 999999999}},
                    TimeCase{"LastInlineSecond", {9223372035, 854775807}},
                    TimeCase{"FirstGeneralSecond", {9223372036, 0}},
                    TimeCase{"FarPast", {-9223372036, 0}},
                    TimeCase{"Int64Max", {INT64_MAX, 0}},
                    TimeCase{"Int64Min", {INT64_MIN, 0}},
                    TimeCase{"NanosecondsNotNormalized", {5, 1500000000}},
                    TimeCase{"NegativeNanoseconds", {5, -1}}),
    [](const testing::TestParamInfo<TimeCase>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace capfs

// Lexical path facts: CheckPath's limits, trailing slashes, SplitLast and
// component reading.

#include "capfs/path.h"

#include <errno.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace capfs {
namespace {

TEST(CheckPathTest, AcceptsOrRejectsAsTheKernelWould) {
  struct Case {
    std::string path;
    int err;
  };
  const std::vector<Case> cases = {
      {"file", 0},
      {"a/b/../c/", 0},
      {"/abs", 0},
      {"", ENOENT},
      {std::string("a\0b", 3), EINVAL},
      {std::string("\0", 1), EINVAL},
      {std::string(kNameMax, 'n'), 0},
      {std::string(kNameMax + 1, 'n'), ENAMETOOLONG},
      {"d/" + std::string(kNameMax + 1, 'n') + "/x", ENAMETOOLONG},
      {std::string(kPathMax - 1, '/'), 0},
      {std::string(kPathMax, '/'), ENAMETOOLONG},
      {"\xff\xfe invalid utf-8", 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CheckPath(c.path), c.err)
        << "path of " << c.path.size() << " bytes";
  }
}

TEST(PathTest, AbsoluteAndTrailingSlash) {
  EXPECT_TRUE(IsAbsolute("/"));
  EXPECT_TRUE(IsAbsolute("//x"));
  EXPECT_FALSE(IsAbsolute("x/"));
  EXPECT_FALSE(IsAbsolute(""));
  EXPECT_TRUE(HasTrailingSlash("a/"));
  EXPECT_TRUE(HasTrailingSlash("a/b//"));
  EXPECT_FALSE(HasTrailingSlash("/"));
  EXPECT_FALSE(HasTrailingSlash("///"));
  EXPECT_FALSE(HasTrailingSlash("a"));
}

TEST(PathTest, KindOf) {
  EXPECT_EQ(KindOf("."), ComponentKind::kDot);
  EXPECT_EQ(KindOf(".."), ComponentKind::kDotDot);
  EXPECT_EQ(KindOf("..."), ComponentKind::kName);
  EXPECT_EQ(KindOf(".x"), ComponentKind::kName);
}

TEST(PathTest, SplitLast) {
  struct Case {
    const char* path;
    const char* parent;
    const char* last;
  };
  const Case cases[] = {
      {"a/b/c", "a/b/", "c"}, {"a/b/c/", "a/b/", "c/"},
      {"c", "", "c"},         {"/c", "/", "c"},
      {"//", "//", ""},       {"a//b//", "a//", "b//"},
      {"..", "", ".."},       {"a/..", "a/", ".."},
  };
  for (const Case& c : cases) {
    PathSplit s = SplitLast(c.path);
    EXPECT_EQ(s.parent, c.parent) << c.path;
    EXPECT_EQ(s.last, c.last) << c.path;
  }
}

TEST(ComponentReaderTest, SkipsEmptyComponentsAndReportsSlashes) {
  ComponentReader r("//a//b/../c/");
  std::vector<std::string> names;
  std::vector<bool> slashes;
  Component c;
  while (r.Next(&c)) {
    names.emplace_back(c.name);
    slashes.push_back(c.slash_follows);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "..", "c"}));
  EXPECT_EQ(slashes, (std::vector<bool>{true, true, true, true}));
  EXPECT_TRUE(r.Done());
}

TEST(ComponentReaderTest, DoneWhenOnlySlashesRemain) {
  ComponentReader r("x///");
  Component c;
  ASSERT_TRUE(r.Next(&c));
  EXPECT_EQ(c.name, "x");
  EXPECT_TRUE(r.Done());
  EXPECT_FALSE(r.Next(&c));
}

}  // namespace
}  // namespace capfs

#include "capfs/path.h"

#include <errno.h>
#include <string.h>

namespace capfs {
namespace {

// The scans below run on every path of every call: plain memchr and loops
// inline here, where absl::string_view's find family is an out-of-line call.

// The position of the first '/' at or after `pos`, or npos.
size_t FindSlash(absl::string_view s, size_t pos) {
  const void* p = memchr(s.data() + pos, '/', s.size() - pos);
  return p == nullptr
             ? absl::string_view::npos
             : static_cast<size_t>(static_cast<const char*>(p) - s.data());
}

// The position of the first byte other than '/' at or after `pos`, or npos.
size_t SkipSlashes(absl::string_view s, size_t pos) {
  while (pos < s.size() && s[pos] == '/') ++pos;
  return pos < s.size() ? pos : absl::string_view::npos;
}

}  // namespace

int CheckPath(absl::string_view path) {
  if (path.empty()) return ENOENT;
  if (memchr(path.data(), '\0', path.size()) != nullptr) return EINVAL;
  if (path.size() >= kPathMax) return ENAMETOOLONG;
  // No component is longer than the whole path: short paths need no scan.
  if (path.size() <= kNameMax) return 0;
  size_t run = 0;
  for (char ch : path) {
    run = (ch == '/') ? 0 : run + 1;
    if (run > kNameMax) return ENAMETOOLONG;
  }
  return 0;
}

bool HasTrailingSlash(absl::string_view path) {
  return !path.empty() && path.back() == '/' &&
         path.find_first_not_of('/') != absl::string_view::npos;
}

ComponentKind KindOf(absl::string_view component) {
  if (component == ".") return ComponentKind::kDot;
  if (component == "..") return ComponentKind::kDotDot;
  return ComponentKind::kName;
}

PathSplit SplitLast(absl::string_view path) {
  size_t end = path.find_last_not_of('/');
  if (end == absl::string_view::npos) return {path, absl::string_view()};
  size_t slash = path.rfind('/', end);
  size_t start = (slash == absl::string_view::npos) ? 0 : slash + 1;
  return {path.substr(0, start), path.substr(start)};
}

bool ComponentReader::Next(Component* c) {
  size_t start = SkipSlashes(rest_, 0);
  if (start == absl::string_view::npos) {
    rest_ = absl::string_view();
    return false;
  }
  size_t end = FindSlash(rest_, start);
  if (end == absl::string_view::npos) {
    c->name = rest_.substr(start);
    c->slash_follows = false;
    rest_ = absl::string_view();
  } else {
    c->name = rest_.substr(start, end - start);
    c->slash_follows = true;
    rest_ = rest_.substr(end);
  }
  return true;
}

bool ComponentReader::Done() const {
  return SkipSlashes(rest_, 0) == absl::string_view::npos;
}

}  // namespace capfs

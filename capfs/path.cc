#include "capfs/path.h"

#include <errno.h>

namespace capfs {

int CheckPath(absl::string_view path) {
  if (path.empty()) return ENOENT;
  if (path.find('\0') != absl::string_view::npos) return EINVAL;
  if (path.size() >= kPathMax) return ENAMETOOLONG;
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
  size_t start = rest_.find_first_not_of('/');
  if (start == absl::string_view::npos) {
    rest_ = absl::string_view();
    return false;
  }
  size_t end = rest_.find('/', start);
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
  return rest_.find_first_not_of('/') == absl::string_view::npos;
}

}  // namespace capfs

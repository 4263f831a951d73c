#include "capfs/status.h"

#include <errno.h>
#include <string.h>

#include <string>
#include "absl/types/optional.h"

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace capfs {
namespace {

constexpr absl::string_view kErrnoUrl = "type.capfs.dev/capfs.Errno";
constexpr absl::string_view kViolationUrl = "type.capfs.dev/capfs.Violation";

absl::string_view ViolationReason(Violation v) {
  switch (v) {
    case Violation::kAbsolutePath:
      return "absolute path not allowed in a confined directory";
    case Violation::kEscape:
      return "path escapes the directory";
    case Violation::kReadOnly:
      return "directory is read-only";
    case Violation::kNone:
      break;
  }
  return "no violation";
}

std::string StrError(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer to the message, in buf or static.
  return strerror_r(err, buf, sizeof(buf));
}

std::string Subject(absl::string_view op, absl::string_view path) {
  if (path.empty()) return std::string(op);
  return absl::StrCat(op, "(\"", absl::CHexEscape(path), "\")");
}

int PayloadInt(const absl::Status& s, absl::string_view url) {
  absl::optional<absl::Cord> payload = s.GetPayload(url);
  int value = 0;
  if (!payload.has_value() ||
      !absl::SimpleAtoi(std::string(*payload), &value)) {
    return 0;
  }
  return value;
}

}  // namespace

int ErrnoOf(const absl::Status& s) {
  if (s.ok()) return 0;
  return PayloadInt(s, kErrnoUrl);
}

Violation ViolationOf(const absl::Status& s) {
  if (s.ok()) return Violation::kNone;
  switch (PayloadInt(s, kViolationUrl)) {
    case static_cast<int>(Violation::kAbsolutePath):
      return Violation::kAbsolutePath;
    case static_cast<int>(Violation::kEscape):
      return Violation::kEscape;
    case static_cast<int>(Violation::kReadOnly):
      return Violation::kReadOnly;
    default:
      return Violation::kNone;
  }
}

std::string ReasonOf(const absl::Status& s) {
  Violation v = ViolationOf(s);
  if (v != Violation::kNone) return std::string(ViolationReason(v));
  if (int err = ErrnoOf(s); err != 0) return StrError(err);
  return std::string(s.message());
}

absl::Status ErrnoError(int err, absl::string_view op, absl::string_view path) {
  absl::Status s(absl::ErrnoToStatusCode(err),
                 absl::StrCat(Subject(op, path), ": ", StrError(err)));
  s.SetPayload(kErrnoUrl, absl::Cord(absl::StrCat(err)));
  return s;
}

absl::Status ViolationError(Violation v, absl::string_view op,
                            absl::string_view path) {
  absl::Status s(absl::StatusCode::kPermissionDenied,
                 absl::StrCat(Subject(op, path), ": ", ViolationReason(v)));
  s.SetPayload(kViolationUrl, absl::Cord(absl::StrCat(static_cast<int>(v))));
  if (v == Violation::kEscape) {
    s.SetPayload(kErrnoUrl, absl::Cord(absl::StrCat(EXDEV)));
  }
  return s;
}

}  // namespace capfs

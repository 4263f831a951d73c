#include "capfs_test/fuzz/program.h"

#include <fcntl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace capfs_fuzz {
namespace {

// The component table. Names of the tree come first and most often; "" makes
// "a//b"; the host paths make absolute links that point inside by host path,
// at the sentinel, or at the case directory; the long ones reach NAME_MAX and
// (two of kDots) PATH_MAX; the deep ones go down 70 or 130 levels of "a" and
// up 70: deeper than the userspace resolver's window of descriptors, so that
// a ".." past it reopens an ancestor (MkdirAll makes the levels).
std::string Repeat(absl::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, s);
  return out;
}

const std::vector<Piece>& Components() {
  static const std::vector<Piece>* table = new std::vector<Piece>{
      {Piece::kText, "a"},
      {Piece::kText, "b"},
      {Piece::kText, "c"},
      {Piece::kText, "d"},
      {Piece::kText, "e"},
      {Piece::kText, "f"},
      {Piece::kText, "g"},
      {Piece::kText, "h"},
      {Piece::kText, "."},
      {Piece::kText, ".."},
      {Piece::kText, ""},
      {Piece::kText, ".."},
      {Piece::kText, "x"},
      {Piece::kText, "root"},
      {Piece::kText, "outside"},
      {Piece::kText, "secret"},
      {Piece::kCaseDir, ""},
      {Piece::kRoot, ""},
      {Piece::kOutside, ""},
      {Piece::kText, std::string(255, 'n')},
      {Piece::kText, std::string(256, 'n')},
      // 2047 bytes of "./.": two of them joined are 4095 bytes, the longest
      // path the kernel takes.
      {Piece::kText, "." + Repeat("/.", 1023)},
      {Piece::kText, Repeat("a/", 69) + "a"},
      {Piece::kText, Repeat("a/", 129) + "a"},
      {Piece::kText, Repeat("../", 69) + ".."},
  };
  return *table;
}

// The table's runs down (70 and 130 levels of "a"). One path takes at most
// one: a second decodes as "a". MkdirAll makes each prefix of its path in
// turn, so its cost grows with the square of the levels it makes, and paths
// of many runs (up to 1,950 levels) made programs that ran for seconds.
bool IsRunDown(size_t index) {
  const size_t n = Components().size();
  return index == n - 3 || index == n - 2;
}

constexpr uint8_t kRawToken = 0xE0;  // 0xE0 + n: n raw bytes follow
constexpr size_t kMaxComponents = 15;

constexpr mode_t kDirModes[8] = {0755, 0755, 0755, 0755,
                                 0300, 0600, 0500, 0000};
constexpr mode_t kFileModes[8] = {0644, 0644, 0644, 0644,
                                  0000, 0444, 0600, 0200};
constexpr mode_t kCreateMode = 0640;

constexpr OpKind kOpTable[16] = {
    OpKind::kOpenAt, OpKind::kOpenAt,  OpKind::kOpenAt,   OpKind::kOpenDir,
    OpKind::kMkdir,  OpKind::kUnlink,  OpKind::kRmdir,    OpKind::kRename,
    OpKind::kRename, OpKind::kSymlink, OpKind::kReadLink, OpKind::kStat,
    OpKind::kLstat,  OpKind::kReadDir, OpKind::kOpenAt,   OpKind::kStat,
};
// Index 15 (a second kStat before these existed) is followed by a byte that
// picks one of these.
constexpr int kExtraIndex = 15;
constexpr OpKind kExtraOps[] = {
    OpKind::kStat,
    OpKind::kMkdirAll,
    OpKind::kRemoveAll,
    OpKind::kWalk,
    OpKind::kWriteFile,
    OpKind::kReadFile,
    OpKind::kTruncate,
    OpKind::kChmod,
    OpKind::kLink,
    OpKind::kSetTimes,
    OpKind::kChown,
    OpKind::kLchown,
    OpKind::kRenameNoReplace,
    OpKind::kRenameExchange,
};
constexpr size_t kExtraCount = sizeof(kExtraOps) / sizeof(kExtraOps[0]);

// The OpenAt flags byte: bits 0-1 access (O_RDONLY, O_WRONLY, O_RDWR,
// O_TMPFILE), then O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_PATH,
// O_TRUNC. With O_TMPFILE, the O_TRUNC bit asks for O_RDONLY (which the
// kernel refuses) instead of O_RDWR.
constexpr int kFlagBits[6] = {O_CREAT,     O_EXCL, O_NOFOLLOW,
                              O_DIRECTORY, O_PATH, O_TRUNC};
constexpr uint8_t kTmpfileAccess = 3;
constexpr uint8_t kTmpfileReadOnly = 0x80;

int DecodeFlags(uint8_t b) {
  static constexpr int kAccess[3] = {O_RDONLY, O_WRONLY, O_RDWR};
  int flags;
  if ((b & 3) == kTmpfileAccess) {
    flags = O_TMPFILE | ((b & kTmpfileReadOnly) ? O_RDONLY : O_RDWR);
    b &= static_cast<uint8_t>(~kTmpfileReadOnly);
  } else {
    flags = kAccess[b & 3];
  }
  for (int i = 0; i < 6; ++i) {
    if (b & (4 << i)) flags |= kFlagBits[i];
  }
  return flags;
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  // The next byte, or 0 past the end.
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

void AppendText(PathSpec* spec, absl::string_view text) {
  if (text.empty()) return;
  if (!spec->empty() && spec->back().kind == Piece::kText) {
    absl::StrAppend(&spec->back().text, text);
  } else {
    spec->push_back(Piece{Piece::kText, std::string(text)});
  }
}

PathSpec DecodePath(Reader& r) {
  uint8_t h = r.Byte();
  size_t count = h & 15;
  const bool absolute = h & 16;
  const bool trailing = h & 32;
  absl::string_view sep = (h & 64) ? "//" : "/";
  absl::string_view trail = (h & 128) ? "//" : "/";
  PathSpec spec;
  if (absolute) AppendText(&spec, "/");
  bool ran_down = false;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) AppendText(&spec, sep);
    uint8_t t = r.Byte();
    if (t >= kRawToken) {
      AppendText(&spec, r.Bytes(t - kRawToken));
      continue;
    }
    size_t index = t % Components().size();
    if (IsRunDown(index)) {
      if (ran_down) index = 0;
      ran_down = true;
    }
    const Piece& c = Components()[index];
    if (c.kind == Piece::kText) {
      AppendText(&spec, c.text);
    } else {
      spec.push_back(c);
    }
  }
  if (trailing) AppendText(&spec, trail);
  return spec;
}

std::string Escape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    // Abbreviate long runs of one byte, and of "/.".
    size_t run = 1;
    while (i + run < s.size() && s[i + run] == s[i]) ++run;
    if (run > 8) {
      absl::StrAppend(&out, "<", run, "x'", Escape(s.substr(i, 1)), "'>");
      i += run;
      continue;
    }
    bool abbreviated = false;
    for (absl::string_view unit : {"/.", "a/", "../"}) {
      size_t units = 0;
      while (s.substr(i + unit.size() * units, unit.size()) == unit) ++units;
      if (units > 4) {
        absl::StrAppend(&out, "<", units, "x'", unit, "'>");
        i += unit.size() * units;
        abbreviated = true;
        break;
      }
    }
    if (abbreviated) continue;
    unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch >= 0x7f || ch == '\\' || ch == '"') {
      static const char kHex[] = "0123456789abcdef";
      absl::StrAppend(&out, "\\x", std::string(1, kHex[ch >> 4]),
                      std::string(1, kHex[ch & 15]));
    } else {
      out.push_back(static_cast<char>(ch));
    }
    ++i;
  }
  return out;
}

// Encoding.

absl::StatusOr<int> ComponentIndex(absl::string_view c) {
  Piece::Kind kind = Piece::kText;
  if (c == "@CASE") kind = Piece::kCaseDir;
  if (c == "@ROOT") kind = Piece::kRoot;
  if (c == "@OUT") kind = Piece::kOutside;
  const std::vector<Piece>& table = Components();
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].kind == kind && (kind != Piece::kText || table[i].text == c)) {
      return static_cast<int>(i);
    }
  }
  return absl::NotFoundError("not in the component table");
}

// `text` must have no raw bytes that need escaping; host paths as @CASE,
// @ROOT, @OUT components.
absl::Status EncodePath(absl::string_view text, std::string* out) {
  uint8_t h = 0;
  if (!text.empty() && text.front() == '/') {
    h |= 16;
    text.remove_prefix(1);
  }
  if (!text.empty() && text.back() == '/') {
    h |= 32;
    text.remove_suffix(1);
  }
  // Components are split at '/', except that the entries of the table that
  // hold slashes (the long "./././." and the deep runs) are taken whole where
  // they appear, the longest first.
  std::vector<absl::string_view> parts;
  for (size_t pos = 0; !text.empty() && pos <= text.size();) {
    absl::string_view rest = text.substr(pos);
    size_t len = rest.find('/');
    size_t whole = 0;
    for (const Piece& c : Components()) {
      if (c.kind != Piece::kText || c.text.size() <= whole ||
          !absl::StrContains(c.text, '/')) {
        continue;
      }
      if (absl::StartsWith(rest, c.text) &&
          (rest.size() == c.text.size() || rest[c.text.size()] == '/')) {
        whole = c.text.size();
      }
    }
    if (whole > 0) len = whole;
    if (len == absl::string_view::npos) len = rest.size();
    parts.push_back(rest.substr(0, len));
    pos += len + 1;
  }
  if (parts.size() > kMaxComponents) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many components in \"", text, "\""));
  }
  h |= static_cast<uint8_t>(parts.size());
  out->push_back(static_cast<char>(h));
  bool ran_down = false;
  for (absl::string_view p : parts) {
    absl::StatusOr<int> i = ComponentIndex(p);
    if (i.ok() && IsRunDown(static_cast<size_t>(*i))) {
      if (ran_down) {
        return absl::InvalidArgumentError(
            absl::StrCat("more than one run down in \"", text, "\""));
      }
      ran_down = true;
    }
    if (i.ok()) {
      out->push_back(static_cast<char>(*i));
    } else if (p.size() < 0x20) {
      out->push_back(static_cast<char>(kRawToken + p.size()));
      out->append(p.data(), p.size());
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("component too long for a raw token: ", p));
    }
  }
  return absl::OkStatus();
}

absl::Status EncodeSpec(const PathSpec& spec, std::string* out) {
  // Specs given to Encode are written as text (ParsePathSpec); turn them back.
  std::string text;
  for (const Piece& p : spec) {
    switch (p.kind) {
      case Piece::kText:
        absl::StrAppend(&text, p.text);
        break;
      case Piece::kCaseDir:
        absl::StrAppend(&text, "@CASE");
        break;
      case Piece::kRoot:
        absl::StrAppend(&text, "@ROOT");
        break;
      case Piece::kOutside:
        absl::StrAppend(&text, "@OUT");
        break;
    }
  }
  return EncodePath(text, out);
}

template <size_t N>
absl::StatusOr<uint8_t> ModeIndex(const mode_t (&table)[N], mode_t mode) {
  for (size_t i = 0; i < N; ++i) {
    if (table[i] == mode) return static_cast<uint8_t>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mode ", mode, " not in table"));
}

absl::StatusOr<uint8_t> EncodeFlags(int flags) {
  uint8_t b = 0;
  if ((flags & O_TMPFILE) == O_TMPFILE) {
    if (flags & O_TRUNC) {
      return absl::InvalidArgumentError("O_TMPFILE with O_TRUNC");
    }
    switch (flags & O_ACCMODE) {
      case O_RDWR:
        b = kTmpfileAccess;
        break;
      case O_RDONLY:
        b = kTmpfileAccess | kTmpfileReadOnly;
        break;
      default:
        return absl::InvalidArgumentError("O_TMPFILE with O_WRONLY");
    }
    flags &= ~(O_TMPFILE | O_ACCMODE);
  } else {
    switch (flags & O_ACCMODE) {
      case O_RDONLY:
        b = 0;
        break;
      case O_WRONLY:
        b = 1;
        break;
      case O_RDWR:
        b = 2;
        break;
      default:
        return absl::InvalidArgumentError("bad access mode");
    }
    flags &= ~O_ACCMODE;
  }
  for (int i = 0; i < 6; ++i) {
    if (flags & kFlagBits[i]) {
      b |= static_cast<uint8_t>(4 << i);
      flags &= ~kFlagBits[i];
    }
  }
  if (flags != 0) return absl::InvalidArgumentError("flags the format lacks");
  return b;
}

std::string FlagNames(int flags) {
  std::vector<std::string> names;
  if ((flags & O_TMPFILE) == O_TMPFILE) {
    names.push_back("O_TMPFILE");
    flags &= ~O_TMPFILE;
  }
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      names.push_back("O_RDONLY");
      break;
    case O_WRONLY:
      names.push_back("O_WRONLY");
      break;
    default:
      names.push_back("O_RDWR");
      break;
  }
  static const std::pair<int, const char*> kNamed[] = {
      {O_CREAT, "O_CREAT"},       {O_EXCL, "O_EXCL"},
      {O_NOFOLLOW, "O_NOFOLLOW"}, {O_DIRECTORY, "O_DIRECTORY"},
      {O_PATH, "O_PATH"},         {O_TRUNC, "O_TRUNC"}};
  for (const auto& [bit, name] : kNamed) {
    if (flags & bit) names.push_back(name);
  }
  return absl::StrJoin(names, "|");
}

const char* OpName(OpKind kind) {
  switch (kind) {
    case OpKind::kOpenAt:
      return "OpenAt";
    case OpKind::kOpenDir:
      return "OpenDir";
    case OpKind::kMkdir:
      return "Mkdir";
    case OpKind::kUnlink:
      return "Unlink";
    case OpKind::kRmdir:
      return "Rmdir";
    case OpKind::kRename:
      return "Rename";
    case OpKind::kSymlink:
      return "Symlink";
    case OpKind::kReadLink:
      return "ReadLink";
    case OpKind::kStat:
      return "Stat";
    case OpKind::kLstat:
      return "Lstat";
    case OpKind::kReadDir:
      return "ReadDir";
    case OpKind::kMkdirAll:
      return "MkdirAll";
    case OpKind::kRemoveAll:
      return "RemoveAll";
    case OpKind::kWalk:
      return "Walk";
    case OpKind::kWriteFile:
      return "WriteFile";
    case OpKind::kReadFile:
      return "ReadFile";
    case OpKind::kTruncate:
      return "Truncate";
    case OpKind::kChmod:
      return "Chmod";
    case OpKind::kLink:
      return "Link";
    case OpKind::kSetTimes:
      return "SetTimes";
    case OpKind::kChown:
      return "Chown";
    case OpKind::kLchown:
      return "Lchown";
    case OpKind::kRenameNoReplace:
      return "RenameNoReplace";
    case OpKind::kRenameExchange:
      return "RenameExchange";
  }
  return "?";
}

}  // namespace

std::string Render(const PathSpec& spec, absl::string_view case_dir) {
  std::string out;
  for (const Piece& p : spec) {
    switch (p.kind) {
      case Piece::kText:
        absl::StrAppend(&out, p.text);
        break;
      case Piece::kCaseDir:
        absl::StrAppend(&out, case_dir);
        break;
      case Piece::kRoot:
        absl::StrAppend(&out, case_dir, "/root");
        break;
      case Piece::kOutside:
        absl::StrAppend(&out, case_dir, "/outside");
        break;
    }
  }
  return out;
}

std::string Show(const PathSpec& spec) {
  std::string out = "\"";
  for (const Piece& p : spec) {
    switch (p.kind) {
      case Piece::kText:
        absl::StrAppend(&out, Escape(p.text));
        break;
      case Piece::kCaseDir:
        absl::StrAppend(&out, "@CASE");
        break;
      case Piece::kRoot:
        absl::StrAppend(&out, "@ROOT");
        break;
      case Piece::kOutside:
        absl::StrAppend(&out, "@OUT");
        break;
    }
  }
  return out + "\"";
}

PathSpec ParsePathSpec(absl::string_view text) {
  PathSpec spec;
  std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) AppendText(&spec, "/");
    absl::string_view p = parts[i];
    if (p == "@CASE") {
      spec.push_back(Piece{Piece::kCaseDir, ""});
    } else if (p == "@ROOT") {
      spec.push_back(Piece{Piece::kRoot, ""});
    } else if (p == "@OUT") {
      spec.push_back(Piece{Piece::kOutside, ""});
    } else {
      AppendText(&spec, p);
    }
  }
  return spec;
}

Program Decode(const uint8_t* data, size_t size) {
  Reader r(data, size);
  Program prog;
  uint8_t h = r.Byte();
  prog.scope = (h & 1) ? capfs::Scope::kInRoot : capfs::Scope::kBeneath;
  prog.read_only = (h & 0x0E) == 0x0E;

  std::vector<std::string> dirs = {""};
  std::vector<std::string> taken;
  size_t count = r.Byte() % (kMaxTreeEntries + 1);
  for (size_t i = 0; i < count && !r.done(); ++i) {
    uint8_t k = r.Byte();
    uint8_t n = r.Byte();
    TreeEntry e;
    static constexpr TreeEntry::Kind kKinds[4] = {
        TreeEntry::kDir, TreeEntry::kFile, TreeEntry::kSymlink,
        TreeEntry::kSymlink};
    e.kind = kKinds[k & 3];
    const std::string& parent = dirs[((k >> 2) & 7) % dirs.size()];
    e.path = parent.empty() ? kNames[n % 8]
                            : absl::StrCat(parent, "/", kNames[n % 8]);
    if (e.kind == TreeEntry::kSymlink) {
      e.target = DecodePath(r);
    } else {
      // Not `(dir ? kDirModes : kFileModes)[k >> 5]`: g++ 12 with
      // -fsanitize=shift (--config=asan) miscompiles a shifted index into a
      // conditional array, here into the previous iteration's value.
      const mode_t* modes = e.kind == TreeEntry::kDir ? kDirModes : kFileModes;
      e.mode = modes[k >> 5];
    }
    // A name is created once; a later entry with the same path is dropped
    // (its bytes are still consumed, so the rest decodes the same).
    if (std::find(taken.begin(), taken.end(), e.path) != taken.end()) continue;
    taken.push_back(e.path);
    if (e.kind == TreeEntry::kDir) dirs.push_back(e.path);
    prog.tree.push_back(std::move(e));
  }

  while (!r.done() && prog.ops.size() < static_cast<size_t>(kMaxOps)) {
    uint8_t b = r.Byte();
    Operation op;
    op.kind = kOpTable[b & 15];
    if ((b & 15) == kExtraIndex) op.kind = kExtraOps[r.Byte() % kExtraCount];
    op.slot = (b >> 4) & 3;
    op.to_slot = (b >> 6) & 3;
    switch (op.kind) {
      case OpKind::kOpenAt:
        op.flags = DecodeFlags(r.Byte());
        if ((op.flags & O_CREAT) || (op.flags & O_TMPFILE) == O_TMPFILE) {
          op.mode = kCreateMode;
        }
        op.path = DecodePath(r);
        break;
      case OpKind::kMkdir:
        op.mode = kDirModes[r.Byte() & 7];
        op.path = DecodePath(r);
        break;
      case OpKind::kMkdirAll:
        op.mode = kDirModes[r.Byte() & 7];
        op.path = DecodePath(r);
        break;
      case OpKind::kRename:
      case OpKind::kSymlink:
      case OpKind::kLink:
      case OpKind::kRenameNoReplace:
      case OpKind::kRenameExchange:
        op.path = DecodePath(r);
        op.path2 = DecodePath(r);
        break;
      default:
        op.path = DecodePath(r);
        break;
    }
    if (op.kind == OpKind::kWriteFile) op.mode = kCreateMode;
    if (op.kind == OpKind::kChmod) op.mode = 0700;
    if (!HasDestination(op.kind)) op.to_slot = 0;
    prog.ops.push_back(std::move(op));
  }
  return prog;
}

absl::StatusOr<std::string> Encode(const Program& prog) {
  std::string out;
  uint8_t h = prog.scope == capfs::Scope::kInRoot ? 1 : 0;
  if (prog.read_only) h |= 0x0E;
  out.push_back(static_cast<char>(h));
  if (prog.tree.size() > static_cast<size_t>(kMaxTreeEntries)) {
    return absl::InvalidArgumentError("too many tree entries");
  }
  out.push_back(static_cast<char>(prog.tree.size()));
  std::vector<std::string> dirs = {""};
  for (const TreeEntry& e : prog.tree) {
    size_t slash = e.path.rfind('/');
    std::string parent =
        slash == std::string::npos ? "" : e.path.substr(0, slash);
    std::string name =
        slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    auto pit = std::find(dirs.begin(), dirs.end(), parent);
    if (pit == dirs.end() || pit - dirs.begin() >= 8) {
      return absl::InvalidArgumentError(
          absl::StrCat("parent of ", e.path, " not among the first 8 dirs"));
    }
    auto nit = std::find_if(std::begin(kNames), std::end(kNames),
                            [&](const char* n) { return name == n; });
    if (nit == std::end(kNames)) {
      return absl::InvalidArgumentError(absl::StrCat("bad name ", e.path));
    }
    uint8_t k = static_cast<uint8_t>((pit - dirs.begin()) << 2);
    switch (e.kind) {
      case TreeEntry::kDir: {
        absl::StatusOr<uint8_t> m = ModeIndex(kDirModes, e.mode);
        if (!m.ok()) return m.status();
        k |= static_cast<uint8_t>(0 | (*m << 5));
        dirs.push_back(e.path);
        break;
      }
      case TreeEntry::kFile: {
        absl::StatusOr<uint8_t> m = ModeIndex(kFileModes, e.mode);
        if (!m.ok()) return m.status();
        k |= static_cast<uint8_t>(1 | (*m << 5));
        break;
      }
      case TreeEntry::kSymlink:
        k |= 2;
        break;
    }
    out.push_back(static_cast<char>(k));
    out.push_back(static_cast<char>(nit - std::begin(kNames)));
    if (e.kind == TreeEntry::kSymlink) {
      if (absl::Status s = EncodeSpec(e.target, &out); !s.ok()) return s;
    }
  }
  if (prog.ops.size() > static_cast<size_t>(kMaxOps)) {
    return absl::InvalidArgumentError("too many ops");
  }
  for (const Operation& op : prog.ops) {
    int kind_index = -1;
    int extra = -1;
    for (int i = 0; i < kExtraIndex; ++i) {
      if (kOpTable[i] == op.kind) {
        kind_index = i;
        break;
      }
    }
    for (size_t i = 1; kind_index < 0 && i < kExtraCount; ++i) {
      if (kExtraOps[i] == op.kind) {
        kind_index = kExtraIndex;
        extra = static_cast<int>(i);
      }
    }
    if (op.slot < 0 || op.slot >= kMaxSlots || op.to_slot < 0 ||
        op.to_slot >= kMaxSlots) {
      return absl::InvalidArgumentError("bad slot");
    }
    out.push_back(
        static_cast<char>(kind_index | (op.slot << 4) | (op.to_slot << 6)));
    if (extra >= 0) out.push_back(static_cast<char>(extra));
    switch (op.kind) {
      case OpKind::kMkdirAll: {
        absl::StatusOr<uint8_t> m = ModeIndex(kDirModes, op.mode);
        if (!m.ok()) return m.status();
        out.push_back(static_cast<char>(*m));
        break;
      }
      case OpKind::kOpenAt: {
        absl::StatusOr<uint8_t> f = EncodeFlags(op.flags);
        if (!f.ok()) return f.status();
        out.push_back(static_cast<char>(*f));
        break;
      }
      case OpKind::kMkdir: {
        absl::StatusOr<uint8_t> m = ModeIndex(kDirModes, op.mode);
        if (!m.ok()) return m.status();
        out.push_back(static_cast<char>(*m));
        break;
      }
      default:
        break;
    }
    if (absl::Status s = EncodeSpec(op.path, &out); !s.ok()) return s;
    if (HasDestination(op.kind) || op.kind == OpKind::kSymlink) {
      if (absl::Status s = EncodeSpec(op.path2, &out); !s.ok()) return s;
    }
  }
  return out;
}

std::string ShowOp(const Operation& op) {
  std::string out = absl::StrCat(OpName(op.kind), "(");
  if (op.slot != 0) absl::StrAppend(&out, "dir#", op.slot, ", ");
  switch (op.kind) {
    case OpKind::kOpenAt:
      absl::StrAppend(&out, Show(op.path), ", ", FlagNames(op.flags));
      break;
    case OpKind::kMkdir:
      absl::StrAppend(&out, Show(op.path), absl::StrFormat(", 0%o", op.mode));
      break;
    case OpKind::kRename:
    case OpKind::kLink:
    case OpKind::kRenameNoReplace:
    case OpKind::kRenameExchange:
      absl::StrAppend(&out, Show(op.path), ", dir#", op.to_slot, ", ",
                      Show(op.path2));
      break;
    case OpKind::kSymlink:
      absl::StrAppend(&out, "target ", Show(op.path2), ", ", Show(op.path));
      break;
    default:
      absl::StrAppend(&out, Show(op.path));
      break;
  }
  return out + ")";
}

std::string ShowProgram(const Program& prog) {
  std::string out = absl::StrCat(
      "scope ", prog.scope == capfs::Scope::kInRoot ? "InRoot" : "Beneath",
      prog.read_only ? ", read-only" : "", "\ntree:\n");
  for (const TreeEntry& e : prog.tree) {
    switch (e.kind) {
      case TreeEntry::kDir:
        absl::StrAppend(&out, "  dir  ", e.path,
                        absl::StrFormat(" 0%o", e.mode), "\n");
        break;
      case TreeEntry::kFile:
        absl::StrAppend(&out, "  file ", e.path,
                        absl::StrFormat(" 0%o", e.mode), "\n");
        break;
      case TreeEntry::kSymlink:
        absl::StrAppend(&out, "  link ", e.path, " -> ", Show(e.target), "\n");
        break;
    }
  }
  absl::StrAppend(&out, "ops:\n");
  for (size_t i = 0; i < prog.ops.size(); ++i) {
    absl::StrAppend(&out, "  #", i, " ", ShowOp(prog.ops[i]), "\n");
  }
  return out;
}

}  // namespace capfs_fuzz

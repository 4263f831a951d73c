#include "capfs/internal/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capfs/internal/resolve_result.h"
#include "capfs/sys/fs.h"

namespace capfs {
namespace internal {
namespace {

constexpr int kLevelFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

// How many passes over one directory EmptyTree makes while entries keep
// appearing in it (a concurrent writer), before it gives up with EAGAIN.
constexpr int kMaxPasses = 16;

// The size of the buffer getdents64 fills, per level within the window.
constexpr size_t kListingBuffer = 8 * 1024;

// The layout getdents64(2) fills in.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

bool IsDotOrDotDot(const char* name) {
  return name[0] == '.' &&
         (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// One directory of the walk.
struct Level {
  Fd fd;  // invalid while the level is outside the window
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;    // its name in the level above (empty for the start)
  size_t rel_len = 0;  // the length of its path relative to the start
  off_t resume = 0;    // where to read on after a reopen
  std::unique_ptr<char[]> buf;
  size_t len = 0;
  size_t pos = 0;
  bool did_work = false;  // EmptyTree: this pass removed something
  int passes = 0;         // EmptyTree: passes made over it
};

// The stack of levels and its window of descriptors.
class Levels {
 public:
  explicit Levels(size_t window) : window_(window < 1 ? 1 : window) {}

  // Ok, or an errno when `fd` cannot be stat'ed.
  ResolveResult PushStart(Fd fd) {
    Level l;
    struct stat st;
    if (int r = SysFstat(fd.get(), &st); r < 0) return ResolveResult::Errno(-r);
    l.dev = st.st_dev;
    l.ino = st.st_ino;
    l.fd = std::move(fd);
    levels_.push_back(std::move(l));
    return ResolveResult::Ok();
  }

  void Push(Level l) {
    levels_.push_back(std::move(l));
    // The level that just left the window gives its descriptor up. The
    // start keeps its own: it is where a failed reopen starts again.
    if (levels_.size() > window_ + 1) {
      Level& old = levels_[levels_.size() - 1 - window_];
      if (&old != &levels_.front()) {
        old.fd = Fd();
        old.buf.reset();
        old.len = old.pos = 0;
      }
    }
  }

  size_t size() const { return levels_.size(); }
  Level& top() { return levels_.back(); }

  // Pops the top level and makes sure the new top holds its descriptor:
  // Ok, an errno, or EAGAIN when the ancestor cannot be identified.
  ResolveResult Pop() {
    Level child = std::move(levels_.back());
    levels_.pop_back();
    Level& parent = levels_.back();
    if (parent.fd.valid()) return ResolveResult::Ok();
    ResolveResult r = Reopen(child.fd.get(), "..", &parent);
    child.fd = Fd();
    if (!r.IsErrno(EAGAIN)) return r;
    return ReopenFromStart(levels_.size() - 1);
  }

 private:
  // Opens `name` in `dirfd` as `level`, checked against its identity:
  // Ok, EAGAIN for another directory, or another errno.
  static ResolveResult Reopen(int dirfd, const char* name, Level* level) {
    const ResolveResult moved = ResolveResult::Errno(EAGAIN);
    int fd = SysOpenAt(dirfd, name, kLevelFlags, 0);
    if (fd == -ENOENT || fd == -ENOTDIR) return moved;
    if (fd < 0) return ResolveResult::Errno(-fd);
    Fd opened(fd);
    struct stat st;
    if (int r = SysFstat(fd, &st); r < 0) return ResolveResult::Errno(-r);
    if (st.st_dev != level->dev || st.st_ino != level->ino) return moved;
    if (level->resume != 0) {
      if (off_t r = SysLseek(fd, level->resume, SEEK_SET); r < 0) {
        return ResolveResult::FromSyscall(r);
      }
    }
    level->fd = std::move(opened);
    level->len = level->pos = 0;
    return ResolveResult::Ok();
  }

  // Reopens level `index` from the start by the recorded names.
  ResolveResult ReopenFromStart(size_t index) {
    Fd cur;
    int cur_fd = levels_.front().fd.get();
    for (size_t i = 1; i <= index; ++i) {
      Level probe;
      probe.dev = levels_[i].dev;
      probe.ino = levels_[i].ino;
      probe.resume = i == index ? levels_[i].resume : 0;
      if (ResolveResult r = Reopen(cur_fd, levels_[i].name.c_str(), &probe);
          !r.ok()) {
        return r;
      }
      cur = std::move(probe.fd);
      cur_fd = cur.get();
    }
    levels_[index].fd = std::move(cur);
    levels_[index].len = levels_[index].pos = 0;
    return ResolveResult::Ok();
  }

  size_t window_;
  std::vector<Level> levels_;
};

// The next entry of `l` but "." and "..": Ok with `*d` set (nullptr at
// the end), or an errno.
ResolveResult NextEntry(Level& l, const LinuxDirent64** d) {
  for (;;) {
    if (l.pos >= l.len) {
      if (!l.buf) l.buf.reset(new char[kListingBuffer]);
      ssize_t n = SysGetdents64(l.fd.get(), l.buf.get(), kListingBuffer);
      if (n <= 0) {
        *d = nullptr;
        return ResolveResult::FromSyscall(n);
      }
      l.len = static_cast<size_t>(n);
      l.pos = 0;
    }
    auto* e = reinterpret_cast<const LinuxDirent64*>(l.buf.get() + l.pos);
    l.pos += e->d_reclen;
    l.resume = static_cast<off_t>(e->d_off);
    if (IsDotOrDotDot(e->d_name)) continue;
    *d = e;
    return ResolveResult::Ok();
  }
}

}  // namespace

ResolveResult WalkTree(Fd start, TreeVisitor visit, size_t window) {
  Levels levels(window);
  if (ResolveResult r = levels.PushStart(std::move(start)); !r.ok()) return r;
  std::string rel;
  for (;;) {
    Level& top = levels.top();
    const LinuxDirent64* d;
    if (ResolveResult r = NextEntry(top, &d); !r.ok()) return r;
    if (d == nullptr) {
      if (levels.size() == 1) return ResolveResult::Ok();
      if (ResolveResult r = levels.Pop(); !r.ok()) return r;
      continue;
    }
    struct stat st;
    if (int r = SysFstatAt(top.fd.get(), d->d_name, &st, AT_SYMLINK_NOFOLLOW);
        r < 0) {
      if (r == -ENOENT) continue;  // removed since the listing
      return ResolveResult::Errno(-r);
    }
    rel.resize(top.rel_len);
    if (!rel.empty()) rel.push_back('/');
    rel.append(d->d_name);
    bool descend = S_ISDIR(st.st_mode);
    if (!visit(rel, st, &descend)) return ResolveResult::Ok();
    if (!descend || !S_ISDIR(st.st_mode)) continue;
    int fd = SysOpenAt(top.fd.get(), d->d_name, kLevelFlags, 0);
    if (fd < 0) {
      // Removed, or replaced by a non-directory or a symlink, since the
      // stat: not the directory that was visited.
      if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP) continue;
      return ResolveResult::Errno(-fd);
    }
    Level child;
    child.fd = Fd(fd);
    struct stat now;
    if (int r = SysFstat(fd, &now); r < 0) return ResolveResult::Errno(-r);
    // Replaced by another directory since the stat: skip it too.
    if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) continue;
    child.dev = now.st_dev;
    child.ino = now.st_ino;
    child.name = d->d_name;
    child.rel_len = rel.size();
    levels.Push(std::move(child));
  }
}

ResolveResult EmptyTree(Fd start, size_t window) {
  Levels levels(window);
  if (ResolveResult r = levels.PushStart(std::move(start)); !r.ok()) return r;
  for (;;) {
    Level& top = levels.top();
    const LinuxDirent64* d;
    if (ResolveResult r = NextEntry(top, &d); !r.ok()) return r;
    if (d == nullptr) {
      if (top.did_work) {
        // Entries removed while listing may hide others from this pass: one
        // more pass, until one finds nothing.
        if (++top.passes >= kMaxPasses) return ResolveResult::Errno(EAGAIN);
        top.did_work = false;
        if (off_t r = SysLseek(top.fd.get(), 0, SEEK_SET); r < 0) {
          return ResolveResult::FromSyscall(r);
        }
        top.len = top.pos = top.resume = 0;
        continue;
      }
      if (levels.size() == 1) return ResolveResult::Ok();
      std::string name = std::move(top.name);
      if (ResolveResult r = levels.Pop(); !r.ok()) return r;
      Level& parent = levels.top();
      parent.did_work = true;
      int r = SysUnlinkAt(parent.fd.get(), name.c_str(), AT_REMOVEDIR);
      // ENOTEMPTY: filled again meanwhile; ENOTDIR: the name was given to
      // something else (an exchange) and the emptied directory is under
      // another name. Either way the parent's next pass meets them.
      if (r < 0 && r != -ENOENT && r != -ENOTEMPTY && r != -ENOTDIR) {
        return ResolveResult::Errno(-r);
      }
      continue;
    }
    unsigned char type = d->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      int r = SysFstatAt(top.fd.get(), d->d_name, &st, AT_SYMLINK_NOFOLLOW);
      if (r == -ENOENT) continue;
      if (r < 0) return ResolveResult::Errno(-r);
      type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
    }
    top.did_work = true;
    if (type != DT_DIR) {
      int r = SysUnlinkAt(top.fd.get(), d->d_name, 0);
      // EISDIR: replaced by a directory; the next pass meets it.
      if (r < 0 && r != -ENOENT && r != -EISDIR) {
        return ResolveResult::Errno(-r);
      }
      continue;
    }
    int fd = SysOpenAt(top.fd.get(), d->d_name, kLevelFlags, 0);
    if (fd == -ENOENT) continue;
    if (fd == -ENOTDIR || fd == -ELOOP) {
      // Replaced by a non-directory or a symlink: removed as a name.
      int r = SysUnlinkAt(top.fd.get(), d->d_name, 0);
      if (r < 0 && r != -ENOENT && r != -EISDIR) {
        return ResolveResult::Errno(-r);
      }
      continue;
    }
    if (fd < 0) return ResolveResult::Errno(-fd);
    Level child;
    child.fd = Fd(fd);
    struct stat st;
    if (int r = SysFstat(fd, &st); r < 0) return ResolveResult::Errno(-r);
    child.dev = st.st_dev;
    child.ino = st.st_ino;
    child.name = d->d_name;
    levels.Push(std::move(child));
  }
}

}  // namespace internal
}  // namespace capfs

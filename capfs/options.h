// Resolver, Scope and DirOptions: what a Dir is made with, and all that the
// resolvers (capfs/internal/) need to know of it. dir.h has the semantics of
// each; this header exists so that the resolvers never include dir.h.

#ifndef CAPFS_OPTIONS_H_
#define CAPFS_OPTIONS_H_

namespace capfs {

// How a Dir walks a path: openat2(2)'s resolution (kKernel), one component
// at a time in userspace (kUserspace), or the kernel's when openat2 works
// here, else userspace (kAuto). Both give the same answer on every path.
enum class Resolver { kAuto, kKernel, kUserspace };

// What ".." at the top and absolute paths mean: refused as escapes
// (kBeneath), or clamped to the Dir as after chroot(2) (kInRoot).
enum class Scope { kBeneath, kInRoot };

struct DirOptions {
  Resolver resolver = Resolver::kAuto;  // kAuto: kernel when openat2 works
                                        // here, else userspace
  Scope scope = Scope::kBeneath;
  bool read_only = false;
};

}  // namespace capfs

#endif  // CAPFS_OPTIONS_H_

// capfs: filesystem capabilities for untrusted paths.
//
// The umbrella header: everything public.
//   fd.h      Fd, the owner of one descriptor
//   status.h  errors: ErrnoOf, ViolationOf
//   path.h    lexical facts about a path
//   file.h    I/O and metadata on an open Fd
//   dir.h     Dir, the capability, and its operations
//   landlock.h  Landlock: confining this process or a child to its Dirs

#ifndef CAPFS_CAPFS_H_
#define CAPFS_CAPFS_H_

#include "capfs/dir.h"
#include "capfs/fd.h"
#include "capfs/file.h"
#include "capfs/landlock.h"
#include "capfs/options.h"
#include "capfs/path.h"
#include "capfs/status.h"

#endif  // CAPFS_CAPFS_H_

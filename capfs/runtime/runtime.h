// capfs runtime: a poll scheduler with C++20 coroutines.
//
// The umbrella header: everything public.
//   task.h          Task<T>, the lazy coroutine awaited exactly once
//   loop.h          Loop, Run, IoBackend: the event loop and Post
//   scope.h         Scope, WithScope: structured concurrency, cancellation
//   yield.h         Yield
//   timer.h         Sleep, SleepUntil, WithTimeout, MonotonicNow
//   event.h         Event: a one-shot signal between tasks
//   async_fd.h      AsyncFd, Pipe, DoIo: descriptors served by the loop
//   fd_io.h         Read, Write, ReadV, WriteV, WriteAll
//   worker_pool.h   WorkerPool
//   run_blocking.h  RunBlocking: a blocking call on the worker pool
//   async_dir.h     awaitable forms of every capfs::Dir operation
//   net.h           sockets (socket_address.h, socket.h), descriptor passing
//                   (fd_passing.h) and Dirs handed between processes
//                   (dir_passing.h)
//   process.h       Spawn, Child, ExitStatus: processes, confined by Landlock

#ifndef CAPFS_RUNTIME_RUNTIME_H_
#define CAPFS_RUNTIME_RUNTIME_H_

#include "capfs/runtime/async_dir.h"
#include "capfs/runtime/async_fd.h"
#include "capfs/runtime/event.h"
#include "capfs/runtime/fd_io.h"
#include "capfs/runtime/fs_paths.h"
#include "capfs/runtime/loop.h"
#include "capfs/runtime/net.h"
#include "capfs/runtime/process.h"
#include "capfs/runtime/run_blocking.h"
#include "capfs/runtime/scope.h"
#include "capfs/runtime/task.h"
#include "capfs/runtime/timer.h"
#include "capfs/runtime/worker_pool.h"
#include "capfs/runtime/yield.h"

#endif  // CAPFS_RUNTIME_RUNTIME_H_

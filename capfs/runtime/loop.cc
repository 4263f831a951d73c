#include "capfs/runtime/loop.h"

#include <cassert>
#include <utility>

#include "capfs/runtime/internal/backend.h"
#include "capfs/sys/net.h"

namespace capfs {
namespace runtime {
namespace {

thread_local Loop* current_loop = nullptr;

// A function handed to Loop::Post, on its way to the loop.
class PostedFunction final : public internal::RemoteCompletion {
 public:
  explicit PostedFunction(absl::AnyInvocable<void() &&> fn)
      : fn_(std::move(fn)) {}
  void Complete() noexcept override {
    std::move(fn_)();
    delete this;
  }
  void Drop() noexcept override { delete this; }

 private:
  absl::AnyInvocable<void() &&> fn_;
};

}  // namespace

const char* IoBackendName(IoBackend backend) {
  return backend == IoBackend::kEpoll ? "epoll" : "poll";
}

absl::StatusOr<std::unique_ptr<Loop>> Loop::Create(LoopOptions options) {
  std::unique_ptr<internal::Backend> backend;
  if (options.backend == IoBackend::kEpoll) {
    absl::StatusOr<std::unique_ptr<internal::Backend>> epoll =
        internal::MakeEpollBackend();
    if (!epoll.ok()) return epoll.status();
    backend = *std::move(epoll);
  } else {
    backend = internal::MakePollBackend();
  }
  std::unique_ptr<WorkerPool> own_workers;
  WorkerPool* workers = options.workers;
  if (workers == nullptr) {
    own_workers = std::make_unique<WorkerPool>(options.worker_options);
    workers = own_workers.get();
  }
  std::unique_ptr<Loop> loop(
      new Loop(options.backend, std::move(own_workers), workers));
  absl::StatusOr<std::unique_ptr<internal::Scheduler>> scheduler =
      internal::Scheduler::Create(std::move(backend), workers);
  if (!scheduler.ok()) return scheduler.status();
  loop->scheduler_ = *std::move(scheduler);
  loop->scheduler_->set_fs_options(options.fs);
  return loop;
}

Loop::Loop(IoBackend backend, std::unique_ptr<WorkerPool> own_workers,
           WorkerPool* workers)
    : backend_(backend),
      own_workers_(std::move(own_workers)),
      workers_(workers) {}

// The scheduler goes first: its posted completions may still point at the
// pool's jobs' owners, never the other way round.
Loop::~Loop() { scheduler_.reset(); }

void Loop::Post(absl::AnyInvocable<void() &&> fn) {
  scheduler_->Post(new PostedFunction(std::move(fn)));
}

Loop* Loop::Current() { return current_loop; }

size_t Loop::watched_fds() const { return scheduler_->backend().watched(); }

Loop::CurrentLoop::CurrentLoop(Loop* loop) : previous_(current_loop) {
  assert(previous_ == nullptr && "Loop::Run is not reentrant");
  current_loop = loop;
  // Pipe writes on this thread keep SIGPIPE blocked until the loop's run
  // ends, rather than block and unblock it around each write.
  ::capfs::runtime::internal::BeginSigpipeHold();
}

Loop::CurrentLoop::~CurrentLoop() {
  ::capfs::runtime::internal::EndSigpipeHold();
  current_loop = previous_;
}

}  // namespace runtime
}  // namespace capfs

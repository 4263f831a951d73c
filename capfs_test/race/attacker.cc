#include "capfs_test/race/attacker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <new>
#include <utility>

#include "capfs_test/testing/temp_tree.h"

namespace capfs_test {

Attacker::Attacker(Where where, std::function<bool()> step)
    : where_(where), step_(std::move(step)) {
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CheckOrDie(mem != MAP_FAILED, "mmap attacker state");
  shared_ = new (mem) Shared;
  CheckOrDie(pipe2(first_step_pipe_, O_CLOEXEC) == 0, "pipe attacker");
}

Attacker::~Attacker() {
  Stop();
  close(first_step_pipe_[0]);
  close(first_step_pipe_[1]);
  shared_->~Shared();
  munmap(shared_, sizeof(Shared));
}

void Attacker::Loop() const {
  bool told = false;
  while (!shared_->stop.load(std::memory_order_relaxed)) {
    if (!step_()) continue;
    shared_->steps.fetch_add(1, std::memory_order_relaxed);
    if (!told) {
      // Once, so the pipe never fills; a failed write only makes the wait
      // time out, and the test's check of steps() fail.
      told = write(first_step_pipe_[1], "s", 1) == 1 || errno != EINTR;
    }
  }
}

void Attacker::Start() {
  running_ = true;
  if (where_ == kThread) {
    thread_ = std::thread([this] { Loop(); });
    return;
  }
  pid_ = fork();
  CheckOrDie(pid_ >= 0, "fork attacker");
  if (pid_ == 0) {
    Loop();
    _exit(0);
  }
}

bool Attacker::WaitForFirstStep(int timeout_ms) const {
  struct pollfd p = {first_step_pipe_[0], POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r > 0 || steps() > 0;
}

uint64_t Attacker::steps() const {
  return shared_->steps.load(std::memory_order_relaxed);
}

uint64_t Attacker::Stop(bool* clean) {
  if (clean != nullptr) *clean = true;
  if (running_) {
    running_ = false;
    shared_->stop.store(true, std::memory_order_relaxed);
    if (where_ == kThread) {
      thread_.join();
    } else {
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      if (clean != nullptr) {
        *clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      }
    }
  }
  return steps();
}

}  // namespace capfs_test

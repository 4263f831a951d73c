#include "capfs_test/race/attacker.h"

#include <errno.h>
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
}

Attacker::~Attacker() {
  Stop();
  shared_->~Shared();
  munmap(shared_, sizeof(Shared));
}

void Attacker::Loop() const {
  while (!shared_->stop.load(std::memory_order_relaxed)) {
    if (step_()) shared_->steps.fetch_add(1, std::memory_order_relaxed);
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

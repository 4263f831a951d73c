// runtime_bench: what the runtime costs, next to libuv and Boost.Asio doing
// the same work in the same binary, so that ratios come from one run.
//
//   bazel run -c opt //capfs_test/bench:runtime_bench
//
// Benchmarks (times are wall-clock per iteration):
//   yield/<backend>                 one Yield by each of two tasks
//   pingpong/<peer>/idle:<n>        one round trip of a byte over two pipes
//                                   between two tasks (or libuv handles, or
//                                   Asio coroutines), with n idle eventfds
//                                   each waited on by a task
//   timers/heap_arm_cancel          arm 1M timers in the heap, cancel all
//   timers/sleep_tasks_cancelled    1M tasks asleep, then cancelled
//   run_blocking/<backend>          one RunBlocking round trip to a worker
//   memory/sleeping_tasks           heap bytes per task with 100k asleep
// After the runs, a table of the target ratios.

#include <fcntl.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

// Boost 1.74's asio/awaitable.hpp needs <utility> first under g++ 12.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <uv.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "capfs/runtime/internal/timer_heap.h"
#include "capfs/runtime/runtime.h"

namespace capfs {
namespace runtime {
namespace {

LoopOptions OptionsFor(IoBackend backend) {
  LoopOptions options;
  options.backend = backend;
  return options;
}

void Check(benchmark::State& state, const absl::Status& s) {
  if (!s.ok()) state.SkipWithError(s.ToString().c_str());
}

// ---------------------------------------------------------------- yield

void BM_Yield(benchmark::State& state, IoBackend backend) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          bool done = false;
          scope.Spawn([&]() -> Task<absl::Status> {
            while (!done) {
              if (absl::Status y = co_await Yield(); !y.ok()) co_return y;
            }
            co_return absl::OkStatus();
          });
          absl::Status y;
          for (auto _ : state) y.Update(co_await Yield());
          done = true;
          co_return co_await scope.Join(std::move(y));
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
  state.counters["switches"] = benchmark::Counter(
      2.0 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// ------------------------------------------------------- capfs ping-pong

void BM_PingPongCapfs(benchmark::State& state, IoBackend backend, int idle) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
          absl::StatusOr<PipeEnds> ping = Pipe(scope);
          absl::StatusOr<PipeEnds> pong = Pipe(scope);
          if (!ping.ok()) co_return ping.status();
          if (!pong.ok()) co_return pong.status();
          std::vector<AsyncFd> idle_fds;
          idle_fds.reserve(idle);  // the tasks hold references into it
          for (int i = 0; i < idle; ++i) {
            int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            absl::StatusOr<AsyncFd> fd = AsyncFd::Adopt(scope, Fd(efd));
            if (!fd.ok()) co_return co_await scope.Join(fd.status());
            idle_fds.push_back(*std::move(fd));
            AsyncFd& mine = idle_fds.back();
            scope.Spawn([&mine]() -> Task<absl::Status> {
              uint64_t value;
              // Ends with EBADF when the benchmark closes the eventfd.
              (void)co_await Read(mine, absl::MakeSpan(
                                            reinterpret_cast<char*>(&value),
                                            sizeof(value)));
              co_return absl::OkStatus();
            });
          }
          scope.Spawn([&]() -> Task<absl::Status> {  // the echo
            char buf[64];
            for (;;) {
              absl::StatusOr<size_t> n =
                  co_await Read(ping->read, absl::MakeSpan(buf));
              if (!n.ok() || *n == 0) co_return n.status();
              absl::Status w = co_await WriteAll(
                  pong->write, absl::string_view(buf, *n));
              if (!w.ok()) co_return w;
            }
          });
          absl::Status r = co_await Yield();  // let the idle tasks suspend
          char reply[64];  // every peer reads into 64 bytes
          for (auto _ : state) {
            r.Update((co_await Write(ping->write, "x")).status());
            r.Update((co_await Read(pong->read, absl::MakeSpan(reply))).status());
          }
          r.Update(ping->write.Close());  // the echo sees end of file
          for (AsyncFd& fd : idle_fds) r.Update(fd.Close());
          co_return co_await scope.Join(std::move(r));
        });
      }(),
      OptionsFor(backend));
  Check(state, s);
}

// ------------------------------------------------------- libuv ping-pong

struct UvPingPong {
  uv_loop_t loop;
  uv_pipe_t a_out, b_in, b_out, a_in;
  uv_write_t a_req, b_req;
  char a_buf[64], b_buf[64];
  bool got_reply = false;
};

void BM_PingPongLibuv(benchmark::State& state) {
  UvPingPong pp;
  int ping[2], pong[2];
  if (::pipe2(ping, O_CLOEXEC) != 0 || ::pipe2(pong, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2");
    return;
  }
  uv_loop_init(&pp.loop);
  pp.loop.data = &pp;
  uv_pipe_init(&pp.loop, &pp.a_out, 0);
  uv_pipe_init(&pp.loop, &pp.b_in, 0);
  uv_pipe_init(&pp.loop, &pp.b_out, 0);
  uv_pipe_init(&pp.loop, &pp.a_in, 0);
  uv_pipe_open(&pp.a_out, ping[1]);
  uv_pipe_open(&pp.b_in, ping[0]);
  uv_pipe_open(&pp.b_out, pong[1]);
  uv_pipe_open(&pp.a_in, pong[0]);
  // B echoes what it reads; A notes the reply.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&pp.b_in),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvPingPong*>(h->loop->data);
        *buf = uv_buf_init(p->b_buf, sizeof(p->b_buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        if (n <= 0) return;
        auto* p = static_cast<UvPingPong*>(s->loop->data);
        uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(n));
        uv_write(&p->b_req, reinterpret_cast<uv_stream_t*>(&p->b_out), &out,
                 1, nullptr);
      });
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&pp.a_in),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* p = static_cast<UvPingPong*>(h->loop->data);
        *buf = uv_buf_init(p->a_buf, sizeof(p->a_buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n > 0) static_cast<UvPingPong*>(s->loop->data)->got_reply = true;
      });
  static char byte = 'x';
  for (auto _ : state) {
    pp.got_reply = false;
    uv_buf_t out = uv_buf_init(&byte, 1);
    uv_write(&pp.a_req, reinterpret_cast<uv_stream_t*>(&pp.a_out), &out, 1,
             nullptr);
    while (!pp.got_reply) uv_run(&pp.loop, UV_RUN_ONCE);
  }
  for (uv_pipe_t* p : {&pp.a_out, &pp.b_in, &pp.b_out, &pp.a_in}) {
    uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
  }
  uv_run(&pp.loop, UV_RUN_DEFAULT);
  uv_loop_close(&pp.loop);
}

// -------------------------------------------------------- Asio ping-pong

namespace asio = boost::asio;

asio::awaitable<void> AsioEcho(asio::posix::stream_descriptor& in,
                               asio::posix::stream_descriptor& out) {
  char buf[64];
  boost::system::error_code ec;
  for (;;) {
    size_t n = co_await in.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // end of file once the driver closes its end
    co_await asio::async_write(out, asio::buffer(buf, n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

asio::awaitable<void> AsioDriver(benchmark::State& state,
                                 asio::posix::stream_descriptor& out,
                                 asio::posix::stream_descriptor& in) {
  char byte = 'x';
  char reply[64];  // every peer reads into 64 bytes
  boost::system::error_code ec;
  for (auto _ : state) {
    co_await asio::async_write(out, asio::buffer(&byte, 1),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_await in.async_read_some(asio::buffer(reply),
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) state.SkipWithError(ec.message().c_str());
  }
  out.close();
}

void BM_PingPongAsio(benchmark::State& state) {
  int ping[2], pong[2];
  if (::pipe2(ping, O_CLOEXEC) != 0 || ::pipe2(pong, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2");
    return;
  }
  asio::io_context io(1);
  asio::posix::stream_descriptor a_out(io, ping[1]), b_in(io, ping[0]);
  asio::posix::stream_descriptor b_out(io, pong[1]), a_in(io, pong[0]);
  asio::co_spawn(io, AsioEcho(b_in, b_out), asio::detached);
  asio::co_spawn(io, AsioDriver(state, a_out, a_in), asio::detached);
  io.run();
}

// --------------------------------------------------------------- timers

class BenchTimer final : public internal::TimerNode {
 public:
  void OnTimerFired() noexcept override {}
};

// The heap itself: a million timers armed (random deadlines), then all
// cancelled in random order.
void BM_TimerHeapArmCancel(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<BenchTimer> timers(n);
  std::vector<BenchTimer*> order;
  for (BenchTimer& t : timers) order.push_back(&t);
  std::mt19937_64 rng(7);
  std::vector<int64_t> deadlines(n);
  for (int64_t& d : deadlines) d = static_cast<int64_t>(rng() % 1000000000);
  std::shuffle(order.begin(), order.end(), rng);
  internal::TimerHeap heap;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) heap.Add(&timers[i], deadlines[i]);
    for (BenchTimer* t : order) heap.Remove(t);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

Task<absl::Status> Asleep(absl::Duration d) { co_return co_await Sleep(d); }

// Through the runtime: a million tasks each asleep on its own timer, then
// the scope cancelled (every timer removed from the heap).
void BM_SleepTasksArmedAndCancelled(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    absl::Status s = Run([&]() -> Task<absl::Status> {
      co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
        for (int i = 0; i < n; ++i) scope.Spawn(Asleep(absl::Hours(1)));
        absl::Status y = co_await Yield();  // all of them arm their timer
        scope.Cancel();
        co_return co_await scope.Join(std::move(y));
      });
    }());
    if (!absl::IsCancelled(s)) Check(state, s);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}

// ---------------------------------------------------------- RunBlocking

void BM_RunBlocking(benchmark::State& state, IoBackend backend) {
  absl::Status s = Run(
      [&]() -> Task<absl::Status> {
        absl::Status r;
        for (auto _ : state) {
          r.Update(co_await RunBlocking([] { return absl::OkStatus(); }));
        }
        co_return r;
      }(),
      OptionsFor(backend));
  Check(state, s);
}

// --------------------------------------------------------------- memory

size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;  // small chunks + mmapped ones
}

// Everything the loop holds for a suspended task, counted by the allocator:
// its coroutine frames, its fiber, its share of the run queue and of the
// timer heap's array.
void BM_MemoryPerSleepingTask(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  double per_task = 0;
  for (auto _ : state) {
    absl::Status s = Run([&]() -> Task<absl::Status> {
      co_return co_await WithScope([&](Scope& scope) -> Task<absl::Status> {
        size_t before = HeapInUse();
        for (int i = 0; i < n; ++i) scope.Spawn(Asleep(absl::Hours(1)));
        absl::Status y = co_await Yield();  // all are asleep now
        per_task = static_cast<double>(HeapInUse() - before) / n;
        scope.Cancel();
        co_return co_await scope.Join(std::move(y));
      });
    }());
    if (!absl::IsCancelled(s)) Check(state, s);
  }
  state.counters["bytes_per_task"] = per_task;
}

// ------------------------------------------------------------- reporting

// Prints what the console reporter does, and keeps each benchmark's time per
// iteration (ns; the median when it was repeated), wall-clock and CPU, for
// the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") {
        continue;
      }
      double to_ns = benchmark::GetTimeUnitMultiplier(benchmark::kNanosecond) /
                     benchmark::GetTimeUnitMultiplier(run.time_unit);
      times_[run.run_name.function_name] = {
          run.GetAdjustedRealTime() * to_ns, run.GetAdjustedCPUTime() * to_ns};
    }
  }

  void PrintRatios() const {
    std::printf(
        "\nTarget ratios (medians of time per round trip; lower is better):\n"
        "  %-28s %8s %8s\n",
        "", "wall", "cpu");
    Ratio("capfs epoll / libuv", "pingpong/capfs_epoll/idle:0",
          "pingpong/libuv", 1.0);
    Ratio("capfs epoll / Asio", "pingpong/capfs_epoll/idle:0", "pingpong/asio",
          1.0);
    Ratio("capfs poll / libuv", "pingpong/capfs_poll/idle:0", "pingpong/libuv",
          0);
    for (const char* backend : {"epoll", "poll"}) {
      for (int idle : {1000, 10000}) {
        Ratio(absl::StrCat(backend, " idle ", idle, " / idle 10"),
              absl::StrCat("pingpong/capfs_", backend, "/idle:", idle),
              absl::StrCat("pingpong/capfs_", backend, "/idle:10"),
              std::string(backend) == "epoll" && idle == 10000 ? 1.2 : 0);
      }
    }
  }

 private:
  struct Times {
    double wall_ns, cpu_ns;
  };

  void Ratio(const std::string& label, const std::string& num,
             const std::string& den, double target) const {
    auto a = times_.find(num), b = times_.find(den);
    if (a == times_.end() || b == times_.end()) return;
    double wall = a->second.wall_ns / b->second.wall_ns;
    double cpu = a->second.cpu_ns / b->second.cpu_ns;
    std::printf("  %-28s %8.3f %8.3f", label.c_str(), wall, cpu);
    if (target > 0) {
      std::printf("  (target <= %.1f: %s)", target,
                  wall <= target ? "met" : "MISSED");
    }
    std::printf("\n");
  }

  std::map<std::string, Times> times_;  // by benchmark name
};

// The ratios compare medians of five runs: the machines are shared and a
// single run can be off by tens of percent.
void Repeated(benchmark::internal::Benchmark* b) {
  b->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
}

void RegisterAll() {
  using benchmark::RegisterBenchmark;
  for (IoBackend b : {IoBackend::kEpoll, IoBackend::kPoll}) {
    std::string name = IoBackendName(b);
    RegisterBenchmark(("yield/" + name).c_str(), BM_Yield, b)->UseRealTime();
    for (int idle : {0, 10, 1000, 10000}) {
      Repeated(RegisterBenchmark(
          absl::StrCat("pingpong/capfs_", name, "/idle:", idle).c_str(),
          BM_PingPongCapfs, b, idle));
    }
  }
  Repeated(RegisterBenchmark("pingpong/libuv", BM_PingPongLibuv));
  Repeated(RegisterBenchmark("pingpong/asio", BM_PingPongAsio));
  RegisterBenchmark("timers/heap_arm_cancel", BM_TimerHeapArmCancel)
      ->Arg(1000000)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  RegisterBenchmark("timers/sleep_tasks_cancelled",
                    BM_SleepTasksArmedAndCancelled)
      ->Arg(1000000)
      ->Iterations(3)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  for (IoBackend b : {IoBackend::kEpoll, IoBackend::kPoll}) {
    RegisterBenchmark(
        (std::string("run_blocking/") + IoBackendName(b)).c_str(),
        BM_RunBlocking, b)
        ->UseRealTime();
  }
  RegisterBenchmark("memory/sleeping_tasks", BM_MemoryPerSleepingTask)
      ->Arg(100000)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace
}  // namespace runtime
}  // namespace capfs

int main(int argc, char** argv) {
  // 10,000 idle eventfds and the pipes need more than the usual 1024.
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  benchmark::Initialize(&argc, argv);
  capfs::runtime::RegisterAll();
  capfs::runtime::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}

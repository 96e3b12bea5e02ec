// Persistent per-JS-thread worker pool. The calling thread works as worker 0; the other
// workers are parked pthreads that spin briefly after each job, then sleep on a futex. One
// job = one generation bump = at most one futex wake-up.
#pragma once
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace seesaw {

class ThreadPool {
 public:
  using JobFn = void (*)(void* ctx, int tid, int numThreads);

  explicit ThreadPool(int numThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return numThreads_; }
  // Runs fn(ctx, tid, size()) on every worker (caller = tid 0) and returns when all are done.
  void run(JobFn fn, void* ctx);

 private:
  void workerLoop(int tid);

  int numThreads_;
  std::vector<std::thread> workers_;
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  JobFn fn_ = nullptr;
  void* ctx_ = nullptr;
  bool stop_ = false;
};

// The pool of the calling thread (created on first use with the thread's configured size).
ThreadPool& currentPool();
void setCurrentThreadCount(int n);
int currentThreadCount();

// Runs f(tid, numThreads) on the current thread's pool.
template <class F>
void parallelRun(F&& f) {
  ThreadPool& pool = currentPool();
  if (pool.size() == 1) {
    f(0, 1);
    return;
  }
  auto trampoline = [](void* ctx, int tid, int n) { (*static_cast<F*>(ctx))(tid, n); };
  pool.run(trampoline, static_cast<void*>(&f));
}

// Dynamic schedule: items 0..count-1 handed out one at a time through an atomic counter,
// f(item, tid). Runs serially when count is small or only one thread is set.
template <class F>
void parallelFor(size_t count, F&& f) {
  if (count == 0) return;
  if (count == 1 || currentThreadCount() == 1) {
    for (size_t i = 0; i < count; i++) f(i, 0);
    return;
  }
  alignas(64) std::atomic<size_t> next{0};
  parallelRun([&](int tid, int) {
    for (;;) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) break;
      f(i, tid);
    }
  });
}

}  // namespace seesaw

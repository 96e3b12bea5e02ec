#include "thread_pool.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <memory>

namespace seesaw {
namespace {

// How long an idle worker keeps spinning before it sleeps: long enough to cover the JS gap
// between consecutive kernels of one forward pass, short enough not to burn a core when idle.
constexpr auto kSpinDuration = std::chrono::microseconds(200);

void futexWait(std::atomic<uint32_t>* addr, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futexWakeAll(std::atomic<uint32_t>* addr) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

thread_local std::unique_ptr<ThreadPool> tlsPool;
thread_local int tlsThreadCount = 1;

}  // namespace

ThreadPool::ThreadPool(int numThreads) : numThreads_(numThreads) {
  for (int tid = 1; tid < numThreads; tid++) workers_.emplace_back([this, tid] { workerLoop(tid); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_seq_cst);
  futexWakeAll(&generation_);
  for (auto& w : workers_) w.join();
}

void ThreadPool::run(JobFn fn, void* ctx) {
  fn_ = fn;
  ctx_ = ctx;
  pending_.store(numThreads_ - 1, std::memory_order_relaxed);
  // seq_cst pairs with the worker's sleepers_ increment: either we see the sleeper and wake
  // it, or it sees the new generation before sleeping (futex compares the value).
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) futexWakeAll(&generation_);
  fn(ctx, 0, numThreads_);
  // Workers normally finish within microseconds of the caller; when the machine is
  // oversubscribed a worker may not be running at all, so stop burning the core after a while.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; spins++) {
    if (spins < 20000) {
      _mm_pause();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::workerLoop(int tid) {
  // Generation 0 is the state at construction: reading it here instead could miss a job posted
  // before this thread got to run.
  uint32_t seen = 0;
  for (;;) {
    auto spinStart = std::chrono::steady_clock::now();
    uint32_t now;
    int spins = 0;
    while ((now = generation_.load(std::memory_order_acquire)) == seen) {
      _mm_pause();
      if (++spins % 256 == 0 && std::chrono::steady_clock::now() - spinStart > kSpinDuration) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (generation_.load(std::memory_order_seq_cst) == seen) futexWait(&generation_, seen);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        spinStart = std::chrono::steady_clock::now();
      }
    }
    seen = now;
    if (stop_) return;
    fn_(ctx_, tid, numThreads_);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

ThreadPool& currentPool() {
  if (!tlsPool || tlsPool->size() != tlsThreadCount) {
    tlsPool.reset();
    tlsPool = std::make_unique<ThreadPool>(tlsThreadCount);
  }
  return *tlsPool;
}

void setCurrentThreadCount(int n) {
  tlsThreadCount = n;
  currentPool();
}

int currentThreadCount() { return tlsThreadCount; }

}  // namespace seesaw

#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>

#include <immintrin.h>

namespace moe {

namespace {

constexpr uint64_t kActiveMask = (uint64_t{1} << 31) - 1;
constexpr uint64_t kClosedBit = uint64_t{1} << 31;
constexpr int kGenerationShift = 32;
// Spin iterations before a worker sleeps (a few tens of microseconds): long enough to catch
// the next loop of a decode step, short enough not to burn a core between requests.
constexpr int kSpinIterations = 20000;

uint64_t generation_of(uint64_t state) { return state >> kGenerationShift; }

// Backs off politely: pause first, then give the core away when the machine is oversubscribed.
void relax(int& spins) {
  if (++spins < 64) {
    _mm_pause();
  } else {
    sched_yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    state_.fetch_add(uint64_t{1} << kGenerationShift);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::run_chunks(Job& job) {
  for (;;) {
    const int64_t begin = job.next.fetch_add(job.chunk, std::memory_order_relaxed);
    if (begin >= job.n) return;
    (*job.fn)(begin, std::min(job.n, begin + job.chunk));
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen_generation = 0;
  for (;;) {
    int spins = 0;
    uint64_t state = state_.load(std::memory_order_acquire);
    while (generation_of(state) == seen_generation && spins < kSpinIterations) {
      _mm_pause();
      ++spins;
      state = state_.load(std::memory_order_acquire);
    }
    if (generation_of(state) == seen_generation) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_of(state_.load(std::memory_order_acquire)) != seen_generation; });
      sleepers_.fetch_sub(1);
      state = state_.load(std::memory_order_acquire);
    }
    seen_generation = generation_of(state);
    if (stop_.load()) return;
    // Join the job unless the caller already closed it (then the job object may be reused).
    bool joined = false;
    while (generation_of(state) == seen_generation && (state & kClosedBit) == 0) {
      if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    run_chunks(job_);
    state_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  // Several chunks per thread lets fast threads take over work from slow ones.
  dispatch(n, std::max(grain, (n + n_threads_ * 4 - 1) / (n_threads_ * 4)), fn);
}

void ThreadPool::run_tasks(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  const std::function<void(int64_t, int64_t)> each = [&fn](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  };
  if (n_threads_ == 1 || n == 1) {
    each(0, n);
    return;
  }
  dispatch(n, 1, each);
}

void ThreadPool::dispatch(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  job_.fn = &fn;
  job_.n = n;
  job_.chunk = chunk;
  job_.next.store(0, std::memory_order_relaxed);
  // Open the next generation with no active workers and the closed bit clear.
  const uint64_t generation = generation_of(state_.load(std::memory_order_relaxed)) + 1;
  // Sequentially consistent store and load: a worker going to sleep increments sleepers_ and
  // then re-reads state_, so one of the two sides always sees the other (no lost wake-up).
  state_.store(generation << kGenerationShift, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_chunks(job_);
  // Close the job so late workers skip it, then wait only for those already inside.
  uint64_t state = state_.fetch_or(kClosedBit, std::memory_order_acq_rel) | kClosedBit;
  int spins = 0;
  while ((state & kActiveMask) != 0) {
    relax(spins);
    state = state_.load(std::memory_order_acquire);
  }
}

}  // namespace moe

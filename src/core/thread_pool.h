// A fixed pool of worker threads for data-parallel loops. The caller's thread takes part in
// every loop, so a pool of N threads starts N-1 workers.
//
// A decode step runs hundreds of short loops, so dispatch must be cheap: workers spin briefly
// before sleeping, and a loop never waits for a worker that has not joined it yet. Work is
// claimed in chunks; once the caller has run out of chunks it closes the loop, and a worker
// that wakes late (descheduled on a busy machine) finds it closed and goes back to waiting
// instead of holding everyone up.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

class ThreadPool {
 public:
  // Creates a pool running loops on `n_threads` threads in total (including the caller).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Splits [0, n) into contiguous chunks of at least `grain` items and runs fn(begin, end) on
  // them across the pool; returns when every chunk is done. Chunks are claimed dynamically, so
  // uneven work stays balanced.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Runs fn(i) for every task i in [0, n), claimed one at a time in index order, so callers
  // that list their tasks largest first get a greedy longest-first balance (tasks of uneven
  // size, e.g. experts with different token counts).
  void run_tasks(int64_t n, const std::function<void(int64_t)>& fn);

 private:
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0;
    int64_t chunk = 1;
    std::atomic<int64_t> next{0};
  };

  // Runs fn over [0, n) in chunks of `chunk` on every thread of the pool.
  void dispatch(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);
  void worker_loop();
  // Claims and runs chunks of the current job until none are left.
  static void run_chunks(Job& job);

  int n_threads_;
  std::vector<std::thread> workers_;
  Job job_;
  // Bits 0..30: workers inside the current job; bit 31: job closed; bits 32..63: generation.
  std::atomic<uint64_t> state_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

}  // namespace moe

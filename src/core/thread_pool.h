// A fixed pool of worker threads for data-parallel loops. The caller's thread takes part in
// every loop, so a pool of N threads starts N-1 workers. Workers spin briefly before sleeping:
// a decode step runs hundreds of short loops, and waking a sleeping thread costs more than
// most of them.
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

  // Runs fn(thread_index, n_threads) once on every thread and returns when all are done.
  void run_on_all(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items and runs fn(begin, end) on
  // them across the pool. Chunks are claimed dynamically, so uneven work stays balanced.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace moe

#include "runtime/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <memory>

#include <sys/mman.h>

namespace moe::runtime {

namespace {

// Sums 64-bit words with four independent accumulators so the loop is bound by loads, not by
// the add chain; the sum is returned so the compiler cannot drop the reads.
uint64_t sum_words(const uint64_t* data, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += data[i];
    b += data[i + 1];
    c += data[i + 2];
    d += data[i + 3];
  }
  for (; i < n; ++i) a += data[i];
  return a + b + c + d;
}

}  // namespace

double measure_read_bandwidth_gbps(ThreadPool& pool, size_t bytes, int repeats) {
  // 2 MiB aligned and advised huge, as the model's mapping is (formats::populate_read): the
  // bandwidth decode is compared against must not be lowered by TLB walks the model avoids.
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t buffer_bytes = std::max(kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage);
  const size_t n_words = buffer_bytes / sizeof(uint64_t);
  const std::unique_ptr<uint64_t, decltype(&std::free)> buffer(
      static_cast<uint64_t*>(std::aligned_alloc(kHugePage, buffer_bytes)), &std::free);
  if (!buffer) return 0.0;
  ::madvise(buffer.get(), buffer_bytes, MADV_HUGEPAGE);  // advisory
  // Touch every page first (with distinct values) so the timed passes read real memory.
  pool.parallel_for(static_cast<int64_t>(n_words), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) buffer.get()[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
  });
  double best = 0.0;
  std::atomic<uint64_t> sink{0};
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n_words), 1 << 20, [&](int64_t begin, int64_t end) {
      sink.fetch_add(sum_words(buffer.get() + begin, static_cast<size_t>(end - begin)), std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(buffer_bytes) / seconds / 1e9);
  }
  return sink.load() == 42 ? best + 0.0 : best;  // keep the sum observable
}

}  // namespace moe::runtime

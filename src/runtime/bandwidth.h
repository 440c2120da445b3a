// Measures this machine's memory read bandwidth, the roofline that decode speed is judged
// against (decode streams every active weight once per token).
#pragma once

#include "core/thread_pool.h"

namespace moe::runtime {

// Returns the best of `repeats` timed passes that read a `bytes`-sized buffer (far larger than
// the caches) with every thread of `pool`, in GB/s (1e9 bytes per second).
double measure_read_bandwidth_gbps(ThreadPool& pool, size_t bytes = size_t{1} << 30, int repeats = 3);

}  // namespace moe::runtime

#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/result.h"

namespace moe {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 64, 1000, 4097}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, 3, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
    }
  }
}

TEST(ThreadPool, ManyShortLoopsInARowAllComplete) {
  // Decode runs hundreds of tiny loops back to back; late workers must never see a stale job.
  ThreadPool pool(3);
  for (int round = 0; round < 5000; ++round) {
    std::atomic<int64_t> sum{0};
    pool.parallel_for(16, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum.fetch_add(i);
    });
    ASSERT_EQ(sum.load(), 120);
  }
}

TEST(ThreadPool, RunTasksRunsEveryTaskOnceAndInterleavesWithLoops) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 33, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.run_tasks(n, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
      std::atomic<int64_t> sum{0};
      pool.parallel_for(100, 7, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
      ASSERT_EQ(sum.load(), 100);
    }
  }
}

TEST(ThreadPool, ZeroOrNegativeThreadCountMeansOne) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), 1);
  int calls = 0;
  pool.parallel_for(10, 1, [&](int64_t b, int64_t e) { calls += static_cast<int>(e - b); });
  EXPECT_EQ(calls, 10);
}

Result<int> parse_positive(int x) {
  if (x <= 0) return make_error("{} is not positive", x);
  return x;
}

Result<int> doubled(int x) {
  MOE_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return v * 2;
}

TEST(Result, PropagatesErrorsAndValues) {
  EXPECT_EQ(*doubled(4), 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "-1 is not positive");
}

}  // namespace
}  // namespace moe

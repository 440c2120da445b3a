// Server counters and gauges, rendered in the Prometheus text format for GET /metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace moe::experts {
class ExpertStore;
struct StorePlan;
struct StoreStats;
}  // namespace moe::experts

namespace moe::server {

class Metrics {
 public:
  Metrics();

  void count_request(const std::string& route, int status);
  void add_prompt_tokens(int64_t n) { prompt_tokens_ += n; }
  // Records one scheduler step that produced `n_generated` tokens (for the tokens/s gauge).
  void record_step(int64_t n_batch_tokens, int64_t n_generated);
  void record_time_to_first_token(double seconds);
  void set_queue_depth(int64_t n) { queue_depth_ = n; }
  void set_active_sequences(int64_t n) { active_sequences_ = n; }
  void set_kv_bytes(int64_t n) { kv_bytes_ = n; }
  // Makes render() report the expert store's cache (null: the store is off, nothing reported).
  // Set before serving; the store outlives the renders.
  void set_expert_store(const experts::ExpertStore* store) { store_ = store; }

  int64_t active_sequences() const { return active_sequences_; }
  int64_t queue_depth() const { return queue_depth_; }

  // Returns the Prometheus exposition text.
  std::string render();

 private:
  double tokens_per_second_locked(std::chrono::steady_clock::time_point now);

  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> queue_depth_{0};
  std::atomic<int64_t> active_sequences_{0};
  std::atomic<int64_t> kv_bytes_{0};
  const experts::ExpertStore* store_ = nullptr;
  std::mutex mutex_;  // guards everything below
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (route, status) -> count
  int64_t generated_tokens_ = 0;
  int64_t steps_ = 0;
  int64_t step_tokens_ = 0;
  std::vector<double> ttft_bounds_;      // histogram upper bounds in seconds
  std::vector<int64_t> ttft_buckets_;    // counts per bound (not cumulative)
  int64_t ttft_count_ = 0;
  double ttft_sum_ = 0;
  // Generated tokens per recent step, for a rate over the last few seconds.
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> recent_;
};

// Returns the expert store's part of /metrics (moe_expert_store_*): its counters, hit ratio and
// memory, `n_cached` experts being in memory now.
std::string render_expert_store_metrics(const experts::StoreStats& stats, const experts::StorePlan& plan,
                                        int64_t n_cached);

}  // namespace moe::server

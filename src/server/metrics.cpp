#include "server/metrics.h"

#include <fmt/format.h>

namespace moe::server {

namespace {
// The tokens/s gauge averages over this window: long enough to be steady, short enough to fall
// to zero soon after the server goes idle.
constexpr std::chrono::seconds kRateWindow{10};
}  // namespace

Metrics::Metrics()
    : ttft_bounds_{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, ttft_buckets_(ttft_bounds_.size() + 1, 0) {}

void Metrics::count_request(const std::string& route, int status) {
  const std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::record_step(int64_t n_batch_tokens, int64_t n_generated) {
  const auto now = std::chrono::steady_clock::now();
  const std::lock_guard lock(mutex_);
  ++steps_;
  step_tokens_ += n_batch_tokens;
  generated_tokens_ += n_generated;
  recent_.emplace_back(now, n_generated);
  while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
}

void Metrics::record_time_to_first_token(double seconds) {
  const std::lock_guard lock(mutex_);
  size_t bucket = 0;
  while (bucket < ttft_bounds_.size() && seconds > ttft_bounds_[bucket]) ++bucket;
  ++ttft_buckets_[bucket];
  ++ttft_count_;
  ttft_sum_ += seconds;
}

double Metrics::tokens_per_second_locked(std::chrono::steady_clock::time_point now) {
  while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
  if (recent_.empty()) return 0.0;
  int64_t n = 0;
  for (const auto& entry : recent_) n += entry.second;
  return static_cast<double>(n) / std::chrono::duration<double>(kRateWindow).count();
}

std::string Metrics::render() {
  const std::lock_guard lock(mutex_);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  metric("moe_requests_total", "counter", "HTTP requests by route and status code.");
  for (const auto& [key, count] : requests_) {
    out += fmt::format("moe_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, count);
  }
  metric("moe_prompt_tokens_total", "counter", "Prompt tokens accepted for evaluation.");
  out += fmt::format("moe_prompt_tokens_total {}\n", prompt_tokens_.load());
  metric("moe_generated_tokens_total", "counter", "Tokens generated.");
  out += fmt::format("moe_generated_tokens_total {}\n", generated_tokens_);
  metric("moe_steps_total", "counter", "Batched forward steps run.");
  out += fmt::format("moe_steps_total {}\n", steps_);
  metric("moe_step_tokens_total", "counter", "Tokens evaluated over all steps (prompt chunks and decoded tokens).");
  out += fmt::format("moe_step_tokens_total {}\n", step_tokens_);
  metric("moe_queue_depth", "gauge", "Requests waiting for a sequence slot.");
  out += fmt::format("moe_queue_depth {}\n", queue_depth_.load());
  metric("moe_active_sequences", "gauge", "Sequences in the running batch.");
  out += fmt::format("moe_active_sequences {}\n", active_sequences_.load());
  metric("moe_kv_cache_bytes", "gauge", "KV cache memory held by active sequences.");
  out += fmt::format("moe_kv_cache_bytes {}\n", kv_bytes_.load());
  metric("moe_generation_tokens_per_second", "gauge", "Generated tokens per second over the last 10 seconds.");
  out += fmt::format("moe_generation_tokens_per_second {:.3f}\n", tokens_per_second_locked(std::chrono::steady_clock::now()));
  metric("moe_time_to_first_token_seconds", "histogram", "Time from request arrival to its first generated token.");
  int64_t cumulative = 0;
  for (size_t i = 0; i < ttft_bounds_.size(); ++i) {
    cumulative += ttft_buckets_[i];
    out += fmt::format("moe_time_to_first_token_seconds_bucket{{le=\"{}\"}} {}\n", ttft_bounds_[i], cumulative);
  }
  out += fmt::format("moe_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {}\n", ttft_count_);
  out += fmt::format("moe_time_to_first_token_seconds_sum {:.6f}\n", ttft_sum_);
  out += fmt::format("moe_time_to_first_token_seconds_count {}\n", ttft_count_);
  return out;
}

}  // namespace moe::server

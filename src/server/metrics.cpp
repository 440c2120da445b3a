#include "server/metrics.h"

#include <fmt/format.h>

#include "moe/expert_store.h"

namespace moe::server {

namespace {
// The tokens/s gauge averages over this window: long enough to be steady, short enough to fall
// to zero soon after the server goes idle.
constexpr std::chrono::seconds kRateWindow{10};

// Appends one unlabelled metric with its HELP and TYPE lines.
template <typename T>
void append_metric(std::string& out, const char* name, const char* type, const char* help, T value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

std::string render_expert_store_metrics(const experts::StoreStats& s, const experts::StorePlan& plan,
                                        int64_t n_cached) {
  std::string out;
  append_metric(out, "moe_expert_store_tokens_total", "counter", "Tokens run through the expert store.", s.tokens);
  append_metric(out, "moe_expert_store_expert_uses_total", "counter",
                "Routed experts the steps needed (each chosen expert once per layer and step).", s.expert_uses);
  append_metric(out, "moe_expert_store_hits_total", "counter", "Expert uses served from the cache.", s.hits);
  append_metric(out, "moe_expert_store_late_prefetches_total", "counter",
                "Expert uses that waited for a prefetch already under way.", s.late_prefetches);
  append_metric(out, "moe_expert_store_misses_total", "counter", "Expert uses read from disk on demand.", s.misses);
  append_metric(out, "moe_expert_store_hit_ratio", "gauge", "Hits over expert uses since start.",
                fmt::format("{:.6f}", s.hit_rate()));
  append_metric(out, "moe_expert_store_reads_total", "counter", "Experts read from disk (on demand and prefetched).",
                s.reads);
  append_metric(out, "moe_expert_store_read_bytes_total", "counter",
                "Bytes read from disk for experts (including O_DIRECT alignment).", s.bytes_read);
  append_metric(out, "moe_expert_store_evictions_total", "counter", "Experts evicted from the cache.", s.evictions);
  append_metric(out, "moe_expert_store_prefetch_issued_total", "counter",
                "Experts read ahead on a prediction of the next layer's routing.", s.prefetch_reads);
  append_metric(out, "moe_expert_store_prefetch_hits_total", "counter",
                "Prefetched experts that a step used before they were evicted.", s.prefetch_used);
  append_metric(out, "moe_expert_store_stall_seconds_total", "counter", "Time evaluation waited for expert reads.",
                fmt::format("{:.6f}", s.stall_seconds));
  append_metric(out, "moe_expert_store_budget_bytes", "gauge", "Memory the model may use (--mem-budget).",
                plan.budget_bytes);
  append_metric(out, "moe_expert_store_resident_bytes", "gauge",
                "Weights other than the routed experts, held in RAM.", plan.resident_bytes);
  append_metric(out, "moe_expert_store_cache_capacity_bytes", "gauge", "Memory of the expert cache's slots.",
                static_cast<uint64_t>(plan.n_slots) * plan.slot_bytes);
  append_metric(out, "moe_expert_store_cache_used_bytes", "gauge", "Memory of the slots holding an expert now.",
                static_cast<uint64_t>(n_cached) * plan.slot_bytes);
  append_metric(out, "moe_expert_store_cache_slots", "gauge", "Experts the cache holds at most.", plan.n_slots);
  append_metric(out, "moe_expert_store_cached_experts", "gauge", "Experts in the cache now.", n_cached);
  append_metric(out, "moe_expert_store_experts", "gauge", "Routed experts in the model file.", plan.n_experts);
  return out;
}

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
  // Read before taking the lock: the store's own lock is taken by its getters.
  const std::string store_part =
      store_ == nullptr ? std::string()
                        : render_expert_store_metrics(store_->stats(), store_->plan(), store_->n_cached());
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
  return out + store_part;
}

}  // namespace moe::server

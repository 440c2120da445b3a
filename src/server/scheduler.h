// Continuous batching: a scheduler thread owns the running batch. Requests join it between
// steps (when a sequence slot and KV memory are free) and leave it as they finish or are
// cancelled; every step evaluates all active sequences together (model::BatchEvaluator), with
// long prompts fed in chunks so they do not stall the sequences already streaming.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/sampler.h"
#include "server/metrics.h"
#include "tokenizer/vocab.h"

namespace moe::server {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = -1;  // < 0: until EOS or the end of the context
  runtime::SamplerParams sampling;
  std::vector<std::string> stop;
  int top_logprobs = -1;    // < 0: no log-probabilities; n >= 0: the sampled token's and n others
  bool ignore_eos = false;
  std::vector<std::pair<int32_t, float>> logit_bias;  // ids within the vocabulary
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
};

// One generated token's log-probability and the most likely alternatives.
struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<runtime::TokenLogprob> top;
};

// What a generation reports to its HTTP handler.
struct GenerationEvent {
  enum class Kind { kText, kDone };
  Kind kind = Kind::kText;
  int index = 0;                        // the choice (n > 1)
  std::string text;                     // kText: whole UTF-8 characters
  std::vector<TokenLogprobs> logprobs;  // tokens reported with this event (when requested)
  std::string finish_reason;            // kDone: "stop", "length", "cancelled" or "error"
  std::string error;                    // kDone with "error"
  int64_t n_prompt = 0;                 // kDone: usage
  int64_t n_generated = 0;
};

// The events of one request's generations (one per choice), from the scheduler thread to the
// handler thread; the handler cancels through it (client gone), which frees the slots.
class ResponseChannel {
 public:
  void push(GenerationEvent event);
  // Returns the events available after waiting up to `timeout` for one.
  std::vector<GenerationEvent> wait(std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<GenerationEvent> events_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int n_parallel = 4;          // sequences in the running batch at most
  int max_queue = 64;          // generations waiting for a slot at most (more: rejected)
  int64_t n_ctx = 2048;        // positions per sequence at most
  int64_t n_batch = 512;       // tokens per step at most (decoded tokens + prompt chunks)
  size_t kv_budget_bytes = 0;  // KV memory of all active sequences at most (0: n_parallel full contexts)
  model::KvType kv_type = model::KvType::kF16;
};

class Scheduler {
 public:
  // With `experts` (an expert store), every step's routed experts come from it (null: from the
  // mapped file); it must outlive the scheduler.
  Scheduler(const model::Model& model, const tokenizer::Vocab& vocab, ThreadPool& pool, SchedulerOptions options,
            Metrics& metrics, model::ExpertSource* experts = nullptr);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { kQueued, kQueueFull, kShuttingDown };
  // Queues the generations of one request (all or none), which report to `channel`.
  Admission submit(std::vector<GenerationRequest> requests, const std::shared_ptr<ResponseChannel>& channel);

  // Cancels queued and running generations (each gets a "cancelled" kDone) and stops the thread.
  void shutdown();

  const SchedulerOptions& options() const { return options_; }
  // Returns the KV memory a scheduler with `options` lets its sequences hold: kv_budget_bytes
  // (n_parallel full contexts when 0), at least one full context.
  static size_t kv_budget(const model::HParams& hp, const SchedulerOptions& options);

 private:
  struct Pending {
    GenerationRequest request;
    int index = 0;
    std::shared_ptr<ResponseChannel> channel;
  };
  struct Sequence;

  void run();
  std::vector<Pending> take_admissible_locked();
  void start(Pending pending);
  void step();
  void after_logits(Sequence& seq);
  void finish(Sequence& seq, const std::string& reason, const std::string& error = {});
  void remove_finished();
  // Returns the cache positions a request may use (prompt + max_tokens, at most n_ctx), and
  // their KV bytes.
  int64_t positions_for(const GenerationRequest& request) const;
  size_t kv_bytes_for(const GenerationRequest& request) const;

  const model::Model& model_;
  const tokenizer::Vocab& vocab_;
  ThreadPool& pool_;
  SchedulerOptions options_;
  Metrics& metrics_;
  model::BatchEvaluator evaluator_;

  std::mutex mutex_;  // guards queue_, stopping_, kv_reserved_
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  size_t kv_reserved_ = 0;  // KV bytes of active sequences
  std::vector<std::unique_ptr<Sequence>> active_;  // scheduler thread only
  std::vector<float> biased_logits_;               // scheduler thread only (logit_bias)
  std::thread thread_;
};

}  // namespace moe::server

#include "server/scheduler.h"

#include <algorithm>
#include <cmath>

#include "core/log.h"
#include "server/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace moe::server {

namespace {

// Prompt tokens a step takes even when decoding sequences fill n_batch, so prompts always
// progress.
constexpr int64_t kMinPrefillChunk = 32;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int n_top) {
  TokenLogprobs out;
  out.token = token;
  out.logprob = runtime::token_logprob(logits, token);
  if (n_top > 0) out.top = runtime::top_logprobs(logits, n_top);
  return out;
}

}  // namespace

void ResponseChannel::push(GenerationEvent event) {
  {
    const std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  ready_.notify_all();
}

std::vector<GenerationEvent> ResponseChannel::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<GenerationEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

// A generation in the running batch.
struct Scheduler::Sequence {
  Sequence(Pending p, std::unique_ptr<model::InferenceContext> c, const tokenizer::Vocab& vocab, size_t kv)
      : pending(std::move(p)),
        ctx(std::move(c)),
        sampler(pending.request.sampling),
        detokenizer(vocab),
        stop(pending.request.stop),
        kv_bytes(kv) {}

  Pending pending;
  std::unique_ptr<model::InferenceContext> ctx;
  runtime::Sampler sampler;
  tokenizer::Detokenizer detokenizer;
  StopMatcher stop;
  size_t kv_bytes;
  size_t n_prefilled = 0;   // prompt tokens evaluated
  int64_t n_generated = 0;
  int32_t last_token = 0;   // sampled, to be evaluated next step
  bool finished = false;
  std::vector<TokenLogprobs> unsent_logprobs;  // tokens whose text is still held back

  const GenerationRequest& request() const { return pending.request; }
  bool prefilling() const { return n_prefilled < request().prompt.size(); }
  void emit(std::string text) {
    if (text.empty() && unsent_logprobs.empty()) return;
    GenerationEvent event;
    event.index = pending.index;
    event.text = std::move(text);
    event.logprobs.swap(unsent_logprobs);
    pending.channel->push(std::move(event));
  }
};

Scheduler::Scheduler(const model::Model& model, const tokenizer::Vocab& vocab, ThreadPool& pool,
                     SchedulerOptions options, Metrics& metrics, model::ExpertSource* experts)
    : model_(model), vocab_(vocab), pool_(pool), options_(options), metrics_(metrics), evaluator_(model, pool) {
  evaluator_.set_expert_source(experts);
  options_.kv_budget_bytes = kv_budget(model.hparams(), options_);
  thread_ = std::thread([this] { run(); });
}

size_t Scheduler::kv_budget(const model::HParams& hp, const SchedulerOptions& options) {
  const size_t full_context = model::KvCache::bytes_for(hp, options.n_ctx, options.kv_type);
  const size_t budget =
      options.kv_budget_bytes == 0 ? full_context * static_cast<size_t>(options.n_parallel) : options.kv_budget_bytes;
  // Any single request must fit, or it would wait forever.
  return std::max(budget, full_context);
}

Scheduler::~Scheduler() { shutdown(); }

Scheduler::Admission Scheduler::submit(std::vector<GenerationRequest> requests,
                                       const std::shared_ptr<ResponseChannel>& channel) {
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return Admission::kShuttingDown;
    if (queue_.size() + requests.size() > static_cast<size_t>(options_.max_queue)) return Admission::kQueueFull;
    for (size_t i = 0; i < requests.size(); ++i) queue_.push_back({std::move(requests[i]), static_cast<int>(i), channel});
    metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
  }
  wake_.notify_all();
  return Admission::kQueued;
}

void Scheduler::shutdown() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Scheduler::positions_for(const GenerationRequest& request) const {
  const auto prompt = static_cast<int64_t>(request.prompt.size());
  const int64_t wanted = request.max_tokens < 0 ? options_.n_ctx : prompt + request.max_tokens;
  return std::min(wanted, options_.n_ctx);
}

size_t Scheduler::kv_bytes_for(const GenerationRequest& request) const {
  return model::KvCache::bytes_for(model_.hparams(), positions_for(request), options_.kv_type);
}

std::vector<Scheduler::Pending> Scheduler::take_admissible_locked() {
  std::erase_if(queue_, [](const Pending& p) { return p.channel->cancelled(); });
  std::vector<Pending> admitted;
  while (!queue_.empty() && active_.size() + admitted.size() < static_cast<size_t>(options_.n_parallel)) {
    const size_t need = kv_bytes_for(queue_.front().request);
    if (kv_reserved_ + need > options_.kv_budget_bytes) break;  // first come, first served
    kv_reserved_ += need;
    admitted.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return admitted;
}

void Scheduler::run() {
  for (;;) {
    std::vector<Pending> admitted;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) break;
      admitted = take_admissible_locked();
      metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
      metrics_.set_kv_bytes(static_cast<int64_t>(kv_reserved_));
    }
    for (Pending& p : admitted) start(std::move(p));
    remove_finished();
    if (!active_.empty()) step();
    remove_finished();
  }
  // Shutting down: every generation still queued or running ends as cancelled.
  for (auto& seq : active_) {
    if (!seq->finished) finish(*seq, "cancelled");
  }
  remove_finished();
  const std::lock_guard lock(mutex_);
  for (Pending& p : queue_) {
    GenerationEvent done;
    done.kind = GenerationEvent::Kind::kDone;
    done.index = p.index;
    done.finish_reason = "cancelled";
    done.n_prompt = static_cast<int64_t>(p.request.prompt.size());
    p.channel->push(std::move(done));
  }
  queue_.clear();
  metrics_.set_queue_depth(0);
}

void Scheduler::start(Pending pending) {
  const size_t kv = kv_bytes_for(pending.request);
  model::ContextParams params;
  params.n_ctx = positions_for(pending.request);
  params.n_ubatch = options_.n_batch;
  params.kv_type = options_.kv_type;
  auto ctx = model::InferenceContext::create(model_, params, pool_);
  auto seq = std::make_unique<Sequence>(std::move(pending), ctx.ok() ? std::move(ctx).value() : nullptr, vocab_, kv);
  metrics_.add_prompt_tokens(static_cast<int64_t>(seq->request().prompt.size()));
  if (!seq->ctx) {
    finish(*seq, "error", ctx.error().message);
  } else {
    for (int32_t token : seq->request().prompt) seq->sampler.accept(token);
  }
  active_.push_back(std::move(seq));
  metrics_.set_active_sequences(static_cast<int64_t>(active_.size()));
}

void Scheduler::step() {
  // Decoding sequences first (one token each), then prompt chunks in arrival order.
  std::vector<model::SequenceChunk> chunks;
  std::vector<Sequence*> in_step;
  int64_t budget = options_.n_batch;
  for (auto& seq : active_) {
    if (seq->prefilling()) continue;
    chunks.push_back({seq->ctx.get(), std::span<const int32_t>(&seq->last_token, 1), true});
    in_step.push_back(seq.get());
    --budget;
  }
  budget = std::max(budget, kMinPrefillChunk);
  std::vector<size_t> prefill_sizes;
  for (auto& seq : active_) {
    if (!seq->prefilling() || budget <= 0) continue;
    const std::vector<int32_t>& prompt = seq->request().prompt;
    const size_t n = std::min(prompt.size() - seq->n_prefilled, static_cast<size_t>(budget));
    chunks.push_back({seq->ctx.get(), std::span<const int32_t>(prompt).subspan(seq->n_prefilled, n),
                      seq->n_prefilled + n == prompt.size()});
    in_step.push_back(seq.get());
    budget -= static_cast<int64_t>(n);
  }
  int64_t n_tokens = 0;
  for (const auto& chunk : chunks) n_tokens += static_cast<int64_t>(chunk.tokens.size());
  const Status status = evaluator_.eval(chunks);
  if (!status.ok()) {
    MOE_LOG_WARN("moe serve: step failed: {}", status.error().message);
    for (Sequence* seq : in_step) finish(*seq, "error", status.error().message);
    return;
  }
  int64_t n_generated = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Sequence& seq = *in_step[i];
    if (seq.prefilling()) seq.n_prefilled += chunks[i].tokens.size();
    if (!chunks[i].wants_logits) continue;
    after_logits(seq);
    ++n_generated;
  }
  metrics_.record_step(n_tokens, n_generated);
}

void Scheduler::after_logits(Sequence& seq) {
  const std::span<const float> logits = seq.ctx->logits();
  int32_t token = 0;
  if (seq.request().logit_bias.empty()) {
    token = seq.sampler.sample(logits);
  } else {
    biased_logits_.assign(logits.begin(), logits.end());
    for (const auto& [id, bias] : seq.request().logit_bias) biased_logits_[static_cast<size_t>(id)] += bias;
    token = seq.sampler.sample(biased_logits_);
  }
  seq.sampler.accept(token);
  if (++seq.n_generated == 1) metrics_.record_time_to_first_token(seconds_since(seq.request().arrival));
  if (seq.request().top_logprobs >= 0) {
    seq.unsent_logprobs.push_back(token_logprobs(logits, token, seq.request().top_logprobs));
  }
  if (!seq.request().ignore_eos && vocab_.is_eog(token)) return finish(seq, "stop");
  const StopMatcher::Output out = seq.stop.push(seq.detokenizer.push(token));
  if (!out.text.empty()) seq.emit(out.text);
  if (out.stopped) return finish(seq, "stop");
  const bool at_max = seq.request().max_tokens >= 0 && seq.n_generated >= seq.request().max_tokens;
  if (at_max || seq.ctx->n_past() >= seq.ctx->n_ctx()) return finish(seq, "length");
  seq.last_token = token;
}

void Scheduler::finish(Sequence& seq, const std::string& reason, const std::string& error) {
  if (seq.finished) return;
  seq.finished = true;
  if (reason == "stop" || reason == "length") {
    std::string rest = seq.stop.push(seq.detokenizer.flush()).text;
    rest += seq.stop.flush();
    seq.emit(std::move(rest));
  }
  GenerationEvent done;
  done.kind = GenerationEvent::Kind::kDone;
  done.index = seq.pending.index;
  done.finish_reason = reason;
  done.error = error;
  done.n_prompt = static_cast<int64_t>(seq.request().prompt.size());
  done.n_generated = seq.n_generated;
  seq.pending.channel->push(std::move(done));
}

void Scheduler::remove_finished() {
  size_t released = 0;
  for (auto& seq : active_) {
    // A cancelled channel means the client is gone: free the slot now.
    if (!seq->finished && seq->pending.channel->cancelled()) finish(*seq, "cancelled");
    if (seq->finished) released += seq->kv_bytes;
  }
  if (released == 0 && std::none_of(active_.begin(), active_.end(), [](const auto& s) { return s->finished; })) return;
  std::erase_if(active_, [](const auto& seq) { return seq->finished; });
  {
    const std::lock_guard lock(mutex_);
    kv_reserved_ -= released;
    metrics_.set_kv_bytes(static_cast<int64_t>(kv_reserved_));
  }
  metrics_.set_active_sequences(static_cast<int64_t>(active_.size()));
}

}  // namespace moe::server

#include "model/context.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "model/blocks.h"

namespace moe::model {

KvCache::KvCache(const HParams& hp, int64_t n_ctx, KvType type)
    : type_(type),
      traits_(kernels::type_traits(type == KvType::kF16 ? DType::kF16 : DType::kF32)),
      n_ctx_(n_ctx),
      n_ctx_padded_((n_ctx + kPositionPad - 1) / kPositionPad * kPositionPad),
      row_k_(hp.n_embd_k_gqa()),
      row_v_(hp.cache_v_in_k ? 0 : hp.n_embd_v_gqa()) {
  MOE_CHECK(traits_ != nullptr);
  k_.resize(static_cast<size_t>(hp.n_layer) * layer_bytes_k());
  v_.resize(static_cast<size_t>(hp.n_layer) * layer_bytes_v());
}

size_t KvCache::bytes_for(const HParams& hp, int64_t n_ctx, KvType type) {
  const int64_t padded = (n_ctx + kPositionPad - 1) / kPositionPad * kPositionPad;
  const int64_t per_position = hp.n_embd_k_gqa() + (hp.cache_v_in_k ? 0 : hp.n_embd_v_gqa());
  return static_cast<size_t>(hp.n_layer * padded * per_position) * (type == KvType::kF16 ? 2 : 4);
}

namespace {

void store_value(uint8_t* dst, KvType type, float value) {
  if (type == KvType::kF32) {
    std::memcpy(dst, &value, sizeof(float));
  } else {
    const uint16_t half = kernels::fp32_to_fp16(value);
    std::memcpy(dst, &half, sizeof(half));
  }
}

float load_value(const uint8_t* src, KvType type) {
  if (type == KvType::kF32) {
    float value;
    std::memcpy(&value, src, sizeof(float));
    return value;
  }
  uint16_t half;
  std::memcpy(&half, src, sizeof(half));
  return kernels::fp16_to_fp32(half);
}

}  // namespace

void KvCache::store_k(int layer, int64_t pos, const float* k) {
  MOE_CHECK(pos >= 0 && pos < n_ctx_);
  uint8_t* row = k_.data() + static_cast<size_t>(layer) * layer_bytes_k() + static_cast<size_t>(pos) * k_row_bytes();
  for (int64_t i = 0; i < row_k_; ++i) store_value(row + static_cast<size_t>(i) * elem_bytes(), type_, k[i]);
}

void KvCache::store_v(int layer, int64_t pos, const float* v) {
  MOE_CHECK(pos >= 0 && pos < n_ctx_);
  uint8_t* column = v_.data() + static_cast<size_t>(layer) * layer_bytes_v() + static_cast<size_t>(pos) * elem_bytes();
  for (int64_t d = 0; d < row_v_; ++d) store_value(column + static_cast<size_t>(d) * v_row_bytes(), type_, v[d]);
}

void KvCache::load_k(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
  const uint8_t* row = k_rows(layer) + static_cast<size_t>(pos) * k_row_bytes();
  for (int64_t i = 0; i < n; ++i) out[i] = load_value(row + static_cast<size_t>(offset + i) * elem_bytes(), type_);
}

void KvCache::load_v(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
  const uint8_t* column = v_rows(layer) + static_cast<size_t>(pos) * elem_bytes();
  for (int64_t d = 0; d < n; ++d) out[d] = load_value(column + static_cast<size_t>(offset + d) * v_row_bytes(), type_);
}

std::vector<SequenceSegment> LayerContext::sequence_segments() const {
  if (batched()) return segments;
  return {SequenceSegment{&kv, pos0, 0, n_tokens, last_token_only}};
}

LayerContext LayerContext::single_sequence(const SequenceSegment& segment) const {
  LayerContext single{model, hp, pool, *segment.kv, scratch, segment.n_tokens, segment.pos0,
                      hidden + segment.first * hp.n_embd};
  single.routing = routing;
  single.batch_invariant = batch_invariant;
  return single;
}

InferenceContext::InferenceContext(const Model& model, const ContextParams& params, ThreadPool& pool)
    : model_(model), params_(params), pool_(pool), kv_(model.hparams(), params.n_ctx, params.kv_type) {}

Result<std::unique_ptr<InferenceContext>> InferenceContext::create(const Model& model, const ContextParams& params,
                                                                   ThreadPool& pool) {
  if (params.n_ctx <= 0 || params.n_ctx > (int64_t{1} << 24)) {
    return make_error("context size {} is out of range (1..{})", params.n_ctx, int64_t{1} << 24);
  }
  if (params.n_ubatch <= 0) return make_error("micro-batch size must be positive, got {}", params.n_ubatch);
  return std::unique_ptr<InferenceContext>(new InferenceContext(model, params, pool));
}

Status InferenceContext::eval(std::span<const int32_t> tokens) {
  if (tokens.empty()) return make_error("eval needs at least one token");
  if (n_past_ + static_cast<int64_t>(tokens.size()) > params_.n_ctx) {
    return make_error("context is full: {} positions used + {} new tokens > context size {}", n_past_, tokens.size(),
                      params_.n_ctx);
  }
  const int64_t n_vocab = model_.hparams().n_vocab;
  for (int32_t token : tokens) {
    if (token < 0 || token >= n_vocab) return make_error("token id {} is out of range (vocabulary size {})", token, n_vocab);
  }
  if (experts_ != nullptr) MOE_TRY(experts_->status());
  const int64_t n_past_before = n_past_;
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(params_.n_ubatch)) {
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(params_.n_ubatch));
    eval_micro_batch(tokens.subspan(begin, end - begin), end == tokens.size());
    // A failed expert read computed with zero weights: drop the positions of this call.
    if (experts_ != nullptr && !experts_->status().ok()) {
      n_past_ = n_past_before;
      return experts_->status();
    }
  }
  return ok_status();
}

void InferenceContext::eval_micro_batch(std::span<const int32_t> tokens, bool compute_logits) {
  const HParams& hp = model_.hparams();
  const ModelWeights& weights = model_.weights();
  const auto n_t = static_cast<int64_t>(tokens.size());
  hidden_.resize(static_cast<size_t>(n_t * hp.n_embd));
  const Tensor& embd = weights[GlobalSlot::kTokenEmbd];
  for (int64_t t = 0; t < n_t; ++t) {
    embd.traits->to_float(embd.row(tokens[static_cast<size_t>(t)]), hidden_.data() + t * hp.n_embd, hp.n_embd);
  }
  if (hp.embedding_scale != 0.0f) {
    for (float& x : hidden_) x *= hp.embedding_scale;
  }
  LayerContext ctx{model_, hp, pool_, kv_, scratch_, n_t, n_past_, hidden_.data()};
  // Routing statistics need every token through every layer.
  ctx.last_token_only = compute_logits && routing_ == nullptr;
  ctx.routing = routing_;
  ctx.experts = experts_;
  for (int layer = 0; layer < hp.n_layer; ++layer) model_.arch().forward_layer(ctx, layer);
  n_past_ += n_t;
  if (!compute_logits) return;
  // Only the last position's logits are needed for generation (the last row of ctx.hidden).
  std::vector<float> last(static_cast<size_t>(hp.n_embd));
  kernels::rms_norm(ctx.hidden + (ctx.n_tokens - 1) * hp.n_embd, weights[GlobalSlot::kOutputNorm].f32(), last.data(),
                    hp.n_embd, hp.rms_eps);
  logits_.resize(static_cast<size_t>(hp.n_vocab));
  matmul_f32(pool_, weights.output(), last.data(), 1, logits_.data(), scratch_.act);
  if (hp.logit_scale != 0.0f) {
    for (float& x : logits_) x /= hp.logit_scale;
  }
}

Status BatchEvaluator::validate(std::span<const SequenceChunk> chunks) const {
  if (chunks.empty()) return make_error("a batched step needs at least one sequence");
  const int64_t n_vocab = model_.hparams().n_vocab;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& chunk = chunks[i];
    const InferenceContext* seq = chunk.sequence;
    if (seq == nullptr || &seq->model_ != &model_) return make_error("sequence {} is not a context of this model", i);
    if (chunk.tokens.empty()) return make_error("sequence {} has no tokens to evaluate", i);
    for (size_t j = 0; j < i; ++j) {
      if (chunks[j].sequence == seq) return make_error("sequence {} appears twice in one step", i);
    }
    if (seq->n_past_ + static_cast<int64_t>(chunk.tokens.size()) > seq->n_ctx()) {
      return make_error("sequence {}: context is full: {} positions used + {} new tokens > context size {}", i,
                        seq->n_past_, chunk.tokens.size(), seq->n_ctx());
    }
    for (int32_t token : chunk.tokens) {
      if (token < 0 || token >= n_vocab) {
        return make_error("sequence {}: token id {} is out of range (vocabulary size {})", i, token, n_vocab);
      }
    }
  }
  return ok_status();
}

Status BatchEvaluator::eval(std::span<const SequenceChunk> chunks) {
  MOE_TRY(validate(chunks));
  if (experts_ != nullptr) MOE_TRY(experts_->status());
  const HParams& hp = model_.hparams();
  const ModelWeights& weights = model_.weights();
  const Tensor& embd = weights[GlobalSlot::kTokenEmbd];
  std::vector<SequenceSegment> segments;
  int64_t n_total = 0;
  bool any_logits = false;
  for (const SequenceChunk& chunk : chunks) {
    const auto n = static_cast<int64_t>(chunk.tokens.size());
    segments.push_back({&chunk.sequence->kv_, chunk.sequence->n_past_, n_total, n, chunk.wants_logits});
    n_total += n;
    any_logits = any_logits || chunk.wants_logits;
  }
  hidden_.resize(static_cast<size_t>(n_total * hp.n_embd));
  for (size_t c = 0; c < chunks.size(); ++c) {
    const std::span<const int32_t> tokens = chunks[c].tokens;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int64_t row = segments[c].first + static_cast<int64_t>(i);
      embd.traits->to_float(embd.row(tokens[i]), hidden_.data() + row * hp.n_embd, hp.n_embd);
    }
  }
  if (hp.embedding_scale != 0.0f) {
    for (float& x : hidden_) x *= hp.embedding_scale;
  }
  LayerContext ctx{model_, hp, pool_, *segments[0].kv, scratch_, n_total, 0, hidden_.data()};
  ctx.segments = std::move(segments);
  ctx.last_token_only = any_logits;
  ctx.batch_invariant = true;
  ctx.experts = experts_;
  const BatchInvariantSums invariant_sums(true);
  for (int layer = 0; layer < hp.n_layer; ++layer) model_.arch().forward_layer(ctx, layer);
  // A failed expert read computed with zero weights: no sequence keeps the positions of this step
  // (their cache rows past n_past are overwritten by the next step that reaches them).
  if (experts_ != nullptr) MOE_TRY(experts_->status());
  for (const SequenceChunk& chunk : chunks) chunk.sequence->n_past_ += static_cast<int64_t>(chunk.tokens.size());
  if (!any_logits) return ok_status();

  // Output norm and projection of every wanted last token at once (the output matrix is read
  // once per step), in the one-token order so each row matches an unbatched evaluation.
  std::vector<float> last;
  std::vector<InferenceContext*> wanting;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceSegment& segment = ctx.segments[i];
    if (!chunks[i].wants_logits) continue;
    const float* row = ctx.hidden + (segment.first + segment.n_tokens - 1) * hp.n_embd;
    const size_t offset = last.size();
    last.resize(offset + static_cast<size_t>(hp.n_embd));
    kernels::rms_norm(row, weights[GlobalSlot::kOutputNorm].f32(), last.data() + offset, hp.n_embd, hp.rms_eps);
    wanting.push_back(chunks[i].sequence);
  }
  const Tensor& output = weights.output();
  const auto n_want = static_cast<int64_t>(wanting.size());
  logits_.resize(static_cast<size_t>(n_want * hp.n_vocab));
  const ConvertedRows rows = convert_rows(pool_, *output.traits, last.data(), n_want, hp.n_embd, scratch_.act);
  matmul(pool_, output, 0, rows, n_want, logits_.data(), hp.n_vocab, kernels::SumOrder::kVecDot);
  for (int64_t i = 0; i < n_want; ++i) {
    std::vector<float>& dst = wanting[static_cast<size_t>(i)]->logits_;
    dst.assign(logits_.begin() + i * hp.n_vocab, logits_.begin() + (i + 1) * hp.n_vocab);
    if (hp.logit_scale != 0.0f) {
      for (float& x : dst) x /= hp.logit_scale;
    }
  }
  return ok_status();
}

}  // namespace moe::model

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

}  // namespace moe::model

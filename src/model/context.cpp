#include "model/context.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "model/blocks.h"

namespace moe::model {

KvCache::KvCache(const HParams& hp, int64_t n_ctx, KvType type)
    : type_(type), n_ctx_(n_ctx), row_k_(hp.n_embd_k_gqa()), row_v_(hp.cache_v_in_k ? 0 : hp.n_embd_v_gqa()) {
  k_.resize(static_cast<size_t>(hp.n_layer * n_ctx * row_k_) * elem_bytes());
  v_.resize(static_cast<size_t>(hp.n_layer * n_ctx * row_v_) * elem_bytes());
}

namespace {

void store_row(uint8_t* dst, KvType type, const float* src, int64_t n) {
  if (type == KvType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  auto* half = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) half[i] = kernels::fp32_to_fp16(src[i]);
}

void load_row(const uint8_t* src, KvType type, float* dst, int64_t n) {
  if (type == KvType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const auto* half = reinterpret_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = kernels::fp16_to_fp32(half[i]);
}

}  // namespace

void KvCache::store_k(int layer, int64_t pos, const float* k) {
  MOE_CHECK(pos >= 0 && pos < n_ctx_);
  store_row(k_.data() + static_cast<size_t>((layer * n_ctx_ + pos) * row_k_) * elem_bytes(), type_, k, row_k_);
}

void KvCache::store_v(int layer, int64_t pos, const float* v) {
  MOE_CHECK(pos >= 0 && pos < n_ctx_);
  store_row(v_.data() + static_cast<size_t>((layer * n_ctx_ + pos) * row_v_) * elem_bytes(), type_, v, row_v_);
}

void KvCache::load_k(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
  load_row(k_.data() + static_cast<size_t>((layer * n_ctx_ + pos) * row_k_ + offset) * elem_bytes(), type_, out, n);
}

void KvCache::load_v(int layer, int64_t pos, int64_t offset, int64_t n, float* out) const {
  load_row(v_.data() + static_cast<size_t>((layer * n_ctx_ + pos) * row_v_ + offset) * elem_bytes(), type_, out, n);
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
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(params_.n_ubatch)) {
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(params_.n_ubatch));
    eval_micro_batch(tokens.subspan(begin, end - begin), end == tokens.size());
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
  for (int layer = 0; layer < hp.n_layer; ++layer) model_.arch().forward_layer(ctx, layer);
  n_past_ += n_t;
  if (!compute_logits) return;
  // Only the last position's logits are needed for generation.
  std::vector<float> last(static_cast<size_t>(hp.n_embd));
  kernels::rms_norm(hidden_.data() + (n_t - 1) * hp.n_embd, weights[GlobalSlot::kOutputNorm].f32(), last.data(),
                    hp.n_embd, hp.rms_eps);
  logits_.resize(static_cast<size_t>(hp.n_vocab));
  matmul_f32(pool_, weights.output(), last.data(), 1, logits_.data(), scratch_.act);
  if (hp.logit_scale != 0.0f) {
    for (float& x : logits_) x /= hp.logit_scale;
  }
}

}  // namespace moe::model

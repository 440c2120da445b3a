#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"
#include "kernels/fp16.h"
#include "kernels/ops.h"

namespace moe::model {

namespace {

// Rows per parallel chunk: enough work per claim to amortise the atomic, small enough to
// balance two to a few dozen threads.
constexpr int64_t kRowGrain = 16;

}  // namespace

ConvertedRows convert_rows(ThreadPool& pool, const kernels::TypeTraits& w, const float* x, int64_t n_tokens,
                           int64_t n_cols, std::vector<uint8_t>& buffer) {
  if (w.vec_dot_type == DType::kF32) {
    return {reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(n_cols) * sizeof(float)};
  }
  const kernels::TypeTraits* act = kernels::type_traits(w.vec_dot_type);
  MOE_CHECK(act != nullptr && act->from_float != nullptr);
  // Activations are quantized the way llama.cpp's CPU backend does it at run time (which rounds
  // differently from the file quantizer), so both engines multiply the same integers.
  auto* quantize = act->from_float_activation != nullptr ? act->from_float_activation : act->from_float;
  const auto row_bytes = dtype_row_bytes(w.vec_dot_type, n_cols);
  MOE_CHECK(row_bytes.has_value());
  buffer.resize(*row_bytes * static_cast<size_t>(n_tokens));
  uint8_t* out = buffer.data();
  pool.parallel_for(n_tokens, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) quantize(x + t * n_cols, out + t * *row_bytes, n_cols);
  });
  return {buffer.data(), *row_bytes};
}

void matmul(ThreadPool& pool, const Tensor& w, int64_t matrix, ConvertedRows x, int64_t n_tokens, float* y,
            int64_t y_stride) {
  const uint8_t* base = w.row(0, matrix);
  pool.parallel_for(w.n_rows(), kRowGrain, [&](int64_t begin, int64_t end) {
    kernels::matmul_rows(*w.traits, base, w.row_bytes, w.n_cols(), x.data, x.row_bytes, n_tokens, y, y_stride, begin,
                         end);
  });
}

void matmul_f32(ThreadPool& pool, const Tensor& w, const float* x, int64_t n_tokens, float* y,
                std::vector<uint8_t>& buffer) {
  const ConvertedRows rows = convert_rows(pool, *w.traits, x, n_tokens, w.n_cols(), buffer);
  matmul(pool, w, 0, rows, n_tokens, y, w.n_rows());
}

void norm_tokens(LayerContext& ctx, const Tensor& weight) {
  const int64_t n_embd = ctx.hp.n_embd;
  ctx.scratch.norm.resize(static_cast<size_t>(ctx.n_tokens * n_embd));
  for (int64_t t = 0; t < ctx.n_tokens; ++t) {
    kernels::rms_norm(ctx.hidden + t * n_embd, weight.f32(), ctx.scratch.norm.data() + t * n_embd, n_embd,
                      ctx.hp.rms_eps);
  }
}

namespace {

// Rounds a vector to f16 precision, as ggml does to Q before multiplying with an F16 K cache.
void round_to_f16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = kernels::fp16_to_fp32(kernels::fp32_to_fp16(x[i]));
}

// Attention of one query head over positions [0, n_pos) of the cache.
void attend_one_head(const LayerContext& ctx, int layer, const float* q, int64_t kv_head, int64_t n_pos, float* out,
                     std::vector<float>& scores, std::vector<float>& row) {
  const HParams& hp = ctx.hp;
  const float scale = hp.kq_scale != 0.0f ? hp.kq_scale : 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
  scores.resize(static_cast<size_t>(n_pos));
  row.resize(static_cast<size_t>(std::max(hp.head_dim_k, hp.head_dim_v)));
  for (int64_t p = 0; p < n_pos; ++p) {
    ctx.kv.load_k(layer, p, kv_head * hp.head_dim_k, hp.head_dim_k, row.data());
    float dot = 0.0f;
    for (int64_t i = 0; i < hp.head_dim_k; ++i) dot += q[i] * row[i];
    scores[static_cast<size_t>(p)] = dot * scale;
  }
  kernels::softmax(scores.data(), n_pos);
  // With an F16 cache ggml multiplies V by the probabilities rounded to f16; do the same.
  if (ctx.kv.type() == KvType::kF16) round_to_f16(scores.data(), n_pos);
  std::fill(out, out + hp.head_dim_v, 0.0f);
  for (int64_t p = 0; p < n_pos; ++p) {
    ctx.kv.load_v(layer, p, kv_head * hp.head_dim_v, hp.head_dim_v, row.data());
    kernels::axpy(scores[static_cast<size_t>(p)], row.data(), out, hp.head_dim_v);
  }
}

void apply_rope(LayerContext& ctx, float* rows, int64_t n_heads, int64_t head_dim) {
  const HParams& hp = ctx.hp;
  for (int64_t t = 0; t < ctx.n_tokens; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      kernels::rope(rows + (t * n_heads + h) * head_dim, hp.n_rot, ctx.pos0 + t, hp.rope_freq_base,
                    hp.rope_freq_scale, hp.rope_layout);
    }
  }
}

}  // namespace

namespace {

// y (n_tokens, n) += bias (n) when the optional bias tensor is present.
void add_bias(const Tensor& bias, float* y, int64_t n_tokens, int64_t n) {
  if (!bias.present()) return;
  for (int64_t t = 0; t < n_tokens; ++t) kernels::add(bias.f32(), y + t * n, n);
}

// RMSNorm of Q or K: per head (qwen3moe: weight of head_dim) or over each token's whole
// projection (olmoe: weight of n_heads * head_dim).
void norm_projection(const LayerContext& ctx, const Tensor& weight, float* rows, int64_t n_heads, int64_t head_dim) {
  const HParams& hp = ctx.hp;
  const bool per_head = hp.qk_norm == HParams::QkNorm::kPerHead;
  const int64_t span = per_head ? head_dim : n_heads * head_dim;
  const int64_t n_spans = ctx.n_tokens * (per_head ? n_heads : 1);
  for (int64_t i = 0; i < n_spans; ++i) kernels::rms_norm(rows + i * span, weight.f32(), rows + i * span, span, hp.rms_eps);
}

void project_qkv(LayerContext& ctx, const LayerWeights& w) {
  const HParams& hp = ctx.hp;
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  const int64_t n_q = hp.n_head * hp.head_dim_k;
  s.q.resize(static_cast<size_t>(n_t * n_q));
  s.k.resize(static_cast<size_t>(n_t * hp.n_embd_k_gqa()));
  s.v.resize(static_cast<size_t>(n_t * hp.n_embd_v_gqa()));
  matmul_f32(ctx.pool, w[LayerSlot::kWq], s.norm.data(), n_t, s.q.data(), s.act);
  matmul_f32(ctx.pool, w[LayerSlot::kWk], s.norm.data(), n_t, s.k.data(), s.act);
  matmul_f32(ctx.pool, w[LayerSlot::kWv], s.norm.data(), n_t, s.v.data(), s.act);
  add_bias(w[LayerSlot::kBq], s.q.data(), n_t, n_q);
  add_bias(w[LayerSlot::kBk], s.k.data(), n_t, hp.n_embd_k_gqa());
  add_bias(w[LayerSlot::kBv], s.v.data(), n_t, hp.n_embd_v_gqa());
  if (hp.qk_norm != HParams::QkNorm::kNone) {
    norm_projection(ctx, w[LayerSlot::kAttnQNorm], s.q.data(), hp.n_head, hp.head_dim_k);
    norm_projection(ctx, w[LayerSlot::kAttnKNorm], s.k.data(), hp.n_head_kv, hp.head_dim_k);
  }

}

}  // namespace

void add_residual(const LayerContext& ctx, float* block_out) {
  const int64_t n = ctx.n_tokens * ctx.hp.n_embd;
  if (ctx.hp.residual_scale != 0.0f) {
    for (int64_t i = 0; i < n; ++i) block_out[i] *= ctx.hp.residual_scale;
  }
  kernels::add(block_out, ctx.hidden, n);
}

void attention_block(LayerContext& ctx, int layer) {
  const HParams& hp = ctx.hp;
  const LayerWeights& w = ctx.layer(layer);
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  norm_tokens(ctx, w[LayerSlot::kAttnNorm]);
  project_qkv(ctx, w);
  apply_rope(ctx, s.q.data(), hp.n_head, hp.head_dim_k);
  apply_rope(ctx, s.k.data(), hp.n_head_kv, hp.head_dim_k);
  for (int64_t t = 0; t < n_t; ++t) {
    ctx.kv.store_k(layer, ctx.pos0 + t, s.k.data() + t * hp.n_embd_k_gqa());
    ctx.kv.store_v(layer, ctx.pos0 + t, s.v.data() + t * hp.n_embd_v_gqa());
  }
  if (ctx.kv.type() == KvType::kF16) round_to_f16(s.q.data(), static_cast<int64_t>(s.q.size()));

  s.attn_out.resize(static_cast<size_t>(n_t * hp.n_head * hp.head_dim_v));
  const int64_t group = hp.n_head / hp.n_head_kv;
  ctx.pool.parallel_for(n_t * hp.n_head, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores, row;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / hp.n_head;
      const int64_t h = item % hp.n_head;
      attend_one_head(ctx, layer, s.q.data() + (t * hp.n_head + h) * hp.head_dim_k, h / group, ctx.pos0 + t + 1,
                      s.attn_out.data() + (t * hp.n_head + h) * hp.head_dim_v, scores, row);
    }
  });

  s.block_out.resize(static_cast<size_t>(n_t * hp.n_embd));
  matmul_f32(ctx.pool, w[LayerSlot::kWo], s.attn_out.data(), n_t, s.block_out.data(), s.act);
  add_bias(w[LayerSlot::kBo], s.block_out.data(), n_t, hp.n_embd);
  add_residual(ctx, s.block_out.data());
}

}  // namespace moe::model

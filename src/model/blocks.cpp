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
  const float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
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

void attention_block(LayerContext& ctx, int layer) {
  const HParams& hp = ctx.hp;
  const LayerWeights& w = ctx.layer(layer);
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  norm_tokens(ctx, w[LayerSlot::kAttnNorm]);

  s.q.resize(static_cast<size_t>(n_t * hp.n_head * hp.head_dim_k));
  s.k.resize(static_cast<size_t>(n_t * hp.n_embd_k_gqa()));
  s.v.resize(static_cast<size_t>(n_t * hp.n_embd_v_gqa()));
  matmul_f32(ctx.pool, w[LayerSlot::kWq], s.norm.data(), n_t, s.q.data(), s.act);
  matmul_f32(ctx.pool, w[LayerSlot::kWk], s.norm.data(), n_t, s.k.data(), s.act);
  matmul_f32(ctx.pool, w[LayerSlot::kWv], s.norm.data(), n_t, s.v.data(), s.act);
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
  kernels::add(s.block_out.data(), ctx.hidden, n_t * hp.n_embd);
}

RoutedToken route_token(const MoeSpec& spec, const float* router_logits) {
  std::vector<float> scores(router_logits, router_logits + spec.n_expert);
  if (spec.gating == GatingFunction::kSoftmax) {
    kernels::softmax(scores.data(), spec.n_expert);
  } else {
    for (float& s : scores) s = 1.0f / (1.0f + std::exp(-s));
  }
  std::vector<int> order(static_cast<size_t>(spec.n_expert));
  std::iota(order.begin(), order.end(), 0);
  // Highest score first; ties go to the lower expert index.
  std::partial_sort(order.begin(), order.begin() + spec.n_expert_used, order.end(),
                    [&](int a, int b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
  RoutedToken routed;
  routed.experts.assign(order.begin(), order.begin() + spec.n_expert_used);
  float sum = 0.0f;
  for (int e : routed.experts) {
    routed.weights.push_back(scores[static_cast<size_t>(e)]);
    sum += scores[static_cast<size_t>(e)];
  }
  for (float& weight : routed.weights) {
    if (spec.normalize_top_k) weight /= sum;
    weight *= spec.routed_scale;
  }
  return routed;
}

namespace {

void dense_ffn(LayerContext& ctx, const LayerWeights& w) {
  const HParams& hp = ctx.hp;
  const int64_t n_t = ctx.n_tokens;
  const int64_t n_ff = w[LayerSlot::kFfnUp].n_rows();
  std::vector<float> gate(static_cast<size_t>(n_t * n_ff)), up(gate.size());
  Scratch& s = ctx.scratch;
  matmul_f32(ctx.pool, w[LayerSlot::kFfnGate], s.norm.data(), n_t, gate.data(), s.act);
  matmul_f32(ctx.pool, w[LayerSlot::kFfnUp], s.norm.data(), n_t, up.data(), s.act);
  kernels::swiglu(gate.data(), up.data(), gate.data(), n_t * n_ff);
  s.block_out.resize(static_cast<size_t>(n_t * hp.n_embd));
  matmul_f32(ctx.pool, w[LayerSlot::kFfnDown], gate.data(), n_t, s.block_out.data(), s.act);
}

// The tokens of a micro-batch routed to one expert, with the slot (rank) each chose it at.
struct ExpertGroup {
  std::vector<int64_t> tokens;
  std::vector<int> slots;
};

// Runs one expert over its token group; writes each token's result to its slot in `slot_out`
// (n_tokens, n_expert_used, n_embd).
void run_expert(LayerContext& ctx, const LayerWeights& w, int expert, const ExpertGroup& group, float* slot_out) {
  const HParams& hp = ctx.hp;
  const int64_t n = static_cast<int64_t>(group.tokens.size());
  const int64_t n_ff = hp.n_ff_expert;
  std::vector<float> input(static_cast<size_t>(n * hp.n_embd));
  for (int64_t i = 0; i < n; ++i) {
    const float* src = ctx.scratch.norm.data() + group.tokens[static_cast<size_t>(i)] * hp.n_embd;
    std::copy(src, src + hp.n_embd, input.data() + i * hp.n_embd);
  }
  std::vector<float> gate(static_cast<size_t>(n * n_ff)), up(gate.size()), down(static_cast<size_t>(n * hp.n_embd));
  std::vector<uint8_t> buffer;
  const Tensor& gate_w = w[LayerSlot::kFfnGateExps];
  const Tensor& up_w = w[LayerSlot::kFfnUpExps];
  const Tensor& down_w = w[LayerSlot::kFfnDownExps];
  ConvertedRows rows = convert_rows(ctx.pool, *gate_w.traits, input.data(), n, hp.n_embd, buffer);
  matmul(ctx.pool, gate_w, expert, rows, n, gate.data(), n_ff);
  if (up_w.traits->vec_dot_type != gate_w.traits->vec_dot_type) {
    rows = convert_rows(ctx.pool, *up_w.traits, input.data(), n, hp.n_embd, buffer);
  }
  matmul(ctx.pool, up_w, expert, rows, n, up.data(), n_ff);
  kernels::swiglu(gate.data(), up.data(), gate.data(), n * n_ff);
  rows = convert_rows(ctx.pool, *down_w.traits, gate.data(), n, n_ff, buffer);
  matmul(ctx.pool, down_w, expert, rows, n, down.data(), hp.n_embd);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = group.tokens[static_cast<size_t>(i)];
    float* dst = slot_out + (t * hp.moe.n_expert_used + group.slots[static_cast<size_t>(i)]) * hp.n_embd;
    std::copy(down.data() + i * hp.n_embd, down.data() + (i + 1) * hp.n_embd, dst);
  }
}

void moe_ffn(LayerContext& ctx, const LayerWeights& w) {
  const HParams& hp = ctx.hp;
  const MoeSpec& spec = hp.moe;
  const int64_t n_t = ctx.n_tokens;
  std::vector<float> router(static_cast<size_t>(n_t * spec.n_expert));
  matmul_f32(ctx.pool, w[LayerSlot::kFfnGateInp], ctx.scratch.norm.data(), n_t, router.data(), ctx.scratch.act);

  std::vector<RoutedToken> routes(static_cast<size_t>(n_t));
  std::vector<ExpertGroup> groups(static_cast<size_t>(spec.n_expert));
  for (int64_t t = 0; t < n_t; ++t) {
    routes[static_cast<size_t>(t)] = route_token(spec, router.data() + t * spec.n_expert);
    const RoutedToken& r = routes[static_cast<size_t>(t)];
    for (int slot = 0; slot < spec.n_expert_used; ++slot) {
      ExpertGroup& g = groups[static_cast<size_t>(r.experts[static_cast<size_t>(slot)])];
      g.tokens.push_back(t);
      g.slots.push_back(slot);
    }
  }
  std::vector<float> slot_out(static_cast<size_t>(n_t * spec.n_expert_used * hp.n_embd));
  for (int e = 0; e < spec.n_expert; ++e) {
    if (!groups[static_cast<size_t>(e)].tokens.empty()) run_expert(ctx, w, e, groups[static_cast<size_t>(e)], slot_out.data());
  }
  // Weighted sum in slot order, as llama.cpp adds the weighted expert outputs.
  Scratch& s = ctx.scratch;
  s.block_out.assign(static_cast<size_t>(n_t * hp.n_embd), 0.0f);
  for (int64_t t = 0; t < n_t; ++t) {
    float* out = s.block_out.data() + t * hp.n_embd;
    for (int slot = 0; slot < spec.n_expert_used; ++slot) {
      const float* src = slot_out.data() + (t * spec.n_expert_used + slot) * hp.n_embd;
      const float weight = routes[static_cast<size_t>(t)].weights[static_cast<size_t>(slot)];
      for (int64_t i = 0; i < hp.n_embd; ++i) out[i] += src[i] * weight;
    }
  }
}

}  // namespace

void ffn_block(LayerContext& ctx, int layer) {
  const LayerWeights& w = ctx.layer(layer);
  norm_tokens(ctx, w[LayerSlot::kFfnNorm]);
  if (ctx.hp.layer_is_moe(layer)) {
    moe_ffn(ctx, w);
  } else {
    dense_ffn(ctx, w);
  }
  kernels::add(ctx.scratch.block_out.data(), ctx.hidden, ctx.n_tokens * ctx.hp.n_embd);
}

}  // namespace moe::model

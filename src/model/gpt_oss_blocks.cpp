#include "model/gpt_oss_blocks.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/check.h"
#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "model/blocks.h"

namespace moe::model {

namespace {

// llama.cpp's YaRN defaults (llama_hparams::yarn_beta_fast/slow); gpt-oss files do not set them.
constexpr float kYarnBetaFast = 32.0f;
constexpr float kYarnBetaSlow = 1.0f;

// ggml_rope_yarn_corr_dim: the rotated pair whose wavelength fits `n_rotations` times into the
// original context. Float operations in ggml's order so the floor/ceil land on the same pair.
float yarn_corr_dim(int64_t n_rot, int64_t n_ctx_orig, float n_rotations, float base) {
  const float pi = static_cast<float>(std::numbers::pi);
  return static_cast<float>(n_rot) * std::log(static_cast<float>(n_ctx_orig) / (n_rotations * 2 * pi)) /
         (2 * std::log(base));
}

// The magnitude factor llama.cpp's context derives for YaRN (get_mscale in llama-context.cpp),
// which cancels the 1 + 0.1 ln(factor) that ggml's rope multiplies in again.
float yarn_attn_factor(const HParams& hp) {
  float attn_factor = 1.0f;
  if (hp.yarn.enabled) {
    const float factor = 1.0f / hp.rope_freq_scale;
    auto mscale = [&](float m) { return factor <= 1.0f ? 1.0f : 0.1f * m * std::log(factor) + 1.0f; };
    attn_factor = hp.yarn.log_mul != 0.0f ? mscale(1.0f) / mscale(hp.yarn.log_mul) : mscale(1.0f);
    attn_factor *= 1.0f / (1.0f + 0.1f * std::log(factor));
  }
  return attn_factor * hp.yarn.attn_factor;
}

}  // namespace

YarnRope::YarnRope(const HParams& hp)
    : n_rot_(hp.n_rot),
      freq_scale_(hp.rope_freq_scale),
      theta_scale_(std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.n_rot))),
      ext_factor_(hp.yarn.enabled ? 1.0f : 0.0f),
      mscale_(yarn_attn_factor(hp)) {
  if (ext_factor_ != 0.0f) mscale_ *= 1.0f + 0.1f * std::log(1.0f / freq_scale_);
  const int64_t n_ctx_orig = hp.yarn.n_ctx_orig > 0 ? hp.yarn.n_ctx_orig : hp.n_ctx_train;
  corr_low_ = std::max(0.0f, std::floor(yarn_corr_dim(n_rot_, n_ctx_orig, kYarnBetaFast, hp.rope_freq_base)));
  corr_high_ = std::min(static_cast<float>(n_rot_ - 1),
                        std::ceil(yarn_corr_dim(n_rot_, n_ctx_orig, kYarnBetaSlow, hp.rope_freq_base)));
}

void YarnRope::table(int64_t pos, std::vector<float>& table) const {
  table.resize(static_cast<size_t>(n_rot_));
  // The unscaled angle advances by repeated multiplication, as in ggml's rope cache.
  float theta_extrap = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot_ / 2; ++i) {
    const float theta_interp = freq_scale_ * theta_extrap;
    float theta = theta_interp;
    if (ext_factor_ != 0.0f) {
      // Ramp from extrapolation (high-frequency pairs, below corr_low_) to interpolation.
      const float y = (static_cast<float>(i) - corr_low_) / std::max(0.001f, corr_high_ - corr_low_);
      const float ramp_mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * ext_factor_;
      theta = theta_interp * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
    }
    table[static_cast<size_t>(2 * i)] = std::cos(theta) * mscale_;
    table[static_cast<size_t>(2 * i + 1)] = std::sin(theta) * mscale_;
    theta_extrap *= theta_scale_;
  }
}

void YarnRope::rotate_neox(const std::vector<float>& table, float* head) const {
  const int64_t half = n_rot_ / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float cos_t = table[static_cast<size_t>(2 * i)];
    const float sin_t = table[static_cast<size_t>(2 * i + 1)];
    const float x0 = head[i];
    const float x1 = head[i + half];
    head[i] = x0 * cos_t - x1 * sin_t;
    head[i + half] = x0 * sin_t + x1 * cos_t;
  }
}

namespace {

// y (n_tokens, n) += bias (n) when the optional bias tensor is present.
void add_bias(const float* bias, float* y, int64_t n_tokens, int64_t n) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n_tokens; ++t) kernels::add(bias, y + t * n, n);
}

const float* bias_of(const Tensor& t) { return t.present() ? t.f32() : nullptr; }

// Rounds a vector to f16 precision, as ggml does to Q (and to the probabilities) before
// multiplying with an F16 cache.
void round_to_f16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = kernels::fp16_to_fp32(kernels::fp32_to_fp16(x[i]));
}

void rope_qk(LayerContext& ctx) {
  const HParams& hp = ctx.hp;
  const YarnRope rope(hp);
  std::vector<float> table;
  for (int64_t t = 0; t < ctx.n_tokens; ++t) {
    rope.table(ctx.pos0 + t, table);
    for (int64_t h = 0; h < hp.n_head; ++h) rope.rotate_neox(table, ctx.scratch.q.data() + (t * hp.n_head + h) * hp.head_dim_k);
    for (int64_t h = 0; h < hp.n_head_kv; ++h) {
      rope.rotate_neox(table, ctx.scratch.k.data() + (t * hp.n_head_kv + h) * hp.head_dim_k);
    }
  }
}

// The positions one query head attends to, [first, end), and its sink logit.
struct HeadSpan {
  int64_t first = 0;
  int64_t end = 0;
  float sink = 0.0f;
};

// Attention of one query head with a sink: the sink is one more logit in the softmax's max and
// sum (ggml_soft_max_add_sinks) whose value row is zero, so it only takes probability away.
void attend_with_sink(const LayerContext& ctx, int layer, const float* q, int64_t kv_head, HeadSpan span, float* out,
                      std::vector<float>& probs, std::vector<float>& row) {
  const HParams& hp = ctx.hp;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hp.n_rot));
  const int64_t n = span.end - span.first;
  probs.resize(static_cast<size_t>(n));
  row.resize(static_cast<size_t>(std::max(hp.head_dim_k, hp.head_dim_v)));
  float max_logit = span.sink;
  for (int64_t i = 0; i < n; ++i) {
    ctx.kv.load_k(layer, span.first + i, kv_head * hp.head_dim_k, hp.head_dim_k, row.data());
    float dot = 0.0f;
    for (int64_t d = 0; d < hp.head_dim_k; ++d) dot += q[d] * row[d];
    probs[static_cast<size_t>(i)] = dot * scale;
    max_logit = std::max(max_logit, probs[static_cast<size_t>(i)]);
  }
  double sum = 0.0;
  for (float& p : probs) {
    p = std::exp(p - max_logit);
    sum += p;
  }
  sum += static_cast<double>(std::exp(span.sink - max_logit));
  const auto inv = static_cast<float>(1.0 / sum);
  for (float& p : probs) p *= inv;
  if (ctx.kv.type() == KvType::kF16) round_to_f16(probs.data(), n);
  std::fill(out, out + hp.head_dim_v, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    ctx.kv.load_v(layer, span.first + i, kv_head * hp.head_dim_v, hp.head_dim_v, row.data());
    kernels::axpy(probs[static_cast<size_t>(i)], row.data(), out, hp.head_dim_v);
  }
}

}  // namespace

void sink_attention_block(LayerContext& ctx, int layer) {
  if (ctx.batched()) {
    // Written for one sequence (positions, window and cache): run it per sequence.
    for_each_sequence(ctx, [layer](LayerContext& single) { sink_attention_block(single, layer); });
    return;
  }
  const HParams& hp = ctx.hp;
  const LayerWeights& w = ctx.layer(layer);
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  norm_tokens(ctx, w[LayerSlot::kAttnNorm]);
  project_qkv(ctx, w);
  rope_qk(ctx);
  for (int64_t t = 0; t < n_t; ++t) {
    ctx.kv.store_k(layer, ctx.pos0 + t, s.k.data() + t * hp.n_embd_k_gqa());
    ctx.kv.store_v(layer, ctx.pos0 + t, s.v.data() + t * hp.n_embd_v_gqa());
  }
  if (ctx.kv.type() == KvType::kF16) round_to_f16(s.q.data(), static_cast<int64_t>(s.q.size()));

  // Windowed layers mask key p0 for query p1 when p1 - p0 >= n_swa (llama.cpp's standard SWA).
  const int64_t window = hp.layer_is_swa(layer) ? hp.n_swa : 0;
  const float* sinks = w[LayerSlot::kAttnSinks].f32();
  s.attn_out.resize(static_cast<size_t>(n_t * hp.n_head * hp.head_dim_v));
  const int64_t group = hp.n_head / hp.n_head_kv;
  ctx.pool.parallel_for(n_t * hp.n_head, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> probs, row;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / hp.n_head;
      const int64_t h = item % hp.n_head;
      const int64_t pos = ctx.pos0 + t;
      const HeadSpan span{window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0, pos + 1, sinks[h]};
      attend_with_sink(ctx, layer, s.q.data() + (t * hp.n_head + h) * hp.head_dim_k, h / group, span,
                       s.attn_out.data() + (t * hp.n_head + h) * hp.head_dim_v, probs, row);
    }
  });

  s.block_out.resize(static_cast<size_t>(n_t * hp.n_embd));
  matmul_f32(ctx.pool, w[LayerSlot::kWo], s.attn_out.data(), n_t, s.block_out.data(), s.act);
  add_bias(bias_of(w[LayerSlot::kBo]), s.block_out.data(), n_t, hp.n_embd);
  add_residual(ctx, s.block_out.data());
}

namespace {

// ggml_swiglu_oai: the gate clamped from above, the up projection clamped both ways and shifted
// by one. Same float operations as ggml's CPU kernel.
void swiglu_oai(const MoeSpec& spec, float* gate, const float* up, int64_t n) {
  const float alpha = spec.swiglu_alpha;
  const float limit = spec.swiglu_limit;
  for (int64_t i = 0; i < n; ++i) {
    const float x = std::min(gate[i], limit);
    const float y = std::clamp(up[i], -limit, limit);
    gate[i] = x / (1.0f + std::exp(alpha * (-x))) * (y + 1.0f);
  }
}

// The tokens of a micro-batch routed to one expert, with the slot (rank) each chose it at.
struct ExpertGroup {
  std::vector<int64_t> tokens;
  std::vector<int> slots;
};

// Returns the experts with tokens in this micro-batch, most tokens first.
std::vector<int> used_experts(const std::vector<ExpertGroup>& groups) {
  std::vector<int64_t> counts;
  for (const ExpertGroup& g : groups) counts.push_back(static_cast<int64_t>(g.tokens.size()));
  return experts_by_use(counts);
}

// out (n, n_rows of `w`) = expert `expert` of w (its rows at `data`) . x + bias row `expert` (bias
// shape (n_rows, n_expert)).
void expert_matmul(LayerContext& ctx, const Tensor& w, const uint8_t* data, const Tensor& bias, int expert,
                   const float* x, int64_t n, float* out, std::vector<uint8_t>& buffer) {
  const ConvertedRows rows = convert_rows(ctx.pool, *w.traits, x, n, w.n_cols(), buffer);
  matmul(ctx.pool, expert_view(w, data), 0, rows, n, out, w.n_rows());
  add_bias(bias.f32() + static_cast<int64_t>(expert) * w.n_rows(), out, n, w.n_rows());
}

// Runs one expert (weights `ew`) over its token group; writes each token's result to its slot in
// `slot_out` (n_tokens, n_expert_used, n_embd).
void run_biased_expert(LayerContext& ctx, const LayerWeights& w, int expert, const ExpertWeights& ew,
                       const ExpertGroup& group, float* slot_out) {
  const HParams& hp = ctx.hp;
  const auto n = static_cast<int64_t>(group.tokens.size());
  std::vector<float> input(static_cast<size_t>(n * hp.n_embd));
  for (int64_t i = 0; i < n; ++i) {
    const float* src = ctx.scratch.norm.data() + group.tokens[static_cast<size_t>(i)] * hp.n_embd;
    std::copy(src, src + hp.n_embd, input.data() + i * hp.n_embd);
  }
  std::vector<float> gate(static_cast<size_t>(n * hp.n_ff_expert)), up(gate.size());
  std::vector<float> down(static_cast<size_t>(n * hp.n_embd));
  std::vector<uint8_t> buffer;
  expert_matmul(ctx, w[LayerSlot::kFfnGateExps], ew.gate, w[LayerSlot::kFfnGateExpsB], expert, input.data(), n,
                gate.data(), buffer);
  expert_matmul(ctx, w[LayerSlot::kFfnUpExps], ew.up, w[LayerSlot::kFfnUpExpsB], expert, input.data(), n, up.data(),
                buffer);
  swiglu_oai(hp.moe, gate.data(), up.data(), n * hp.n_ff_expert);
  expert_matmul(ctx, w[LayerSlot::kFfnDownExps], ew.down, w[LayerSlot::kFfnDownExpsB], expert, gate.data(), n,
                down.data(), buffer);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = group.tokens[static_cast<size_t>(i)];
    float* dst = slot_out + (t * hp.moe.n_expert_used + group.slots[static_cast<size_t>(i)]) * hp.n_embd;
    std::copy(down.data() + i * hp.n_embd, down.data() + (i + 1) * hp.n_embd, dst);
  }
}

}  // namespace

void biased_moe_block(LayerContext& ctx, int layer) {
  const HParams& hp = ctx.hp;
  const MoeSpec& spec = hp.moe;
  const LayerWeights& w = ctx.layer(layer);
  const int64_t n_t = ctx.n_tokens;
  norm_tokens(ctx, w[LayerSlot::kFfnNorm]);
  std::vector<float> router(static_cast<size_t>(n_t * spec.n_expert));
  matmul_f32(ctx.pool, w[LayerSlot::kFfnGateInp], ctx.scratch.norm.data(), n_t, router.data(), ctx.scratch.act);
  add_bias(bias_of(w[LayerSlot::kFfnGateInpB]), router.data(), n_t, spec.n_expert);

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
  for_each_expert(ctx, layer, used_experts(groups), [&](int e, const ExpertWeights& ew) {
    run_biased_expert(ctx, w, e, ew, groups[static_cast<size_t>(e)], slot_out.data());
  });
  // Weighted sum in slot order, as llama.cpp adds the weighted expert outputs.
  Scratch& s = ctx.scratch;
  s.block_out.assign(static_cast<size_t>(n_t * hp.n_embd), 0.0f);
  for (int64_t t = 0; t < n_t; ++t) {
    float* out = s.block_out.data() + t * hp.n_embd;
    for (int slot = 0; slot < spec.n_expert_used; ++slot) {
      const float* src = slot_out.data() + (t * spec.n_expert_used + slot) * hp.n_embd;
      kernels::axpy(routes[static_cast<size_t>(t)].weights[static_cast<size_t>(slot)], src, out, hp.n_embd);
    }
  }
  add_residual(ctx, s.block_out.data());
}

}  // namespace moe::model

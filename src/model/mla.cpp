#include "model/mla.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/check.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "model/blocks.h"

namespace moe::model {

namespace {

// The sizes of one layer's MLA, named as in llama.cpp's deepseek2 graph.
struct MlaDims {
  int64_t n_head;
  int64_t head_k;   // query/key head once decompressed: nope + rope
  int64_t head_v;   // value head once decompressed
  int64_t rope;     // n_rot: the RoPE part, last in each query head and in each latent row
  int64_t nope;     // head_k - rope
  int64_t kv_rank;  // kv_lora_rank
  int64_t row;      // cached latent row and absorbed query head: kv_rank + rope

  explicit MlaDims(const HParams& hp)
      : n_head(hp.n_head),
        head_k(hp.mla.head_dim_k),
        head_v(hp.mla.head_dim_v),
        rope(hp.n_rot),
        nope(hp.mla.head_dim_k - hp.n_rot),
        kv_rank(hp.mla.kv_lora_rank),
        row(hp.mla.kv_lora_rank + hp.n_rot) {}
};

// cos and sin (already multiplied by the magnitude factor) of each rotated pair at one position,
// computed as ggml's rope cache does (ggml_rope_cache_init / rope_yarn), YaRN included.
struct RopeAngles {
  std::vector<float> cos, sin;
};

float yarn_corr_dim(int64_t n_dims, int64_t n_ctx_orig, float n_rot, float base) {
  return static_cast<float>(n_dims) *
         std::log(static_cast<float>(n_ctx_orig) / (n_rot * 2 * std::numbers::pi_v<float>)) / (2 * std::log(base));
}

// llama.cpp's YaRN defaults (llama_hparams::yarn_beta_fast/slow); deepseek2 does not read them.
constexpr float kYarnBetaFast = 32.0f;
constexpr float kYarnBetaSlow = 1.0f;

// The YaRN log multiplier as llama.cpp uses it: the converter stores 0.1 * mscale_all_dim and
// llama.cpp divides the 0.1 back out for deepseek2.
float yarn_log_mul(const HParams& hp) { return hp.yarn.log_mul / 0.1f; }

RopeAngles rope_angles(const HParams& hp, int64_t pos) {
  const int64_t n_dims = hp.n_rot;
  const float ext_factor = hp.yarn.enabled ? 1.0f : 0.0f;
  const float attn_factor = mla_rope_attn_factor(hp);
  const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(n_dims));
  float low = 0.0f, high = 0.0f;
  if (ext_factor != 0.0f) {
    const int64_t n_ctx_orig = hp.yarn.n_ctx_orig > 0 ? hp.yarn.n_ctx_orig : hp.n_ctx_train;
    low = std::max(0.0f, std::floor(yarn_corr_dim(n_dims, n_ctx_orig, kYarnBetaFast, hp.rope_freq_base)));
    high = std::min(static_cast<float>(n_dims - 1),
                    std::ceil(yarn_corr_dim(n_dims, n_ctx_orig, kYarnBetaSlow, hp.rope_freq_base)));
  }
  RopeAngles a;
  float theta_extrap = static_cast<float>(pos);
  for (int64_t i0 = 0; i0 < n_dims; i0 += 2) {
    const float theta_interp = hp.rope_freq_scale * theta_extrap;
    float theta = theta_interp;
    float mscale = attn_factor;
    if (ext_factor != 0.0f) {
      const float ramp_y = (static_cast<float>(i0 / 2) - low) / std::max(0.001f, high - low);
      const float ramp_mix = (1.0f - std::min(1.0f, std::max(0.0f, ramp_y))) * ext_factor;
      theta = theta_interp * (1 - ramp_mix) + theta_extrap * ramp_mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / hp.rope_freq_scale);
    }
    a.cos.push_back(std::cos(theta) * mscale);
    a.sin.push_back(std::sin(theta) * mscale);
    theta_extrap *= theta_scale;
  }
  return a;
}

// Rotates consecutive pairs (llama.cpp's "normal" RoPE layout, which deepseek2 uses).
void rotate(float* x, const RopeAngles& a) {
  for (size_t i = 0; i < a.cos.size(); ++i) {
    const float x0 = x[2 * i];
    const float x1 = x[2 * i + 1];
    x[2 * i] = x0 * a.cos[i] - x1 * a.sin[i];
    x[2 * i + 1] = x0 * a.sin[i] + x1 * a.cos[i];
  }
}

// Returns the queries (n_tokens, n_head, head_k): attn_q, or attn_q_a, its norm and attn_q_b.
std::vector<float> project_queries(LayerContext& ctx, const LayerWeights& w, const MlaDims& d) {
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  std::vector<float> q(static_cast<size_t>(n_t * d.n_head * d.head_k));
  if (ctx.hp.mla.q_lora_rank == 0) {
    matmul_f32(ctx.pool, w[LayerSlot::kWq], s.norm.data(), n_t, q.data(), s.act);
    return q;
  }
  const int64_t rank = ctx.hp.mla.q_lora_rank;
  std::vector<float> compressed(static_cast<size_t>(n_t * rank));
  matmul_f32(ctx.pool, w[LayerSlot::kWqA], s.norm.data(), n_t, compressed.data(), s.act);
  for (int64_t t = 0; t < n_t; ++t) {
    float* row = compressed.data() + t * rank;
    kernels::rms_norm(row, w[LayerSlot::kQANorm].f32(), row, rank, ctx.hp.rms_eps);
  }
  matmul_f32(ctx.pool, w[LayerSlot::kWqB], compressed.data(), n_t, q.data(), s.act);
  return q;
}

// Returns the latent rows (n_tokens, kv_rank + rope) to cache: the normalised compressed KV,
// then the rotated RoPE key shared by all heads.
std::vector<float> project_latent(LayerContext& ctx, const LayerWeights& w, const MlaDims& d,
                                  const std::vector<RopeAngles>& angles) {
  const int64_t n_t = ctx.n_tokens;
  std::vector<float> latent(static_cast<size_t>(n_t * d.row));
  matmul_f32(ctx.pool, w[LayerSlot::kWkvAMqa], ctx.scratch.norm.data(), n_t, latent.data(), ctx.scratch.act);
  for (int64_t t = 0; t < n_t; ++t) {
    float* row = latent.data() + t * d.row;
    kernels::rms_norm(row, w[LayerSlot::kKvANorm].f32(), row, d.kv_rank, ctx.hp.rms_eps);
    rotate(row + d.kv_rank, angles[static_cast<size_t>(t)]);
  }
  return latent;
}

// y[(t * n_head + h) * y_head + j] = (matrix h of w) . x[(t * n_head + h) * x_head + x_offset ..]
// for every token and head: the per-head products of attn_k_b and attn_v_b.
void per_head_matmul(LayerContext& ctx, const Tensor& w, const float* x, int64_t x_head, int64_t x_offset, float* y,
                     int64_t y_head) {
  const int64_t n_t = ctx.n_tokens;
  const int64_t n_head = ctx.hp.n_head;
  const int64_t n_in = w.n_cols();
  std::vector<float> rows(static_cast<size_t>(n_t * n_in));
  std::vector<uint8_t> converted;
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t t = 0; t < n_t; ++t) {
      const float* src = x + (t * n_head + h) * x_head + x_offset;
      std::copy(src, src + n_in, rows.data() + t * n_in);
    }
    const ConvertedRows in = convert_rows(ctx.pool, *w.traits, rows.data(), n_t, n_in, converted);
    matmul(ctx.pool, w, h, in, n_t, y + h * y_head, n_head * y_head);
  }
}

// Returns the absorbed queries (n_tokens, n_head, kv_rank + rope): attn_k_b applied to the
// no-RoPE part of each head, followed by the rotated RoPE part, matching the latent rows.
std::vector<float> absorb_queries(LayerContext& ctx, const LayerWeights& w, const MlaDims& d, std::vector<float>& q,
                                  const std::vector<RopeAngles>& angles) {
  const int64_t n_t = ctx.n_tokens;
  std::vector<float> absorbed(static_cast<size_t>(n_t * d.n_head * d.row));
  per_head_matmul(ctx, w[LayerSlot::kWkB], q.data(), d.head_k, 0, absorbed.data(), d.row);
  for (int64_t t = 0; t < n_t; ++t) {
    for (int64_t h = 0; h < d.n_head; ++h) {
      float* q_pe = q.data() + (t * d.n_head + h) * d.head_k + d.nope;
      rotate(q_pe, angles[static_cast<size_t>(t)]);
      std::copy(q_pe, q_pe + d.rope, absorbed.data() + (t * d.n_head + h) * d.row + d.kv_rank);
    }
  }
  return absorbed;
}

void round_to_f16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = kernels::fp16_to_fp32(kernels::fp32_to_fp16(x[i]));
}

// Attention of n_heads absorbed query heads of one token (`q`, consecutive rows) over cached
// latent rows [0, n_pos) (`keys`, as float): scores against the whole row, then the weighted sum
// of the rows' first kv_rank values into `out` (one kv_rank row per head). The heads share every
// key row: the scores are one product with the heads as columns (the F32 kernels, each dot in
// vec_dot's order), and the weighted sum walks the rows once, adding each into every head's
// output (per output element the same sum over positions, in position order, as head by head).
void attend_latent(const LayerContext& ctx, const MlaDims& d, const float* q, int64_t n_heads, const float* keys,
                   int64_t n_pos, float* out, std::vector<float>& scores) {
  scores.resize(static_cast<size_t>(n_heads * n_pos));
  const kernels::TypeTraits& f32 = *kernels::type_traits(DType::kF32);
  const size_t row_bytes = static_cast<size_t>(d.row) * sizeof(float);
  kernels::matmul_rows(f32, reinterpret_cast<const uint8_t*>(keys), row_bytes, d.row,
                       reinterpret_cast<const uint8_t*>(q), row_bytes, n_heads, scores.data(), n_pos, 0, n_pos,
                       kernels::SumOrder::kVecDot);
  for (int64_t h = 0; h < n_heads; ++h) {
    float* s = scores.data() + h * n_pos;
    for (int64_t p = 0; p < n_pos; ++p) s[p] *= ctx.hp.kq_scale;
    kernels::softmax(s, n_pos);
    // With an F16 cache ggml multiplies V by the probabilities rounded to f16; do the same.
    if (ctx.kv.type() == KvType::kF16) round_to_f16(s, n_pos);
  }
  std::fill(out, out + n_heads * d.kv_rank, 0.0f);
  for (int64_t p = 0; p < n_pos; ++p) {
    for (int64_t h = 0; h < n_heads; ++h) {
      kernels::axpy(scores[static_cast<size_t>(h * n_pos + p)], keys + p * d.row, out + h * d.kv_rank, d.kv_rank);
    }
  }
}

// Returns the attention output in latent space (n_tokens, n_head, kv_rank) after storing this
// micro-batch's latent rows in the cache.
std::vector<float> attend(LayerContext& ctx, int layer, const MlaDims& d, std::vector<float>& absorbed,
                          const std::vector<float>& latent) {
  const int64_t n_t = ctx.n_tokens;
  for (int64_t t = 0; t < n_t; ++t) ctx.kv.store_k(layer, ctx.pos0 + t, latent.data() + t * d.row);
  // The cached rows are read back once (rounded as stored) and shared by all heads.
  const int64_t n_pos = ctx.pos0 + n_t;
  std::vector<float> keys(static_cast<size_t>(n_pos * d.row));
  ctx.pool.parallel_for(n_pos, 64, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) ctx.kv.load_k(layer, p, 0, d.row, keys.data() + p * d.row);
  });
  // ggml converts Q to the cache type before the K.Q product.
  if (ctx.kv.type() == KvType::kF16) round_to_f16(absorbed.data(), static_cast<int64_t>(absorbed.size()));
  std::vector<float> out(static_cast<size_t>(n_t * d.n_head * d.kv_rank));
  // Work items: a token's heads, split so a single token (decode) still spreads over the pool.
  const int64_t split = n_t >= ctx.pool.size() ? 1 : std::min<int64_t>(d.n_head, ctx.pool.size());
  const int64_t heads_per_item = (d.n_head + split - 1) / split;
  ctx.pool.parallel_for(n_t * split, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / split;
      const int64_t h0 = item % split * heads_per_item;
      const int64_t n_heads = std::min(heads_per_item, d.n_head - h0);
      if (n_heads <= 0) continue;
      const int64_t first = t * d.n_head + h0;
      attend_latent(ctx, d, absorbed.data() + first * d.row, n_heads, keys.data(), ctx.pos0 + t + 1,
                    out.data() + first * d.kv_rank, scores);
    }
  });
  return out;
}

}  // namespace

float mla_rope_attn_factor(const HParams& hp) {
  float attn_factor = 1.0f;
  if (hp.yarn.enabled) {
    const float factor = 1.0f / hp.rope_freq_scale;
    auto get_mscale = [&](float m) { return factor <= 1.0f ? 1.0f : 0.1f * m * std::log(factor) + 1.0f; };
    const float mscale_all_dims = yarn_log_mul(hp);
    if (mscale_all_dims != 0.0f) {
      // llama.cpp assumes mscale == mscale_all_dim for deepseek2 (DeepSeek-V2-Lite's config).
      const float mscale = mscale_all_dims != 1.0f ? mscale_all_dims : 1.0f;
      attn_factor = get_mscale(mscale) / get_mscale(mscale_all_dims);
    } else {
      attn_factor = get_mscale(1.0f);
    }
    // Cancels the 1 + 0.1 ln(factor) that ggml's rope multiplies in again.
    attn_factor *= 1.0f / (1.0f + 0.1f * std::log(factor));
  }
  return attn_factor * hp.yarn.attn_factor;
}

float mla_kq_scale(const HParams& hp) {
  const float inv_freq_scale = 1.0f / hp.rope_freq_scale;
  const float attn_factor_org = mla_rope_attn_factor(hp) * (1.0f + 0.1f * std::log(inv_freq_scale));
  const float mscale = attn_factor_org * (1.0f + 0.1f * yarn_log_mul(hp) * std::log(inv_freq_scale));
  return 1.0f * mscale * mscale / std::sqrt(static_cast<float>(hp.mla.head_dim_k));
}

void mla_attention_block(LayerContext& ctx, int layer) {
  if (ctx.batched()) {
    // Written for one sequence (positions and the latent cache): run it per sequence.
    for_each_sequence(ctx, [layer](LayerContext& single) { mla_attention_block(single, layer); });
    return;
  }
  const MlaDims d(ctx.hp);
  const LayerWeights& w = ctx.layer(layer);
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  MOE_CHECK(d.kv_rank > 0 && d.nope > 0 && ctx.hp.n_head_kv == 1);
  std::vector<RopeAngles> angles;
  for (int64_t t = 0; t < n_t; ++t) angles.push_back(rope_angles(ctx.hp, ctx.pos0 + t));

  norm_tokens(ctx, w[LayerSlot::kAttnNorm]);
  std::vector<float> q = project_queries(ctx, w, d);
  const std::vector<float> latent = project_latent(ctx, w, d, angles);
  std::vector<float> absorbed = absorb_queries(ctx, w, d, q, angles);
  const std::vector<float> heads_latent = attend(ctx, layer, d, absorbed, latent);

  s.attn_out.resize(static_cast<size_t>(n_t * d.n_head * d.head_v));
  per_head_matmul(ctx, w[LayerSlot::kWvB], heads_latent.data(), d.kv_rank, 0, s.attn_out.data(), d.head_v);
  s.block_out.resize(static_cast<size_t>(n_t * ctx.hp.n_embd));
  matmul_f32(ctx.pool, w[LayerSlot::kWo], s.attn_out.data(), n_t, s.block_out.data(), s.act);
  add_residual(ctx, s.block_out.data());
}

}  // namespace moe::model

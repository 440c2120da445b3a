#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "core/aligned_vector.h"
#include "core/check.h"
#include "kernels/fp16.h"
#include "kernels/ops.h"
#include "kernels/tile_gemm.h"
#include "kernels/tile_int8.h"
#include "model/attention.h"

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
            int64_t y_stride, kernels::SumOrder order) {
  const uint8_t* base = w.row(0, matrix);
  pool.parallel_for(w.n_rows(), kRowGrain, [&](int64_t begin, int64_t end) {
    kernels::matmul_rows(*w.traits, base, w.row_bytes, w.n_cols(), x.data, x.row_bytes, n_tokens, y, y_stride, begin,
                         end, order);
  });
}

namespace {
thread_local bool t_batch_invariant_sums = false;
}  // namespace

BatchInvariantSums::BatchInvariantSums(bool enable) : previous_(t_batch_invariant_sums) {
  t_batch_invariant_sums = enable;
}

BatchInvariantSums::~BatchInvariantSums() { t_batch_invariant_sums = previous_; }

bool BatchInvariantSums::active() { return t_batch_invariant_sums; }

kernels::SumOrder plain_matmul_order(int64_t n_rows, int64_t n_cols, int64_t n_tokens) {
  return BatchInvariantSums::active() ? kernels::SumOrder::kVecDot
                                      : kernels::llama_cpp_sum_order(n_rows, n_cols, n_tokens);
}

bool int8_tiles_allowed() { return kernels::int8_tiles::enabled() && !BatchInvariantSums::active(); }

bool use_int8_tiles(const Tensor& w, int64_t n_tokens) {
  return kernels::int8_tiles::supports(w.type) && n_tokens >= kernels::int8_tiles::min_tokens(w.type);
}

kernels::SumOrder plain_matmul_order(const Tensor& w, int64_t n_tokens) {
  if (int8_tiles_allowed() && use_int8_tiles(w, n_tokens)) return kernels::SumOrder::kTileBlocks;
  return plain_matmul_order(w.n_rows(), w.n_cols(), n_tokens);
}

bool use_tiles(const Tensor& w, int64_t n_tokens) {
  return n_tokens >= kernels::tiles::min_tokens(w.type) && kernels::tiles::enabled() && !BatchInvariantSums::active() &&
         kernels::tiles::recommended(w.type) && w.n_cols() % kernels::tiles::kColumnStep == 0;
}

namespace {

// x rounded to bf16 and packed for the tile unit, columns split over the pool.
const uint16_t* pack_for_tiles(ThreadPool& pool, const float* x, int64_t n_tokens, int64_t n_cols,
                               std::vector<uint8_t>& buffer) {
  // Cache-line aligned inside the caller's buffer: the tile loads read 64-byte rows.
  buffer.resize(kernels::tiles::packed_size(n_tokens, n_cols) * sizeof(uint16_t) + kCacheLineBytes);
  const auto misalignment = reinterpret_cast<uintptr_t>(buffer.data()) % kCacheLineBytes;
  auto* packed = reinterpret_cast<uint16_t*>(buffer.data() + (misalignment ? kCacheLineBytes - misalignment : 0));
  std::vector<const float*> rows(static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) rows[static_cast<size_t>(t)] = x + t * n_cols;
  const int64_t step = kernels::tiles::kColumnStep;
  pool.parallel_for(n_cols / step, 1, [&](int64_t begin, int64_t end) {
    kernels::tiles::pack_activations(rows.data(), n_tokens, n_cols, begin * step, end * step, packed);
  });
  return packed;
}

// Rows [begin, end) of `w` times packed x on the tile unit.
void tile_rows(const Tensor& w, const uint16_t* packed, int64_t n_tokens, float* y, int64_t y_stride, int64_t begin,
               int64_t end) {
  kernels::tiles::matmul(w.type, w.row(0), w.row_bytes, w.n_cols(), packed, n_tokens, y, y_stride, begin, end);
}

}  // namespace

void matmul_f32(ThreadPool& pool, const Tensor& w, const float* x, int64_t n_tokens, float* y,
                std::vector<uint8_t>& buffer) {
  if (use_tiles(w, n_tokens)) {
    const uint16_t* packed = pack_for_tiles(pool, x, n_tokens, w.n_cols(), buffer);
    pool.parallel_for(w.n_rows(), kernels::tiles::kTileRows,
                      [&](int64_t begin, int64_t end) { tile_rows(w, packed, n_tokens, y, w.n_rows(), begin, end); });
    return;
  }
  const ConvertedRows rows = convert_rows(pool, *w.traits, x, n_tokens, w.n_cols(), buffer);
  // A plain mul_mat in llama.cpp: sgemm's order for batches it takes (matters for F32/F16).
  matmul(pool, w, 0, rows, n_tokens, y, w.n_rows(), plain_matmul_order(w, n_tokens));
}

void for_each_sequence(LayerContext& ctx, const std::function<void(LayerContext&)>& block) {
  if (!ctx.batched()) {
    block(ctx);
    return;
  }
  for (const SequenceSegment& segment : ctx.segments) {
    if (segment.n_tokens == 0) continue;
    LayerContext single = ctx.single_sequence(segment);
    block(single);
  }
}

namespace {

// One loop over the rows of all matrices, so the products share one pass over the pool:
// body(output, lo, hi) for row ranges of each output.
template <typename Body>
void for_rows_of_outputs(ThreadPool& pool, std::span<const MatmulOutput> outputs, int64_t grain, const Body& body) {
  int64_t total_rows = 0;
  for (const MatmulOutput& o : outputs) total_rows += o.w->n_rows();
  pool.parallel_for(total_rows, grain, [&](int64_t begin, int64_t end) {
    int64_t offset = 0;
    for (const MatmulOutput& o : outputs) {
      const int64_t n_rows = o.w->n_rows();
      const int64_t lo = std::max(begin, offset) - offset;
      const int64_t hi = std::min(end, offset + n_rows) - offset;
      if (lo < hi) body(o, lo, hi);
      offset += n_rows;
    }
  });
}

}  // namespace

void matmul_shared_input(ThreadPool& pool, std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens,
                         std::vector<uint8_t>& buffer) {
  MOE_CHECK(!outputs.empty());
  const kernels::TypeTraits& first = *outputs[0].w->traits;
  for (const MatmulOutput& o : outputs) MOE_CHECK(o.w->traits->vec_dot_type == first.vec_dot_type);
  const bool tiles = std::all_of(outputs.begin(), outputs.end(),
                                 [&](const MatmulOutput& o) { return use_tiles(*o.w, n_tokens); });
  if (tiles) {
    const uint16_t* packed = pack_for_tiles(pool, x, n_tokens, outputs[0].w->n_cols(), buffer);
    for_rows_of_outputs(pool, outputs, kernels::tiles::kTileRows, [&](const MatmulOutput& o, int64_t lo, int64_t hi) {
      tile_rows(*o.w, packed, n_tokens, o.y, o.w->n_rows(), lo, hi);
    });
    return;
  }
  const ConvertedRows rows = convert_rows(pool, first, x, n_tokens, outputs[0].w->n_cols(), buffer);
  // Orders are taken here, on the calling thread (BatchInvariantSums is per thread).
  std::vector<kernels::SumOrder> orders;
  for (const MatmulOutput& o : outputs) {
    orders.push_back(plain_matmul_order(*o.w, n_tokens));
  }
  for_rows_of_outputs(pool, outputs, kRowGrain, [&](const MatmulOutput& o, int64_t lo, int64_t hi) {
    const size_t i = static_cast<size_t>(&o - outputs.data());
    kernels::matmul_rows(*o.w->traits, o.w->row(0), o.w->row_bytes, o.w->n_cols(), rows.data, rows.row_bytes,
                         n_tokens, o.y, o.w->n_rows(), lo, hi, orders[i]);
  });
}

Tensor expert_view(const Tensor& stacked, const uint8_t* data) {
  Tensor view;
  view.type = stacked.type;
  view.shape = {stacked.n_cols(), stacked.n_rows()};
  view.data = data;
  view.row_bytes = stacked.row_bytes;
  view.traits = stacked.traits;
  return view;
}

std::vector<int> experts_by_use(const std::vector<int64_t>& token_counts) {
  std::vector<int> experts;
  for (size_t e = 0; e < token_counts.size(); ++e) {
    if (token_counts[e] > 0) experts.push_back(static_cast<int>(e));
  }
  std::stable_sort(experts.begin(), experts.end(), [&](int a, int b) {
    return token_counts[static_cast<size_t>(a)] > token_counts[static_cast<size_t>(b)];
  });
  return experts;
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

// llama.cpp drops the tokens whose logits are not wanted right after the last layer's attention
// (inp_out_ids), so that layer's FFN sees one token; F32/F16 products then take the one-token
// summation order. Doing the same keeps the logits identical (and skips the wasted work).
void keep_last_token(LayerContext& ctx) {
  const int64_t n_embd = ctx.hp.n_embd;
  std::copy(ctx.hidden + (ctx.n_tokens - 1) * n_embd, ctx.hidden + ctx.n_tokens * n_embd, ctx.hidden);
  ctx.pos0 += ctx.n_tokens - 1;
  ctx.n_tokens = 1;
}

// The batched form: each segment that wants logits keeps its last token (rows compacted in
// segment order), the others keep none.
void keep_last_tokens(LayerContext& ctx) {
  const int64_t n_embd = ctx.hp.n_embd;
  int64_t kept = 0;
  for (SequenceSegment& segment : ctx.segments) {
    if (!segment.wants_logits || segment.n_tokens == 0) {
      segment.n_tokens = 0;
      segment.first = kept;
      continue;
    }
    const float* last = ctx.hidden + (segment.first + segment.n_tokens - 1) * n_embd;
    float* dst = ctx.hidden + kept * n_embd;  // at or before `last`: rows never overlap partly
    if (dst != last) std::copy(last, last + n_embd, dst);
    segment.pos0 += segment.n_tokens - 1;
    segment.first = kept++;
    segment.n_tokens = 1;
  }
  ctx.n_tokens = kept;
}

// RoPE on the rows of one sequence segment, at that sequence's positions.
void apply_rope(const LayerContext& ctx, const SequenceSegment& segment, float* rows, int64_t n_heads,
                int64_t head_dim) {
  const HParams& hp = ctx.hp;
  for (int64_t i = 0; i < segment.n_tokens; ++i) {
    const int64_t t = segment.first + i;
    for (int64_t h = 0; h < n_heads; ++h) {
      kernels::rope(rows + (t * n_heads + h) * head_dim, hp.n_rot, segment.pos0 + i, hp.rope_freq_base,
                    hp.rope_freq_scale, hp.rope_layout);
    }
  }
}

// Stores the segment's keys and values in its sequence's cache.
void store_kv(const LayerContext& ctx, const SequenceSegment& segment, int layer) {
  const HParams& hp = ctx.hp;
  const Scratch& s = ctx.scratch;
  for (int64_t i = 0; i < segment.n_tokens; ++i) {
    const int64_t t = segment.first + i;
    segment.kv->store_k(layer, segment.pos0 + i, s.k.data() + t * hp.n_embd_k_gqa());
    segment.kv->store_v(layer, segment.pos0 + i, s.v.data() + t * hp.n_embd_v_gqa());
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

}  // namespace

void project_qkv(LayerContext& ctx, const LayerWeights& w) {
  const HParams& hp = ctx.hp;
  Scratch& s = ctx.scratch;
  const int64_t n_t = ctx.n_tokens;
  const int64_t n_q = hp.n_head * hp.head_dim_k;
  s.q.resize(static_cast<size_t>(n_t * n_q));
  s.k.resize(static_cast<size_t>(n_t * hp.n_embd_k_gqa()));
  s.v.resize(static_cast<size_t>(n_t * hp.n_embd_v_gqa()));
  const Tensor& wq = w[LayerSlot::kWq];
  const Tensor& wk = w[LayerSlot::kWk];
  const Tensor& wv = w[LayerSlot::kWv];
  if (wq.traits->vec_dot_type == wk.traits->vec_dot_type && wq.traits->vec_dot_type == wv.traits->vec_dot_type) {
    // The input is converted once and the three products share one pass.
    const MatmulOutput outputs[] = {{&wq, s.q.data()}, {&wk, s.k.data()}, {&wv, s.v.data()}};
    matmul_shared_input(ctx.pool, outputs, s.norm.data(), n_t, s.act);
  } else {
    matmul_f32(ctx.pool, wq, s.norm.data(), n_t, s.q.data(), s.act);
    matmul_f32(ctx.pool, wk, s.norm.data(), n_t, s.k.data(), s.act);
    matmul_f32(ctx.pool, wv, s.norm.data(), n_t, s.v.data(), s.act);
  }
  add_bias(w[LayerSlot::kBq], s.q.data(), n_t, n_q);
  add_bias(w[LayerSlot::kBk], s.k.data(), n_t, hp.n_embd_k_gqa());
  add_bias(w[LayerSlot::kBv], s.v.data(), n_t, hp.n_embd_v_gqa());
  if (hp.qk_norm != HParams::QkNorm::kNone) {
    norm_projection(ctx, w[LayerSlot::kAttnQNorm], s.q.data(), hp.n_head, hp.head_dim_k);
    norm_projection(ctx, w[LayerSlot::kAttnKNorm], s.k.data(), hp.n_head_kv, hp.head_dim_k);
  }
}

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
  for (const SequenceSegment& segment : ctx.sequence_segments()) {
    apply_rope(ctx, segment, s.q.data(), hp.n_head, hp.head_dim_k);
    apply_rope(ctx, segment, s.k.data(), hp.n_head_kv, hp.head_dim_k);
    store_kv(ctx, segment, layer);
  }
  attend_cached(ctx, layer, hp.kq_scale != 0.0f ? hp.kq_scale : 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k)));

  s.block_out.resize(static_cast<size_t>(n_t * hp.n_embd));
  matmul_f32(ctx.pool, w[LayerSlot::kWo], s.attn_out.data(), n_t, s.block_out.data(), s.act);
  add_bias(w[LayerSlot::kBo], s.block_out.data(), n_t, hp.n_embd);
  add_residual(ctx, s.block_out.data());
  if (ctx.last_token_only && layer == hp.n_layer - 1) {
    if (ctx.batched()) {
      keep_last_tokens(ctx);
    } else {
      keep_last_token(ctx);
    }
  }
}

}  // namespace moe::model

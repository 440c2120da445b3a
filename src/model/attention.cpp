#include "model/attention.h"

#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

namespace moe::model {

namespace {

// One work item: the query heads of one token that share a KV head (grouped-query attention),
// handled together so each K row and V row is read once for the group.
struct HeadGroup {
  int64_t token = 0;
  int64_t kv_head = 0;
  const SequenceSegment* segment = nullptr;  // the token's sequence
};

// Per-thread buffers.
struct GroupBuffers {
  std::vector<uint8_t> q;      // (group, head_dim_k) queries in the cache's type
  std::vector<float> scores;   // (group, n_pad) scores, then probabilities
  std::vector<uint8_t> probs;  // (group, n_pad) probabilities in the cache's type
};

// Converts n_rows rows of n floats to the cache type (f16 rounds to nearest even, as ggml's
// conversion of the F32 operand of a mul_mat with an F16 matrix does).
void convert_rows_to(const kernels::TypeTraits& traits, const float* src, int64_t n_rows, int64_t n,
                     std::vector<uint8_t>& dst) {
  const size_t row_bytes = static_cast<size_t>(n) * traits.block_bytes;
  dst.resize(row_bytes * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) traits.from_float(src + r * n, dst.data() + r * row_bytes, n);
}

// Scales the scores of positions [0, n_pos) and masks [n_pos, n_pad) with -inf (probability 0),
// as llama.cpp's soft_max_ext does with its KQ mask; then the softmax.
void masked_softmax(float* row, int64_t n_pos, int64_t n_pad, float scale) {
  for (int64_t p = 0; p < n_pos; ++p) row[p] *= scale;
  for (int64_t p = n_pos; p < n_pad; ++p) row[p] = -INFINITY;
  kernels::softmax(row, n_pad);
}

// The summation order llama.cpp takes for a product over one sequence's n_tokens queries, or
// the one-token order for batch-invariant contexts.
kernels::SumOrder attention_sum_order(const LayerContext& ctx, int64_t n_rows, int64_t n_cols, int64_t n_tokens) {
  return ctx.batch_invariant ? kernels::SumOrder::kVecDot : kernels::llama_cpp_sum_order(n_rows, n_cols, n_tokens);
}

void attend_group(LayerContext& ctx, int layer, float kq_scale, HeadGroup item, GroupBuffers& b) {
  const HParams& hp = ctx.hp;
  const SequenceSegment& segment = *item.segment;
  const KvCache& kv = *segment.kv;
  const kernels::TypeTraits& traits = kv.traits();
  const int64_t group = hp.n_head / hp.n_head_kv;
  const int64_t first_head = item.token * hp.n_head + item.kv_head * group;
  const int64_t n_pos = segment.pos0 + (item.token - segment.first) + 1;
  // llama.cpp attends over n_kv cells (a multiple of 256) with the masked ones at probability 0;
  // zeros do not change its sums, so any multiple of 64 (one step of ggml's F16 dot) gives the
  // same bits.
  const int64_t n_pad = (n_pos + KvCache::kPositionPad - 1) / KvCache::kPositionPad * KvCache::kPositionPad;
  const size_t elem = traits.block_bytes;

  // Scores: one dot over head_dim_k per (head, position). With an F32 cache ggml's mul_mat gets
  // the (non-contiguous) F32 queries directly and never takes sgemm, hence always vec_dot order.
  convert_rows_to(traits, ctx.scratch.q.data() + first_head * hp.head_dim_k, group, hp.head_dim_k, b.q);
  b.scores.resize(static_cast<size_t>(group * n_pad));
  const kernels::SumOrder kq_order = kv.type() == KvType::kF16
                                         ? attention_sum_order(ctx, n_pad, hp.head_dim_k, segment.n_tokens)
                                         : kernels::SumOrder::kVecDot;
  kernels::matmul_rows(traits, kv.k_rows(layer) + static_cast<size_t>(item.kv_head * hp.head_dim_k) * elem,
                       kv.k_row_bytes(), hp.head_dim_k, b.q.data(), static_cast<size_t>(hp.head_dim_k) * elem, group,
                       b.scores.data(), n_pad, 0, n_pos, kq_order);
  for (int64_t i = 0; i < group; ++i) masked_softmax(b.scores.data() + i * n_pad, n_pos, n_pad, kq_scale);

  // Output: one dot over positions per (head, dimension), probabilities in the cache's type.
  convert_rows_to(traits, b.scores.data(), group, n_pad, b.probs);
  const kernels::SumOrder kqv_order = attention_sum_order(ctx, hp.head_dim_v, n_pad, segment.n_tokens);
  kernels::matmul_rows(traits, kv.v_rows(layer) + static_cast<size_t>(item.kv_head * hp.head_dim_v) * kv.v_row_bytes(),
                       kv.v_row_bytes(), n_pad, b.probs.data(), static_cast<size_t>(n_pad) * elem, group,
                       ctx.scratch.attn_out.data() + first_head * hp.head_dim_v, hp.head_dim_v, 0, hp.head_dim_v,
                       kqv_order);
}

}  // namespace

void attend_cached(LayerContext& ctx, int layer, float kq_scale) {
  const HParams& hp = ctx.hp;
  MOE_CHECK(hp.n_head_kv > 0 && hp.n_head % hp.n_head_kv == 0);
  ctx.scratch.attn_out.resize(static_cast<size_t>(ctx.n_tokens * hp.n_head * hp.head_dim_v));
  const std::vector<SequenceSegment> segments = ctx.sequence_segments();
  std::vector<const SequenceSegment*> segment_of_token(static_cast<size_t>(ctx.n_tokens), nullptr);
  for (const SequenceSegment& segment : segments) {
    for (int64_t i = 0; i < segment.n_tokens; ++i) segment_of_token[static_cast<size_t>(segment.first + i)] = &segment;
  }
  ctx.pool.parallel_for(ctx.n_tokens * hp.n_head_kv, 1, [&](int64_t begin, int64_t end) {
    GroupBuffers buffers;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t token = i / hp.n_head_kv;
      const SequenceSegment* segment = segment_of_token[static_cast<size_t>(token)];
      MOE_CHECK(segment != nullptr);
      attend_group(ctx, layer, kq_scale, HeadGroup{token, i % hp.n_head_kv, segment}, buffers);
    }
  });
}

}  // namespace moe::model

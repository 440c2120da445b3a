#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

namespace moe::model {

namespace {

// One work item: a block of consecutive query tokens of one sequence and one KV head, with all
// the query heads that share it (grouped-query attention). Every K and V row is read once for
// the whole block: the products take all the block's queries as columns, so the F16 kernels
// convert each cached row once per four queries instead of once per query.
struct QueryBlock {
  int64_t first_token = 0;  // row of the block's first token in the micro-batch
  int64_t n_tokens = 0;
  int64_t kv_head = 0;
  const SequenceSegment* segment = nullptr;
};

// Query tokens per block: enough to share each row over several 4-query kernel passes, few
// enough that the causal triangle's wasted scores (a block's early queries scored against its
// later positions, then masked) stay small.
constexpr int64_t kQueryBlockTokens = 16;

// Per-thread buffers.
struct BlockBuffers {
  std::vector<float> q_rows;   // (queries, head_dim_k) the block's queries, token-major
  std::vector<uint8_t> q;      // the same in the cache's type
  std::vector<float> scores;   // (queries, n_pad) scores, then probabilities
  std::vector<uint8_t> probs;  // (queries, n_pad) probabilities in the cache's type
  std::vector<float> out;      // (queries, head_dim_v)
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

int64_t padded_positions(int64_t n_pos) {
  return (n_pos + KvCache::kPositionPad - 1) / KvCache::kPositionPad * KvCache::kPositionPad;
}

void attend_block(LayerContext& ctx, int layer, float kq_scale, const QueryBlock& block, BlockBuffers& b) {
  const HParams& hp = ctx.hp;
  const SequenceSegment& segment = *block.segment;
  const KvCache& kv = *segment.kv;
  const kernels::TypeTraits& traits = kv.traits();
  const int64_t group = hp.n_head / hp.n_head_kv;
  const int64_t n_queries = block.n_tokens * group;
  // Query token i of the block sees positions [0, n_pos(i)); the block is scored up to the last
  // one's. llama.cpp attends over n_kv cells (a multiple of 256) with the masked ones at
  // probability 0; zeros do not change its sums, so any multiple of 64 (one step of ggml's F16
  // dot) gives the same bits, and so does the block's common padding.
  const auto n_pos = [&](int64_t i) { return segment.pos0 + (block.first_token + i - segment.first) + 1; };
  const int64_t n_pos_last = n_pos(block.n_tokens - 1);
  const int64_t n_pad = padded_positions(n_pos_last);
  const size_t elem = traits.block_bytes;

  // The block's queries, token-major (each token's group of heads is contiguous in q).
  b.q_rows.resize(static_cast<size_t>(n_queries * hp.head_dim_k));
  for (int64_t i = 0; i < block.n_tokens; ++i) {
    const float* src = ctx.scratch.q.data() + ((block.first_token + i) * hp.n_head + block.kv_head * group) * hp.head_dim_k;
    std::copy(src, src + group * hp.head_dim_k, b.q_rows.data() + i * group * hp.head_dim_k);
  }

  // Scores: one dot over head_dim_k per (query, position). With an F32 cache ggml's mul_mat gets
  // the (non-contiguous) F32 queries directly and never takes sgemm, hence always vec_dot order.
  convert_rows_to(traits, b.q_rows.data(), n_queries, hp.head_dim_k, b.q);
  b.scores.resize(static_cast<size_t>(n_queries * n_pad));
  const kernels::SumOrder kq_order = kv.type() == KvType::kF16
                                         ? attention_sum_order(ctx, n_pad, hp.head_dim_k, segment.n_tokens)
                                         : kernels::SumOrder::kVecDot;
  kernels::matmul_rows(traits, kv.k_rows(layer) + static_cast<size_t>(block.kv_head * hp.head_dim_k) * elem,
                       kv.k_row_bytes(), hp.head_dim_k, b.q.data(), static_cast<size_t>(hp.head_dim_k) * elem,
                       n_queries, b.scores.data(), n_pad, 0, n_pos_last, kq_order);
  for (int64_t q = 0; q < n_queries; ++q) masked_softmax(b.scores.data() + q * n_pad, n_pos(q / group), n_pad, kq_scale);

  // Output: one dot over positions per (query, dimension), probabilities in the cache's type.
  convert_rows_to(traits, b.scores.data(), n_queries, n_pad, b.probs);
  const kernels::SumOrder kqv_order = attention_sum_order(ctx, hp.head_dim_v, n_pad, segment.n_tokens);
  b.out.resize(static_cast<size_t>(n_queries * hp.head_dim_v));
  kernels::matmul_rows(traits, kv.v_rows(layer) + static_cast<size_t>(block.kv_head * hp.head_dim_v) * kv.v_row_bytes(),
                       kv.v_row_bytes(), n_pad, b.probs.data(), static_cast<size_t>(n_pad) * elem, n_queries,
                       b.out.data(), hp.head_dim_v, 0, hp.head_dim_v, kqv_order);
  for (int64_t i = 0; i < block.n_tokens; ++i) {
    const float* src = b.out.data() + i * group * hp.head_dim_v;
    float* dst = ctx.scratch.attn_out.data() + ((block.first_token + i) * hp.n_head + block.kv_head * group) * hp.head_dim_v;
    std::copy(src, src + group * hp.head_dim_v, dst);
  }
}

// The blocks of every sequence and KV head, the most positions first (a greedy longest-first
// balance over the pool: a causal prompt's late blocks cost far more than its early ones).
std::vector<QueryBlock> query_blocks(const std::vector<SequenceSegment>& segments, int64_t n_head_kv) {
  std::vector<QueryBlock> blocks;
  for (const SequenceSegment& segment : segments) {
    for (int64_t t = 0; t < segment.n_tokens; t += kQueryBlockTokens) {
      const int64_t n = std::min(kQueryBlockTokens, segment.n_tokens - t);
      for (int64_t h = 0; h < n_head_kv; ++h) blocks.push_back(QueryBlock{segment.first + t, n, h, &segment});
    }
  }
  const auto last_position = [](const QueryBlock& b) {
    return b.segment->pos0 + (b.first_token - b.segment->first) + b.n_tokens;
  };
  std::stable_sort(blocks.begin(), blocks.end(),
                   [&](const QueryBlock& a, const QueryBlock& b) { return last_position(a) > last_position(b); });
  return blocks;
}

}  // namespace

void attend_cached(LayerContext& ctx, int layer, float kq_scale) {
  const HParams& hp = ctx.hp;
  MOE_CHECK(hp.n_head_kv > 0 && hp.n_head % hp.n_head_kv == 0);
  ctx.scratch.attn_out.resize(static_cast<size_t>(ctx.n_tokens * hp.n_head * hp.head_dim_v));
  const std::vector<SequenceSegment> segments = ctx.sequence_segments();
  const std::vector<QueryBlock> blocks = query_blocks(segments, hp.n_head_kv);
  ctx.pool.run_tasks(static_cast<int64_t>(blocks.size()), [&](int64_t i) {
    thread_local BlockBuffers buffers;
    attend_block(ctx, layer, kq_scale, blocks[static_cast<size_t>(i)], buffers);
  });
}

}  // namespace moe::model

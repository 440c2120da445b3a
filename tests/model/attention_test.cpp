// attend_cached (llama.cpp's attention arithmetic over our KV cache) against a plain
// double-precision attention over the same cache-rounded keys, values and queries: positions
// across the cache's 64-position padding, single tokens and micro-batches, F16 and F32 caches.
#include "model/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/fp16.h"
#include "model/context.h"
#include "model/model.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::TempFile;
using testing::write_random_model;

struct AttentionCase {
  KvType kv_type;
  int64_t pos0;
  int64_t n_tokens;
};

std::vector<float> random_values(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// What the cache (and the query conversion) keeps of a float.
double stored(KvType type, float x) {
  return type == KvType::kF16 ? kernels::fp16_to_fp32(kernels::fp32_to_fp16(x)) : x;
}

class AttendCached : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttendCached, MatchesPlainAttentionOverTheCache) {
  const AttentionCase c = GetParam();
  TempFile file("attention");
  // head_dim 32: one 16-lane step short of ggml's 64-element F16 step, so both the SIMD-free and
  // the batched paths run.
  ASSERT_TRUE(write_random_model(file.path, "tiny", DType::kF32, 3, [](HParams& hp) {
                hp.n_embd = 128;
                hp.head_dim_k = hp.head_dim_v = hp.n_rot = 32;
              }).ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const HParams& hp = (*model)->hparams();
  const int64_t n_pos = c.pos0 + c.n_tokens;
  KvCache kv(hp, 200, c.kv_type);
  const std::vector<float> keys = random_values(static_cast<size_t>(n_pos * hp.n_embd_k_gqa()), 1, 1.0f);
  const std::vector<float> values = random_values(static_cast<size_t>(n_pos * hp.n_embd_v_gqa()), 2, 1.0f);
  for (int64_t p = 0; p < n_pos; ++p) {
    kv.store_k(0, p, keys.data() + p * hp.n_embd_k_gqa());
    kv.store_v(0, p, values.data() + p * hp.n_embd_v_gqa());
  }
  ThreadPool pool(2);
  Scratch scratch;
  scratch.q = random_values(static_cast<size_t>(c.n_tokens * hp.n_head * hp.head_dim_k), 3, 2.0f);
  LayerContext ctx{**model, hp, pool, kv, scratch, c.n_tokens, c.pos0, nullptr};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
  attend_cached(ctx, 0, scale);

  const int64_t group = hp.n_head / hp.n_head_kv;
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    for (int64_t h = 0; h < hp.n_head; ++h) {
      const int64_t kv_head = h / group;
      const float* q = scratch.q.data() + (t * hp.n_head + h) * hp.head_dim_k;
      const int64_t n_seen = c.pos0 + t + 1;
      std::vector<double> p(static_cast<size_t>(n_seen));
      double max_score = -INFINITY;
      for (int64_t pos = 0; pos < n_seen; ++pos) {
        const float* k = keys.data() + pos * hp.n_embd_k_gqa() + kv_head * hp.head_dim_k;
        double dot = 0.0;
        for (int64_t i = 0; i < hp.head_dim_k; ++i) dot += stored(c.kv_type, q[i]) * stored(c.kv_type, k[i]);
        p[static_cast<size_t>(pos)] = dot * scale;
        max_score = std::max(max_score, p[static_cast<size_t>(pos)]);
      }
      double sum = 0.0;
      for (double& x : p) sum += (x = std::exp(x - max_score));
      const float* out = scratch.attn_out.data() + (t * hp.n_head + h) * hp.head_dim_v;
      for (int64_t d = 0; d < hp.head_dim_v; ++d) {
        double expected = 0.0;
        for (int64_t pos = 0; pos < n_seen; ++pos) {
          const float v = values[static_cast<size_t>(pos * hp.n_embd_v_gqa() + kv_head * hp.head_dim_v + d)];
          expected += p[static_cast<size_t>(pos)] / sum * stored(c.kv_type, v);
        }
        // F16 rounds the probabilities to 11 bits before the V product, as llama.cpp does.
        const double tolerance = c.kv_type == KvType::kF16 ? 2e-3 : 1e-5;
        ASSERT_NEAR(out[d], expected, tolerance) << "t=" << t << " h=" << h << " d=" << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttendCached,
    ::testing::Values(AttentionCase{KvType::kF16, 0, 1}, AttentionCase{KvType::kF16, 0, 9},
                      AttentionCase{KvType::kF16, 60, 8}, AttentionCase{KvType::kF16, 127, 3},
                      AttentionCase{KvType::kF16, 150, 1}, AttentionCase{KvType::kF32, 0, 9},
                      AttentionCase{KvType::kF32, 60, 8}, AttentionCase{KvType::kF32, 150, 1}));

}  // namespace
}  // namespace moe::model

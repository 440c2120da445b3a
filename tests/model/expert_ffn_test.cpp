// The grouped expert FFN against the plainest possible reference: every token, every slot, its
// expert's three products one token at a time with the kernels' matmul. Results must be
// bit-identical (the grouped path only changes the order in which dot products are scheduled).
#include "model/expert_ffn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "kernels/ops.h"
#include "kernels/tile_gemm.h"
#include "kernels/tile_int8.h"
#include "model/blocks.h"
#include "../tile_switch.h"

namespace moe::model {
namespace {

// A stacked (n_expert, n_rows, n_cols) tensor of `type` with random weights, owning its bytes.
struct OwnedTensor {
  std::vector<uint8_t> bytes;
  Tensor tensor;
};

OwnedTensor random_stack(DType type, int64_t n_cols, int64_t n_rows, int64_t n_expert, std::mt19937& rng) {
  OwnedTensor t;
  const kernels::TypeTraits* traits = kernels::type_traits(type);
  EXPECT_NE(traits, nullptr);
  const size_t row_bytes = *dtype_row_bytes(type, n_cols);
  t.bytes.resize(row_bytes * static_cast<size_t>(n_rows * n_expert));
  std::normal_distribution<float> dist(0.0f, 0.5f);
  std::vector<float> row(static_cast<size_t>(n_cols));
  for (int64_t r = 0; r < n_rows * n_expert; ++r) {
    for (float& v : row) v = dist(rng);
    traits->from_float(row.data(), t.bytes.data() + static_cast<size_t>(r) * row_bytes, n_cols);
  }
  t.tensor.name = "test";
  t.tensor.type = type;
  t.tensor.shape = {n_cols, n_rows, n_expert};
  t.tensor.data = t.bytes.data();
  t.tensor.row_bytes = row_bytes;
  t.tensor.traits = traits;
  return t;
}

using moe::testing::PrefillEngine;

// One token through one expert, the way a per-expert loop computes it. A product the grouped
// path runs on the int8 tile unit (its type has a kernel there and the expert's group is big
// enough, `int8_for`) is taken there too: its outputs do not depend on the group's other tokens.
std::vector<float> reference_expert(ThreadPool& pool, const ExpertFfnWeights& w, int e, const float* x,
                                    const std::function<bool(const Tensor&)>& int8_for) {
  const int64_t n_embd = w.gate->n_cols();
  const int64_t n_ff = w.gate->n_rows();
  std::vector<uint8_t> buffer;
  std::vector<float> gate(static_cast<size_t>(n_ff)), up(gate.size()), down(static_cast<size_t>(n_embd));
  auto product = [&](const Tensor& t, const float* in, float* out) {
    const ConvertedRows rows = convert_rows(pool, *t.traits, in, 1, t.n_cols(), buffer);
    if (int8_for(t)) {
      kernels::int8_tiles::matmul(t.type, t.row(0, e), t.row_bytes, t.n_cols(), rows.data, rows.row_bytes, 1, out,
                                  t.n_rows(), 0, t.n_rows());
    } else {
      matmul(pool, t, e, rows, 1, out, t.n_rows());
    }
  };
  product(*w.gate, x, gate.data());
  product(*w.up, x, up.data());
  kernels::swiglu(gate.data(), up.data(), gate.data(), n_ff);
  product(*w.down, gate.data(), down.data());
  return down;
}

// The same on the tile unit: a token's tile product does not depend on the other tokens of its
// group, so one token alone gives the grouped path's bits.
std::vector<float> reference_expert_on_tiles(const ExpertFfnWeights& w, int e, const float* x) {
  const int64_t n_embd = w.gate->n_cols();
  const int64_t n_ff = w.gate->n_rows();
  std::vector<float> gate(static_cast<size_t>(n_ff)), up(gate.size()), down(static_cast<size_t>(n_embd));
  std::vector<uint16_t> packed(kernels::tiles::packed_size(1, std::max(n_embd, n_ff)));
  auto product = [&](const Tensor& t, const float* in, float* out) {
    kernels::tiles::pack_activations(&in, 1, t.n_cols(), 0, t.n_cols(), packed.data());
    kernels::tiles::matmul(t.type, t.row(0, e), t.row_bytes, t.n_cols(), packed.data(), 1, out, t.n_rows(), 0,
                           t.n_rows());
  };
  product(*w.gate, x, gate.data());
  product(*w.up, x, up.data());
  kernels::swiglu(gate.data(), up.data(), gate.data(), n_ff);
  product(*w.down, gate.data(), down.data());
  return down;
}

struct Case {
  DType gate_up;
  DType down;
  int64_t n_embd;
  int64_t n_ff;
};

class GroupedExpertFfn : public ::testing::TestWithParam<Case> {
 protected:
  void run(PrefillEngine engine);
};

// Without the tile units: the int8 / float kernels throughout, bit-identical to a per-expert loop.
TEST_P(GroupedExpertFfn, EqualsPerTokenPerExpertLoop) { run(PrefillEngine::kDotKernels); }

// With the bf16 tile unit: groups of at least tiles::min_tokens (of each of the three types) run on the tiles (when the
// types are ones the tiles take), the rest on the other kernels; each must still be bit-identical to its loop.
TEST_P(GroupedExpertFfn, EqualsPerTokenPerExpertLoopOnTiles) {
  if (!kernels::tiles::available()) GTEST_SKIP() << "no AMX-BF16 on this CPU";
  run(PrefillEngine::kBf16Tiles);
}

// With the int8 tile unit: each product of a big enough group whose type it takes runs there.
TEST_P(GroupedExpertFfn, EqualsPerTokenPerExpertLoopOnInt8Tiles) {
  if (!kernels::int8_tiles::available()) GTEST_SKIP() << "no AMX-INT8 on this CPU";
  run(PrefillEngine::kInt8Tiles);
}

void GroupedExpertFfn::run(PrefillEngine engine) {
  const bool tiles_on = engine == PrefillEngine::kBf16Tiles;
  const moe::testing::PrefillKernels kernels_for_test(engine);
  const Case c = GetParam();
  std::mt19937 rng(7);
  const int n_expert = 6;
  const int k = 3;
  OwnedTensor gate = random_stack(c.gate_up, c.n_embd, c.n_ff, n_expert, rng);
  OwnedTensor up = random_stack(c.gate_up, c.n_embd, c.n_ff, n_expert, rng);
  OwnedTensor down = random_stack(c.down, c.n_ff, c.n_embd, n_expert, rng);
  const ExpertFfnWeights w{&gate.tensor, &up.tensor, &down.tensor};
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n_tokens : {1, 2, 9, 40}) {
      std::vector<float> x(static_cast<size_t>(n_tokens * c.n_embd));
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (float& v : x) v = dist(rng);
      // Skewed routing: expert 0 is picked by most tokens, expert 5 never; slots distinct.
      std::vector<std::vector<int>> experts(static_cast<size_t>(n_tokens));
      std::vector<std::vector<float>> weights(static_cast<size_t>(n_tokens));
      std::vector<TokenRoute> routes;
      for (int64_t t = 0; t < n_tokens; ++t) {
        auto& ex = experts[static_cast<size_t>(t)];
        ex = {t % 3 == 2 ? 1 : 0};
        for (int i = 0; static_cast<int>(ex.size()) < k; ++i) {
          const int candidate = 1 + static_cast<int>((t + i) % 4);  // 1..4, rotating
          if (std::find(ex.begin(), ex.end(), candidate) == ex.end()) ex.push_back(candidate);
        }
        for (int slot = 0; slot < k; ++slot) weights[static_cast<size_t>(t)].push_back(0.1f + 0.3f * static_cast<float>(slot) + 0.01f * static_cast<float>(t));
      }
      for (int64_t t = 0; t < n_tokens; ++t) routes.push_back({experts[static_cast<size_t>(t)].data(), weights[static_cast<size_t>(t)].data()});
      std::vector<float> out(x.size(), -1.0f);
      ExpertFfnScratch scratch;
      grouped_expert_ffn(pool, w, x.data(), n_tokens, routes, k, out.data(), scratch);
      std::vector<int64_t> group_size(n_expert, 0);
      for (const auto& ex : experts) {
        for (int e : ex) ++group_size[static_cast<size_t>(e)];
      }
      const int64_t threshold = std::max(kernels::tiles::min_tokens(c.gate_up), kernels::tiles::min_tokens(c.down));
      auto on_tiles = [&](int e) {
        return group_size[static_cast<size_t>(e)] >= threshold && use_tiles(gate.tensor, n_tokens) &&
               use_tiles(down.tensor, n_tokens);
      };
      if (tiles_on && n_tokens == 40 && kernels::tiles::recommended(c.gate_up) && kernels::tiles::recommended(c.down)) {
        EXPECT_TRUE(on_tiles(0)) << "expert 0's group should run on the tiles";
      }
      if (engine == PrefillEngine::kInt8Tiles && n_tokens == 40 && kernels::int8_tiles::supports(c.gate_up)) {
        EXPECT_TRUE(use_int8_tiles(gate.tensor, group_size[0])) << "expert 0's group should run on the int8 tiles";
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> expected(static_cast<size_t>(c.n_embd), 0.0f);
        for (int slot = 0; slot < k; ++slot) {
          const int e = experts[static_cast<size_t>(t)][static_cast<size_t>(slot)];
          const float* xt = x.data() + t * c.n_embd;
          const auto int8_for = [&](const Tensor& t) {
            return engine == PrefillEngine::kInt8Tiles && use_int8_tiles(t, group_size[static_cast<size_t>(e)]);
          };
          const std::vector<float> y =
              on_tiles(e) ? reference_expert_on_tiles(w, e, xt) : reference_expert(pool, w, e, xt, int8_for);
          for (int64_t i = 0; i < c.n_embd; ++i) expected[static_cast<size_t>(i)] += y[static_cast<size_t>(i)] * weights[static_cast<size_t>(t)][static_cast<size_t>(slot)];
        }
        for (int64_t i = 0; i < c.n_embd; ++i) {
          ASSERT_EQ(out[static_cast<size_t>(t * c.n_embd + i)], expected[static_cast<size_t>(i)])
              << "threads=" << threads << " n_tokens=" << n_tokens << " t=" << t << " i=" << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GroupedExpertFfn,
                         ::testing::Values(Case{DType::kQ8_0, DType::kQ8_0, 96, 160},
                                           Case{DType::kQ4_0, DType::kQ8_0, 64, 96},
                                           Case{DType::kQ4_K, DType::kQ6_K, 256, 512},
                                           Case{DType::kQ4_K, DType::kQ4_K, 256, 768},
                                           Case{DType::kQ5_K, DType::kQ6_K, 256, 256},
                                           Case{DType::kF32, DType::kF32, 40, 72},
                                           Case{DType::kF16, DType::kQ8_0, 64, 96}),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

}  // namespace
}  // namespace moe::model

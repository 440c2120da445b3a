// The kernel lab: matmul_rows (and so vec_dot) of every type on every ISA this CPU runs, over a
// realistic expert matrix (2816 rows x 1024 columns, an FFN projection of a mid-size MoE), plus
// the OLMoE expert shape (2048 x 1024) for Q4_K / Q6_K / Q8_0 decode.
// Each case is checked once against the scalar reference before it is timed.
//
// Two settings per case: "hot" reuses one matrix (it stays in cache: compute bound) and "cold"
// cycles through copies filling MOE_LAB_POOL_MB (default 1024 MiB, beyond the L3) so every weight
// comes from DRAM, as experts do during decode. GB/s counts weight bytes read per second.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/tile_gemm.h"
#include "kernels/tile_int8.h"

namespace {

using moe::DType;
using moe::kernels::Isa;
using moe::kernels::TypeTraits;

constexpr int64_t kRows = 2816;
constexpr int64_t kCols = 1024;
constexpr int64_t kOlmoeRows = 2048;  // OLMoE expert projection: 2048 x 1024

struct Problem {
  size_t w_row_bytes = 0;
  size_t x_row_bytes = 0;
  std::vector<uint8_t> weights;  // pool of kRows x kCols matrices, back to back
  int64_t n_matrices = 0;
  std::vector<uint8_t> x;        // n_tokens activation rows
};

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

size_t pool_bytes() {
  const char* env = std::getenv("MOE_LAB_POOL_MB");
  return (env ? std::strtoull(env, nullptr, 10) : 1024) << 20;
}

Problem make_problem(const TypeTraits& wt, const TypeTraits& xt, int64_t n_rows, int64_t n_tokens, bool cold) {
  Problem p;
  p.w_row_bytes = kCols / wt.block_size * wt.block_bytes;
  p.x_row_bytes = kCols / xt.block_size * xt.block_bytes;
  const size_t matrix_bytes = p.w_row_bytes * n_rows;
  p.n_matrices = cold ? static_cast<int64_t>(std::max<size_t>(1, pool_bytes() / matrix_bytes)) : 1;
  p.weights.resize(matrix_bytes * p.n_matrices);
  const std::vector<float> w = gaussian(n_rows * kCols, 1);
  wt.from_float(w.data(), p.weights.data(), n_rows * kCols);
  for (int64_t m = 1; m < p.n_matrices; ++m) {
    std::memcpy(p.weights.data() + m * matrix_bytes, p.weights.data(), matrix_bytes);
  }
  p.x.resize(p.x_row_bytes * n_tokens);
  const std::vector<float> x = gaussian(kCols * n_tokens, 2);
  auto* convert = xt.from_float_activation ? xt.from_float_activation : xt.from_float;
  convert(x.data(), p.x.data(), kCols * n_tokens);
  return p;
}

// Returns an error message if matmul_rows of `wt` disagrees with the scalar vec_dot.
std::string check(const TypeTraits& wt, const Problem& p, int64_t n_tokens) {
  const TypeTraits& ref = *moe::kernels::type_traits(wt.type, Isa::kScalar);
  const int64_t rows = 64;
  std::vector<float> y(rows * n_tokens);
  moe::kernels::matmul_rows(wt, p.weights.data(), p.w_row_bytes, kCols, p.x.data(), p.x_row_bytes,
                            n_tokens, y.data(), rows, 0, rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      const float want = ref.vec_dot(kCols, p.weights.data() + r * p.w_row_bytes, p.x.data() + t * p.x_row_bytes);
      if (std::fabs(y[t * rows + r] - want) > 1e-4f * (std::fabs(want) + 1.0f)) {
        return "mismatch at row " + std::to_string(r) + ": " + std::to_string(y[t * rows + r]) +
               " vs " + std::to_string(want);
      }
    }
  }
  return "";
}

void bm_matmul_rows(benchmark::State& state, DType type, Isa isa, int64_t n_rows, int64_t n_tokens, bool cold) {
  const TypeTraits& wt = *moe::kernels::type_traits(type, isa);
  const TypeTraits& xt = *moe::kernels::type_traits(wt.vec_dot_type, isa);
  const Problem p = make_problem(wt, xt, n_rows, n_tokens, cold);
  if (const std::string error = check(wt, p, n_tokens); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::vector<float> y(n_rows * n_tokens);
  const size_t matrix_bytes = p.w_row_bytes * n_rows;
  int64_t m = 0;
  for (auto _ : state) {
    moe::kernels::matmul_rows(wt, p.weights.data() + m * matrix_bytes, p.w_row_bytes, kCols, p.x.data(),
                              p.x_row_bytes, n_tokens, y.data(), n_rows, 0, n_rows);
    benchmark::DoNotOptimize(y.data());
    m = (m + 1) % p.n_matrices;
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(matrix_bytes) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["MB"] = static_cast<double>(matrix_bytes) / 1e6;
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(n_rows * kCols * n_tokens) * state.iterations() / 1e9,
                                                benchmark::Counter::kIsRate);
}

// Times `product(weights of matrix m)` cycling through the problem's matrices, and reports GB/s
// (weight bytes read) and GMAC/s.
template <class Product>
void time_products(benchmark::State& state, const Problem& p, int64_t n_rows, int64_t n_tokens, const Product& product) {
  const size_t matrix_bytes = p.w_row_bytes * n_rows;
  int64_t m = 0;
  for (auto _ : state) {
    product(p.weights.data() + m * matrix_bytes);
    m = (m + 1) % p.n_matrices;
  }
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(matrix_bytes) * iterations / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(n_rows * kCols * n_tokens) * iterations / 1e9,
                                                benchmark::Counter::kIsRate);
}

// The same product on the AMX tile unit (kernels/tile_gemm.h): activations packed once (outside
// the timing, as a layer packs them once for all its products), weights dequantized per strip.
// Checked against the tiles' scalar reference first.
void bm_tiles(benchmark::State& state, DType type, int64_t n_rows, int64_t n_tokens, bool cold) {
  if (!moe::kernels::tiles::available()) {
    state.SkipWithError("no AMX-BF16 on this CPU");
    return;
  }
  const TypeTraits& wt = *moe::kernels::type_traits(type);
  const TypeTraits& xt = *moe::kernels::type_traits(wt.vec_dot_type);
  const Problem p = make_problem(wt, xt, n_rows, 1, cold);
  const std::vector<float> x = gaussian(kCols * n_tokens, 3);
  std::vector<const float*> rows;
  for (int64_t t = 0; t < n_tokens; ++t) rows.push_back(x.data() + t * kCols);
  std::vector<uint16_t> packed(moe::kernels::tiles::packed_size(n_tokens, kCols));
  moe::kernels::tiles::pack_activations(rows.data(), n_tokens, kCols, 0, kCols, packed.data());
  std::vector<float> y(n_rows * n_tokens), want(y.size());
  const int64_t check_rows = 32;
  moe::kernels::tiles::matmul(type, p.weights.data(), p.w_row_bytes, kCols, packed.data(), n_tokens, y.data(), n_rows, 0,
                              check_rows);
  moe::kernels::tiles::ref::matmul(type, p.weights.data(), p.w_row_bytes, kCols, x.data(), n_tokens, want.data(), n_rows,
                                   0, check_rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < check_rows; ++r) {
      if (std::fabs(y[t * n_rows + r] - want[t * n_rows + r]) > 1e-3f * (std::fabs(want[t * n_rows + r]) + 1.0f)) {
        state.SkipWithError("tiles disagree with their reference");
        return;
      }
    }
  }
  time_products(state, p, n_rows, n_tokens, [&](const uint8_t* w) {
    moe::kernels::tiles::matmul(type, w, p.w_row_bytes, kCols, packed.data(), n_tokens, y.data(), n_rows, 0, n_rows);
    benchmark::DoNotOptimize(y.data());
  });
}

// The same product on the tile unit in int8 (kernels/tile_int8.h), from the quantized activations
// matmul_rows takes (packed inside each call, as it is in the model). Checked bit-exact against
// its scalar reference first.
void bm_int8_tiles(benchmark::State& state, DType type, int64_t n_rows, int64_t n_tokens, bool cold) {
  if (!moe::kernels::int8_tiles::available()) {
    state.SkipWithError("no AMX-INT8 on this CPU");
    return;
  }
  const TypeTraits& wt = *moe::kernels::type_traits(type);
  const TypeTraits& xt = *moe::kernels::type_traits(wt.vec_dot_type);
  const Problem p = make_problem(wt, xt, n_rows, n_tokens, cold);
  const int64_t check_rows = 32;
  std::vector<float> y(n_rows * n_tokens), want(y.size());
  moe::kernels::int8_tiles::matmul(type, p.weights.data(), p.w_row_bytes, kCols, p.x.data(), p.x_row_bytes, n_tokens,
                                   y.data(), n_rows, 0, check_rows);
  moe::kernels::int8_tiles::ref::matmul(type, p.weights.data(), p.w_row_bytes, kCols, p.x.data(), p.x_row_bytes,
                                        n_tokens, want.data(), n_rows, 0, check_rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < check_rows; ++r) {
      if (y[t * n_rows + r] != want[t * n_rows + r]) {
        state.SkipWithError("int8 tiles disagree with their reference");
        return;
      }
    }
  }
  time_products(state, p, n_rows, n_tokens, [&](const uint8_t* w) {
    moe::kernels::int8_tiles::matmul(type, w, p.w_row_bytes, kCols, p.x.data(), p.x_row_bytes, n_tokens, y.data(),
                                     n_rows, 0, n_rows);
    benchmark::DoNotOptimize(y.data());
  });
}

// The tile path's first half alone: weight rows dequantized to bf16 strips (32 rows at a time, as
// tiles::matmul does), no products. GWeights/s counts weights converted per second.
void bm_dequantize_bf16(benchmark::State& state, DType type, int64_t n_rows) {
  const TypeTraits& wt = *moe::kernels::type_traits(type);
  const TypeTraits& xt = *moe::kernels::type_traits(wt.vec_dot_type);
  const Problem p = make_problem(wt, xt, n_rows, 1, false);
  constexpr int kStripRows = 32;
  const int64_t stride = kCols + 32;
  std::vector<uint16_t> strips(kStripRows * stride);
  for (auto _ : state) {
    for (int64_t r0 = 0; r0 < n_rows; r0 += kStripRows) {
      moe::kernels::tiles::dequantize_rows_bf16(type, p.weights.data() + r0 * p.w_row_bytes, p.w_row_bytes, kStripRows,
                                                kCols, strips.data(), stride);
      benchmark::DoNotOptimize(strips.data());
    }
  }
  state.counters["GWeights/s"] = benchmark::Counter(static_cast<double>(n_rows * kCols) * state.iterations() / 1e9,
                                                    benchmark::Counter::kIsRate);
}

// Prefill-sized token counts on both engines: the int8 tiles (matmul_rows) and the tile unit.
void register_prefill() {
  for (DType type : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_0}) {
    if (moe::kernels::tiles::available()) {
      benchmark::RegisterBenchmark(("prefill/dequant_bf16/" + std::string(moe::dtype_name(type))).c_str(),
                                   bm_dequantize_bf16, type, kOlmoeRows)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
    }
    for (int64_t n_tokens : {4, 8, 16, 32, 64}) {
      const std::string suffix = std::string(moe::dtype_name(type)) + "/tokens:" + std::to_string(n_tokens) + "/hot";
      benchmark::RegisterBenchmark(("prefill/int8/" + suffix).c_str(), bm_matmul_rows, type,
                                   moe::kernels::best_isa(), kOlmoeRows, n_tokens, false)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
      benchmark::RegisterBenchmark(("prefill/tiles/" + suffix).c_str(), bm_tiles, type, kOlmoeRows, n_tokens, false)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
      benchmark::RegisterBenchmark(("prefill/amx_int8/" + suffix).c_str(), bm_int8_tiles, type, kOlmoeRows, n_tokens,
                                   false)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
      // Weights from DRAM, as experts come during a prefill (each read once per micro-batch).
      const std::string cold = std::string(moe::dtype_name(type)) + "/tokens:" + std::to_string(n_tokens) + "/cold";
      benchmark::RegisterBenchmark(("prefill/tiles/" + cold).c_str(), bm_tiles, type, kOlmoeRows, n_tokens, true)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
    }
    // Where the int8 tiles take over from the dot kernels (int8_tiles::min_tokens): small groups
    // with their weights from DRAM, as most expert groups of a short prompt.
    for (int64_t n_tokens : {2, 3, 4, 5, 6, 8, 16, 64}) {
      const std::string cold = std::string(moe::dtype_name(type)) + "/tokens:" + std::to_string(n_tokens) + "/cold";
      benchmark::RegisterBenchmark(("prefill/int8/" + cold).c_str(), bm_matmul_rows, type, moe::kernels::best_isa(),
                                   kOlmoeRows, n_tokens, true)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
      benchmark::RegisterBenchmark(("prefill/amx_int8/" + cold).c_str(), bm_int8_tiles, type, kOlmoeRows, n_tokens, true)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
    }
  }
}

void register_all() {
  register_prefill();
  const DType types[] = {DType::kQ8_0, DType::kQ4_0, DType::kF16,  DType::kF32,   DType::kBF16,
                         DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K,  DType::kQ3_K,
                         DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS,
                         DType::kMXFP4};
  for (DType type : types) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (static_cast<int>(isa) > static_cast<int>(moe::kernels::best_isa())) continue;
      for (int64_t n_tokens : {1, 4}) {
        for (bool cold : {false, true}) {
          const std::string name = "matmul_rows/" + std::string(moe::dtype_name(type)) + "/" +
                                   moe::kernels::isa_name(isa) + "/tokens:" + std::to_string(n_tokens) +
                                   (cold ? "/cold" : "/hot");
          benchmark::RegisterBenchmark(name.c_str(), bm_matmul_rows, type, isa, kRows, n_tokens, cold)
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(0.3);
        }
      }
    }
  }
  // Decode of an OLMoE expert (2048 x 1024, one token, one thread): the K-quant hot path.
  for (DType type : {DType::kQ4_K, DType::kQ6_K, DType::kQ8_0}) {
    for (bool cold : {false, true}) {
      const std::string name = "olmoe_expert/" + std::string(moe::dtype_name(type)) + "/" +
                               moe::kernels::isa_name(moe::kernels::best_isa()) + (cold ? "/cold" : "/hot");
      benchmark::RegisterBenchmark(name.c_str(), bm_matmul_rows, type, moe::kernels::best_isa(), kOlmoeRows,
                                   int64_t{1}, cold)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu", moe::describe_cpu_features());
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// vec_dot and matmul_rows of every ISA against the scalar reference, over many lengths and
// misaligned buffers. Errors are normalised by sum |w_i x_i| (ggml's test-backend-ops style):
// integer-accumulating types differ only in the order of float block sums.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "kernel_test_util.h"

namespace moe::kernels::test {
namespace {

// Inputs of one dot product in the exact bytes the kernels see.
struct DotCase {
  std::vector<uint8_t> w;
  std::vector<uint8_t> x;
  double abs_sum = 0.0;  // sum |w_i x_i| of the dequantized values
};

DotCase make_case(DType type, int64_t n, uint32_t seed) {
  const TypeTraits& wt = *type_traits(type, Isa::kScalar);
  const TypeTraits& xt = *type_traits(wt.vec_dot_type, Isa::kScalar);
  DotCase c;
  c.w.resize(row_bytes(wt, n));
  c.x.resize(row_bytes(xt, n));
  const std::vector<float> wf = gaussian(n, seed);
  const std::vector<float> xf = gaussian(n, seed + 1000, 3.0f);
  wt.from_float(wf.data(), c.w.data(), n);
  to_activation(xt, xf.data(), c.x.data(), n);
  std::vector<float> wd(n), xd(n);
  wt.to_float(c.w.data(), wd.data(), n);
  xt.to_float(c.x.data(), xd.data(), n);
  for (int64_t i = 0; i < n; ++i) c.abs_sum += std::fabs(static_cast<double>(wd[i]) * xd[i]);
  return c;
}

float run_dot(const TypeTraits& t, const DotCase& c, int64_t n, size_t offset) {
  const size_t off = legal_offset(t.type, offset);
  OffsetBuffer w(c.w.size(), off), x(c.x.size(), off);
  std::memcpy(w.data(), c.w.data(), c.w.size());
  std::memcpy(x.data(), c.x.data(), c.x.size());
  return t.vec_dot(n, w.data(), x.data());
}

int64_t block_of(DType type) { return type_traits(type, Isa::kScalar)->block_size; }

bool is_float_type(DType type) { return type == DType::kF32 || type == DType::kF16 || type == DType::kBF16; }

std::vector<int64_t> test_lengths(DType type) {
  if (is_float_type(type)) return {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 1024, 4096, 4097, 4133};
  // Whole blocks only: 32 elements for the Q4/Q5/Q8/IQ4_NL/MXFP4 blocks, 256 for K-quant super-blocks.
  const int64_t block = type_traits(type, Isa::kScalar)->block_size;
  std::vector<int64_t> lengths;
  for (int64_t blocks : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 127, 128, 129, 131}) lengths.push_back(block * blocks);
  return lengths;
}

// Integer paths: only the float order of block sums differs. Float paths: SIMD float lanes vs
// the reference's double accumulation.
double tolerance(DType type) { return is_float_type(type) ? 2e-5 : 1e-5; }

class VecDotTest : public ::testing::TestWithParam<DType> {};

TEST_P(VecDotTest, MatchesScalarAcrossLengthsAndOffsets) {
  const DType type = GetParam();
  const TypeTraits& ref = *type_traits(type, Isa::kScalar);
  for (Isa isa : available_isas()) {
    const TypeTraits& simd = *type_traits(type, isa);
    for (int64_t n : test_lengths(type)) {
      const DotCase c = make_case(type, n, static_cast<uint32_t>(n));
      const float expected = run_dot(ref, c, n, 0);
      for (size_t offset : {0, 1, 2, 3, 5, 17, 32, 33, 63}) {
        const float got = run_dot(simd, c, n, offset);
        const double err = std::fabs(static_cast<double>(got) - expected) / (c.abs_sum + 1e-30);
        ASSERT_LE(err, tolerance(type)) << isa_name(isa) << " n=" << n << " offset=" << offset
                                        << " got=" << got << " expected=" << expected;
      }
    }
  }
}

TEST_P(VecDotTest, EveryMisalignmentAtOneLength) {
  const DType type = GetParam();
  const int64_t n = block_of(type) * 37;
  const DotCase c = make_case(type, n, 7);
  const float expected = run_dot(*type_traits(type, Isa::kScalar), c, n, 0);
  for (Isa isa : available_isas()) {
    for (size_t offset = 1; offset < 64; ++offset) {
      const float got = run_dot(*type_traits(type, isa), c, n, offset);
      ASSERT_LE(std::fabs(static_cast<double>(got) - expected) / c.abs_sum, tolerance(type))
          << isa_name(isa) << " offset=" << offset;
    }
  }
}

// An all-zero row must give exactly zero (no stray bias from the unsigned-offset tricks).
TEST_P(VecDotTest, ZeroWeightsGiveZero) {
  const DType type = GetParam();
  for (Isa isa : available_isas()) {
    const TypeTraits& t = *type_traits(type, isa);
    const TypeTraits& xt = *type_traits(t.vec_dot_type, isa);
    const int64_t n = block_of(type) * 9;
    std::vector<float> zeros(n, 0.0f);
    const std::vector<float> xf = gaussian(n, 3);
    std::vector<uint8_t> w(row_bytes(t, n)), x(row_bytes(xt, n));
    t.from_float(zeros.data(), w.data(), n);
    to_activation(xt, xf.data(), x.data(), n);
    EXPECT_EQ(t.vec_dot(n, w.data(), x.data()), 0.0f) << isa_name(isa);
  }
}

// The integer types' SIMD dots reproduce ggml's x86 vec_dot float order (one 8-lane accumulator,
// one fma per block), so AVX2 and AVX-512 must agree exactly; this keeps our decode logits
// bit-identical to llama.cpp's whichever ISA runs.
TEST_P(VecDotTest, QuantizedDotsIdenticalAcrossSimdIsas) {
  const DType type = GetParam();
  if (is_float_type(type) || best_isa() != Isa::kAvx512) GTEST_SKIP() << "needs AVX-512 and a quantized type";
  for (int64_t blocks : {1, 2, 3, 32, 33, 129}) {
    const int64_t n = block_of(type) * blocks;
    const DotCase c = make_case(type, n, static_cast<uint32_t>(blocks));
    EXPECT_EQ(run_dot(*type_traits(type, Isa::kAvx2), c, n, 0), run_dot(*type_traits(type, Isa::kAvx512), c, n, 5))
        << "n=" << n;
  }
}

std::string type_name(const ::testing::TestParamInfo<DType>& info) {
  return "type" + std::to_string(static_cast<int>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VecDotTest, ::testing::ValuesIn(weight_types()), type_name);

// matmul_rows must equal a loop of vec_dot of the same ISA bit for bit (its tiles are built to
// accumulate in the same order), for every tile shape including ragged edges.
class MatmulRowsTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulRowsTest, EqualsLoopOfVecDot) {
  const DType type = GetParam();
  for (Isa isa : available_isas()) {
    const TypeTraits& wt = *type_traits(type, isa);
    const TypeTraits& xt = *type_traits(wt.vec_dot_type, isa);
    const int64_t n_cols = is_float_type(type) ? 32 * 11 + 5 : block_of(type) * 11;
    const int64_t n_rows = 11;
    const size_t w_row = row_bytes(wt, n_cols), x_row = row_bytes(xt, n_cols);
    std::vector<uint8_t> w(w_row * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) {
      wt.from_float(gaussian(n_cols, 100 + r).data(), w.data() + r * w_row, n_cols);
    }
    for (int64_t n_tokens : {1, 2, 3, 4, 5, 7, 9}) {
      std::vector<uint8_t> x(x_row * n_tokens);
      for (int64_t t = 0; t < n_tokens; ++t) {
        to_activation(xt, gaussian(n_cols, 500 + t).data(), x.data() + t * x_row, n_cols);
      }
      const int64_t y_stride = n_rows + 3;
      std::vector<float> y(y_stride * n_tokens, -1.0f);
      const int64_t row_begin = 1, row_end = n_rows;  // a partial range, as a thread would get
      matmul_rows(wt, w.data(), w_row, n_cols, x.data(), x_row, n_tokens, y.data(), y_stride, row_begin, row_end);
      for (int64_t t = 0; t < n_tokens; ++t) {
        EXPECT_EQ(y[t * y_stride + 0], -1.0f) << "row outside the range was written";
        for (int64_t r = row_begin; r < row_end; ++r) {
          const float expected = wt.vec_dot(n_cols, w.data() + r * w_row, x.data() + t * x_row);
          ASSERT_EQ(y[t * y_stride + r], expected) << isa_name(isa) << " r=" << r << " t=" << t << " of " << n_tokens;
        }
      }
    }
  }
}

// In llama.cpp's batched order every product equals the type's batched tile run on its own
// (or vec_dot where the type has one order only).
TEST_P(MatmulRowsTest, BatchedOrderEqualsSingleTiles) {
  const DType type = GetParam();
  for (Isa isa : available_isas()) {
    const TypeTraits& wt = *type_traits(type, isa);
    const TypeTraits& xt = *type_traits(wt.vec_dot_type, isa);
    const int64_t n_cols = is_float_type(type) ? 32 * 9 : block_of(type) * 3;
    const int64_t n_rows = 10, n_tokens = 6;
    const size_t w_row = row_bytes(wt, n_cols), x_row = row_bytes(xt, n_cols);
    std::vector<uint8_t> w(w_row * n_rows), x(x_row * n_tokens);
    for (int64_t r = 0; r < n_rows; ++r) wt.from_float(gaussian(n_cols, 40 + r).data(), w.data() + r * w_row, n_cols);
    for (int64_t t = 0; t < n_tokens; ++t) to_activation(xt, gaussian(n_cols, 80 + t).data(), x.data() + t * x_row, n_cols);
    std::vector<float> y(n_rows * n_tokens);
    matmul_rows(wt, w.data(), w_row, n_cols, x.data(), x_row, n_tokens, y.data(), n_rows, 0, n_rows, SumOrder::kBatched);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < n_rows; ++r) {
        float expected;
        if (wt.vec_dot_tile_batched != nullptr) {
          wt.vec_dot_tile_batched(n_cols, w.data() + r * w_row, w_row, 1, x.data() + t * x_row, x_row, 1, &expected, 1);
        } else {
          expected = wt.vec_dot(n_cols, w.data() + r * w_row, x.data() + t * x_row);
        }
        ASSERT_EQ(y[t * n_rows + r], expected) << isa_name(isa) << " r=" << r << " t=" << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulRowsTest, ::testing::ValuesIn(weight_types()), type_name);

// F32/F16 dots in llama.cpp's two orders (SumOrder): the AVX-512 kernels give the bits of the
// scalar emulation in ref_float_dot.cpp, over lengths around the 16- and 64-element steps.
TEST(FloatDotOrders, Avx512MatchesTheScalarEmulationBitForBit) {
  if (best_isa() != Isa::kAvx512) GTEST_SKIP() << "needs AVX-512";
  for (DType type : {DType::kF32, DType::kF16}) {
    const TypeTraits& ref = *type_traits(type, Isa::kScalar);
    const TypeTraits& simd = *type_traits(type, Isa::kAvx512);
    for (int64_t n : {1, 15, 16, 17, 48, 63, 64, 65, 127, 128, 130, 1024, 4133}) {
      const DotCase c = make_case(type, n, static_cast<uint32_t>(n));
      EXPECT_EQ(run_dot(simd, c, n, 4), run_dot(ref, c, n, 0)) << dtype_name(type) << " n=" << n;
      float y_ref = 0.0f, y_simd = 0.0f;
      ref.vec_dot_tile_batched(n, c.w.data(), 0, 1, c.x.data(), 0, 1, &y_ref, 1);
      simd.vec_dot_tile_batched(n, c.w.data(), 0, 1, c.x.data(), 0, 1, &y_simd, 1);
      EXPECT_EQ(y_simd, y_ref) << dtype_name(type) << " batched n=" << n;
    }
  }
}

// Below one 64-element step ggml's F16 dot is the double sum of the (exact) products.
TEST(FloatDotOrders, ShortF16DotIsTheDoubleSumOfProducts) {
  for (int64_t n : {1, 7, 32, 63}) {
    const DotCase c = make_case(DType::kF16, n, 3);
    std::vector<float> w(n), x(n);
    type_traits(DType::kF16, Isa::kScalar)->to_float(c.w.data(), w.data(), n);
    type_traits(DType::kF16, Isa::kScalar)->to_float(c.x.data(), x.data(), n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i] * x[i]);
    for (Isa isa : available_isas()) {
      if (isa == Isa::kAvx2) continue;  // AVX2 keeps an order of its own
      EXPECT_EQ(run_dot(*type_traits(DType::kF16, isa), c, n, 0), static_cast<float>(sum)) << isa_name(isa);
    }
  }
}

TEST(FloatDotOrders, BatchedOrderOnlyWhereLlamaCppTakesSgemm) {
  EXPECT_EQ(llama_cpp_sum_order(256, 128, 1), SumOrder::kVecDot);    // one token: vec_dot
  EXPECT_EQ(llama_cpp_sum_order(256, 128, 2), SumOrder::kBatched);
  EXPECT_EQ(llama_cpp_sum_order(256, 100, 9), SumOrder::kVecDot);    // k not a multiple of 16
  EXPECT_EQ(llama_cpp_sum_order(250, 128, 9), SumOrder::kVecDot);    // m not a multiple of 4
}

TEST(KernelTable, EveryTypeOnEveryIsaHasItsPairing) {
  for (Isa isa : available_isas()) {
    for (DType type : weight_types()) {
      const TypeTraits* t = type_traits(type, isa);
      ASSERT_NE(t, nullptr);
      ASSERT_NE(t->vec_dot, nullptr);
      const TypeTraits* act = type_traits(t->vec_dot_type, isa);
      ASSERT_NE(act, nullptr);
      EXPECT_EQ(act->block_size, t->block_size);
    }
  }
  EXPECT_EQ(type_traits(DType::kQ4_0)->vec_dot_type, DType::kQ8_0);
  EXPECT_EQ(type_traits(DType::kQ5_1)->vec_dot_type, DType::kQ8_1);
  EXPECT_EQ(type_traits(DType::kQ4_K)->vec_dot_type, DType::kQ8_K);
  EXPECT_EQ(type_traits(DType::kIQ4_XS)->vec_dot_type, DType::kQ8_K);
  EXPECT_EQ(type_traits(DType::kIQ4_NL)->vec_dot_type, DType::kQ8_0);
  EXPECT_EQ(type_traits(DType::kMXFP4)->vec_dot_type, DType::kQ8_0);
  EXPECT_EQ(type_traits(DType::kI8), nullptr);
}

}  // namespace
}  // namespace moe::kernels::test

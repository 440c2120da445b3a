// F32/F16 dot products in the summation orders of llama.cpp's AVX-512 CPU backend, emulated one
// lane at a time (std::fma for each vfmadd). Random-weight models quantize activations to Q8_0,
// where a last-bit difference can flip a rounding and change every later token, so "close" is
// not enough: these give the same bits as ggml, and the AVX-512 kernels the same bits as these.
#include <cmath>

#include "kernels/fp16.h"
#include "kernels/lane_math.h"
#include "kernels/ref/ref_kernels.h"

namespace moe::kernels::ref {

namespace {

struct ElemF32 {
  static float load(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
};

struct ElemF16 {
  static float load(const void* p, int64_t i) { return fp16_to_fp32(static_cast<const uint16_t*>(p)[i]); }
};

// ggml_vec_dot_f32/f16: four accumulators of 16 lanes take 64 elements per step; they are added
// pairwise (0+2, 1+3, then the two) and reduced; elements past the last multiple of 64 are
// added one by one after that, in float for F32 and in double for F16 (ggml_float).
template <typename E, typename Sum>
float vec_order_dot(int64_t n, const void* w, const void* x) {
  constexpr int kAccumulators = 4;
  constexpr int64_t kStep = kAccumulators * kLanes;
  float acc[kAccumulators][kLanes] = {};
  const int64_t n_main = n - n % kStep;
  for (int64_t i = 0; i < n_main; i += kStep) {
    for (int a = 0; a < kAccumulators; ++a) {
      for (int l = 0; l < kLanes; ++l) {
        const int64_t k = i + a * kLanes + l;
        acc[a][l] = std::fma(E::load(w, k), E::load(x, k), acc[a][l]);
      }
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    acc[0][l] += acc[2][l];
    acc[1][l] += acc[3][l];
  }
  for (int l = 0; l < kLanes; ++l) acc[0][l] += acc[1][l];
  Sum sum = reduce_add_lanes(acc[0]);
  for (int64_t k = n_main; k < n; ++k) sum += static_cast<Sum>(E::load(w, k) * E::load(x, k));
  return static_cast<float>(sum);
}

// llamafile's tinyBLAS: one accumulator of 16 lanes over the whole row, then reduced. (llama.cpp
// only takes this path when n is a multiple of 16; a ragged end counts as zeros here.)
template <typename E>
float batched_order_dot(int64_t n, const void* w, const void* x) {
  float acc[kLanes] = {};
  for (int64_t i = 0; i < n; i += kLanes) {
    for (int l = 0; l < kLanes && i + l < n; ++l) acc[l] = std::fma(E::load(w, i + l), E::load(x, i + l), acc[l]);
  }
  return reduce_add_lanes(acc);
}

template <typename E>
void batched_tile(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x, size_t x_row_bytes,
                  int n_tokens, float* y, int64_t y_stride) {
  for (int t = 0; t < n_tokens; ++t) {
    for (int r = 0; r < n_rows; ++r) {
      y[t * y_stride + r] = batched_order_dot<E>(n, w + r * w_row_bytes, x + t * x_row_bytes);
    }
  }
}

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* x) { return vec_order_dot<ElemF32, float>(n, w, x); }
float vec_dot_f16(int64_t n, const void* w, const void* x) { return vec_order_dot<ElemF16, double>(n, w, x); }

void tile_batched_f32(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  batched_tile<ElemF32>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void tile_batched_f16(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  batched_tile<ElemF16>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

}  // namespace moe::kernels::ref

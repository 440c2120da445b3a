// AVX-512 float-type dots (F32, F16 with tiles in both of llama.cpp's orders, see SumOrder;
// BF16 with vdpbf16ps) and the Q8 activation quantizers.
#include <cstring>

#include "kernels/avx512/avx512_common.h"
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/blocks.h"

namespace moe::kernels::avx512 {

namespace {

// Sum: what ggml's vec_dot finishes the row in (its F16 dot accumulates in ggml_float).
struct ElemF32 {
  using Elem = float;
  using Sum = float;
  static __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static float scalar(float v) { return v; }
};

struct ElemF16 {
  using Elem = uint16_t;
  using Sum = double;
  static __m512 load(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static float scalar(uint16_t v) { return fp16_to_fp32(v); }
};

// 16 columns of an R x T tile; `m` masks the ragged end of a row (n need not be a multiple of 16).
template <typename E, int R, int T>
inline void float_step(int64_t i, __mmask16 m, const uint8_t* w, size_t w_row_bytes, const uint8_t* x,
                       size_t x_row_bytes, __m512 (&acc)[R][T]) {
  __m512 wv[R];
  for (int r = 0; r < R; ++r) wv[r] = E::load(reinterpret_cast<const typename E::Elem*>(w + r * w_row_bytes) + i, m);
  for (int t = 0; t < T; ++t) {
    const __m512 xv = E::load(reinterpret_cast<const typename E::Elem*>(x + t * x_row_bytes) + i, m);
    for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
  }
}

// llamafile sgemm's order (llama.cpp's batches): one 16-lane accumulator per (row, token).
template <typename E>
struct BatchedTile {
  template <int R, int T>
  struct Kernel {
    static void run(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x,
                    size_t x_row_bytes, float* y, int64_t y_stride) {
      __m512 acc[R][T];
      for (auto& row : acc) {
        for (auto& a : row) a = _mm512_setzero_ps();
      }
      int64_t i = 0;
      for (; i + 16 <= n; i += 16) float_step<E, R, T>(i, 0xffff, w, w_row_bytes, x, x_row_bytes, acc);
      if (i < n) {
        const auto tail = static_cast<__mmask16>((1u << (n - i)) - 1);
        float_step<E, R, T>(i, tail, w, w_row_bytes, x, x_row_bytes, acc);
      }
      store_sums<R, T>(acc, y, y_stride);
    }
  };
};

// ggml vec_dot's order (llama.cpp's single token): four accumulators per row take 64 elements
// per step, are added pairwise and reduced; the rest of the row is added one product at a time
// in E::Sum (float for F32, double for F16). Tokens are taken one at a time so the R x 4
// accumulators stay in registers.
template <typename E>
struct VecOrderTile {
  template <int R, int T>
  struct Kernel {
    static void run(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x,
                    size_t x_row_bytes, float* y, int64_t y_stride) {
      for (int t = 0; t < T; ++t) one_token(n, w, w_row_bytes, x + t * x_row_bytes, y + t * y_stride);
    }

   private:
    static void one_token(int64_t n, const uint8_t* w, size_t w_row_bytes, const uint8_t* x, float* y) {
      using Elem = typename E::Elem;
      const auto* xe = reinterpret_cast<const Elem*>(x);
      __m512 acc[R][4];
      for (auto& row : acc) {
        for (auto& a : row) a = _mm512_setzero_ps();
      }
      const int64_t n_main = n - n % 64;
      for (int64_t i = 0; i < n_main; i += 64) {
        for (int j = 0; j < 4; ++j) {
          const __m512 xv = E::load(xe + i + 16 * j, 0xffff);
          for (int r = 0; r < R; ++r) {
            const auto* we = reinterpret_cast<const Elem*>(w + r * w_row_bytes);
            acc[r][j] = _mm512_fmadd_ps(E::load(we + i + 16 * j, 0xffff), xv, acc[r][j]);
          }
        }
      }
      for (int r = 0; r < R; ++r) {
        const auto* we = reinterpret_cast<const Elem*>(w + r * w_row_bytes);
        const __m512 pairs = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][2]), _mm512_add_ps(acc[r][1], acc[r][3]));
        typename E::Sum sum = _mm512_reduce_add_ps(pairs);
        for (int64_t i = n_main; i < n; ++i) sum += static_cast<typename E::Sum>(E::scalar(we[i]) * E::scalar(xe[i]));
        y[r] = static_cast<float>(sum);
      }
    }
  };
};

template <template <int, int> class Kernel>
float vec_dot_1x1(int64_t n, const void* w, const void* x) {
  float y;
  Kernel<1, 1>::run(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(x), 0, &y, 0);
  return y;
}

inline __m512bh load_bf16x32(const uint16_t* p, __mmask32 m) {
  return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(m, p));
}

// One 32-float block as ggml's x86 quantize_row_q8_*: 127/amax, round half to even, saturate.
// Returns the int32 quants before narrowing (their sum gives Q8_1's s).
inline __m512i quantize_q8_block(const float* x, int8_t* qs, float* d_out) {
  const __m512 v0 = _mm512_loadu_ps(x);
  const __m512 v1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  *d_out = amax / 127.f;
  const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), kNearest));
  const __m512i q1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), kNearest));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(q1));
  return _mm512_add_epi32(q0, q1);
}

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* x) {
  return vec_dot_1x1<VecOrderTile<ElemF32>::Kernel>(n, w, x);
}

float vec_dot_f16(int64_t n, const void* w, const void* x) {
  return vec_dot_1x1<VecOrderTile<ElemF16>::Kernel>(n, w, x);
}

void tile_f32(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
              size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<VecOrderTile<ElemF32>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void tile_f16(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
              size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<VecOrderTile<ElemF16>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void tile_batched_f32(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<BatchedTile<ElemF32>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void tile_batched_f16(int64_t n, const uint8_t* w, size_t w_row_bytes, int n_rows, const uint8_t* x,
                      size_t x_row_bytes, int n_tokens, float* y, int64_t y_stride) {
  dispatch_tile<BatchedTile<ElemF16>::Kernel>(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

// vdpbf16ps forms each bf16 x bf16 product exactly and adds it with one rounding (like an FMA),
// but treats subnormal bf16 inputs as zero; ggml's AVX512_BF16 dot does the same.
float vec_dot_bf16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_dpbf16_ps(acc0, load_bf16x32(a + i, ~0u), load_bf16x32(b + i, ~0u));
    acc1 = _mm512_dpbf16_ps(acc1, load_bf16x32(a + i + 32, ~0u), load_bf16x32(b + i + 32, ~0u));
  }
  for (; i < n; i += 32) {
    const int64_t left = n - i;
    const __mmask32 m = left >= 32 ? ~0u : static_cast<__mmask32>((1u << left) - 1);
    acc0 = _mm512_dpbf16_ps(acc0, load_bf16x32(a + i, m), load_bf16x32(b + i, m));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void from_float_activation_q8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    float d;
    quantize_q8_block(src, b[i].qs, &d);
    b[i].d = fp32_to_fp16(d);
  }
}

void from_float_activation_q8_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK8_1; ++i, src += kQK8_1) {
    float d;
    const int sum = _mm512_reduce_add_epi32(quantize_q8_block(src, b[i].qs, &d));
    b[i].d = fp32_to_fp16(d);
    b[i].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

// Q8_K activations (the K-quant dots' input, quantized once per layer input), exactly as the
// scalar from_float_q8_k: the scale comes from the first element of largest magnitude (its sign
// included), products round to nearest even like ggml's nearest_int (cvtps2dq in the default
// rounding mode; a NaN gives 0 through the int8 truncation, as nearest_int's bit trick does), and
// bsums add the stored int8 values.
void from_float_activation_q8_k(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  constexpr int kChunks = kQK_K / 16;
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    __m512 amax_lanes = _mm512_setzero_ps();
    for (int c = 0; c < kChunks; ++c) amax_lanes = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(src + 16 * c)), amax_lanes);
    const float amax = _mm512_reduce_max_ps(amax_lanes);
    std::memset(b[i].bsums, 0, sizeof(b[i].bsums));
    if (amax == 0.0f) {
      b[i].d = 0;
      std::memset(b[i].qs, 0, kQK_K);
      continue;
    }
    float max = 0.0f;
    for (int c = 0; c < kChunks; ++c) {
      const __mmask16 at_max =
          _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(src + 16 * c)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (at_max != 0) {
        max = src[16 * c + __builtin_ctz(at_max)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m512 scale = _mm512_set1_ps(iscale);
    for (int c = 0; c < kChunks; ++c) {
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(scale, _mm512_loadu_ps(src + 16 * c))),
                                         _mm512_set1_epi32(127));
      const __m128i bytes = _mm512_cvtepi32_epi8(q);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * c), bytes);
      b[i].bsums[c] = static_cast<int16_t>(_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(bytes)));
    }
    b[i].d = 1 / iscale;
  }
}

}  // namespace moe::kernels::avx512

// Internal: the scale searches behind ggml's reference K-quant quantizers (make_qx_quants,
// make_q3_quants, make_qkx2_quants), reproduced operation for operation so our bytes equal
// llama-quantize's (ggml-quants.c is built without FMA; our kernels use -ffp-contract=off).
#pragma once

#include <cstdint>

namespace moe::kernels::ref {

// ggml's nearest_int: round to nearest, ties to even, via the 1.5 * 2^23 trick (|v| < 2^22).
int nearest_int(float v);

// Signed levels L in [0, 2 nmax) for x ~= scale * (L - nmax), weighted by x^2 (ggml's
// make_qx_quants with rmse_type 1 and no importance weights). Returns the scale.
float search_signed_scale(int n, int nmax, const float* x, int8_t* levels);

// Q3_K's variant: levels refined one at a time for up to 5 passes (make_q3_quants, rmse on).
float search_q3_scale(int n, int nmax, const float* x, int8_t* levels);

// Levels L in [0, nmax] for x ~= scale * L - min, trying nstep + 1 scales (make_qkx2_quants).
// `scratch` holds n bytes. Returns the scale and stores the (positive) min in *min_out.
struct AffineSearch {
  float rmin;
  float rdelta;
  int nstep;
  bool use_mad;  // weigh |error| rather than error^2
};
float search_affine_scale(int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                          float* min_out, uint8_t* scratch, AffineSearch params);

}  // namespace moe::kernels::ref

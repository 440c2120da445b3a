// Scalar emulation of the float arithmetic of ggml's AVX-512 code: how it sums 16 lanes and how
// it computes e^x. llama.cpp's softmax, SiLU and F32/F16 dot products are built from these, so
// reproducing them bit for bit (with the same fused multiply-adds) lets our logits and greedy
// tokens follow llama.cpp's exactly. The AVX-512 kernels compute the same values 16 at a time.
#pragma once

#include <cstdint>

namespace moe::kernels {

// Lanes of an AVX-512 float register.
inline constexpr int kLanes = 16;

// Returns the sum of 16 lanes paired as GCC's _mm512_reduce_add_ps pairs them: upper 8 + lower
// 8, then upper 4 + lower 4, then (0 + 2) + (1 + 3).
float reduce_add_lanes(const float* lanes);

// Returns e^x as ggml's AVX-512 ggml_v_expf computes it: the degree-5 polynomial of Arm's
// optimized-routines expf after a two-constant range reduction, then scaled by 2^n. At most
// about 1.5 ulp from the exact value; 0 below about -104, +inf above about 88.4.
float exp_lane(float x);

}  // namespace moe::kernels

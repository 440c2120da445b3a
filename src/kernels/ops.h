// Element-wise and row operations of the forward pass (norms, RoPE, softmax, activations).
// Mostly plain loops; they are a small share of the time next to the weight matmuls, which live
// in the kernel table (kernels.h). Each rounds as llama.cpp's AVX-512 CPU backend does (same
// float/double accumulators, same fused multiply-adds, same exp), so greedy decoding of Q8_0
// models, where any last-bit difference can change the tokens, follows llama.cpp exactly.
#pragma once

#include <cstdint>

namespace moe::kernels {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]; out may alias x.
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);

// Rotary embedding of one head in place. `normal` layout rotates pairs (2i, 2i+1) (llama);
// `neox` layout rotates pairs (i, i + n_rot/2). Only the first n_rot dimensions rotate.
// theta_i = pos * freq_scale * base^(-2i/n_rot).
enum class RopeLayout { kNormal, kNeox };
void rope(float* head, int64_t n_rot, int64_t pos, float freq_base, float freq_scale, RopeLayout layout);

// In-place softmax over n values (max-subtracted, accumulated in double), computed as
// llama.cpp's AVX-512 backend does; -INFINITY entries (masked positions) become exact zeros.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g) with ggml's exp (see lane_math.h).
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// y[i] += a * x[i]
void axpy(float a, const float* x, float* y, int64_t n);

// y[i] += x[i]
void add(const float* x, float* y, int64_t n);

}  // namespace moe::kernels

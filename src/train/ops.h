// Training ops: forward and backward of each building block, f32, on packed row-major arrays.
// Shapes are given as (rows, cols) with cols contiguous; T is the number of tokens.
//
// Conventions: forward functions write their outputs; backward functions ADD into the input
// gradients (dx, dw), so a tensor used by several consumers sums their contributions and the
// caller zeroes gradients once per step. Every reduction has a fixed order whatever the thread
// count, so a run is bit-for-bit reproducible (checkpoint resume relies on it).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"

namespace moe::train {

// c (m, n) = a (m, k) . b (n, k)^T, written (not added). Runs on the f32 kernel of the kernel
// table, the same dot products inference uses.
void gemm_nt(ThreadPool& pool, const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k);

// y (cols, rows) = x (rows, cols)^T.
void transpose(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t cols);

// y (T, n_out) = x (T, n_in) . w^T with w (n_out, n_in), as GGUF stores a {n_in, n_out} matrix.
void linear_forward(ThreadPool& pool, const float* x, const float* w, float* y, int64_t T, int64_t n_in,
                    int64_t n_out);
// dx (T, n_in) += dy . w; dw (n_out, n_in) += dy^T . x. Either output may be null to skip it.
void linear_backward(ThreadPool& pool, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     int64_t T, int64_t n_in, int64_t n_out);

// y = x * rstd * w per row of n; rstd (T) is saved for the backward pass. Same arithmetic as
// kernels::rms_norm.
void rms_norm_forward(ThreadPool& pool, const float* x, const float* w, float* y, float* rstd, int64_t T, int64_t n,
                      float eps);
void rms_norm_backward(ThreadPool& pool, const float* x, const float* w, const float* rstd, const float* dy, float* dx,
                       float* dw, int64_t T, int64_t n);

// Rotary embedding in place on (T, n_heads, head_dim) rows, token t at position pos[t];
// normal layout (pairs 2i, 2i+1), as kernels::rope. Backward rotates by the opposite angle.
void rope_forward(ThreadPool& pool, float* x, std::span<const int32_t> pos, int64_t n_heads, int64_t head_dim,
                  int64_t n_rot, float freq_base);
void rope_backward(ThreadPool& pool, float* dx, std::span<const int32_t> pos, int64_t n_heads, int64_t head_dim,
                   int64_t n_rot, float freq_base);

// out = silu(gate) * up over n values.
void swiglu_forward(const float* gate, const float* up, float* out, int64_t n);
// dgate, dup += gradients of out = silu(gate) * up.
void swiglu_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup, int64_t n);

// Causal multi-head attention over `n_seq` sequences of `seq_len` tokens (T = n_seq * seq_len).
// q (T, n_head, hd), k/v (T, n_head_kv, hd); out (T, n_head, hd); probs (n_seq, n_head, seq_len,
// seq_len) holds the softmax for the backward pass (upper triangle unused).
struct AttentionShape {
  int64_t n_seq = 0;
  int64_t seq_len = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
};
void attention_forward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* probs, float* out);
// dq, dk, dv += gradients (dk, dv sum over the query heads sharing a KV head).
void attention_backward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv);

// Mean cross-entropy of logits (T, n_vocab) against targets; writes dlogits = d(mean loss)
// / dlogits (scaled by `grad_scale`) when dlogits is not null. Returns the summed (not mean) loss
// in double, so callers can average over any set of tokens.
double cross_entropy(ThreadPool& pool, const float* logits, std::span<const int32_t> targets, int64_t n_vocab,
                     float* dlogits, float grad_scale);

// y[t] = table[ids[t]] (rows of n); backward adds dy rows into the table's gradient.
void embedding_forward(const float* table, std::span<const int32_t> ids, float* y, int64_t n);
void embedding_backward(std::span<const int32_t> ids, const float* dy, float* dtable, int64_t n);

}  // namespace moe::train

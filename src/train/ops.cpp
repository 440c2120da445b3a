#include "train/ops.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

namespace moe::train {

namespace {

// Output tile of gemm_nt: 64 x 64 results read 2 x 64 rows of k floats, which stay in L2 for
// the k of our layers while the kernel sweeps the tile.
constexpr int64_t kGemmTile = 64;

const kernels::TypeTraits& f32_traits() {
  static const kernels::TypeTraits* traits = kernels::type_traits(DType::kF32);
  MOE_CHECK(traits != nullptr);
  return *traits;
}

// Scratch reused across calls: backward passes run on the caller's thread only.
std::vector<float>& scratch(int index) {
  thread_local std::vector<float> buffers[3];
  return buffers[index];
}

void add_into(ThreadPool& pool, const float* x, float* y, int64_t n) {
  pool.parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] += x[i];
  });
}

}  // namespace

void gemm_nt(ThreadPool& pool, const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  const auto& traits = f32_traits();
  const int64_t m_tiles = (m + kGemmTile - 1) / kGemmTile;
  const int64_t n_tiles = (n + kGemmTile - 1) / kGemmTile;
  const auto row_bytes = static_cast<size_t>(k) * sizeof(float);
  pool.parallel_for(m_tiles * n_tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t m0 = (tile / n_tiles) * kGemmTile;
      const int64_t n0 = (tile % n_tiles) * kGemmTile;
      const int64_t m_count = std::min(kGemmTile, m - m0);
      const int64_t n1 = std::min(n, n0 + kGemmTile);
      kernels::matmul_rows(traits, reinterpret_cast<const uint8_t*>(b), row_bytes, k,
                           reinterpret_cast<const uint8_t*>(a + m0 * k), row_bytes, m_count, c + m0 * n, n, n0, n1);
    }
  });
}

void transpose(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 32;
  const int64_t row_blocks = (rows + kBlock - 1) / kBlock;
  pool.parallel_for(row_blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t rb = begin; rb < end; ++rb) {
      const int64_t r1 = std::min(rows, (rb + 1) * kBlock);
      for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
        const int64_t c1 = std::min(cols, c0 + kBlock);
        for (int64_t r = rb * kBlock; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) y[c * rows + r] = x[r * cols + c];
        }
      }
    }
  });
}

void linear_forward(ThreadPool& pool, const float* x, const float* w, float* y, int64_t T, int64_t n_in,
                    int64_t n_out) {
  gemm_nt(pool, x, w, y, T, n_out, n_in);
}

void linear_backward(ThreadPool& pool, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     int64_t T, int64_t n_in, int64_t n_out) {
  std::vector<float>& a = scratch(0);
  std::vector<float>& b = scratch(1);
  std::vector<float>& c = scratch(2);
  if (dx != nullptr) {
    // dx = dy (T, n_out) . w (n_out, n_in) = gemm_nt(dy, w^T).
    b.resize(static_cast<size_t>(n_in * n_out));
    transpose(pool, w, b.data(), n_out, n_in);
    c.resize(static_cast<size_t>(T * n_in));
    gemm_nt(pool, dy, b.data(), c.data(), T, n_in, n_out);
    add_into(pool, c.data(), dx, T * n_in);
  }
  if (dw != nullptr) {
    // dw = dy^T (n_out, T) . x (T, n_in) = gemm_nt(dy^T, x^T).
    a.resize(static_cast<size_t>(n_out * T));
    b.resize(static_cast<size_t>(n_in * T));
    transpose(pool, dy, a.data(), T, n_out);
    transpose(pool, x, b.data(), T, n_in);
    c.resize(static_cast<size_t>(n_out * n_in));
    gemm_nt(pool, a.data(), b.data(), c.data(), n_out, n_in, T);
    add_into(pool, c.data(), dw, n_out * n_in);
  }
}

void rms_norm_forward(ThreadPool& pool, const float* x, const float* w, float* y, float* rstd, int64_t T, int64_t n,
                      float eps) {
  pool.parallel_for(T, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* row = x + t * n;
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(row[i]) * row[i];
      const float mean = static_cast<float>(sum / static_cast<double>(n));
      rstd[t] = 1.0f / std::sqrt(mean + eps);
      kernels::rms_norm(row, w, y + t * n, n, eps);
    }
  });
}

void rms_norm_backward(ThreadPool& pool, const float* x, const float* w, const float* rstd, const float* dy, float* dx,
                       float* dw, int64_t T, int64_t n) {
  // y_i = x_i r w_i with r = (mean(x^2) + eps)^-1/2, so with g_i = dy_i w_i:
  // dx_i = r g_i - x_i r^3 / n * sum_j g_j x_j.
  pool.parallel_for(T, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* xr = x + t * n;
      const float* dyr = dy + t * n;
      double dot = 0.0;
      for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(dyr[i]) * w[i] * xr[i];
      const float r = rstd[t];
      const auto coef = static_cast<float>(dot * r * r * r / static_cast<double>(n));
      for (int64_t i = 0; i < n; ++i) dx[t * n + i] += r * dyr[i] * w[i] - xr[i] * coef;
    }
  });
  // Columns in parallel, tokens in order: the sum is the same for any thread count.
  pool.parallel_for(n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double sum = 0.0;
      for (int64_t t = 0; t < T; ++t) sum += static_cast<double>(dy[t * n + i]) * x[t * n + i] * rstd[t];
      dw[i] += static_cast<float>(sum);
    }
  });
}

void rope_forward(ThreadPool& pool, float* x, std::span<const int32_t> pos, int64_t n_heads, int64_t head_dim,
                  int64_t n_rot, float freq_base) {
  const auto T = static_cast<int64_t>(pos.size());
  pool.parallel_for(T, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t h = 0; h < n_heads; ++h) {
        kernels::rope(x + (t * n_heads + h) * head_dim, n_rot, pos[static_cast<size_t>(t)], freq_base, 1.0f,
                      kernels::RopeLayout::kNormal);
      }
    }
  });
}

void rope_backward(ThreadPool& pool, float* dx, std::span<const int32_t> pos, int64_t n_heads, int64_t head_dim,
                   int64_t n_rot, float freq_base) {
  const auto T = static_cast<int64_t>(pos.size());
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  pool.parallel_for(T, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t h = 0; h < n_heads; ++h) {
        float* head = dx + (t * n_heads + h) * head_dim;
        // The transpose of the forward rotation; angles computed exactly as kernels::rope does.
        float theta = static_cast<float>(pos[static_cast<size_t>(t)]);
        for (int64_t i = 0; i < n_rot / 2; ++i) {
          const float c = std::cos(theta);
          const float s = std::sin(theta);
          const float g0 = head[2 * i];
          const float g1 = head[2 * i + 1];
          head[2 * i] = g0 * c + g1 * s;
          head[2 * i + 1] = -g0 * s + g1 * c;
          theta *= theta_scale;
        }
      }
    }
  });
}

void swiglu_forward(const float* gate, const float* up, float* out, int64_t n) {
  kernels::swiglu(gate, up, out, n);
}

void swiglu_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float sig = 1.0f / (1.0f + std::exp(-g));
    const float silu = g * sig;
    dup[i] += dout[i] * silu;
    dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
  }
}

namespace {

// One (sequence, query head): scores, softmax and weighted values for every query position,
// in the same order of operations as model::attention_block.
void attend_head(const AttentionShape& s, int64_t seq, int64_t h, const float* q, const float* k, const float* v,
                 float* probs, float* out) {
  const int64_t hd = s.head_dim;
  const int64_t kvh = h / (s.n_head / s.n_head_kv);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t i = 0; i < s.seq_len; ++i) {
    const int64_t ti = seq * s.seq_len + i;
    const float* qi = q + (ti * s.n_head + h) * hd;
    float* p = probs + ((seq * s.n_head + h) * s.seq_len + i) * s.seq_len;
    for (int64_t j = 0; j <= i; ++j) {
      const float* kj = k + ((seq * s.seq_len + j) * s.n_head_kv + kvh) * hd;
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += qi[d] * kj[d];
      p[j] = dot * scale;
    }
    kernels::softmax(p, i + 1);
    float* o = out + (ti * s.n_head + h) * hd;
    std::fill(o, o + hd, 0.0f);
    for (int64_t j = 0; j <= i; ++j) {
      kernels::axpy(p[j], v + ((seq * s.seq_len + j) * s.n_head_kv + kvh) * hd, o, hd);
    }
  }
}

}  // namespace

void attention_forward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* probs, float* out) {
  pool.parallel_for(s.n_seq * s.n_head, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) attend_head(s, item / s.n_head, item % s.n_head, q, k, v, probs, out);
  });
}

namespace {

// Gradients of one query head; the caller owns its KV head, so dk/dv updates do not race.
void attend_head_backward(const AttentionShape& s, int64_t seq, int64_t h, const float* q, const float* k,
                          const float* v, const float* probs, const float* dout, float* dq, float* dk, float* dv,
                          std::vector<float>& dp) {
  const int64_t hd = s.head_dim;
  const int64_t kvh = h / (s.n_head / s.n_head_kv);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  dp.resize(static_cast<size_t>(s.seq_len));
  auto k_row = [&](int64_t j) { return ((seq * s.seq_len + j) * s.n_head_kv + kvh) * hd; };
  for (int64_t i = 0; i < s.seq_len; ++i) {
    const int64_t qi = ((seq * s.seq_len + i) * s.n_head + h) * hd;
    const float* p = probs + ((seq * s.n_head + h) * s.seq_len + i) * s.seq_len;
    const float* go = dout + qi;
    double weighted = 0.0;
    for (int64_t j = 0; j <= i; ++j) {
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += go[d] * v[k_row(j) + d];
      dp[static_cast<size_t>(j)] = dot;
      weighted += static_cast<double>(dot) * p[j];
      kernels::axpy(p[j], go, dv + k_row(j), hd);
    }
    for (int64_t j = 0; j <= i; ++j) {
      // Softmax backward, then the 1/sqrt(hd) of the scores.
      const float ds = p[j] * (dp[static_cast<size_t>(j)] - static_cast<float>(weighted)) * scale;
      kernels::axpy(ds, k + k_row(j), dq + qi, hd);
      kernels::axpy(ds, q + qi, dk + k_row(j), hd);
    }
  }
}

}  // namespace

void attention_backward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv) {
  const int64_t group = s.n_head / s.n_head_kv;
  pool.parallel_for(s.n_seq * s.n_head_kv, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> dp;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t seq = item / s.n_head_kv;
      const int64_t kvh = item % s.n_head_kv;
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        attend_head_backward(s, seq, h, q, k, v, probs, dout, dq, dk, dv, dp);
      }
    }
  });
}

double cross_entropy(ThreadPool& pool, const float* logits, std::span<const int32_t> targets, int64_t n_vocab,
                     float* dlogits, float grad_scale) {
  const auto T = static_cast<int64_t>(targets.size());
  std::vector<double> losses(static_cast<size_t>(T));
  pool.parallel_for(T, 8, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* row = logits + t * n_vocab;
      const float max_value = *std::max_element(row, row + n_vocab);
      double sum = 0.0;
      for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(row[i] - max_value));
      const int32_t target = targets[static_cast<size_t>(t)];
      losses[static_cast<size_t>(t)] = std::log(sum) - static_cast<double>(row[target] - max_value);
      if (dlogits == nullptr) continue;
      float* d = dlogits + t * n_vocab;
      const double inv = 1.0 / sum;
      for (int64_t i = 0; i < n_vocab; ++i) {
        d[i] = static_cast<float>(std::exp(static_cast<double>(row[i] - max_value)) * inv) * grad_scale;
      }
      d[target] -= grad_scale;
    }
  });
  double total = 0.0;
  for (double loss : losses) total += loss;
  return total;
}

void embedding_forward(const float* table, std::span<const int32_t> ids, float* y, int64_t n) {
  for (size_t t = 0; t < ids.size(); ++t) std::copy(table + ids[t] * n, table + (ids[t] + 1) * n, y + t * n);
}

void embedding_backward(std::span<const int32_t> ids, const float* dy, float* dtable, int64_t n) {
  // Serial: tokens repeat, and a fixed order keeps the sums reproducible.
  for (size_t t = 0; t < ids.size(); ++t) kernels::add(dy + static_cast<int64_t>(t) * n, dtable + ids[t] * n, n);
}

}  // namespace moe::train

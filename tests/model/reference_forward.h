// An independent, deliberately plain forward pass of the `llama` architecture (dense or
// Mixtral-style MoE) in double precision, straight from a GGUF file of f32 tensors. It shares
// no code with src/model, so agreement between the two checks both.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace moe::model::testing {

class ReferenceLlama {
 public:
  explicit ReferenceLlama(const formats::GgufFile& file) : file_(file) {
    auto u = [&](const char* key) { return static_cast<int>(*file.get_u64(std::string("llama.") + key)); };
    n_embd_ = u("embedding_length");
    n_layer_ = u("block_count");
    n_head_ = u("attention.head_count");
    n_head_kv_ = u("attention.head_count_kv");
    n_expert_ = file.find("llama.expert_count") ? u("expert_count") : 0;
    n_expert_used_ = file.find("llama.expert_used_count") ? u("expert_used_count") : 0;
    eps_ = *file.get_f32("llama.attention.layer_norm_rms_epsilon");
    base_ = *file.get_f32("llama.rope.freq_base");
    head_dim_ = n_embd_ / n_head_;
    keys_.resize(static_cast<size_t>(n_layer_));
    values_.resize(static_cast<size_t>(n_layer_));
  }

  // Feeds one token at the next position and returns the logits.
  std::vector<double> step(int token) {
    std::vector<double> x = row("token_embd.weight", token);
    for (int l = 0; l < n_layer_; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      std::vector<double> h = norm(x, p + "attn_norm.weight");
      std::vector<double> attn = attention(l, h, p);
      for (int i = 0; i < n_embd_; ++i) x[static_cast<size_t>(i)] += attn[static_cast<size_t>(i)];
      h = norm(x, p + "ffn_norm.weight");
      std::vector<double> ffn = n_expert_ > 0 ? moe(h, p) : swiglu_ffn(h, p + "ffn_gate", p + "ffn_up", p + "ffn_down", -1);
      for (int i = 0; i < n_embd_; ++i) x[static_cast<size_t>(i)] += ffn[static_cast<size_t>(i)];
    }
    ++pos_;
    const std::string out = file_.find_tensor("output.weight") ? "output.weight" : "token_embd.weight";
    return matvec(out, norm(x, "output_norm.weight"), -1);
  }

 private:
  const float* data(const std::string& name) const {
    return reinterpret_cast<const float*>(file_.find_tensor(name)->data);
  }
  std::vector<double> row(const std::string& name, int r) const {
    const float* d = data(name) + static_cast<size_t>(r) * n_embd_;
    return std::vector<double>(d, d + n_embd_);
  }
  std::vector<double> norm(const std::vector<double>& x, const std::string& weight) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps_);
    std::vector<double> out(x.size());
    const float* w = data(weight);
    for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] * scale * w[i];
    return out;
  }
  // y = W x, W of shape (n_in, n_out[, matrix]) in ggml order.
  std::vector<double> matvec(const std::string& name, const std::vector<double>& x, int matrix) const {
    const auto* t = file_.find_tensor(name);
    const size_t n_in = static_cast<size_t>(t->shape[0]), n_out = static_cast<size_t>(t->shape[1]);
    const float* w = data(name) + (matrix < 0 ? 0 : static_cast<size_t>(matrix) * n_in * n_out);
    std::vector<double> y(n_out, 0.0);
    for (size_t r = 0; r < n_out; ++r) {
      for (size_t c = 0; c < n_in; ++c) y[r] += w[r * n_in + c] * x[c];
    }
    return y;
  }
  void rope(std::vector<double>& v, int n_heads) const {
    for (int h = 0; h < n_heads; ++h) {
      for (int i = 0; i < head_dim_ / 2; ++i) {
        const double theta = pos_ * std::pow(static_cast<double>(base_), -2.0 * i / head_dim_);
        double& a = v[static_cast<size_t>(h * head_dim_ + 2 * i)];
        double& b = v[static_cast<size_t>(h * head_dim_ + 2 * i + 1)];
        const double a0 = a, b0 = b;
        a = a0 * std::cos(theta) - b0 * std::sin(theta);
        b = a0 * std::sin(theta) + b0 * std::cos(theta);
      }
    }
  }
  std::vector<double> attention(int l, const std::vector<double>& h, const std::string& p) {
    std::vector<double> q = matvec(p + "attn_q.weight", h, -1);
    std::vector<double> k = matvec(p + "attn_k.weight", h, -1);
    std::vector<double> v = matvec(p + "attn_v.weight", h, -1);
    rope(q, n_head_);
    rope(k, n_head_kv_);
    keys_[static_cast<size_t>(l)].push_back(k);
    values_[static_cast<size_t>(l)].push_back(v);
    std::vector<double> out(static_cast<size_t>(n_head_ * head_dim_), 0.0);
    const int n_pos = static_cast<int>(keys_[static_cast<size_t>(l)].size());
    for (int hd = 0; hd < n_head_; ++hd) {
      const int kv = hd / (n_head_ / n_head_kv_);
      std::vector<double> s(static_cast<size_t>(n_pos));
      for (int t = 0; t < n_pos; ++t) {
        double dot = 0;
        for (int i = 0; i < head_dim_; ++i) {
          dot += q[static_cast<size_t>(hd * head_dim_ + i)] * keys_[static_cast<size_t>(l)][static_cast<size_t>(t)][static_cast<size_t>(kv * head_dim_ + i)];
        }
        s[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(head_dim_));
      }
      softmax(s);
      for (int t = 0; t < n_pos; ++t) {
        for (int i = 0; i < head_dim_; ++i) {
          out[static_cast<size_t>(hd * head_dim_ + i)] += s[static_cast<size_t>(t)] * values_[static_cast<size_t>(l)][static_cast<size_t>(t)][static_cast<size_t>(kv * head_dim_ + i)];
        }
      }
    }
    return matvec(p + "attn_output.weight", out, -1);
  }
  static void softmax(std::vector<double>& s) {
    const double m = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& v : s) sum += (v = std::exp(v - m));
    for (double& v : s) v /= sum;
  }
  std::vector<double> swiglu_ffn(const std::vector<double>& h, const std::string& gate, const std::string& up,
                                 const std::string& down, int expert) const {
    const std::string suffix = expert < 0 ? ".weight" : "_exps.weight";
    std::vector<double> g = matvec(gate + suffix, h, expert);
    std::vector<double> u = matvec(up + suffix, h, expert);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    return matvec(down + suffix, g, expert);
  }
  std::vector<double> moe(const std::vector<double>& h, const std::string& p) const {
    std::vector<double> probs = matvec(p + "ffn_gate_inp.weight", h, -1);
    softmax(probs);
    std::vector<int> order(static_cast<size_t>(n_expert_));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[static_cast<size_t>(a)] > probs[static_cast<size_t>(b)]; });
    double total = 0;
    for (int k = 0; k < n_expert_used_; ++k) total += probs[static_cast<size_t>(order[static_cast<size_t>(k)])];
    std::vector<double> out(static_cast<size_t>(n_embd_), 0.0);
    for (int k = 0; k < n_expert_used_; ++k) {
      const int e = order[static_cast<size_t>(k)];
      std::vector<double> y = swiglu_ffn(h, p + "ffn_gate", p + "ffn_up", p + "ffn_down", e);
      for (int i = 0; i < n_embd_; ++i) out[static_cast<size_t>(i)] += y[static_cast<size_t>(i)] * probs[static_cast<size_t>(e)] / total;
    }
    return out;
  }

  const formats::GgufFile& file_;
  int n_embd_, n_layer_, n_head_, n_head_kv_, n_expert_, n_expert_used_, head_dim_;
  float eps_, base_;
  int pos_ = 0;
  std::vector<std::vector<std::vector<double>>> keys_, values_;
};

}  // namespace moe::model::testing

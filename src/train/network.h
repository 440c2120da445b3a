// Forward and backward passes of the trainable llama model over a batch of sequences, keeping
// the activations the backward pass needs. The forward pass does what model::attention_block
// and ffn_block do, in the same order, so logits match inference.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "train/model.h"
#include "train/router.h"

namespace moe::train {

// n_seq sequences of seq_len tokens, flattened (T = n_seq * seq_len); targets are the next
// tokens. Position of token t is t % seq_len.
struct Batch {
  int64_t n_seq = 0;
  int64_t seq_len = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> targets;
  int64_t n_tokens() const { return n_seq * seq_len; }
};

struct ForwardStats {
  double ce_sum = 0.0;  // cross-entropy summed over tokens
  double aux = 0.0;     // balancing losses summed over layers (already weighted)
  double z = 0.0;
  std::vector<std::vector<int64_t>> expert_counts;  // (n_layer, n_expert) tokens per expert
};

// One expert's share of a micro-batch: the tokens routed to it and its activations.
struct ExpertActs {
  std::vector<int64_t> tokens;  // token indices, increasing
  std::vector<int> slots;       // the rank at which each token chose this expert
  std::vector<float> x;         // (n, n_embd) gathered inputs
  std::vector<float> gate;      // (n, n_ff)
  std::vector<float> up;        // (n, n_ff)
  std::vector<float> act;       // (n, n_ff) silu(gate) * up
};

struct LayerActs {
  std::vector<float> h_in, xn1, rstd1, q, k, v, probs, att, h_mid, xn2, rstd2;
  std::vector<float> router_logits;  // (T, n_expert)
  Routing routing;
  std::vector<ExpertActs> experts;   // one entry (all tokens) for a dense FFN
  std::vector<float> slot_out;       // (T, k, n_embd) each chosen expert's output, unweighted
};

class Network {
 public:
  Network(TrainModel& model, ThreadPool& pool) : model_(model), pool_(pool) {}

  // Runs the batch forward; keeps activations for backward(). Returns the losses.
  ForwardStats forward(const Batch& batch);
  // Adds d(mean CE + balancing losses)/d(param) into every parameter's grad.
  void backward();
  // (T, n_vocab) logits of the last forward pass.
  const std::vector<float>& logits() const { return logits_; }

 private:
  void layer_forward(int64_t l, float* h, ForwardStats& stats);
  void layer_backward(int64_t l, float* dh);
  void ffn_forward(int64_t l, LayerActs& a, float* out, ForwardStats& stats);
  void ffn_backward(int64_t l, LayerActs& a, const float* dout, float* dxn2);
  void expert_forward(int64_t l, int e, ExpertActs& ex, const float* xn2, float* slot_out, int k);
  void expert_backward(int64_t l, int e, ExpertActs& ex, const float* dout, const float* weights, int k, float* dxn2);

  TrainModel& model_;
  ThreadPool& pool_;
  const Batch* batch_ = nullptr;
  std::vector<int32_t> positions_;
  std::vector<LayerActs> layers_;
  std::vector<float> h_final_, hn_, rstd_final_, logits_;
};

}  // namespace moe::train

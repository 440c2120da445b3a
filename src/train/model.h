// The trainable model: f32 parameters named and shaped exactly as the llama architecture
// describes its tensors (model::kArchLlama.describe_tensors), so export is a straight copy and
// `moe run` loads the result. Each parameter carries its gradient.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "model/hparams.h"
#include "model/weights.h"
#include "train/router.h"

namespace moe::train {

struct Param {
  std::string name;             // GGUF tensor name ("blk.0.attn_q.weight")
  std::vector<int64_t> shape;   // ggml order: shape[0] is the contiguous dimension
  std::vector<float> value;
  std::vector<float> grad;
  bool decay = true;            // AdamW weight decay applies (not to norms)

  int64_t size() const { return static_cast<int64_t>(value.size()); }
};

class TrainModel {
 public:
  // Returns a model with freshly initialised weights, deterministic for `seed`: each tensor
  // draws from a generator seeded by (seed, its name), whatever the order or thread count.
  static Result<TrainModel> create(const model::HParams& hp, const RouterSpec& router, uint64_t seed);

  const model::HParams& hp() const { return hp_; }
  const RouterSpec& router() const { return router_; }
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }

  Param& global(model::GlobalSlot slot) { return params_[global_index_[static_cast<size_t>(slot)]]; }
  const Param& global(model::GlobalSlot slot) const { return params_[global_index_[static_cast<size_t>(slot)]]; }
  Param& layer(int64_t l, model::LayerSlot slot) { return params_[layer_index(l, slot)]; }
  const Param& layer(int64_t l, model::LayerSlot slot) const { return params_[layer_index(l, slot)]; }
  bool has_layer_param(int64_t l, model::LayerSlot slot) const;

  // Per-layer expert selection bias (n_layer, n_expert); used by BalanceMode::kBias only.
  std::vector<std::vector<float>>& expert_bias() { return expert_bias_; }
  const std::vector<std::vector<float>>& expert_bias() const { return expert_bias_; }

  int64_t n_params() const;
  // Zeroes every gradient.
  void zero_grad();

 private:
  size_t layer_index(int64_t l, model::LayerSlot slot) const;

  model::HParams hp_;
  RouterSpec router_;
  std::vector<Param> params_;
  std::vector<size_t> global_index_;
  std::vector<std::vector<int64_t>> layer_index_;  // (n_layer, LayerSlot::kCount), -1 if absent
  std::vector<std::vector<float>> expert_bias_;
};

// Returns llama-arch hyperparameters for a training run (head size n_embd / n_head, n_rot the
// whole head, n_ff used for experts and dense layers alike).
model::HParams make_hparams(int64_t n_vocab, int64_t n_layer, int64_t n_embd, int64_t n_head, int64_t n_head_kv,
                            int64_t n_ff, int n_expert, int n_expert_used, int64_t n_ctx);

}  // namespace moe::train

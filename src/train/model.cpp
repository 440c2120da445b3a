#include "train/model.h"

#include <cmath>

#include "core/check.h"
#include "model/arch.h"
#include "train/rng.h"

namespace moe::train {

namespace {

uint64_t hash_name(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

// GPT-2 style: N(0, 0.02), with the projections that write into the residual stream (attention
// output, expert down) scaled by 1/sqrt(2 n_layer) so the stream's variance stays flat with depth.
void init_param(Param& p, model::TensorUse use, int64_t n_layer, uint64_t seed) {
  if (use == model::TensorUse::kNorm) {
    std::fill(p.value.begin(), p.value.end(), 1.0f);
    return;
  }
  float std = 0.02f;
  const bool residual_out = p.name.find("attn_output") != std::string::npos ||
                            p.name.find("ffn_down") != std::string::npos;
  if (residual_out) std /= std::sqrt(2.0f * static_cast<float>(n_layer));
  Rng rng(splitmix64(seed) ^ hash_name(p.name));
  for (float& x : p.value) x = std * rng.normal();
}

}  // namespace

Result<TrainModel> TrainModel::create(const model::HParams& hp, const RouterSpec& router, uint64_t seed) {
  MOE_TRY(model::validate_hparams(hp));
  if (hp.arch != "llama") return make_error("training supports the llama architecture only, got '{}'", hp.arch);
  if (hp.head_dim_k != hp.head_dim_v) return make_error("training needs equal key and value head sizes");
  if (hp.moe.n_expert_shared != 0) return make_error("shared experts are not supported by the llama export");
  MOE_ASSIGN_OR_RETURN(const model::ArchDef* arch, model::find_arch(hp.arch));
  TrainModel m;
  m.hp_ = hp;
  m.router_ = router;
  m.router_.n_expert = hp.moe.n_expert;
  m.router_.n_expert_used = hp.moe.n_expert_used;
  m.global_index_.assign(static_cast<size_t>(model::GlobalSlot::kCount), 0);
  m.layer_index_.assign(static_cast<size_t>(hp.n_layer),
                        std::vector<int64_t>(static_cast<size_t>(model::LayerSlot::kCount), -1));
  for (const model::SlottedDesc& item : arch->describe_tensors(hp)) {
    // Optional biases are not part of the trained llama body (the export leaves them out).
    if (!item.desc.required && item.desc.name.ends_with(".bias")) continue;
    Param p;
    p.name = item.desc.name;
    p.shape = item.desc.shape;
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    p.value.resize(static_cast<size_t>(n));
    p.grad.assign(static_cast<size_t>(n), 0.0f);
    p.decay = item.desc.use != model::TensorUse::kNorm;
    init_param(p, item.desc.use, hp.n_layer, seed);
    const size_t index = m.params_.size();
    if (item.where.layer < 0) {
      m.global_index_[static_cast<size_t>(item.where.slot)] = index;
    } else {
      m.layer_index_[static_cast<size_t>(item.where.layer)][static_cast<size_t>(item.where.slot)] =
          static_cast<int64_t>(index);
    }
    m.params_.push_back(std::move(p));
  }
  m.expert_bias_.assign(static_cast<size_t>(hp.n_layer), std::vector<float>(static_cast<size_t>(hp.moe.n_expert), 0.0f));
  return m;
}

bool TrainModel::has_layer_param(int64_t l, model::LayerSlot slot) const {
  return layer_index_[static_cast<size_t>(l)][static_cast<size_t>(slot)] >= 0;
}

size_t TrainModel::layer_index(int64_t l, model::LayerSlot slot) const {
  const int64_t index = layer_index_[static_cast<size_t>(l)][static_cast<size_t>(slot)];
  MOE_CHECK(index >= 0);
  return static_cast<size_t>(index);
}

int64_t TrainModel::n_params() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.size();
  return n;
}

void TrainModel::zero_grad() {
  for (Param& p : params_) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

model::HParams make_hparams(int64_t n_vocab, int64_t n_layer, int64_t n_embd, int64_t n_head, int64_t n_head_kv,
                            int64_t n_ff, int n_expert, int n_expert_used, int64_t n_ctx) {
  model::HParams hp;
  hp.arch = "llama";
  hp.name = "moe.cpp trained llama";
  hp.n_vocab = n_vocab;
  hp.n_ctx_train = n_ctx;
  hp.n_embd = n_embd;
  hp.n_layer = n_layer;
  hp.n_head = n_head;
  hp.n_head_kv = n_head_kv;
  hp.head_dim_k = hp.head_dim_v = n_head > 0 ? n_embd / n_head : 0;
  hp.n_rot = hp.head_dim_k;
  hp.n_ff = hp.n_ff_expert = n_ff;
  hp.rms_eps = 1e-5f;
  hp.rope_freq_base = 10000.0f;
  hp.moe.n_expert = n_expert;
  hp.moe.n_expert_used = n_expert_used;
  return hp;
}

}  // namespace moe::train

#include "model/model.h"

#include <cstring>
#include <map>
#include <utility>

#include "core/check.h"

namespace moe::model {

namespace {

Tensor& slot_of(ModelWeights& weights, SlotRef where) {
  if (where.layer < 0) return weights.globals[static_cast<size_t>(where.slot)];
  return weights.layers[static_cast<size_t>(where.layer)].slots[static_cast<size_t>(where.slot)];
}

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  MOE_ASSIGN_OR_RETURN(formats::GgufFile file, formats::GgufFile::open(path));
  return from_gguf(std::move(file));
}

Result<std::unique_ptr<Model>> Model::from_gguf(formats::GgufFile file) {
  auto model = std::unique_ptr<Model>(new Model());
  model->file_ = std::move(file);
  MOE_ASSIGN_OR_RETURN(std::string arch_name, model->file_.get_string("general.architecture"));
  MOE_ASSIGN_OR_RETURN(model->arch_, find_arch(arch_name));
  MOE_ASSIGN_OR_RETURN(model->hparams_, model->arch_->read_hparams(model->file_));
  model->weights_.layers.resize(static_cast<size_t>(model->hparams_.n_layer));
  for (const SlottedDesc& item : model->arch_->describe_tensors(model->hparams_)) {
    MOE_ASSIGN_OR_RETURN(slot_of(model->weights_, item.where), load_tensor(model->file_, item.desc));
  }
  const Tensor& output = model->weights_.output();
  if (output.traits == nullptr || output.traits->vec_dot == nullptr) {
    return make_error("output projection '{}' has type {}, which has no matmul kernel", output.name,
                      dtype_name(output.type));
  }
  return model;
}

size_t Model::copy_to_memory(const std::function<bool(const Tensor&)>& stay_mapped) {
  std::map<const uint8_t*, const uint8_t*> copies;  // tied tensors share one copy
  size_t copied = 0;
  auto relocate = [&](Tensor& t) {
    if (!t.present() || stay_mapped(t)) return;
    if (auto it = copies.find(t.data); it != copies.end()) {
      t.data = it->second;
      return;
    }
    const formats::GgufTensorInfo* info = file_.find_tensor(t.name);
    MOE_CHECK(info != nullptr && info->data == t.data);
    // 64-byte aligned like a cache line; aligned_alloc wants a multiple of the alignment.
    auto* copy = static_cast<uint8_t*>(std::aligned_alloc(64, (info->n_bytes + 63) / 64 * 64));
    MOE_CHECK(copy != nullptr);
    std::memcpy(copy, t.data, info->n_bytes);
    owned_.emplace_back(copy);
    copies[t.data] = copy;
    t.data = copy;
    copied += info->n_bytes;
  };
  for (Tensor& t : weights_.globals) relocate(t);
  for (LayerWeights& layer : weights_.layers) {
    for (Tensor& t : layer.slots) relocate(t);
  }
  return copied;
}

ParameterCounts Model::parameter_counts() const {
  ParameterCounts counts;
  for (const auto& tensor : file_.tensors()) counts.total += element_count(tensor.shape);
  counts.embedding = element_count(weights_[GlobalSlot::kTokenEmbd].shape);
  const MoeSpec& moe = hparams_.moe;
  for (const LayerWeights& layer : weights_.layers) {
    for (LayerSlot slot : {LayerSlot::kFfnGateExps, LayerSlot::kFfnUpExps, LayerSlot::kFfnDownExps}) {
      if (layer[slot].present()) counts.expert += element_count(layer[slot].shape);
    }
  }
  counts.active = counts.total;
  if (moe.is_moe()) {
    const int64_t unused_share = counts.expert / moe.n_expert * (moe.n_expert - moe.n_expert_used);
    counts.active -= unused_share;
  }
  return counts;
}

}  // namespace moe::model

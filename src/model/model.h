// A loaded model: the mapped GGUF file, its hyperparameters and checked tensor views.
#pragma once

#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>
#include <string>

#include "core/result.h"
#include "formats/gguf.h"
#include "model/arch.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace moe::model {

struct ParameterCounts {
  int64_t total = 0;        // every weight in the file
  int64_t active = 0;       // weights one token touches: all but the unchosen routed experts
  int64_t embedding = 0;    // token_embd (read one row per token, counted in total and active)
  int64_t expert = 0;       // all routed-expert weights
};

class Model {
 public:
  // Opens and validates a GGUF model: architecture known, hyperparameters complete, every
  // tensor present with the right shape and a supported type.
  static Result<std::unique_ptr<Model>> load(const std::string& path);
  // Same, for an already opened file (the Model takes ownership).
  static Result<std::unique_ptr<Model>> from_gguf(formats::GgufFile file);

  const formats::GgufFile& file() const { return file_; }
  const HParams& hparams() const { return hparams_; }
  const ArchDef& arch() const { return *arch_; }
  const ModelWeights& weights() const { return weights_; }
  ParameterCounts parameter_counts() const;

  // Copies every tensor for which `stay_mapped` is false into memory the Model owns and points
  // the weights at the copies, so the mapping is only ever read for the others (an expert store
  // reads those itself, and a model file truncated under us then cannot fault the copies).
  // Returns the bytes copied.
  size_t copy_to_memory(const std::function<bool(const Tensor&)>& stay_mapped);

 private:
  formats::GgufFile file_;
  const ArchDef* arch_ = nullptr;
  HParams hparams_;
  ModelWeights weights_;
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> owned_;  // copies made by copy_to_memory
};

}  // namespace moe::model

// A loaded model: the mapped GGUF file, its hyperparameters and checked tensor views.
#pragma once

#include <memory>
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

 private:
  formats::GgufFile file_;
  const ArchDef* arch_ = nullptr;
  HParams hparams_;
  ModelWeights weights_;
};

}  // namespace moe::model

// The architecture registry: each architecture is one small file (archs/<name>.cpp) that
// registers how to read its hyperparameters, which tensors it has, and its layer forward.
#pragma once

#include <string_view>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace moe::model {

class LayerContext;  // model/context.h

struct ArchDef {
  std::string_view name;  // general.architecture
  // Returns the hyperparameters from the file's metadata.
  Result<HParams> (*read_hparams)(const formats::GgufFile& file);
  // Returns every tensor of a model with these hyperparameters, in file order.
  std::vector<SlottedDesc> (*describe_tensors)(const HParams& hp);
  // Runs layer `layer` over the context's current micro-batch, updating its hidden states.
  void (*forward_layer)(LayerContext& ctx, int layer);
};

// Returns the definition for `arch`, or an error listing the supported architectures.
Result<const ArchDef*> find_arch(std::string_view arch);

// Returns all registered architectures (for `moe gen --help` and errors).
const std::vector<const ArchDef*>& all_archs();

// One definition per file in archs/; listed in arch.cpp (an explicit table rather than static
// registrars, which a static library link would silently drop).
extern const ArchDef kArchLlama;
extern const ArchDef kArchQwen2Moe;
extern const ArchDef kArchQwen3Moe;
extern const ArchDef kArchOlmoe;
extern const ArchDef kArchDeepseek;
extern const ArchDef kArchGraniteMoe;
extern const ArchDef kArchDeepseek2;
extern const ArchDef kArchGptOss;
extern const ArchDef kArchDots1;

// The layer of most architectures: attention block, then FFN block.
void forward_standard_layer(LayerContext& ctx, int layer);

}  // namespace moe::model

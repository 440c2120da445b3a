#include "model/arch.h"

#include <string>

namespace moe::model {

const std::vector<const ArchDef*>& all_archs() {
  static const std::vector<const ArchDef*> archs = {&kArchLlama,   &kArchQwen2Moe, &kArchQwen3Moe,
                                                     &kArchOlmoe,   &kArchDeepseek, &kArchGraniteMoe, &kArchDeepseek2, &kArchGptOss, &kArchDots1};
  return archs;
}

Result<const ArchDef*> find_arch(std::string_view arch) {
  std::string supported;
  for (const ArchDef* def : all_archs()) {
    if (def->name == arch) return def;
    supported += supported.empty() ? "" : ", ";
    supported += def->name;
  }
  return make_error("unknown architecture '{}' (supported: {})", arch, supported);
}

}  // namespace moe::model

#include "cli/kernel_options.h"

#include <fmt/core.h>

#include "kernels/tile_gemm.h"

namespace moe::cli {

void add_kernel_options(CLI::App& app, bool& amx) {
  app.add_flag("--amx", amx,
               "Prompts and expert groups of 8+ tokens on the AMX tile unit (bf16 activations: 2-4x faster "
               "prefill, logits no longer bit-identical to llama.cpp's; also MOE_AMX=1)");
}

void apply_kernel_options(bool amx) {
  if (!amx) return;
  if (!kernels::tiles::available()) {
    fmt::print(stderr, "warning: --amx: this CPU (or kernel) has no AMX-BF16; using the int8 kernels\n");
    return;
  }
  kernels::tiles::set_enabled(true);
}

const char* prefill_kernels_description() {
  return kernels::tiles::enabled() ? "AMX-BF16 tile unit (--amx)" : "int8/fp32 kernels (llama.cpp's numerics)";
}

}  // namespace moe::cli

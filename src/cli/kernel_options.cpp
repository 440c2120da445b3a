#include "cli/kernel_options.h"

#include <fmt/core.h>

#include "kernels/tile_gemm.h"
#include "kernels/tile_int8.h"

namespace moe::cli {

void add_kernel_options(CLI::App& app, KernelOptions& options) {
  app.add_flag("--amx", options.amx,
               "Prompts and expert groups of 8+ tokens on the AMX tile unit in bf16 (activations rounded to bf16: "
               "logits drift from llama.cpp's; also MOE_AMX=1)");
  app.add_flag("--exact", options.exact,
               "Every product on the int8/fp32 dot kernels: logits bit-identical to llama.cpp's AVX-512 build "
               "(default: batches of Q8_0/Q4_K/Q6_K weights on the AMX-INT8 tile unit where the CPU has one, with "
               "llama.cpp's activations and block sums in another float order; also MOE_INT8_TILES=0)");
}

void apply_kernel_options(const KernelOptions& options) {
  if (options.exact) {
    kernels::int8_tiles::set_enabled(false);
    if (options.amx) fmt::print(stderr, "warning: --exact overrides --amx\n");
    kernels::tiles::set_enabled(false);
    return;
  }
  if (!options.amx) return;
  if (!kernels::tiles::available()) {
    fmt::print(stderr, "warning: --amx: this CPU (or kernel) has no AMX-BF16; using the int8 kernels\n");
    return;
  }
  kernels::tiles::set_enabled(true);
}

const char* prefill_kernels_description() {
  if (kernels::tiles::enabled()) return "AMX-BF16 tile unit (--amx)";
  if (kernels::int8_tiles::enabled()) {
    return "AMX-INT8 tile unit for Q8_0/Q4_K/Q6_K batches (llama.cpp's activations and block sums; --exact for its bits)";
  }
  return "int8/fp32 dot kernels (llama.cpp's bits)";
}

}  // namespace moe::cli

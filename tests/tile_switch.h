// Chooses the kernels batched products run on for one test and restores the choice after:
// the int8 / float dot kernels only (llama.cpp's exact bits), the bf16 tile unit
// (kernels/tile_gemm.h, bf16 activations) or the int8 tile unit (kernels/tile_int8.h, llama.cpp's
// activations, its block sums, another float order). Tests that promise llama.cpp's bits, or
// bit-equality between a batch and token-by-token evaluation, hold the dot kernels.
#pragma once

#include "kernels/tile_gemm.h"
#include "kernels/tile_int8.h"

namespace moe::testing {

enum class PrefillEngine { kDotKernels, kBf16Tiles, kInt8Tiles };

class PrefillKernels {
 public:
  explicit PrefillKernels(PrefillEngine engine)
      : bf16_before_(kernels::tiles::enabled()), int8_before_(kernels::int8_tiles::enabled()) {
    kernels::tiles::set_enabled(engine == PrefillEngine::kBf16Tiles);
    kernels::int8_tiles::set_enabled(engine == PrefillEngine::kInt8Tiles);
  }
  ~PrefillKernels() {
    kernels::tiles::set_enabled(bf16_before_);
    kernels::int8_tiles::set_enabled(int8_before_);
  }
  PrefillKernels(const PrefillKernels&) = delete;
  PrefillKernels& operator=(const PrefillKernels&) = delete;

 private:
  bool bf16_before_;
  bool int8_before_;
};

}  // namespace moe::testing

// Switches the tile unit (kernels/tile_gemm.h) on or off for one test and restores it after.
// Tests that promise llama.cpp's bits, or bit-equality between a batch and token-by-token
// evaluation, hold one switched off: the tiles round activations to bf16 instead.
#pragma once

#include "kernels/tile_gemm.h"

namespace moe::testing {

class TileSwitch {
 public:
  explicit TileSwitch(bool on) : before_(kernels::tiles::enabled()) { kernels::tiles::set_enabled(on); }
  ~TileSwitch() { kernels::tiles::set_enabled(before_); }
  TileSwitch(const TileSwitch&) = delete;
  TileSwitch& operator=(const TileSwitch&) = delete;

 private:
  bool before_;
};

}  // namespace moe::testing

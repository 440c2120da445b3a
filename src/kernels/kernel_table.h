// Internal: how kernels.cpp assembles the per-ISA tables. The scalar table lists every type;
// each ISA translation unit overrides the entries it accelerates, so a new type (say a K-quant)
// added to the scalar table works on every ISA at once and gets SIMD kernels one by one.
#pragma once

#include <span>

#include "kernels/kernels.h"

namespace moe::kernels {

namespace ref {
// Returns the scalar kernels of every supported type.
std::span<const TypeTraits> all_type_traits();
}  // namespace ref

namespace avx2 {
// Replaces the fields of `traits` that have AVX2 kernels. Call only if the CPU has AVX2+FMA+F16C.
void override_kernels(TypeTraits& traits);
}  // namespace avx2

namespace avx512 {
// Replaces the fields of `traits` that have AVX-512 kernels (F, BW, VL, VNNI; BF16 dots only
// when `has_bf16`). Call only if the CPU has them.
void override_kernels(TypeTraits& traits, bool has_bf16);
}  // namespace avx512

}  // namespace moe::kernels

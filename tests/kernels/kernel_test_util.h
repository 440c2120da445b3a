// Shared helpers for the kernel tests: the ISAs to test, deterministic data, offset buffers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"

namespace moe::kernels::test {

// Every ISA this CPU runs (the scalar reference included).
inline std::vector<Isa> available_isas() {
  std::vector<Isa> isas = {Isa::kScalar};
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) <= static_cast<int>(best_isa())) isas.push_back(isa);
  }
  return isas;
}

// The weight types with a vec_dot.
inline const std::vector<DType>& weight_types() {
  static const std::vector<DType> kTypes = {
      DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,   DType::kQ4_1,   DType::kQ5_0,
      DType::kQ5_1, DType::kQ8_0, DType::kQ2_K, DType::kQ3_K,   DType::kQ4_K,   DType::kQ5_K,
      DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS, DType::kMXFP4};
  return kTypes;
}

inline std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline size_t row_bytes(const TypeTraits& t, int64_t n) {
  return static_cast<size_t>(n / t.block_size) * t.block_bytes;
}

// Bytes placed `offset` bytes past a 64-byte boundary, to exercise unaligned loads.
class OffsetBuffer {
 public:
  OffsetBuffer(size_t size, size_t offset) : storage_(size + offset + 128), offset_(offset) {
    const auto base = reinterpret_cast<uintptr_t>(storage_.data());
    const size_t pad = (64 - base % 64) % 64;
    data_ = storage_.data() + pad + offset_;
  }
  uint8_t* data() { return data_; }

 private:
  std::vector<uint8_t> storage_;
  size_t offset_;
  uint8_t* data_;
};

// Largest offset <= `offset` that keeps elements of `type` naturally aligned: block structs are
// packed (any byte works), but F32/F16/BF16 rows are read as float / uint16_t.
inline size_t legal_offset(DType type, size_t offset) {
  if (type == DType::kF32) return offset & ~size_t{3};
  if (type == DType::kF16 || type == DType::kBF16) return offset & ~size_t{1};
  return offset;
}

// Converts floats to `type` as activations are converted before a dot product.
inline void to_activation(const TypeTraits& act, const float* src, void* dst, int64_t n) {
  (act.from_float_activation ? act.from_float_activation : act.from_float)(src, dst, n);
}

}  // namespace moe::kernels::test

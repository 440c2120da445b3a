// Facts of the GGUF layout shared by the reader and the writer (not part of the public API).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "formats/gguf.h"

namespace moe::formats::gguf_detail {

// GGUF is little-endian and both sides copy scalars with memcpy.
static_assert(std::endian::native == std::endian::little, "moe.cpp reads GGUF on little-endian hosts only");

inline constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint32_t kWriteVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr const char* kAlignmentKey = "general.alignment";
// Highest GGUF value type id (kFloat64).
inline constexpr uint32_t kMaxValueType = 12;
// llama.cpp stores tensor names in a char[64] (GGML_MAX_NAME) and rejects longer ones.
inline constexpr size_t kMaxTensorNameBytes = 63;

// Returns `value` rounded up to a multiple of `alignment` (a power of two), or nullopt on overflow.
inline std::optional<uint64_t> align_up(uint64_t value, uint64_t alignment) {
  const uint64_t mask = alignment - 1;
  if (value > UINT64_MAX - mask) return std::nullopt;
  return (value + mask) & ~mask;
}

inline bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Returns the on-disk size of one value of a fixed-size type, or 0 for string and array.
inline size_t fixed_value_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64: return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray: return 0;
  }
  return 0;
}

inline bool is_unsigned_type(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kUint16 || t == GgufValueType::kUint32 ||
         t == GgufValueType::kUint64;
}
inline bool is_signed_type(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}
inline bool is_integer_type(GgufValueType t) { return is_unsigned_type(t) || is_signed_type(t); }
inline bool is_float_type(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}

}  // namespace moe::formats::gguf_detail

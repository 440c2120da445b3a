// Tensor element types, numbered exactly as GGUF/ggml number them (ggml_type), with the block
// geometry every layer needs to size tensors. Kernels for each type live in kernels/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace moe {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  kMXFP4 = 39,
};

struct DTypeInfo {
  DType type;
  std::string_view name;     // as ggml names it: "f32", "q4_0", ...
  int64_t block_size;        // elements per block
  size_t block_bytes;        // bytes per block
};

// Returns the layout of a GGUF type id, or nullopt when moe.cpp does not know the id.
std::optional<DTypeInfo> dtype_info(uint32_t ggml_type_id);

// Returns the layout of a known type (MOE_CHECKs that it is known).
const DTypeInfo& dtype_info(DType type);

// Returns the ggml name of a type, or "unknown(<id>)".
std::string_view dtype_name(DType type);

// Parses a ggml type name ("q8_0", case-insensitive) into a DType.
std::optional<DType> dtype_from_name(std::string_view name);

// Returns the bytes needed for `n_elements` of `type` (n_elements must be a whole number of
// blocks; returns nullopt otherwise or on overflow).
std::optional<size_t> dtype_row_bytes(DType type, int64_t n_elements);

}  // namespace moe

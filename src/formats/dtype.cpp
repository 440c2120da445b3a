#include "formats/dtype.h"

#include <array>
#include <cctype>
#include <limits>
#include <string>

#include "core/check.h"

namespace moe {

namespace {

constexpr std::array kDTypes = {
    DTypeInfo{DType::kF32, "f32", 1, 4},
    DTypeInfo{DType::kF16, "f16", 1, 2},
    DTypeInfo{DType::kQ4_0, "q4_0", 32, 18},
    DTypeInfo{DType::kQ4_1, "q4_1", 32, 20},
    DTypeInfo{DType::kQ5_0, "q5_0", 32, 22},
    DTypeInfo{DType::kQ5_1, "q5_1", 32, 24},
    DTypeInfo{DType::kQ8_0, "q8_0", 32, 34},
    DTypeInfo{DType::kQ8_1, "q8_1", 32, 36},
    DTypeInfo{DType::kQ2_K, "q2_K", 256, 84},
    DTypeInfo{DType::kQ3_K, "q3_K", 256, 110},
    DTypeInfo{DType::kQ4_K, "q4_K", 256, 144},
    DTypeInfo{DType::kQ5_K, "q5_K", 256, 176},
    DTypeInfo{DType::kQ6_K, "q6_K", 256, 210},
    DTypeInfo{DType::kQ8_K, "q8_K", 256, 292},
    DTypeInfo{DType::kIQ4_NL, "iq4_nl", 32, 18},
    DTypeInfo{DType::kIQ4_XS, "iq4_xs", 256, 136},
    DTypeInfo{DType::kI8, "i8", 1, 1},
    DTypeInfo{DType::kI16, "i16", 1, 2},
    DTypeInfo{DType::kI32, "i32", 1, 4},
    DTypeInfo{DType::kI64, "i64", 1, 8},
    DTypeInfo{DType::kF64, "f64", 1, 8},
    DTypeInfo{DType::kBF16, "bf16", 1, 2},
    DTypeInfo{DType::kMXFP4, "mxfp4", 32, 17},
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

std::optional<DTypeInfo> dtype_info(uint32_t ggml_type_id) {
  for (const auto& info : kDTypes) {
    if (static_cast<uint32_t>(info.type) == ggml_type_id) return info;
  }
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType type) {
  for (const auto& info : kDTypes) {
    if (info.type == type) return info;
  }
  MOE_CHECK_MSG(false, "unknown DType");
}

std::string_view dtype_name(DType type) {
  for (const auto& info : kDTypes) {
    if (info.type == type) return info.name;
  }
  return "unknown";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (iequals(info.name, name)) return info.type;
  }
  return std::nullopt;
}

std::optional<size_t> dtype_row_bytes(DType type, int64_t n_elements) {
  const DTypeInfo& info = dtype_info(type);
  if (n_elements < 0 || n_elements % info.block_size != 0) return std::nullopt;
  const uint64_t blocks = static_cast<uint64_t>(n_elements / info.block_size);
  if (blocks > std::numeric_limits<size_t>::max() / info.block_bytes) return std::nullopt;
  return blocks * info.block_bytes;
}

}  // namespace moe

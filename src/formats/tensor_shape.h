// Tensor shapes in ggml order (shape[0] is the contiguous row dimension): printing and the
// checked size computation shared by the GGUF reader and writer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "formats/dtype.h"

namespace moe::formats {

// GGUF (and ggml) tensors have 1 to 4 dimensions.
inline constexpr size_t kMaxTensorDims = 4;

// Returns the shape as "[4096, 32000]".
std::string tensor_shape_string(std::span<const int64_t> shape);

// Returns the byte size of a tensor of `type` and `shape`, after checking that it has 1..4
// dimensions, each positive, whose product fits in int64, and whose row (shape[0]) is a whole
// number of blocks. Errors name the tensor: "tensor 'x': dimensions overflow ...".
Result<uint64_t> tensor_n_bytes(std::string_view name, DType type, std::span<const int64_t> shape);

}  // namespace moe::formats

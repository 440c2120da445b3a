#include "formats/tensor_shape.h"

#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace moe::formats {

std::string tensor_shape_string(std::span<const int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Result<uint64_t> tensor_n_bytes(std::string_view name, DType type, std::span<const int64_t> shape) {
  if (shape.empty() || shape.size() > kMaxTensorDims) {
    return make_error("tensor '{}': n_dims {} is out of range 1..{}", name, shape.size(), kMaxTensorDims);
  }
  int64_t n_elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] <= 0) {
      return make_error("tensor '{}': dimension {} is {}, must be positive (shape {})", name, i, shape[i],
                        tensor_shape_string(shape));
    }
    if (n_elements > std::numeric_limits<int64_t>::max() / shape[i]) {
      return make_error("tensor '{}': dimensions overflow (shape {})", name, tensor_shape_string(shape));
    }
    n_elements *= shape[i];
  }
  const DTypeInfo& info = dtype_info(type);
  if (shape[0] % info.block_size != 0) {
    return make_error("tensor '{}': row of {} elements is not a multiple of the {} block size {}", name, shape[0],
                      info.name, info.block_size);
  }
  // n_elements / block_size blocks of block_bytes each; dtype_row_bytes checks that product.
  const std::optional<size_t> n_bytes = dtype_row_bytes(type, n_elements);
  if (!n_bytes) {
    return make_error("tensor '{}': byte size overflows (shape {}, type {})", name, tensor_shape_string(shape),
                      info.name);
  }
  return static_cast<uint64_t>(*n_bytes);
}

}  // namespace moe::formats

#include "model/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace moe::model {

std::string shape_to_string(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

namespace {

Status check_type(const TensorDesc& desc, DType type, const kernels::TypeTraits* traits) {
  switch (desc.use) {
    case TensorUse::kNorm:
      if (type != DType::kF32) {
        return make_error("tensor '{}' has type {}, expected f32", desc.name, dtype_name(type));
      }
      return ok_status();
    case TensorUse::kEmbedding:
      if (traits == nullptr || traits->to_float == nullptr) {
        return make_error("tensor '{}' has type {}, which moe.cpp cannot read yet", desc.name, dtype_name(type));
      }
      return ok_status();
    case TensorUse::kMatmul:
      if (traits == nullptr || traits->vec_dot == nullptr) {
        return make_error("tensor '{}' has type {}, which has no matmul kernel in moe.cpp yet", desc.name,
                          dtype_name(type));
      }
      return ok_status();
  }
  return ok_status();
}

}  // namespace

Result<Tensor> load_tensor(const formats::GgufFile& file, const TensorDesc& desc) {
  const formats::GgufTensorInfo* info = file.find_tensor(desc.name);
  Tensor tensor;
  tensor.name = desc.name;
  if (info == nullptr) {
    if (desc.required) {
      return make_error("missing required tensor '{}' (expected shape {})", desc.name, shape_to_string(desc.shape));
    }
    return tensor;
  }
  // GGUF drops trailing dimensions of size 1, so compare with those removed on both sides.
  auto trimmed = [](std::vector<int64_t> shape) {
    while (shape.size() > 1 && shape.back() == 1) shape.pop_back();
    return shape;
  };
  if (trimmed(info->shape) != trimmed(desc.shape)) {
    return make_error("tensor '{}' has shape {}, expected {}", desc.name, shape_to_string(info->shape),
                      shape_to_string(desc.shape));
  }
  const kernels::TypeTraits* traits = kernels::type_traits(info->type);
  MOE_TRY(check_type(desc, info->type, traits));
  tensor.type = info->type;
  tensor.shape = desc.shape;
  tensor.data = info->data;
  tensor.traits = traits;
  auto row_bytes = dtype_row_bytes(info->type, desc.shape[0]);
  if (!row_bytes) {
    return make_error("tensor '{}': row of {} elements is not a whole number of {} blocks", desc.name, desc.shape[0],
                      dtype_name(info->type));
  }
  tensor.row_bytes = *row_bytes;
  return tensor;
}

}  // namespace moe::model

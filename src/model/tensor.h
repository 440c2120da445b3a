// Model tensors: how an architecture describes the tensors it needs (one list drives loading,
// validation and the test-model writer), and the checked view of a loaded tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"

namespace moe::model {

// What a tensor is used for decides which types it may have.
enum class TensorUse {
  kMatmul,     // weights of a matrix product: any type with kernels
  kEmbedding,  // rows are fetched and converted to float: any type with to_float
  kNorm,       // element-wise weights and biases: F32 only (as llama.cpp writes them)
};

struct TensorDesc {
  std::string name;            // "blk.3.ffn_up_exps.weight"
  std::vector<int64_t> shape;  // ggml order: shape[0] is the contiguous dimension
  TensorUse use = TensorUse::kMatmul;
  bool required = true;
};

// A loaded tensor: a view into the mapped model file.
struct Tensor {
  std::string name;
  DType type = DType::kF32;
  std::vector<int64_t> shape;    // ggml order
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;          // bytes of one row (shape[0] elements)
  const kernels::TypeTraits* traits = nullptr;

  bool present() const { return data != nullptr; }
  int64_t n_cols() const { return shape.empty() ? 0 : shape[0]; }
  int64_t n_rows() const { return shape.size() < 2 ? 1 : shape[1]; }
  // Returns the start of row `row` of matrix `matrix` (the third dimension, e.g. an expert).
  const uint8_t* row(int64_t row, int64_t matrix = 0) const {
    return data + (static_cast<size_t>(matrix) * static_cast<size_t>(n_rows()) + static_cast<size_t>(row)) * row_bytes;
  }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

// Looks `desc` up in `file` and checks presence, shape and type. Returns an absent Tensor for a
// missing optional tensor; errors name the tensor with expected and actual values.
Result<Tensor> load_tensor(const formats::GgufFile& file, const TensorDesc& desc);

// Returns "[a, b, c]" for error messages and `moe inspect`.
std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace moe::model

// `moe quantize`: converts a model's weights to another type, tensor by tensor, choosing each
// tensor's type the way llama.cpp's llama-quantize does for a file type ("ftype") such as Q4_K_M
// (attn_v and ffn_down get more bits in some layers, the output projection Q6_K, ...), so the
// two tools write the same tensor types and, since our quantizers match ggml's, the same bytes.
//
// The steps are separate so tests can check each: plan (types per tensor, no data touched),
// write (rows quantized in parallel, one tensor in memory at a time), validate (re-open and
// re-load the written file, compare each tensor's type, shape and a hash of its bytes).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/hparams.h"

namespace moe::model {

// A llama.cpp file type: the default tensor type plus the per-tensor rules of its mixture.
struct QuantFileType {
  std::string_view name;   // llama-quantize's name: "Q4_K_M"
  uint32_t llama_ftype;    // the value written to general.file_type (llama_ftype)
  DType default_type;      // what most 2-D weights become
};

// Returns the file type for a llama-quantize name or a ggml type name, case-insensitive:
// "Q4_K_M", "q8_0", "q4_k" (= Q4_K_M, as llama-quantize's alias), "mxfp4" (= MXFP4_MOE), "f16".
// Errors list the accepted names.
Result<QuantFileType> parse_quant_file_type(std::string_view name);

// Returns the accepted file type names, for help and error messages.
std::string quant_file_type_names();

// One --type-for rule: tensors whose name matches `pattern` (a PCRE2 regex, searched anywhere
// in the name, like llama-quantize's --tensor-type) get `type`. The first matching rule wins.
struct TypeOverride {
  std::string pattern;
  DType type = DType::kF32;
};

// Parses "REGEX=TYPE" (the last '=' splits, so the regex may contain '='). TYPE must be a
// storable weight type ("q4_K", "q8_0", "f16"...). The regex is compiled here so a bad one is
// reported before any work.
Result<TypeOverride> parse_type_override(std::string_view text);

struct QuantizeOptions {
  QuantFileType file_type{"Q8_0", 7, DType::kQ8_0};
  std::vector<TypeOverride> overrides;
  bool pure = false;              // every quantizable tensor gets the default type (no mixture rules)
  bool allow_requantize = false;  // accept already quantized sources (dequantized first)
  bool quantize_output = true;    // false: output.weight keeps its type (--leave-output-tensor)
};

// What happens to one tensor.
struct TensorPlan {
  std::string name;
  std::vector<int64_t> shape;   // ggml order
  DType source_type = DType::kF32;
  DType target_type = DType::kF32;
  bool converted = false;       // false: bytes copied unchanged
  std::string note;             // why the type differs from the mixture's choice (override, fallback)
  bool fell_back = false;       // the row length did not fit the chosen type's blocks
  uint64_t source_bytes = 0;
  uint64_t target_bytes = 0;
};

struct QuantizePlan {
  std::vector<TensorPlan> tensors;  // in output order (llama-quantize's: by layer, then name)
  int n_fallback = 0;               // tensors whose row length forced another type
};

// Returns each tensor's target type for `source` (a model that loads) under `options`. Errors:
// requantizing without allow_requantize, a source type with no dequantizer.
Result<QuantizePlan> plan_quantization(const formats::GgufFile& source, const HParams& hp,
                                       const QuantizeOptions& options);

// Per-tensor content hashes of a written file, in plan order (filled while writing).
struct WrittenHashes {
  std::vector<uint64_t> hashes;
};

// Adds the source metadata (with general.quantization_version and general.file_type set as
// llama-quantize sets them) and every planned tensor to `writer`; tensors are converted lazily,
// rows split over `pool`, when the writer writes. `hashes` (sized here) receives each tensor's
// hash as it is written. `source`, `plan`, `pool` and `hashes` must outlive the write.
Status add_quantized_tensors(const formats::GgufFile& source, const QuantizePlan& plan,
                             const QuantizeOptions& options, ThreadPool& pool, formats::GgufWriter& writer,
                             WrittenHashes& hashes);

// Re-opens `path` with the GGUF reader and loads it as a model, then checks every planned
// tensor's type and shape and (when `hashes` is given) the hash of its bytes. Returns an error
// naming the first tensor that differs.
Status validate_quantized_file(const std::string& path, const QuantizePlan& plan, const WrittenHashes* hashes,
                               ThreadPool& pool);

// Returns a hash of `bytes` computed in fixed 1 MiB pieces (so the thread count never changes it).
uint64_t hash_tensor_bytes(std::span<const uint8_t> bytes, ThreadPool& pool);

// Round-trip error of one tensor: `quantized` against `reference`, both dequantized to float.
struct TensorError {
  std::string name;
  DType reference_type = DType::kF32;
  DType quantized_type = DType::kF32;
  double rmse = 0.0;          // sqrt(mean((q - r)^2))
  double reference_rms = 0.0; // sqrt(mean(r^2)), to read rmse relative to the weights' scale
  double max_abs_error = 0.0;
};

// Returns the error of every tensor of `quantized` that `reference` also has (same name and
// shape; others are an error). Both types need a dequantizer.
Result<std::vector<TensorError>> compare_tensors(const formats::GgufFile& reference,
                                                 const formats::GgufFile& quantized, ThreadPool& pool);

}  // namespace moe::model

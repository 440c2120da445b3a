// GGUF (versions 2 and 3): reader over one read-only mmap, and a writer.
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 KV count, KVs, tensor infos,
// padding to general.alignment (default 32), tensor data. All little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "formats/dtype.h"
#include "formats/mapped_file.h"
#include "formats/tensor_shape.h"

namespace moe::formats {

// GGUF metadata value types (gguf_type).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);

// One metadata value. Scalars keep their GGUF type; arrays keep their element type and hold
// elements in the vector matching it (integers of every width widen to int64/uint64 storage
// but `element_type` records the on-disk type so a writer can round-trip it).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint32;
  GgufValueType element_type = GgufValueType::kUint32;  // only for kArray
  std::variant<uint64_t, int64_t, double, bool, std::string,
               std::vector<uint64_t>, std::vector<int64_t>, std::vector<double>,
               std::vector<uint8_t> /*bools*/, std::vector<std::string>>
      data;

  // Convenience constructors.
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue string_array(std::vector<std::string> v);
  static GgufValue f32_array(std::vector<float> v);
  static GgufValue i32_array(std::vector<int32_t> v);

  bool is_array() const { return type == GgufValueType::kArray; }
  // Number of array elements (0 for scalars).
  size_t array_size() const;

  bool operator==(const GgufValue&) const = default;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the contiguous (row) dimension
  DType type = DType::kF32;
  uint64_t offset = 0;         // relative to the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // points into the mapping (reader only)

  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and parses `path`. Every count, length, offset and size is validated against the file
  // before use; errors name the path, the section and the offending value.
  static Result<GgufFile> open(const std::string& path);

  // Parses an in-memory image (for tests); `name` is used in error messages. The buffer must
  // outlive the returned object.
  static Result<GgufFile> parse(std::span<const uint8_t> bytes, const std::string& name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& path() const { return path_; }
  // Returns the whole mapped file (empty when parsed from memory), for callers that advise the
  // kernel about their ranges (madvise needs the page-aligned mapping start).
  std::span<const uint8_t> mapped_bytes() const {
    return file_ ? std::span<const uint8_t>(file_->data(), file_->size()) : std::span<const uint8_t>();
  }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // Returns the value for `key`, or nullptr.
  const GgufValue* find(std::string_view key) const;
  // Returns the tensor called `name`, or nullptr.
  const GgufTensorInfo* find_tensor(std::string_view name) const;

  // Typed getters: error if the key is missing or of an incompatible type ("key 'x' has type
  // string, expected an integer"). Integer getters accept any integer type whose value fits.
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<int64_t> get_i64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;  // accepts f32/f64 and integers
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;

  // Optional variants: nullopt when the key is absent, error when present with a bad type.
  Result<std::optional<uint32_t>> get_u32_opt(std::string_view key) const;
  Result<std::optional<float>> get_f32_opt(std::string_view key) const;
  Result<std::optional<bool>> get_bool_opt(std::string_view key) const;
  Result<std::optional<std::string>> get_string_opt(std::string_view key) const;

 private:
  std::shared_ptr<MappedFile> file_;  // null when parsed from memory
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF v3 file. Keys and tensors are written in insertion order; tensor data is
// aligned to general.alignment (32 unless set).
class GgufWriter {
 public:
  // Sets (or replaces) a metadata key.
  void set(std::string key, GgufValue value);

  // Adds a tensor; `bytes` must be exactly the size its type and shape require (checked).
  // Shape is in ggml order (shape[0] contiguous).
  Status add_tensor(std::string name, DType type, std::vector<int64_t> shape, std::vector<uint8_t> bytes);

  // Fills `out` (exactly the tensor's byte size) when the file is written. Lets `moe gen` and
  // `moe quantize` write models far larger than RAM, one tensor in memory at a time.
  using TensorFiller = std::function<Status(std::span<uint8_t> out)>;
  Status add_tensor_lazy(std::string name, DType type, std::vector<int64_t> shape, TensorFiller fill);

  // Called after each tensor is written with (tensors done, total tensors), for progress bars.
  void set_progress(std::function<void(size_t, size_t)> progress) { progress_ = std::move(progress); }

  // Writes the file atomically (temporary file + rename), so a failure never leaves a partial
  // file under `path`.
  Status write(const std::string& path) const;

  // Returns the whole file image (for tests that parse it back or corrupt it).
  std::vector<uint8_t> serialize() const;

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;  // empty when `fill` is set
    TensorFiller fill;
    uint64_t n_bytes = 0;
  };
  // Receives the file image in order, one piece at a time.
  using ByteSink = std::function<Status(std::span<const uint8_t> bytes)>;

  // Runs the checks add_tensor and add_tensor_lazy share; returns the tensor's byte size.
  Result<uint64_t> check_new_tensor(std::string_view name, DType type, const std::vector<int64_t>& shape) const;
  // Returns general.alignment if the caller set it (checked: a nonzero power-of-two u32), else 32.
  Result<uint64_t> data_alignment() const;
  // Returns the header, KVs, tensor infos and the padding up to the data section.
  Result<std::vector<uint8_t>> encode_metadata(uint64_t alignment) const;
  // Streams the whole file to `sink`, filling lazy tensors one at a time.
  Status emit(const ByteSink& sink) const;

  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<PendingTensor> tensors_;
  std::function<void(size_t, size_t)> progress_;
};

}  // namespace moe::formats

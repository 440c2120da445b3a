// GGUF reader. Every count, length, offset and size is checked against the bytes that remain
// before it is used or allocated for, so a hostile file yields an error, never a crash, a hang
// or an allocation larger than a small multiple of the file size.
//
// Nested arrays (an array whose element type is array) are rejected: no known producer writes
// them and llama.cpp rejects them too.
#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>

#include "formats/gguf.h"
#include "formats/gguf_internal.h"
#include "formats/tensor_shape.h"

namespace moe::formats {

using namespace gguf_detail;

namespace {

// The fewest bytes one metadata KV can take: u64 key length, a non-empty key, u32 type, a u8 value.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
// The fewest bytes one tensor info can take: u64 name length, u32 n_dims, one i64 dimension, u32
// type, u64 offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

// Returns a + b, or UINT64_MAX when that overflows (only used to print ranges in errors).
uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// What the parser hands back to GgufFile::parse.
struct ParsedGguf {
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<std::pair<std::string, GgufValue>> kvs;
  std::map<std::string, size_t, std::less<>> kv_index;
  std::vector<GgufTensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> tensor_index;
};

// A bounds-checked cursor over the image. `section_` names what is being read ("metadata key #3
// 'general.name'") so that every error says where the file went wrong.
class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  // Runs every step in file order; each step reads or validates one section.
  Result<ParsedGguf> run() {
    ParsedGguf out;
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    MOE_TRY(read_header(out.version, n_tensors, n_kv));
    MOE_TRY(check_counts(n_tensors, n_kv));
    MOE_TRY(read_metadata(n_kv, out));
    MOE_ASSIGN_OR_RETURN(out.alignment, read_alignment(out));
    MOE_TRY(read_tensor_infos(n_tensors, out));
    MOE_TRY(place_tensor_data(out));
    return out;
  }

 private:
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename... Args>
  Error error(fmt::format_string<Args...> format, Args&&... args) const {
    return make_error("{}: {}", name_, fmt::format(format, std::forward<Args>(args)...));
  }
  Error truncated() const { return error("truncated while reading {}", section_); }

  template <typename T>
  Status read(T& out) {
    if (remaining() < sizeof(T)) return truncated();
    std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return ok_status();
  }

  Status read_string(std::string& out) {
    uint64_t length = 0;
    MOE_TRY(read(length));
    if (length > remaining()) {
      return error("{}: string length {} exceeds the {} bytes left in the file", section_, length, remaining());
    }
    out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return ok_status();
  }

  // Reads a u32 value type id and checks that it is one GGUF defines.
  Result<GgufValueType> read_value_type(std::string_view what) {
    uint32_t raw = 0;
    MOE_TRY(read(raw));
    if (raw > kMaxValueType) return error("{}: unknown {} {}", section_, what, raw);
    return static_cast<GgufValueType>(raw);
  }

  Status read_header(uint32_t& version, uint64_t& n_tensors, uint64_t& n_kv);
  Status check_counts(uint64_t n_tensors, uint64_t n_kv) const;
  Status read_metadata(uint64_t n_kv, ParsedGguf& out);
  Result<GgufValue> read_scalar(GgufValueType type);
  Result<GgufValue> read_array();
  template <typename Disk, typename Stored>
  Status read_scalar_as(GgufValue& v);
  template <typename Disk, typename Stored>
  Status read_elements(uint64_t n, GgufValue& v);
  Result<uint64_t> read_alignment(const ParsedGguf& out) const;
  Status read_tensor_infos(uint64_t n_tensors, ParsedGguf& out);
  Result<GgufTensorInfo> read_tensor_info(uint64_t index, const ParsedGguf& out);
  Status place_tensor_data(ParsedGguf& out) const;
  Status check_no_overlap(const ParsedGguf& out) const;

  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t pos_ = 0;
  std::string section_;
};

Status Parser::read_header(uint32_t& version, uint64_t& n_tensors, uint64_t& n_kv) {
  section_ = "header";
  uint8_t magic[4] = {};
  MOE_TRY(read(magic));
  if (std::memcmp(magic, kMagic, sizeof(magic)) != 0) {
    return error("bad magic {:02x} {:02x} {:02x} {:02x} (expected \"GGUF\"): not a GGUF file", magic[0], magic[1],
                 magic[2], magic[3]);
  }
  MOE_TRY(read(version));
  if (version != 2 && version != 3) {
    // A big-endian GGUF has its version in the high bytes; say so rather than just "unsupported".
    const bool swapped = (version & 0xFFFFu) == 0 && version != 0;
    return error("unsupported GGUF version {}{} (moe.cpp reads versions 2 and 3)", version,
                 swapped ? ", perhaps a big-endian file" : "");
  }
  MOE_TRY(read(n_tensors));
  MOE_TRY(read(n_kv));
  return ok_status();
}

// Rejects counts the file cannot possibly hold before anything is allocated for them.
Status Parser::check_counts(uint64_t n_tensors, uint64_t n_kv) const {
  if (n_tensors > remaining() / kMinTensorInfoBytes) {
    return error("tensor count {} cannot fit in the {} bytes after the header", n_tensors, remaining());
  }
  if (n_kv > remaining() / kMinKvBytes) {
    return error("metadata KV count {} cannot fit in the {} bytes after the header", n_kv, remaining());
  }
  if (n_tensors * kMinTensorInfoBytes + n_kv * kMinKvBytes > remaining()) {  // each term <= remaining()
    return error("metadata KV count {} and tensor count {} together cannot fit in the {} bytes after the header",
                 n_kv, n_tensors, remaining());
  }
  return ok_status();
}

Status Parser::read_metadata(uint64_t n_kv, ParsedGguf& out) {
  out.kvs.reserve(n_kv);  // bounded by check_counts
  for (uint64_t i = 0; i < n_kv; ++i) {
    section_ = fmt::format("metadata key #{}", i);
    std::string key;
    MOE_TRY(read_string(key));
    if (key.empty()) return error("metadata key #{} is empty", i);
    if (auto it = out.kv_index.find(key); it != out.kv_index.end()) {
      return error("duplicate metadata key '{}' (keys #{} and #{})", key, it->second, i);
    }
    section_ = fmt::format("metadata key #{} '{}'", i, key);
    MOE_ASSIGN_OR_RETURN(GgufValueType type, read_value_type("value type"));
    GgufValue value;
    if (type == GgufValueType::kArray) {
      MOE_ASSIGN_OR_RETURN(value, read_array());
    } else {
      MOE_ASSIGN_OR_RETURN(value, read_scalar(type));
    }
    out.kv_index.emplace(key, out.kvs.size());
    out.kvs.emplace_back(std::move(key), std::move(value));
  }
  return ok_status();
}

template <typename Disk, typename Stored>
Status Parser::read_scalar_as(GgufValue& v) {
  Disk x{};
  MOE_TRY(read(x));
  v.data = static_cast<Stored>(x);
  return ok_status();
}

// Integers widen to u64/i64 and floats to double; `type` keeps the on-disk width.
Result<GgufValue> Parser::read_scalar(GgufValueType type) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::kUint8: MOE_TRY((read_scalar_as<uint8_t, uint64_t>(v))); break;
    case GgufValueType::kInt8: MOE_TRY((read_scalar_as<int8_t, int64_t>(v))); break;
    case GgufValueType::kUint16: MOE_TRY((read_scalar_as<uint16_t, uint64_t>(v))); break;
    case GgufValueType::kInt16: MOE_TRY((read_scalar_as<int16_t, int64_t>(v))); break;
    case GgufValueType::kUint32: MOE_TRY((read_scalar_as<uint32_t, uint64_t>(v))); break;
    case GgufValueType::kInt32: MOE_TRY((read_scalar_as<int32_t, int64_t>(v))); break;
    case GgufValueType::kUint64: MOE_TRY((read_scalar_as<uint64_t, uint64_t>(v))); break;
    case GgufValueType::kInt64: MOE_TRY((read_scalar_as<int64_t, int64_t>(v))); break;
    case GgufValueType::kFloat32: MOE_TRY((read_scalar_as<float, double>(v))); break;
    case GgufValueType::kFloat64: MOE_TRY((read_scalar_as<double, double>(v))); break;
    case GgufValueType::kBool: MOE_TRY((read_scalar_as<uint8_t, bool>(v))); break;
    case GgufValueType::kString: {
      std::string str;
      MOE_TRY(read_string(str));
      v.data = std::move(str);
      break;
    }
    case GgufValueType::kArray: return error("{}: nested arrays are not supported", section_);
  }
  return v;
}

template <typename Disk, typename Stored>
Status Parser::read_elements(uint64_t n, GgufValue& v) {
  std::vector<Stored> values;
  values.reserve(n);  // the caller checked n against the bytes left
  for (uint64_t i = 0; i < n; ++i) {
    Disk x{};
    MOE_TRY(read(x));
    // Bools are stored as 0/1 whatever non-zero byte the file used.
    if constexpr (std::is_same_v<Stored, uint8_t>) {
      values.push_back(x != 0 ? 1 : 0);
    } else {
      values.push_back(static_cast<Stored>(x));
    }
  }
  v.data = std::move(values);
  return ok_status();
}

Result<GgufValue> Parser::read_array() {
  MOE_ASSIGN_OR_RETURN(GgufValueType element_type, read_value_type("array element type"));
  if (element_type == GgufValueType::kArray) return error("{}: nested arrays are not supported", section_);
  uint64_t n = 0;
  MOE_TRY(read(n));
  // A string element takes at least its u64 length.
  const uint64_t min_element_bytes = element_type == GgufValueType::kString ? 8 : fixed_value_size(element_type);
  if (n > remaining() / min_element_bytes) {
    return error("{}: array length {} exceeds the {} bytes left in the file", section_, n, remaining());
  }
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.element_type = element_type;
  switch (element_type) {
    case GgufValueType::kUint8: MOE_TRY((read_elements<uint8_t, uint64_t>(n, v))); break;
    case GgufValueType::kInt8: MOE_TRY((read_elements<int8_t, int64_t>(n, v))); break;
    case GgufValueType::kUint16: MOE_TRY((read_elements<uint16_t, uint64_t>(n, v))); break;
    case GgufValueType::kInt16: MOE_TRY((read_elements<int16_t, int64_t>(n, v))); break;
    case GgufValueType::kUint32: MOE_TRY((read_elements<uint32_t, uint64_t>(n, v))); break;
    case GgufValueType::kInt32: MOE_TRY((read_elements<int32_t, int64_t>(n, v))); break;
    case GgufValueType::kUint64: MOE_TRY((read_elements<uint64_t, uint64_t>(n, v))); break;
    case GgufValueType::kInt64: MOE_TRY((read_elements<int64_t, int64_t>(n, v))); break;
    case GgufValueType::kFloat32: MOE_TRY((read_elements<float, double>(n, v))); break;
    case GgufValueType::kFloat64: MOE_TRY((read_elements<double, double>(n, v))); break;
    case GgufValueType::kBool: MOE_TRY((read_elements<uint8_t, uint8_t>(n, v))); break;
    case GgufValueType::kString: {
      std::vector<std::string> strings;
      strings.reserve(n);
      for (uint64_t i = 0; i < n; ++i) MOE_TRY(read_string(strings.emplace_back()));
      v.data = std::move(strings);
      break;
    }
    case GgufValueType::kArray: break;  // rejected above
  }
  return v;
}

Result<uint64_t> Parser::read_alignment(const ParsedGguf& out) const {
  auto it = out.kv_index.find(kAlignmentKey);
  if (it == out.kv_index.end()) return kDefaultAlignment;
  const GgufValue& v = out.kvs[it->second].second;
  if (v.type != GgufValueType::kUint32) {
    return error("{} has type {}, expected u32", kAlignmentKey,
                 v.is_array() ? "array" : gguf_value_type_name(v.type));
  }
  const uint64_t alignment = std::get<uint64_t>(v.data);
  if (!is_power_of_two(alignment)) return error("{} {} is not a nonzero power of two", kAlignmentKey, alignment);
  return alignment;
}

Status Parser::read_tensor_infos(uint64_t n_tensors, ParsedGguf& out) {
  out.tensors.reserve(n_tensors);  // bounded by check_counts
  for (uint64_t i = 0; i < n_tensors; ++i) {
    MOE_ASSIGN_OR_RETURN(GgufTensorInfo info, read_tensor_info(i, out));
    out.tensor_index.emplace(info.name, out.tensors.size());
    out.tensors.push_back(std::move(info));
  }
  return ok_status();
}

Result<GgufTensorInfo> Parser::read_tensor_info(uint64_t index, const ParsedGguf& out) {
  GgufTensorInfo info;
  section_ = fmt::format("tensor info #{}", index);
  MOE_TRY(read_string(info.name));
  if (auto it = out.tensor_index.find(info.name); it != out.tensor_index.end()) {
    return error("duplicate tensor name '{}' (tensors #{} and #{})", info.name, it->second, index);
  }
  section_ = fmt::format("tensor info #{} '{}'", index, info.name);
  uint32_t n_dims = 0;
  MOE_TRY(read(n_dims));
  if (n_dims == 0 || n_dims > kMaxTensorDims) {
    return error("tensor '{}': n_dims {} is out of range 1..{}", info.name, n_dims, kMaxTensorDims);
  }
  info.shape.resize(n_dims);
  for (int64_t& dim : info.shape) MOE_TRY(read(dim));
  uint32_t type_id = 0;
  MOE_TRY(read(type_id));
  const std::optional<DTypeInfo> dtype = dtype_info(type_id);
  if (!dtype) return error("tensor '{}': unknown tensor type id {}", info.name, type_id);
  info.type = dtype->type;
  MOE_TRY(read(info.offset));
  Result<uint64_t> n_bytes = tensor_n_bytes(info.name, info.type, info.shape);
  if (!n_bytes.ok()) return error("{}", n_bytes.error().message);
  info.n_bytes = *n_bytes;
  return info;
}

// The data section starts at the first aligned offset after the tensor infos; each tensor must
// sit at an aligned offset inside the file and apart from every other tensor.
Status Parser::place_tensor_data(ParsedGguf& out) const {
  const uint64_t size = bytes_.size();
  out.data_offset = *align_up(pos_, out.alignment);  // pos_ <= size, far from overflow
  if (out.tensors.empty()) {
    out.data_offset = std::min(out.data_offset, size);  // a file without tensors may omit the padding
    return ok_status();
  }
  if (out.data_offset > size) {
    return error("truncated in the padding before tensor data (data would start at {}, file size is {})",
                 out.data_offset, size);
  }
  for (GgufTensorInfo& t : out.tensors) {
    if (t.offset % out.alignment != 0) {
      return error("tensor '{}' offset {} is misaligned (alignment {})", t.name, t.offset, out.alignment);
    }
    const uint64_t room = size - out.data_offset;
    if (t.offset > room || t.n_bytes > room - t.offset) {
      const uint64_t begin = saturating_add(out.data_offset, t.offset);
      return error("tensor '{}' data [{}, {}) is out of range of file size {}", t.name, begin,
                   saturating_add(begin, t.n_bytes), size);
    }
    t.data = bytes_.data() + out.data_offset + t.offset;
  }
  return check_no_overlap(out);
}

Status Parser::check_no_overlap(const ParsedGguf& out) const {
  std::vector<size_t> order(out.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),  // stable: errors name tensors in file order
            [&](size_t a, size_t b) { return out.tensors[a].offset < out.tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& prev = out.tensors[order[i - 1]];
    const GgufTensorInfo& cur = out.tensors[order[i]];
    if (prev.offset + prev.n_bytes > cur.offset) {  // both within the file: no overflow
      const uint64_t base = out.data_offset;
      return error("tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", prev.name, base + prev.offset,
                   base + prev.offset + prev.n_bytes, cur.name, base + cur.offset, base + cur.offset + cur.n_bytes);
    }
  }
  return ok_status();
}

}  // namespace

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.empty()) return make_error("{}: file is empty (0 bytes), not a GGUF file", name);
  MOE_ASSIGN_OR_RETURN(ParsedGguf parsed, Parser(bytes, name).run());
  GgufFile file;
  file.path_ = name;
  file.version_ = parsed.version;
  file.alignment_ = parsed.alignment;
  file.data_offset_ = parsed.data_offset;
  file.kvs_ = std::move(parsed.kvs);
  file.kv_index_ = std::move(parsed.kv_index);
  file.tensors_ = std::move(parsed.tensors);
  file.tensor_index_ = std::move(parsed.tensor_index);
  return file;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  MOE_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  auto shared = std::make_shared<MappedFile>(std::move(mapped));
  MOE_ASSIGN_OR_RETURN(GgufFile file, parse(std::span<const uint8_t>(shared->data(), shared->size()), path));
  file.file_ = std::move(shared);  // the tensor data pointers point into this mapping
  return file;
}

}  // namespace moe::formats

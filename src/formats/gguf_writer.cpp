// GGUF v3 writer. Layout follows what llama.cpp's reader requires: tensor offsets are the running
// sum of tensor sizes each padded to the alignment, the data section starts at an aligned file
// offset, and every tensor (the last one too) is followed by its padding.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/check.h"
#include "formats/gguf.h"
#include "formats/gguf_internal.h"
#include "formats/tensor_shape.h"

namespace moe::formats {

using namespace gguf_detail;

namespace {

template <typename T>
void append_le(std::vector<uint8_t>& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void append_string(std::vector<uint8_t>& out, std::string_view s) {
  append_le<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

Error wrong_holder(std::string_view key, const GgufValue& v) {
  return make_error("metadata key '{}': value of type {} (element type {}) holds data of another type", key,
                    gguf_value_type_name(v.type), gguf_value_type_name(v.element_type));
}

// Appends `v` as the on-disk integer `type`, checking that it fits.
template <typename Disk, typename V>
Status put_checked(std::vector<uint8_t>& out, std::string_view key, GgufValueType type, V v) {
  if (!std::in_range<Disk>(v)) {
    return make_error("metadata key '{}': value {} does not fit in {}", key, v, gguf_value_type_name(type));
  }
  append_le(out, static_cast<Disk>(v));
  return ok_status();
}

template <typename V>
Status put_integer(std::vector<uint8_t>& out, std::string_view key, GgufValueType type, V v) {
  switch (type) {
    case GgufValueType::kUint8: return put_checked<uint8_t>(out, key, type, v);
    case GgufValueType::kInt8: return put_checked<int8_t>(out, key, type, v);
    case GgufValueType::kUint16: return put_checked<uint16_t>(out, key, type, v);
    case GgufValueType::kInt16: return put_checked<int16_t>(out, key, type, v);
    case GgufValueType::kUint32: return put_checked<uint32_t>(out, key, type, v);
    case GgufValueType::kInt32: return put_checked<int32_t>(out, key, type, v);
    case GgufValueType::kUint64: return put_checked<uint64_t>(out, key, type, v);
    case GgufValueType::kInt64: return put_checked<int64_t>(out, key, type, v);
    default: return make_error("metadata key '{}': {} is not an integer type", key, gguf_value_type_name(type));
  }
}

void put_float(std::vector<uint8_t>& out, GgufValueType type, double v) {
  if (type == GgufValueType::kFloat32) {
    append_le(out, static_cast<float>(v));
  } else {
    append_le(out, v);
  }
}

Status encode_scalar(std::vector<uint8_t>& out, std::string_view key, const GgufValue& v) {
  append_le<uint32_t>(out, static_cast<uint32_t>(v.type));
  if (is_integer_type(v.type)) {
    if (const auto* u = std::get_if<uint64_t>(&v.data)) return put_integer(out, key, v.type, *u);
    if (const auto* s = std::get_if<int64_t>(&v.data)) return put_integer(out, key, v.type, *s);
  } else if (const auto* d = std::get_if<double>(&v.data); d && is_float_type(v.type)) {
    put_float(out, v.type, *d);
    return ok_status();
  } else if (const auto* b = std::get_if<bool>(&v.data); b && v.type == GgufValueType::kBool) {
    append_le<uint8_t>(out, *b ? 1 : 0);
    return ok_status();
  } else if (const auto* str = std::get_if<std::string>(&v.data); str && v.type == GgufValueType::kString) {
    append_string(out, *str);
    return ok_status();
  }
  return wrong_holder(key, v);
}

// Returns whether the vector alternative `Held` may carry elements of `element`.
template <typename Held>
bool holder_matches(GgufValueType element) {
  if constexpr (std::is_same_v<Held, std::vector<uint64_t>> || std::is_same_v<Held, std::vector<int64_t>>) {
    return is_integer_type(element);
  } else if constexpr (std::is_same_v<Held, std::vector<double>>) {
    return is_float_type(element);
  } else if constexpr (std::is_same_v<Held, std::vector<uint8_t>>) {
    return element == GgufValueType::kBool;
  } else if constexpr (std::is_same_v<Held, std::vector<std::string>>) {
    return element == GgufValueType::kString;
  } else {
    return false;  // a scalar alternative inside an array value
  }
}

Status encode_array(std::vector<uint8_t>& out, std::string_view key, const GgufValue& v) {
  if (v.element_type == GgufValueType::kArray) {
    return make_error("metadata key '{}': nested arrays are not supported", key);
  }
  return std::visit(
      [&](const auto& held) -> Status {
        using Held = std::decay_t<decltype(held)>;
        if (!holder_matches<Held>(v.element_type)) return wrong_holder(key, v);
        if constexpr (requires { held.begin(); } && !std::is_same_v<Held, std::string>) {
          append_le<uint32_t>(out, static_cast<uint32_t>(GgufValueType::kArray));
          append_le<uint32_t>(out, static_cast<uint32_t>(v.element_type));
          append_le<uint64_t>(out, held.size());
          for (const auto& x : held) {
            using X = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<X, uint64_t> || std::is_same_v<X, int64_t>) {
              MOE_TRY(put_integer(out, key, v.element_type, x));
            } else if constexpr (std::is_same_v<X, double>) {
              put_float(out, v.element_type, x);
            } else if constexpr (std::is_same_v<X, uint8_t>) {
              append_le<uint8_t>(out, x != 0 ? 1 : 0);
            } else {
              append_string(out, x);
            }
          }
        }
        return ok_status();
      },
      v.data);
}

// A file created next to its destination and removed again unless commit() renamed it into
// place, so that a failed write never leaves a partial file under the final name.
class TempFile {
 public:
  static Result<TempFile> create(const std::string& final_path) {
    static std::atomic<uint64_t> counter{0};
    TempFile t;
    t.final_path_ = final_path;
    t.path_ = fmt::format("{}.tmp.{}.{}", final_path, ::getpid(), counter.fetch_add(1));
    t.fd_ = ::open(t.path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);  // umask applies
    if (t.fd_ < 0) return make_error("cannot create '{}': {}", t.path_, std::strerror(errno));
    return t;
  }

  TempFile() = default;
  TempFile(TempFile&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), final_path_(std::move(o.final_path_)) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  Status write_all(std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return make_error("cannot write '{}': {}", path_, std::strerror(n < 0 ? errno : EIO));
      bytes = bytes.subspan(static_cast<size_t>(n));
    }
    return ok_status();
  }

  // Flushes the data to disk, then renames over the destination; the rename is atomic, so readers
  // see either the old file or the complete new one.
  Status commit() {
    if (::fsync(fd_) != 0) return make_error("cannot fsync '{}': {}", path_, std::strerror(errno));
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return make_error("cannot close '{}': {}", path_, std::strerror(errno));
    if (::rename(path_.c_str(), final_path_.c_str()) != 0) {
      return make_error("cannot rename '{}' to '{}': {}", path_, final_path_, std::strerror(errno));
    }
    path_.clear();
    sync_parent_directory();
    return ok_status();
  }

 private:
  // Makes the rename itself durable. Best effort: the file is complete either way.
  void sync_parent_directory() const {
    const std::filesystem::path parent = std::filesystem::path(final_path_).parent_path();
    const std::filesystem::path dir = parent.empty() ? std::filesystem::path(".") : parent;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
  }

  int fd_ = -1;
  std::string path_;
  std::string final_path_;
};

}  // namespace

// Keys are few (tens to hundreds), so a linear search keeps insertion order without an index.
void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [existing, existing_value] : kvs_) {
    if (existing == key) {
      existing_value = std::move(value);
      return;
    }
  }
  kvs_.emplace_back(std::move(key), std::move(value));
}

Result<uint64_t> GgufWriter::check_new_tensor(std::string_view name, DType type,
                                              const std::vector<int64_t>& shape) const {
  if (name.empty()) return make_error("tensor name is empty");
  if (name.size() > kMaxTensorNameBytes) {
    return make_error("tensor '{}': name is {} bytes, llama.cpp allows at most {}", name, name.size(),
                      kMaxTensorNameBytes);
  }
  // Linear: models have at most a few thousand tensors (experts are merged into 3D tensors).
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return make_error("duplicate tensor name '{}'", name);
  }
  return tensor_n_bytes(name, type, shape);
}

Status GgufWriter::add_tensor(std::string name, DType type, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  MOE_ASSIGN_OR_RETURN(uint64_t n_bytes, check_new_tensor(name, type, shape));
  if (bytes.size() != n_bytes) {
    return make_error("tensor '{}': got {} bytes, expected {} for {} {}", name, bytes.size(), n_bytes,
                      dtype_name(type), tensor_shape_string(shape));
  }
  tensors_.push_back({std::move(name), type, std::move(shape), std::move(bytes), nullptr, n_bytes});
  return ok_status();
}

Status GgufWriter::add_tensor_lazy(std::string name, DType type, std::vector<int64_t> shape, TensorFiller fill) {
  if (!fill) return make_error("tensor '{}': the filler is empty", name);
  MOE_ASSIGN_OR_RETURN(uint64_t n_bytes, check_new_tensor(name, type, shape));
  tensors_.push_back({std::move(name), type, std::move(shape), {}, std::move(fill), n_bytes});
  return ok_status();
}

Result<uint64_t> GgufWriter::data_alignment() const {
  for (const auto& [key, v] : kvs_) {
    if (key != kAlignmentKey) continue;
    const auto* u = std::get_if<uint64_t>(&v.data);
    if (v.type != GgufValueType::kUint32 || u == nullptr || *u > UINT32_MAX || !is_power_of_two(*u)) {
      return make_error("{} must be a nonzero power-of-two u32 (llama.cpp requires it)", kAlignmentKey);
    }
    return *u;
  }
  return kDefaultAlignment;
}

Result<std::vector<uint8_t>> GgufWriter::encode_metadata(uint64_t alignment) const {
  std::vector<uint8_t> out(std::begin(kMagic), std::end(kMagic));
  append_le<uint32_t>(out, kWriteVersion);
  append_le<uint64_t>(out, tensors_.size());
  append_le<uint64_t>(out, kvs_.size());
  for (const auto& [key, value] : kvs_) {
    if (key.empty()) return make_error("metadata key is empty");
    append_string(out, key);
    MOE_TRY(value.is_array() ? encode_array(out, key, value) : encode_scalar(out, key, value));
  }
  uint64_t offset = 0;  // relative to the data section; llama.cpp wants exactly these offsets
  for (const PendingTensor& t : tensors_) {
    append_string(out, t.name);
    append_le<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t dim : t.shape) append_le<int64_t>(out, dim);
    append_le<uint32_t>(out, static_cast<uint32_t>(t.type));
    append_le<uint64_t>(out, offset);
    const std::optional<uint64_t> padded = align_up(t.n_bytes, alignment);
    if (!padded || *padded > UINT64_MAX - offset) return make_error("tensor '{}': data section overflows", t.name);
    offset += *padded;
  }
  out.resize(*align_up(out.size(), alignment), 0);
  return out;
}

// Holds one tensor in memory at a time: the scratch buffer for lazy tensors is refilled per tensor.
Status GgufWriter::emit(const ByteSink& sink) const {
  MOE_ASSIGN_OR_RETURN(uint64_t alignment, data_alignment());
  MOE_ASSIGN_OR_RETURN(std::vector<uint8_t> metadata, encode_metadata(alignment));
  MOE_TRY(sink(metadata));
  const std::vector<uint8_t> zeros(std::min<uint64_t>(alignment, 4096), 0);
  std::vector<uint8_t> scratch;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    std::span<const uint8_t> data = t.bytes;
    if (t.fill) {
      scratch.assign(t.n_bytes, 0);  // zeroed so the output is deterministic even if a filler skips bytes
      Status filled = t.fill(std::span<uint8_t>(scratch));
      if (!filled.ok()) return make_error("tensor '{}': {}", t.name, filled.error().message);
      data = scratch;
    }
    MOE_TRY(sink(data));
    for (uint64_t pad = *align_up(t.n_bytes, alignment) - t.n_bytes; pad > 0;) {
      const size_t n = std::min<uint64_t>(pad, zeros.size());
      MOE_TRY(sink(std::span<const uint8_t>(zeros.data(), n)));
      pad -= n;
    }
    if (progress_) progress_(i + 1, tensors_.size());
  }
  return ok_status();
}

Status GgufWriter::write(const std::string& path) const {
  MOE_ASSIGN_OR_RETURN(TempFile temp, TempFile::create(path));
  MOE_TRY(emit([&temp](std::span<const uint8_t> bytes) { return temp.write_all(bytes); }));
  return temp.commit();
}

std::vector<uint8_t> GgufWriter::serialize() const {
  std::vector<uint8_t> image;
  const Status status = emit([&image](std::span<const uint8_t> bytes) {
    image.insert(image.end(), bytes.begin(), bytes.end());
    return ok_status();
  });
  // serialize() is for tests and fixtures, whose inputs are known good: a failure is a bug there.
  MOE_CHECK_MSG(status.ok(), status.ok() ? "" : status.error().message.c_str());
  return image;
}

}  // namespace moe::formats

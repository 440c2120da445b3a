// GgufValue construction and the typed getters of GgufFile.
#include <limits>
#include <utility>

#include "formats/gguf.h"
#include "formats/gguf_internal.h"

namespace moe::formats {

using namespace gguf_detail;

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "u8";
    case GgufValueType::kInt8: return "i8";
    case GgufValueType::kUint16: return "u16";
    case GgufValueType::kInt16: return "i16";
    case GgufValueType::kUint32: return "u32";
    case GgufValueType::kInt32: return "i32";
    case GgufValueType::kFloat32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "u64";
    case GgufValueType::kInt64: return "i64";
    case GgufValueType::kFloat64: return "f64";
  }
  return "unknown";
}

GgufValue GgufValue::u32(uint32_t v) { return {GgufValueType::kUint32, GgufValueType::kUint32, uint64_t{v}}; }
GgufValue GgufValue::i32(int32_t v) { return {GgufValueType::kInt32, GgufValueType::kUint32, int64_t{v}}; }
GgufValue GgufValue::u64(uint64_t v) { return {GgufValueType::kUint64, GgufValueType::kUint32, v}; }
GgufValue GgufValue::f32(float v) { return {GgufValueType::kFloat32, GgufValueType::kUint32, double{v}}; }
GgufValue GgufValue::boolean(bool v) { return {GgufValueType::kBool, GgufValueType::kUint32, v}; }
GgufValue GgufValue::string(std::string v) {
  return {GgufValueType::kString, GgufValueType::kUint32, std::move(v)};
}
GgufValue GgufValue::string_array(std::vector<std::string> v) {
  return {GgufValueType::kArray, GgufValueType::kString, std::move(v)};
}
GgufValue GgufValue::f32_array(std::vector<float> v) {
  return {GgufValueType::kArray, GgufValueType::kFloat32, std::vector<double>(v.begin(), v.end())};
}
GgufValue GgufValue::i32_array(std::vector<int32_t> v) {
  return {GgufValueType::kArray, GgufValueType::kInt32, std::vector<int64_t>(v.begin(), v.end())};
}

size_t GgufValue::array_size() const {
  if (!is_array()) return 0;
  return std::visit(
      [](const auto& held) -> size_t {
        using T = std::decay_t<decltype(held)>;
        if constexpr (requires { held.size(); } && !std::is_same_v<T, std::string>) {
          return held.size();
        } else {
          return 0;
        }
      },
      data);
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // the reader and writer checked that this cannot overflow
  return n;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// Returns "u32" for scalars and "array of string" for arrays, as error messages say it.
std::string describe_type(const GgufValue& v) {
  if (!v.is_array()) return std::string(gguf_value_type_name(v.type));
  return fmt::format("array of {}", gguf_value_type_name(v.element_type));
}

Error type_error(const std::string& path, std::string_view key, const GgufValue& v, std::string_view expected) {
  return make_error("{}: key '{}' has type {}, expected {}", path, key, describe_type(v), expected);
}

// Returns the integer held by a scalar integer value as Out when it fits.
template <typename Out>
Result<Out> integer_as(const std::string& path, std::string_view key, const GgufValue& v, std::string_view expected) {
  if (v.is_array() || !is_integer_type(v.type)) return type_error(path, key, v, expected);
  if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    if (!std::in_range<Out>(*u)) return make_error("{}: key '{}' value {} does not fit in {}", path, key, *u, expected);
    return static_cast<Out>(*u);
  }
  if (const auto* s = std::get_if<int64_t>(&v.data)) {
    if (!std::in_range<Out>(*s)) return make_error("{}: key '{}' value {} does not fit in {}", path, key, *s, expected);
    return static_cast<Out>(*s);
  }
  return type_error(path, key, v, expected);  // an integer type holding a non-integer: built by hand
}

// Returns a scalar number (float or integer) as a double.
std::optional<double> number_as_double(const GgufValue& v) {
  if (const auto* d = std::get_if<double>(&v.data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v.data)) return static_cast<double>(*u);
  if (const auto* s = std::get_if<int64_t>(&v.data)) return static_cast<double>(*s);
  return std::nullopt;
}

}  // namespace

// Returns the value of a key that must be present.
static Result<const GgufValue*> require(const GgufFile& file, std::string_view key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return make_error("{}: key '{}' not found", file.path(), key);
  return value;
}

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  return integer_as<uint32_t>(path_, key, *v, "u32");
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  return integer_as<uint64_t>(path_, key, *v, "u64");
}

Result<int64_t> GgufFile::get_i64(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  return integer_as<int64_t>(path_, key, *v, "i64");
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (v->is_array() || !(is_float_type(v->type) || is_integer_type(v->type))) {
    return type_error(path_, key, *v, "a number");
  }
  return static_cast<float>(*number_as_double(*v));
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (v->type != GgufValueType::kBool) return type_error(path_, key, *v, "bool");
  return std::get<bool>(v->data);
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (v->type != GgufValueType::kString) return type_error(path_, key, *v, "string");
  return std::get<std::string>(v->data);
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (!v->is_array() || v->element_type != GgufValueType::kString) {
    return type_error(path_, key, *v, "array of string");
  }
  return std::get<std::vector<std::string>>(v->data);
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (!v->is_array() || !(is_float_type(v->element_type) || is_integer_type(v->element_type))) {
    return type_error(path_, key, *v, "an array of numbers");
  }
  std::vector<float> out;
  std::visit(
      [&out](const auto& held) {
        using T = std::decay_t<decltype(held)>;
        if constexpr (std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<uint64_t>> ||
                      std::is_same_v<T, std::vector<int64_t>>) {
          out.reserve(held.size());
          for (auto x : held) out.push_back(static_cast<float>(x));
        }
      },
      v->data);
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  MOE_ASSIGN_OR_RETURN(const GgufValue* v, require(*this, key));
  if (!v->is_array() || !is_integer_type(v->element_type)) {
    return type_error(path_, key, *v, "an array of integers");
  }
  if (const auto* s = std::get_if<std::vector<int64_t>>(&v->data)) return *s;
  const auto& u = std::get<std::vector<uint64_t>>(v->data);
  std::vector<int64_t> out;
  out.reserve(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    if (!std::in_range<int64_t>(u[i])) {
      return make_error("{}: key '{}' element {} ({}) does not fit in i64", path_, key, i, u[i]);
    }
    out.push_back(static_cast<int64_t>(u[i]));
  }
  return out;
}

// The optional getters: nullopt when absent, otherwise exactly the plain getter's answer.
template <typename T, typename Getter>
static Result<std::optional<T>> optional_get(const GgufFile& file, std::string_view key, Getter getter) {
  if (file.find(key) == nullptr) return std::optional<T>();
  MOE_ASSIGN_OR_RETURN(T value, (file.*getter)(key));
  return std::optional<T>(std::move(value));
}

Result<std::optional<uint32_t>> GgufFile::get_u32_opt(std::string_view key) const {
  return optional_get<uint32_t>(*this, key, &GgufFile::get_u32);
}
Result<std::optional<float>> GgufFile::get_f32_opt(std::string_view key) const {
  return optional_get<float>(*this, key, &GgufFile::get_f32);
}
Result<std::optional<bool>> GgufFile::get_bool_opt(std::string_view key) const {
  return optional_get<bool>(*this, key, &GgufFile::get_bool);
}
Result<std::optional<std::string>> GgufFile::get_string_opt(std::string_view key) const {
  return optional_get<std::string>(*this, key, &GgufFile::get_string);
}

}  // namespace moe::formats

// Helpers for the formats tests: a raw byte builder for hand-made (often hostile) GGUF images,
// a scratch directory, and error assertions.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/gguf.h"

namespace moe::formats::testing_util {

// Appends GGUF primitives little-endian, exactly as given, with no validation.
class ByteBuilder {
 public:
  template <typename T>
  ByteBuilder& le(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    for (size_t i = 0; i < sizeof(T); ++i) bytes_.push_back(p[i]);
    return *this;
  }
  ByteBuilder& raw(std::string_view s) {
    // push_back rather than a range insert: GCC 12 at -O3 warns falsely (-Wstringop-overflow) on
    // a range insert into a vector that may be empty.
    for (char c : s) bytes_.push_back(static_cast<uint8_t>(c));
    return *this;
  }
  ByteBuilder& str(std::string_view s) { return le<uint64_t>(s.size()).raw(s); }
  ByteBuilder& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return raw("GGUF").le(version).le(n_tensors).le(n_kv);
  }
  ByteBuilder& kv_u32(std::string_view key, uint32_t value) {
    return str(key).le<uint32_t>(static_cast<uint32_t>(GgufValueType::kUint32)).le(value);
  }
  ByteBuilder& kv_string(std::string_view key, std::string_view value) {
    return str(key).le<uint32_t>(static_cast<uint32_t>(GgufValueType::kString)).str(value);
  }
  ByteBuilder& tensor_info(std::string_view name, std::vector<int64_t> shape, DType type, uint64_t offset) {
    str(name).le<uint32_t>(static_cast<uint32_t>(shape.size()));
    for (int64_t d : shape) le(d);
    return le(static_cast<uint32_t>(type)).le(offset);
  }
  ByteBuilder& pad_to(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
    return *this;
  }
  ByteBuilder& zeros(size_t n) {
    bytes_.insert(bytes_.end(), n, 0);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// Returns the parse error for `bytes` (fails the test when parsing succeeds).
inline std::string parse_error(std::span<const uint8_t> bytes, const std::string& name = "test.gguf") {
  Result<GgufFile> file = GgufFile::parse(bytes, name);
  if (file.ok()) {
    ADD_FAILURE() << "parse of " << bytes.size() << " bytes succeeded, expected an error";
    return "";
  }
  return file.error().message;
}

// A fresh directory under the test temp dir, removed with everything in it at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / "moe_formats_XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed: " << std::strerror(errno);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(std::string_view name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Returns `n` bytes of a deterministic pattern that differs per `seed`.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

}  // namespace moe::formats::testing_util

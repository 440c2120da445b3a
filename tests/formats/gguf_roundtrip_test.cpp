// Writer -> serialize -> reader round trips: every value type, arrays, tensors, alignments.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "formats/gguf.h"
#include "gguf_test_util.h"

namespace moe::formats {
namespace {

using ::testing::ElementsAre;
using testing_util::pattern_bytes;

GgufValue scalar(GgufValueType type, decltype(GgufValue::data) data) {
  GgufValue v;
  v.type = type;
  v.data = std::move(data);
  return v;
}

GgufValue array(GgufValueType element_type, decltype(GgufValue::data) data) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.element_type = element_type;
  v.data = std::move(data);
  return v;
}

// One value of every scalar type, at the edges of its range.
std::vector<std::pair<std::string, GgufValue>> every_scalar() {
  using T = GgufValueType;
  return {
      {"s.u8", scalar(T::kUint8, uint64_t{255})},
      {"s.i8", scalar(T::kInt8, int64_t{-128})},
      {"s.u16", scalar(T::kUint16, uint64_t{65535})},
      {"s.i16", scalar(T::kInt16, int64_t{-32768})},
      {"s.u32", GgufValue::u32(4294967295u)},
      {"s.i32", GgufValue::i32(std::numeric_limits<int32_t>::min())},
      {"s.f32", GgufValue::f32(-1.5e-7f)},
      {"s.bool_true", GgufValue::boolean(true)},
      {"s.bool_false", GgufValue::boolean(false)},
      {"s.string", GgufValue::string("héllo, wörld")},
      {"s.empty_string", GgufValue::string("")},
      {"s.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max())},
      {"s.i64", scalar(T::kInt64, std::numeric_limits<int64_t>::min())},
      {"s.f64", scalar(T::kFloat64, 3.141592653589793)},
  };
}

// One array of every element type, plus empty arrays and strings.
std::vector<std::pair<std::string, GgufValue>> every_array() {
  using T = GgufValueType;
  return {
      {"a.u8", array(T::kUint8, std::vector<uint64_t>{0, 1, 255})},
      {"a.i8", array(T::kInt8, std::vector<int64_t>{-128, 0, 127})},
      {"a.u16", array(T::kUint16, std::vector<uint64_t>{0, 65535})},
      {"a.i16", array(T::kInt16, std::vector<int64_t>{-32768, 32767})},
      {"a.u32", array(T::kUint32, std::vector<uint64_t>{0, 4294967295u})},
      {"a.i32", GgufValue::i32_array({-1, 0, 1, std::numeric_limits<int32_t>::max()})},
      {"a.f32", GgufValue::f32_array({0.5f, -2.25f, 1e30f})},
      {"a.bool", array(T::kBool, std::vector<uint8_t>{1, 0, 1})},
      {"a.string", GgufValue::string_array({"a", "", "ccc", std::string("nul\0inside", 10)})},
      {"a.u64", array(T::kUint64, std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()})},
      {"a.i64", array(T::kInt64, std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 7})},
      {"a.f64", array(T::kFloat64, std::vector<double>{1e300, -0.0})},
      {"a.empty_u32", array(T::kUint32, std::vector<uint64_t>{})},
      {"a.empty_string", GgufValue::string_array({})},
      {"a.empty_f32", GgufValue::f32_array({})},
      {"a.empty_bool", array(T::kBool, std::vector<uint8_t>{})},
  };
}

Result<GgufFile> round_trip(const GgufWriter& writer, std::vector<uint8_t>& image) {
  image = writer.serialize();
  return GgufFile::parse(image, "roundtrip.gguf");
}

TEST(GgufRoundTripTest, EveryScalarType) {
  GgufWriter writer;
  const auto kvs = every_scalar();
  for (const auto& [key, value] : kvs) writer.set(key, value);
  std::vector<uint8_t> image;
  Result<GgufFile> file = round_trip(writer, image);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->version(), 3u);
  ASSERT_EQ(file->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(file->metadata()[i].first, kvs[i].first);  // insertion order is kept
    EXPECT_EQ(file->metadata()[i].second, kvs[i].second) << kvs[i].first;
  }
  EXPECT_TRUE(file->tensors().empty());
}

TEST(GgufRoundTripTest, EveryArrayTypeIncludingEmpty) {
  GgufWriter writer;
  const auto kvs = every_array();
  for (const auto& [key, value] : kvs) writer.set(key, value);
  std::vector<uint8_t> image;
  Result<GgufFile> file = round_trip(writer, image);
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    const GgufValue* v = file->find(kvs[i].first);
    ASSERT_NE(v, nullptr) << kvs[i].first;
    EXPECT_EQ(*v, kvs[i].second) << kvs[i].first;
    EXPECT_EQ(v->array_size(), kvs[i].second.array_size()) << kvs[i].first;
  }
  EXPECT_EQ(file->find("a.string")->array_size(), 4u);
  EXPECT_EQ(file->find("s.missing"), nullptr);
}

TEST(GgufRoundTripTest, SetReplacesInPlace) {
  GgufWriter writer;
  writer.set("first", GgufValue::u32(1));
  writer.set("second", GgufValue::string("x"));
  writer.set("third", GgufValue::u32(3));
  writer.set("second", GgufValue::f32(2.5f));  // replaced, keeps its slot and changes type
  std::vector<uint8_t> image;
  Result<GgufFile> file = round_trip(writer, image);
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->metadata().size(), 3u);
  EXPECT_EQ(file->metadata()[1].first, "second");
  EXPECT_EQ(file->metadata()[1].second, GgufValue::f32(2.5f));
  EXPECT_EQ(file->metadata()[2].first, "third");
}

struct TensorCase {
  std::string name;
  DType type;
  std::vector<int64_t> shape;
  size_t n_bytes;
};

// Tensors of several dtypes, with sizes that are and are not multiples of the alignment.
std::vector<TensorCase> tensor_cases() {
  return {
      {"t.f32", DType::kF32, {4, 3}, 48},
      {"t.f16", DType::kF16, {7}, 14},
      {"t.q8_0", DType::kQ8_0, {64, 2}, 136},
      {"t.q4_k", DType::kQ4_K, {256, 1, 1}, 144},
      {"t.bf16", DType::kBF16, {2, 2, 2, 2}, 32},
      {"t.i32", DType::kI32, {5}, 20},
      {"t.q4_0", DType::kQ4_0, {32, 3}, 54},
  };
}

void expect_tensors_round_trip(uint64_t alignment, bool set_alignment_key) {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("test"));
  if (set_alignment_key) writer.set("general.alignment", GgufValue::u32(static_cast<uint32_t>(alignment)));
  const auto cases = tensor_cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    const TensorCase& c = cases[i];
    ASSERT_TRUE(writer.add_tensor(c.name, c.type, c.shape, pattern_bytes(c.n_bytes, static_cast<uint32_t>(i))).ok());
  }
  std::vector<uint8_t> image;
  Result<GgufFile> file = round_trip(writer, image);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->alignment(), alignment);
  EXPECT_EQ(file->data_offset() % alignment, 0u);
  ASSERT_EQ(file->tensors().size(), cases.size());
  uint64_t expected_offset = 0;  // llama.cpp requires offsets to be the running padded sum
  for (size_t i = 0; i < cases.size(); ++i) {
    const GgufTensorInfo& t = file->tensors()[i];
    const TensorCase& c = cases[i];
    EXPECT_EQ(t.name, c.name);
    EXPECT_EQ(t.type, c.type) << c.name;
    EXPECT_EQ(t.shape, c.shape) << c.name;
    EXPECT_EQ(t.n_bytes, c.n_bytes) << c.name;
    EXPECT_EQ(t.offset, expected_offset) << c.name;
    EXPECT_EQ(t.offset % alignment, 0u) << c.name;
    EXPECT_EQ(t.data, image.data() + file->data_offset() + t.offset) << c.name;
    const std::vector<uint8_t> want = pattern_bytes(c.n_bytes, static_cast<uint32_t>(i));
    EXPECT_EQ(std::memcmp(t.data, want.data(), want.size()), 0) << c.name;
    EXPECT_EQ(file->find_tensor(c.name), &t);
    expected_offset += (c.n_bytes + alignment - 1) / alignment * alignment;
  }
  // Every tensor, the last one too, is followed by its padding.
  EXPECT_EQ(image.size(), file->data_offset() + expected_offset);
  EXPECT_EQ(file->find_tensor("t.missing"), nullptr);
}

TEST(GgufRoundTripTest, TensorsWithDefaultAlignment) { expect_tensors_round_trip(32, false); }
TEST(GgufRoundTripTest, TensorsWithAlignment32) { expect_tensors_round_trip(32, true); }
TEST(GgufRoundTripTest, TensorsWithAlignment64) { expect_tensors_round_trip(64, true); }
TEST(GgufRoundTripTest, TensorsWithAlignment1) { expect_tensors_round_trip(1, true); }

TEST(GgufRoundTripTest, MetadataAndTensorsTogether) {
  GgufWriter writer;
  for (const auto& [key, value] : every_scalar()) writer.set(key, value);
  for (const auto& [key, value] : every_array()) writer.set(key, value);
  ASSERT_TRUE(writer.add_tensor("w", DType::kF32, {3}, pattern_bytes(12, 9)).ok());
  std::vector<uint8_t> image;
  Result<GgufFile> file = round_trip(writer, image);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->metadata().size(), every_scalar().size() + every_array().size());
  ASSERT_EQ(file->tensors().size(), 1u);
  EXPECT_EQ(file->tensors()[0].n_elements(), 3);
}

TEST(GgufRoundTripTest, Version2IsReadToo) {
  GgufWriter writer;
  writer.set("k", GgufValue::u32(7));
  ASSERT_TRUE(writer.add_tensor("w", DType::kF32, {2}, pattern_bytes(8, 1)).ok());
  std::vector<uint8_t> image = writer.serialize();
  image[4] = 2;  // v2 and v3 share the layout (v3 added big-endian files, which we reject)
  Result<GgufFile> file = GgufFile::parse(image, "v2.gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->version(), 2u);
  EXPECT_EQ(*file->get_u32("k"), 7u);
}

TEST(GgufRoundTripTest, FileWithoutTensorsOrMetadata) {
  GgufWriter writer;
  std::vector<uint8_t> image;
  Result<GgufFile> file = round_trip(writer, image);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(image.size(), 32u);  // the 24-byte header padded to the default alignment
}

TEST(TensorShapeTest, ShapeString) {
  EXPECT_EQ(tensor_shape_string(std::vector<int64_t>{4096, 32000}), "[4096, 32000]");
  EXPECT_EQ(tensor_shape_string(std::vector<int64_t>{7}), "[7]");
  EXPECT_EQ(tensor_shape_string(std::vector<int64_t>{}), "[]");
}

TEST(TensorShapeTest, NBytes) {
  EXPECT_EQ(*tensor_n_bytes("x", DType::kQ8_0, std::vector<int64_t>{64, 3}), 3u * 2u * 34u);
  EXPECT_EQ(*tensor_n_bytes("x", DType::kF16, std::vector<int64_t>{3, 5, 7, 2}), 420u);
  EXPECT_EQ(tensor_n_bytes("x", DType::kQ4_K, std::vector<int64_t>{128}).error().message,
            "tensor 'x': row of 128 elements is not a multiple of the q4_K block size 256");
}

}  // namespace
}  // namespace moe::formats

// Hostile GGUF images, one test per way a file can lie, each with the error it must produce.
// Files are built byte by byte (ByteBuilder) so every field is under the test's control.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "formats/gguf.h"
#include "gguf_test_util.h"

namespace moe::formats {
namespace {

using ::testing::HasSubstr;
using testing_util::ByteBuilder;
using testing_util::parse_error;

constexpr uint32_t kArrayType = static_cast<uint32_t>(GgufValueType::kArray);
constexpr uint32_t kStringType = static_cast<uint32_t>(GgufValueType::kString);
constexpr uint32_t kU32Type = static_cast<uint32_t>(GgufValueType::kUint32);
constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();

// One tensor info followed by padding and `data_bytes` of data; returns the builder so tests can
// check offsets against its size.
ByteBuilder one_tensor(std::vector<int64_t> shape, DType type, uint64_t offset, size_t data_bytes) {
  ByteBuilder b;
  b.header(3, 1, 0).tensor_info("w", std::move(shape), type, offset).pad_to(32).zeros(data_bytes);
  return b;
}

TEST(GgufHostileTest, BadMagic) {
  ByteBuilder b;
  b.raw("GGUX").le<uint32_t>(3).le<uint64_t>(0).le<uint64_t>(0);
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: bad magic 47 47 55 58 (expected \"GGUF\"): not a GGUF file");
}

TEST(GgufHostileTest, UnsupportedVersions) {
  for (uint32_t version : {0u, 1u, 4u, 1000u}) {
    ByteBuilder b;
    b.header(version, 0, 0);
    EXPECT_EQ(parse_error(b.bytes()),
              fmt::format("test.gguf: unsupported GGUF version {} (moe.cpp reads versions 2 and 3)", version));
  }
  ByteBuilder big_endian;
  big_endian.header(0x03000000, 0, 0);
  EXPECT_EQ(parse_error(big_endian.bytes()),
            "test.gguf: unsupported GGUF version 50331648, perhaps a big-endian file (moe.cpp reads versions 2 and 3)");
}

TEST(GgufHostileTest, AbsurdTensorCount) {
  ByteBuilder b;
  b.header(3, uint64_t{1} << 40, 0).zeros(64);
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: tensor count 1099511627776 cannot fit in the 64 bytes after the header");
  ByteBuilder max;
  max.header(3, kMaxU64, 0).zeros(64);
  EXPECT_THAT(parse_error(max.bytes()), HasSubstr("tensor count 18446744073709551615 cannot fit"));
}

TEST(GgufHostileTest, AbsurdKvCount) {
  ByteBuilder b;
  b.header(3, 0, kMaxU64).zeros(64);
  EXPECT_EQ(parse_error(b.bytes()),
            "test.gguf: metadata KV count 18446744073709551615 cannot fit in the 64 bytes after the header");
  ByteBuilder both;  // each count alone fits, together they do not
  both.header(3, 2, 1).zeros(70);
  EXPECT_EQ(parse_error(both.bytes()),
            "test.gguf: metadata KV count 1 and tensor count 2 together cannot fit in the 70 bytes after the header");
}

TEST(GgufHostileTest, AbsurdStringLengths) {
  ByteBuilder key;
  key.header(3, 0, 1).le<uint64_t>(uint64_t{1} << 62).zeros(32);
  EXPECT_EQ(parse_error(key.bytes()),
            "test.gguf: metadata key #0: string length 4611686018427387904 exceeds the 32 bytes left in the file");

  ByteBuilder value;
  value.header(3, 0, 1).str("k").le<uint32_t>(kStringType).le<uint64_t>(kMaxU64).zeros(16);
  EXPECT_EQ(parse_error(value.bytes()),
            "test.gguf: metadata key #0 'k': string length 18446744073709551615 exceeds the 16 bytes left in the file");

  ByteBuilder element;
  element.header(3, 0, 1).str("k").le<uint32_t>(kArrayType).le<uint32_t>(kStringType).le<uint64_t>(1);
  element.le<uint64_t>(1000).zeros(8);
  EXPECT_EQ(parse_error(element.bytes()),
            "test.gguf: metadata key #0 'k': string length 1000 exceeds the 8 bytes left in the file");

  ByteBuilder tensor_name;
  tensor_name.header(3, 1, 0).le<uint64_t>(uint64_t{1} << 40).zeros(40);
  EXPECT_EQ(parse_error(tensor_name.bytes()),
            "test.gguf: tensor info #0: string length 1099511627776 exceeds the 40 bytes left in the file");
}

TEST(GgufHostileTest, AbsurdArrayLengths) {
  ByteBuilder numbers;
  numbers.header(3, 0, 1).str("arr").le<uint32_t>(kArrayType).le<uint32_t>(kU32Type);
  numbers.le<uint64_t>(uint64_t{1} << 61).zeros(16);
  EXPECT_EQ(parse_error(numbers.bytes()),
            "test.gguf: metadata key #0 'arr': array length 2305843009213693952 exceeds the 16 bytes left in the file");

  ByteBuilder just_over;  // 5 u32 in 16 bytes
  just_over.header(3, 0, 1).str("arr").le<uint32_t>(kArrayType).le<uint32_t>(kU32Type).le<uint64_t>(5).zeros(16);
  EXPECT_EQ(parse_error(just_over.bytes()),
            "test.gguf: metadata key #0 'arr': array length 5 exceeds the 16 bytes left in the file");

  ByteBuilder strings;  // every string takes at least its 8-byte length
  strings.header(3, 0, 1).str("arr").le<uint32_t>(kArrayType).le<uint32_t>(kStringType).le<uint64_t>(3).zeros(16);
  EXPECT_EQ(parse_error(strings.bytes()),
            "test.gguf: metadata key #0 'arr': array length 3 exceeds the 16 bytes left in the file");
}

TEST(GgufHostileTest, TensorDataOutOfRange) {
  ByteBuilder past_end = one_tensor({8}, DType::kF32, 64, 32);  // data starts at 64, file is 96 bytes
  EXPECT_EQ(parse_error(past_end.bytes()), "test.gguf: tensor 'w' data [128, 160) is out of range of file size 96");

  ByteBuilder short_data = one_tensor({8}, DType::kF32, 0, 16);
  EXPECT_EQ(parse_error(short_data.bytes()), "test.gguf: tensor 'w' data [64, 96) is out of range of file size 80");

  ByteBuilder huge_offset = one_tensor({8}, DType::kF32, kMaxU64 - 31, 32);
  EXPECT_EQ(parse_error(huge_offset.bytes()),
            "test.gguf: tensor 'w' data [18446744073709551615, 18446744073709551615) is out of range of file size 96");
}

TEST(GgufHostileTest, OverlappingTensors) {
  ByteBuilder same;
  same.header(3, 2, 0).tensor_info("a", {8}, DType::kF32, 0).tensor_info("b", {8}, DType::kF32, 0);
  same.pad_to(32).zeros(64);
  const size_t data = same.size() - 64;
  EXPECT_EQ(parse_error(same.bytes()), fmt::format("test.gguf: tensors 'a' [{0}, {1}) and 'b' [{0}, {1}) overlap",
                                                   data, data + 32));

  ByteBuilder partial;  // 'b' is listed first but lies inside 'a'
  partial.header(3, 2, 0).tensor_info("b", {8}, DType::kF32, 32).tensor_info("a", {16}, DType::kF32, 0);
  partial.pad_to(32).zeros(64);
  const size_t base = partial.size() - 64;
  EXPECT_EQ(parse_error(partial.bytes()), fmt::format("test.gguf: tensors 'a' [{}, {}) and 'b' [{}, {}) overlap",
                                                      base, base + 64, base + 32, base + 64));
}

TEST(GgufHostileTest, MisalignedOffset) {
  ByteBuilder b = one_tensor({8}, DType::kF32, 4, 64);
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: tensor 'w' offset 4 is misaligned (alignment 32)");

  ByteBuilder aligned64;
  aligned64.header(3, 1, 1).kv_u32("general.alignment", 64).tensor_info("w", {8}, DType::kF32, 32);
  aligned64.pad_to(64).zeros(128);
  EXPECT_EQ(parse_error(aligned64.bytes()), "test.gguf: tensor 'w' offset 32 is misaligned (alignment 64)");
}

TEST(GgufHostileTest, BadAlignmentValue) {
  for (uint32_t alignment : {0u, 3u, 48u, 0x80000001u}) {
    ByteBuilder b;
    b.header(3, 0, 1).kv_u32("general.alignment", alignment);
    EXPECT_EQ(parse_error(b.bytes()),
              fmt::format("test.gguf: general.alignment {} is not a nonzero power of two", alignment));
  }
  ByteBuilder wide;
  wide.header(3, 0, 1).str("general.alignment").le<uint32_t>(static_cast<uint32_t>(GgufValueType::kUint64));
  wide.le<uint64_t>(32);
  EXPECT_EQ(parse_error(wide.bytes()), "test.gguf: general.alignment has type u64, expected u32");
  ByteBuilder text;
  text.header(3, 0, 1).kv_string("general.alignment", "32");
  EXPECT_EQ(parse_error(text.bytes()), "test.gguf: general.alignment has type string, expected u32");
}

TEST(GgufHostileTest, BadAlignmentPatchedIntoAWriterFile) {
  GgufWriter writer;
  writer.set("general.alignment", GgufValue::u32(32));
  std::vector<uint8_t> image = writer.serialize();
  // The value is the last 4 bytes of the only KV: header (24) + key (8 + 17) + type (4).
  const size_t value_at = 24 + 8 + 17 + 4;
  ASSERT_EQ(image[value_at], 32);
  image[value_at] = 24;
  EXPECT_EQ(parse_error(image), "test.gguf: general.alignment 24 is not a nonzero power of two");
}

TEST(GgufHostileTest, DuplicateKeys) {
  ByteBuilder b;
  b.header(3, 0, 3).kv_u32("a.b", 1).kv_u32("c", 2).kv_string("a.b", "again");
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: duplicate metadata key 'a.b' (keys #0 and #2)");
}

TEST(GgufHostileTest, EmptyKey) {
  ByteBuilder b;
  b.header(3, 0, 1).kv_u32("", 1).zeros(8);
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: metadata key #0 is empty");
}

TEST(GgufHostileTest, DuplicateTensorNames) {
  ByteBuilder b;
  b.header(3, 2, 0).tensor_info("w", {8}, DType::kF32, 0).tensor_info("w", {8}, DType::kF32, 32);
  b.pad_to(32).zeros(64);
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: duplicate tensor name 'w' (tensors #0 and #1)");
}

TEST(GgufHostileTest, UnknownValueTypes) {
  ByteBuilder scalar;
  scalar.header(3, 0, 1).str("k").le<uint32_t>(13).zeros(16);
  EXPECT_EQ(parse_error(scalar.bytes()), "test.gguf: metadata key #0 'k': unknown value type 13");

  ByteBuilder element;
  element.header(3, 0, 1).str("k").le<uint32_t>(kArrayType).le<uint32_t>(77).le<uint64_t>(0).zeros(8);
  EXPECT_EQ(parse_error(element.bytes()), "test.gguf: metadata key #0 'k': unknown array element type 77");

  ByteBuilder nested;
  nested.header(3, 0, 1).str("k").le<uint32_t>(kArrayType).le<uint32_t>(kArrayType).le<uint64_t>(0).zeros(8);
  EXPECT_EQ(parse_error(nested.bytes()), "test.gguf: metadata key #0 'k': nested arrays are not supported");
}

TEST(GgufHostileTest, UnknownTensorType) {
  for (uint32_t id : {4u, 99u, 0xFFFFFFFFu}) {  // 4 was Q4_2, removed from ggml
    ByteBuilder b = one_tensor({32}, static_cast<DType>(id), 0, 128);
    EXPECT_EQ(parse_error(b.bytes()), fmt::format("test.gguf: tensor 'w': unknown tensor type id {}", id));
  }
}

TEST(GgufHostileTest, NDimsOutOfRange) {
  for (uint32_t n_dims : {0u, 5u, 0xFFFFFFFFu}) {
    ByteBuilder b;
    b.header(3, 1, 0).str("w").le<uint32_t>(n_dims).zeros(64);
    EXPECT_EQ(parse_error(b.bytes()), fmt::format("test.gguf: tensor 'w': n_dims {} is out of range 1..4", n_dims));
  }
}

TEST(GgufHostileTest, DimensionsOverflow) {
  const int64_t big = int64_t{1} << 32;
  ByteBuilder b = one_tensor({big, big}, DType::kF32, 0, 32);
  EXPECT_EQ(parse_error(b.bytes()), "test.gguf: tensor 'w': dimensions overflow (shape [4294967296, 4294967296])");

  const int64_t max = std::numeric_limits<int64_t>::max();
  ByteBuilder four = one_tensor({2, 2, 2, max / 4}, DType::kF32, 0, 32);
  EXPECT_THAT(parse_error(four.bytes()), HasSubstr("tensor 'w': dimensions overflow"));

  ByteBuilder bytes = one_tensor({int64_t{1} << 62}, DType::kF32, 0, 32);  // elements fit, bytes do not
  EXPECT_EQ(parse_error(bytes.bytes()),
            "test.gguf: tensor 'w': byte size overflows (shape [4611686018427387904], type f32)");
}

TEST(GgufHostileTest, NonPositiveDimensions) {
  ByteBuilder zero = one_tensor({8, 0}, DType::kF32, 0, 32);
  EXPECT_EQ(parse_error(zero.bytes()), "test.gguf: tensor 'w': dimension 1 is 0, must be positive (shape [8, 0])");
  ByteBuilder negative = one_tensor({-8}, DType::kF32, 0, 32);
  EXPECT_EQ(parse_error(negative.bytes()), "test.gguf: tensor 'w': dimension 0 is -8, must be positive (shape [-8])");
}

TEST(GgufHostileTest, RowNotMultipleOfBlockSize) {
  ByteBuilder b = one_tensor({33, 1}, DType::kQ8_0, 0, 64);
  EXPECT_EQ(parse_error(b.bytes()),
            "test.gguf: tensor 'w': row of 33 elements is not a multiple of the q8_0 block size 32");
  ByteBuilder k = one_tensor({32, 8}, DType::kQ4_K, 0, 256);  // 256 elements, but rows of 32
  EXPECT_EQ(parse_error(k.bytes()),
            "test.gguf: tensor 'w': row of 32 elements is not a multiple of the q4_K block size 256");
}

TEST(GgufHostileTest, TruncatedInPaddingBeforeData) {
  ByteBuilder b;
  b.header(3, 1, 0).tensor_info("w", {8}, DType::kF32, 0);
  EXPECT_EQ(parse_error(b.bytes()),
            "test.gguf: truncated in the padding before tensor data (data would start at 64, file size is 57)");
}

TEST(GgufHostileTest, EmptyImage) {
  EXPECT_EQ(parse_error({}), "test.gguf: file is empty (0 bytes), not a GGUF file");
}

}  // namespace
}  // namespace moe::formats

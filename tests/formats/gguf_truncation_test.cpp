// Every prefix of a valid file must fail with an error naming the section it was cut in, and
// random corruption must never crash (run under ASan/UBSan to make that check bite).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "formats/gguf.h"
#include "gguf_test_util.h"

namespace moe::formats {
namespace {

using ::testing::HasSubstr;
using testing_util::ByteBuilder;
using testing_util::pattern_bytes;

// A small valid file built by hand, with the offset at which each section ends.
struct SectionedFile {
  std::vector<uint8_t> bytes;
  std::vector<size_t> kv_ends;
  std::vector<size_t> tensor_info_ends;
  size_t data_offset = 0;
  size_t min_body_bytes = 0;  // what the header counts promise after the header
};

SectionedFile sectioned_file() {
  SectionedFile f;
  ByteBuilder b;
  b.header(3, 2, 4);
  // Long enough that cuts after it pass the header's counts check and reach the section reads.
  b.kv_string("general.description", std::string(100, 'd'));
  f.kv_ends.push_back(b.size());
  b.kv_string("general.architecture", "llama");
  f.kv_ends.push_back(b.size());
  b.kv_u32("general.alignment", 32);
  f.kv_ends.push_back(b.size());
  b.str("tokenizer.ggml.tokens").le<uint32_t>(static_cast<uint32_t>(GgufValueType::kArray));
  b.le<uint32_t>(static_cast<uint32_t>(GgufValueType::kString)).le<uint64_t>(3).str("a").str("").str("bc");
  f.kv_ends.push_back(b.size());
  b.tensor_info("a", {8}, DType::kF32, 0);
  f.tensor_info_ends.push_back(b.size());
  b.tensor_info("b", {4, 8}, DType::kF16, 32);  // 64 bytes: the file ends exactly where 'b' does
  f.tensor_info_ends.push_back(b.size());
  b.pad_to(32);
  f.data_offset = b.size();
  b.zeros(32 + 64);
  f.bytes = b.bytes();
  f.min_body_bytes = 4 * (8 + 1 + 4 + 1) + 2 * (8 + 4 + 8 + 4 + 8);
  return f;
}

// Returns the part of the error that a cut at `length` must produce.
std::string expected_error(const SectionedFile& f, size_t length) {
  if (length == 0) return "file is empty";
  if (length < 24) return "truncated while reading header";
  if (length - 24 < f.min_body_bytes) return "cannot fit in the";  // the counts check comes first
  for (size_t i = 0; i < f.kv_ends.size(); ++i) {
    if (length < f.kv_ends[i]) return fmt::format("metadata key #{}", i);
  }
  for (size_t i = 0; i < f.tensor_info_ends.size(); ++i) {
    if (length < f.tensor_info_ends[i]) return fmt::format("tensor info #{}", i);
  }
  if (length < f.data_offset) return "truncated in the padding before tensor data";
  return "is out of range of file size";
}

TEST(GgufTruncationTest, SectionedFileIsValid) {
  const SectionedFile f = sectioned_file();
  Result<GgufFile> file = GgufFile::parse(f.bytes, "t.gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->data_offset(), f.data_offset);
  EXPECT_EQ(file->tensors()[1].data + 64, f.bytes.data() + f.bytes.size());
}

TEST(GgufTruncationTest, EveryPrefixNamesItsSection) {
  const SectionedFile f = sectioned_file();
  for (size_t length = 0; length < f.bytes.size(); ++length) {
    // A copy of exactly `length` bytes, so ASan catches any read past the cut.
    const std::vector<uint8_t> prefix(f.bytes.begin(), f.bytes.begin() + static_cast<ptrdiff_t>(length));
    Result<GgufFile> file = GgufFile::parse(prefix, "t.gguf");
    ASSERT_FALSE(file.ok()) << "prefix of " << length << " bytes parsed";
    EXPECT_THAT(file.error().message, HasSubstr(expected_error(f, length))) << "prefix of " << length << " bytes";
  }
}

TEST(GgufTruncationTest, SomeCutsExactly) {
  const SectionedFile f = sectioned_file();
  auto error_at = [&](size_t length) {
    const std::vector<uint8_t> prefix(f.bytes.begin(), f.bytes.begin() + static_cast<ptrdiff_t>(length));
    return GgufFile::parse(prefix, "t.gguf").error().message;
  };
  EXPECT_EQ(error_at(3), "t.gguf: truncated while reading header");
  EXPECT_EQ(error_at(40), "t.gguf: tensor count 2 cannot fit in the 16 bytes after the header");
  EXPECT_EQ(error_at(140), "t.gguf: metadata KV count 4 and tensor count 2 together cannot fit in the 116 bytes "
                          "after the header");
  EXPECT_EQ(error_at(f.kv_ends[1] + 3), "t.gguf: truncated while reading metadata key #2");
  EXPECT_EQ(error_at(f.kv_ends[1] + 30), "t.gguf: truncated while reading metadata key #2 'general.alignment'");
  EXPECT_EQ(error_at(f.kv_ends[2] + 20),
            "t.gguf: metadata key #3: string length 21 exceeds the 12 bytes left in the file");
  EXPECT_EQ(error_at(f.kv_ends[3] - 1),
            "t.gguf: metadata key #3 'tokenizer.ggml.tokens': string length 2 exceeds the 1 bytes left in the file");
  EXPECT_EQ(error_at(f.tensor_info_ends[1] - 1), "t.gguf: truncated while reading tensor info #1 'b'");
  EXPECT_EQ(error_at(f.data_offset + 40),
            fmt::format("t.gguf: tensor 'b' data [{}, {}) is out of range of file size {}", f.data_offset + 32,
                        f.data_offset + 96, f.data_offset + 40));
}

// A writer-made file with every kind of value: every prefix up to the end of the last tensor's
// data must fail (the padding after the last tensor is not needed to read it).
TEST(GgufTruncationTest, EveryPrefixOfAWriterFileFails) {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("olmoe"));
  writer.set("general.alignment", GgufValue::u32(64));
  writer.set("n", GgufValue::u64(12));
  writer.set("eps", GgufValue::f32(1e-5f));
  writer.set("flag", GgufValue::boolean(false));
  writer.set("tokens", GgufValue::string_array({"<s>", "", "hello"}));
  writer.set("scores", GgufValue::f32_array({0.0f, -1.0f}));
  writer.set("empty", GgufValue::i32_array({}));
  ASSERT_TRUE(writer.add_tensor("q", DType::kQ8_0, {32, 2}, pattern_bytes(68, 1)).ok());
  ASSERT_TRUE(writer.add_tensor("f", DType::kF32, {3}, pattern_bytes(12, 2)).ok());
  const std::vector<uint8_t> image = writer.serialize();
  Result<GgufFile> full = GgufFile::parse(image, "w.gguf");
  ASSERT_TRUE(full.ok()) << full.error().message;
  const GgufTensorInfo& last = full->tensors().back();
  const size_t data_end = full->data_offset() + last.offset + last.n_bytes;
  ASSERT_LT(data_end, image.size());

  for (size_t length = 0; length < data_end; ++length) {
    const std::vector<uint8_t> prefix(image.begin(), image.begin() + static_cast<ptrdiff_t>(length));
    Result<GgufFile> file = GgufFile::parse(prefix, "w.gguf");
    ASSERT_FALSE(file.ok()) << "prefix of " << length << " bytes parsed";
    EXPECT_THAT(file.error().message, HasSubstr("w.gguf: "));
  }
  const std::vector<uint8_t> enough(image.begin(), image.begin() + static_cast<ptrdiff_t>(data_end));
  EXPECT_TRUE(GgufFile::parse(enough, "w.gguf").ok());
}

// Random byte corruption: parsing either fails or yields tensors that lie inside the image.
TEST(GgufTruncationTest, RandomCorruptionNeverCrashes) {
  const SectionedFile f = sectioned_file();
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> position(0, f.bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> flips(1, 4);
  int parsed = 0;
  for (int iteration = 0; iteration < 5000; ++iteration) {
    std::vector<uint8_t> image = f.bytes;
    for (int i = flips(rng); i > 0; --i) image[position(rng)] = static_cast<uint8_t>(byte(rng));
    Result<GgufFile> file = GgufFile::parse(image, "fuzz.gguf");
    if (!file.ok()) {
      EXPECT_THAT(file.error().message, HasSubstr("fuzz.gguf: "));
      continue;
    }
    ++parsed;
    for (const GgufTensorInfo& t : file->tensors()) {
      ASSERT_GE(t.data, image.data());
      ASSERT_LE(t.data + t.n_bytes, image.data() + image.size());
    }
  }
  EXPECT_GT(parsed, 0);  // some flips land in data or padding and leave a valid file
}

}  // namespace
}  // namespace moe::formats

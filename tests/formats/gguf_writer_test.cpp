// GgufWriter: file output (atomic, lazy tensors, progress) and the errors it returns.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/gguf.h"
#include "gguf_test_util.h"

namespace moe::formats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::pattern_bytes;
using testing_util::ScratchDir;

std::vector<std::string> files_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(GgufWriterTest, WritesFileThatOpensAndMatchesSerialize) {
  ScratchDir dir;
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.set("general.alignment", GgufValue::u32(64));
  ASSERT_TRUE(writer.add_tensor("a", DType::kF32, {10}, pattern_bytes(40, 1)).ok());
  ASSERT_TRUE(writer.add_tensor_lazy("b", DType::kQ8_0, {32, 2}, [](std::span<uint8_t> out) {
                      const auto bytes = pattern_bytes(out.size(), 2);
                      std::memcpy(out.data(), bytes.data(), out.size());
                      return ok_status();
                    }).ok());
  const std::string path = dir.file("model.gguf");
  ASSERT_TRUE(writer.write(path).ok());
  EXPECT_THAT(files_in(dir.path()), ElementsAre("model.gguf"));  // no temporary left behind

  Result<GgufFile> file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->path(), path);
  EXPECT_EQ(file->alignment(), 64u);
  ASSERT_EQ(file->tensors().size(), 2u);
  const GgufTensorInfo* b = file->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->n_bytes, 68u);
  EXPECT_EQ(std::memcmp(b->data, pattern_bytes(68, 2).data(), 68), 0);

  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(on_disk, writer.serialize());
}

TEST(GgufWriterTest, ReplacesAnExistingFile) {
  ScratchDir dir;
  const std::string path = dir.file("m.gguf");
  GgufWriter first;
  first.set("v", GgufValue::u32(1));
  ASSERT_TRUE(first.write(path).ok());
  GgufWriter second;
  second.set("v", GgufValue::u32(2));
  ASSERT_TRUE(second.write(path).ok());
  Result<GgufFile> file = GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*file->get_u32("v"), 2u);
}

TEST(GgufWriterTest, LazyTensorsAreFilledOneAtATimeInOrderWithProgress) {
  GgufWriter writer;
  std::vector<std::string> events;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "t" + std::to_string(i);
    ASSERT_TRUE(writer.add_tensor_lazy(name, DType::kF32, {4}, [&events, name](std::span<uint8_t> out) {
                        EXPECT_EQ(out.size(), 16u);
                        std::memset(out.data(), 0x11, out.size());
                        events.push_back("fill " + name);
                        return ok_status();
                      }).ok());
  }
  writer.set_progress([&events](size_t done, size_t total) {
    events.push_back(fmt::format("progress {}/{}", done, total));
  });
  EXPECT_TRUE(events.empty());  // nothing is filled before the file is written
  const std::vector<uint8_t> image = writer.serialize();
  EXPECT_THAT(events, ElementsAre("fill t0", "progress 1/3", "fill t1", "progress 2/3", "fill t2", "progress 3/3"));
  Result<GgufFile> file = GgufFile::parse(image, "lazy.gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->tensors()[2].data[15], 0x11);
}

TEST(GgufWriterTest, FailingFillerLeavesNoFile) {
  ScratchDir dir;
  GgufWriter writer;
  ASSERT_TRUE(writer.add_tensor("ok", DType::kF32, {1}, pattern_bytes(4, 0)).ok());
  ASSERT_TRUE(writer.add_tensor_lazy("bad", DType::kF32, {1}, [](std::span<uint8_t>) -> Status {
                      return make_error("quantizer ran out of patience");
                    }).ok());
  const Status status = writer.write(dir.file("m.gguf"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "tensor 'bad': quantizer ran out of patience");
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(GgufWriterTest, FailingFillerKeepsThePreviousFile) {
  ScratchDir dir;
  const std::string path = dir.file("m.gguf");
  GgufWriter good;
  good.set("v", GgufValue::u32(1));
  ASSERT_TRUE(good.write(path).ok());
  GgufWriter bad;
  ASSERT_TRUE(bad.add_tensor_lazy("x", DType::kF32, {1}, [](std::span<uint8_t>) -> Status {
                   return make_error("nope");
                 }).ok());
  ASSERT_FALSE(bad.write(path).ok());
  Result<GgufFile> file = GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*file->get_u32("v"), 1u);
  EXPECT_THAT(files_in(dir.path()), ElementsAre("m.gguf"));
}

TEST(GgufWriterTest, MissingDirectoryIsAnError) {
  ScratchDir dir;
  GgufWriter writer;
  const Status status = writer.write(dir.file("no/such/dir/m.gguf"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("cannot create '" + dir.file("no/such/dir/m.gguf")));
  EXPECT_THAT(status.error().message, HasSubstr("No such file or directory"));
}

TEST(GgufWriterTest, BadAlignmentIsAnError) {
  ScratchDir dir;
  for (const GgufValue& bad : {GgufValue::u32(0), GgufValue::u32(48), GgufValue::u64(32), GgufValue::string("32")}) {
    GgufWriter writer;
    writer.set("general.alignment", bad);
    const Status status = writer.write(dir.file("m.gguf"));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().message, "general.alignment must be a nonzero power-of-two u32 (llama.cpp requires it)");
  }
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(GgufWriterTest, ValuesThatDoNotMatchTheirTypeAreErrors) {
  ScratchDir dir;
  GgufValue too_big;
  too_big.type = GgufValueType::kUint8;
  too_big.data = uint64_t{256};
  GgufValue wrong_holder;
  wrong_holder.type = GgufValueType::kString;
  wrong_holder.data = uint64_t{1};
  GgufValue nested;
  nested.type = GgufValueType::kArray;
  nested.element_type = GgufValueType::kArray;
  nested.data = std::vector<uint64_t>{};
  const std::pair<GgufValue, std::string> cases[] = {
      {too_big, "metadata key 'k': value 256 does not fit in u8"},
      {wrong_holder, "metadata key 'k': value of type string (element type u32) holds data of another type"},
      {nested, "metadata key 'k': nested arrays are not supported"},
  };
  for (const auto& [value, message] : cases) {
    GgufWriter writer;
    writer.set("k", value);
    const Status status = writer.write(dir.file("m.gguf"));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().message, message);
  }
}

TEST(GgufWriterTest, AddTensorChecks) {
  GgufWriter writer;
  ASSERT_TRUE(writer.add_tensor("w", DType::kF32, {2}, pattern_bytes(8, 0)).ok());
  auto add = [&](std::string name, DType type, std::vector<int64_t> shape, size_t n_bytes) {
    const Status status = writer.add_tensor(std::move(name), type, std::move(shape), pattern_bytes(n_bytes, 0));
    return status.ok() ? std::string("ok") : status.error().message;
  };
  EXPECT_EQ(add("w", DType::kF32, {2}, 8), "duplicate tensor name 'w'");
  EXPECT_EQ(add("x", DType::kF32, {2}, 7), "tensor 'x': got 7 bytes, expected 8 for f32 [2]");
  EXPECT_EQ(add("x", DType::kF32, {}, 0), "tensor 'x': n_dims 0 is out of range 1..4");
  EXPECT_EQ(add("x", DType::kF32, {1, 1, 1, 1, 1}, 4), "tensor 'x': n_dims 5 is out of range 1..4");
  EXPECT_EQ(add("x", DType::kF32, {2, -1}, 0), "tensor 'x': dimension 1 is -1, must be positive (shape [2, -1])");
  EXPECT_EQ(add("x", DType::kQ8_0, {16}, 17), "tensor 'x': row of 16 elements is not a multiple of the q8_0 block size 32");
  EXPECT_EQ(add("", DType::kF32, {1}, 4), "tensor name is empty");
  EXPECT_EQ(add(std::string(64, 'n'), DType::kF32, {1}, 4),
            "tensor '" + std::string(64, 'n') + "': name is 64 bytes, llama.cpp allows at most 63");
  EXPECT_EQ(add(std::string(63, 'n'), DType::kF32, {1}, 4), "ok");

  const Status lazy = writer.add_tensor_lazy("w", DType::kF32, {2}, [](std::span<uint8_t>) { return ok_status(); });
  EXPECT_EQ(lazy.error().message, "duplicate tensor name 'w'");
  EXPECT_EQ(writer.add_tensor_lazy("y", DType::kF32, {2}, nullptr).error().message, "tensor 'y': the filler is empty");
}

}  // namespace
}  // namespace moe::formats

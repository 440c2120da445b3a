// Typed getters of GgufFile: conversions that are allowed and the errors for the rest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "formats/gguf.h"

namespace moe::formats {
namespace {

using ::testing::ElementsAre;

class GgufGettersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufWriter writer;
    GgufValue u8;
    u8.type = GgufValueType::kUint8;
    u8.data = uint64_t{200};
    writer.set("u8", u8);
    writer.set("u32", GgufValue::u32(123456));
    writer.set("i32_neg", GgufValue::i32(-5));
    writer.set("u64_big", GgufValue::u64(std::numeric_limits<uint64_t>::max()));
    writer.set("f32", GgufValue::f32(0.25f));
    writer.set("flag", GgufValue::boolean(true));
    writer.set("name", GgufValue::string("olmoe"));
    writer.set("tokens", GgufValue::string_array({"<s>", "</s>", "a"}));
    writer.set("scores", GgufValue::f32_array({-1.0f, 0.5f}));
    writer.set("types", GgufValue::i32_array({1, 2, 3}));
    GgufValue big;
    big.type = GgufValueType::kArray;
    big.element_type = GgufValueType::kUint64;
    big.data = std::vector<uint64_t>{1, std::numeric_limits<uint64_t>::max()};
    writer.set("big_u64s", big);
    image_ = writer.serialize();
    Result<GgufFile> parsed = GgufFile::parse(image_, "g.gguf");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    file_ = std::make_unique<GgufFile>(std::move(*parsed));
  }

  std::vector<uint8_t> image_;
  std::unique_ptr<GgufFile> file_;
};

TEST_F(GgufGettersTest, IntegersWidenAndNarrowWhenTheyFit) {
  EXPECT_EQ(*file_->get_u32("u8"), 200u);
  EXPECT_EQ(*file_->get_u64("u32"), 123456u);
  EXPECT_EQ(*file_->get_i64("i32_neg"), -5);
  EXPECT_EQ(*file_->get_u64("u64_big"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(file_->get_u32("i32_neg").error().message, "g.gguf: key 'i32_neg' value -5 does not fit in u32");
  EXPECT_EQ(file_->get_i64("u64_big").error().message,
            "g.gguf: key 'u64_big' value 18446744073709551615 does not fit in i64");
}

TEST_F(GgufGettersTest, FloatsAcceptIntegers) {
  EXPECT_EQ(*file_->get_f32("f32"), 0.25f);
  EXPECT_EQ(*file_->get_f32("u32"), 123456.0f);
  EXPECT_EQ(file_->get_f32("name").error().message, "g.gguf: key 'name' has type string, expected a number");
}

TEST_F(GgufGettersTest, WrongTypeNamesKeyActualAndExpected) {
  EXPECT_EQ(file_->get_u32("name").error().message, "g.gguf: key 'name' has type string, expected u32");
  EXPECT_EQ(file_->get_u32("f32").error().message, "g.gguf: key 'f32' has type f32, expected u32");
  EXPECT_EQ(file_->get_string("u32").error().message, "g.gguf: key 'u32' has type u32, expected string");
  EXPECT_EQ(file_->get_bool("u8").error().message, "g.gguf: key 'u8' has type u8, expected bool");
  EXPECT_EQ(file_->get_u32("types").error().message, "g.gguf: key 'types' has type array of i32, expected u32");
  EXPECT_EQ(file_->get_string_array("scores").error().message,
            "g.gguf: key 'scores' has type array of f32, expected array of string");
  EXPECT_EQ(file_->get_int_array("tokens").error().message,
            "g.gguf: key 'tokens' has type array of string, expected an array of integers");
  EXPECT_EQ(file_->get_f32_array("name").error().message,
            "g.gguf: key 'name' has type string, expected an array of numbers");
}

TEST_F(GgufGettersTest, MissingKey) {
  EXPECT_EQ(file_->get_u32("nope").error().message, "g.gguf: key 'nope' not found");
  EXPECT_EQ(file_->get_string_array("nope").error().message, "g.gguf: key 'nope' not found");
}

TEST_F(GgufGettersTest, StringsBoolsAndArrays) {
  EXPECT_EQ(*file_->get_string("name"), "olmoe");
  EXPECT_TRUE(*file_->get_bool("flag"));
  EXPECT_THAT(*file_->get_string_array("tokens"), ElementsAre("<s>", "</s>", "a"));
  EXPECT_THAT(*file_->get_f32_array("scores"), ElementsAre(-1.0f, 0.5f));
  EXPECT_THAT(*file_->get_f32_array("types"), ElementsAre(1.0f, 2.0f, 3.0f));
  EXPECT_THAT(*file_->get_int_array("types"), ElementsAre(1, 2, 3));
  EXPECT_EQ(file_->get_int_array("big_u64s").error().message,
            "g.gguf: key 'big_u64s' element 1 (18446744073709551615) does not fit in i64");
}

TEST_F(GgufGettersTest, OptionalGetters) {
  EXPECT_EQ(*file_->get_u32_opt("absent"), std::nullopt);
  EXPECT_EQ(*file_->get_u32_opt("u32"), 123456u);
  EXPECT_FALSE(file_->get_u32_opt("name").ok());
  EXPECT_EQ(*file_->get_f32_opt("f32"), 0.25f);
  EXPECT_EQ(*file_->get_f32_opt("absent"), std::nullopt);
  EXPECT_EQ(*file_->get_bool_opt("flag"), true);
  EXPECT_EQ(*file_->get_bool_opt("absent"), std::nullopt);
  EXPECT_EQ(*file_->get_string_opt("name"), "olmoe");
  EXPECT_EQ(file_->get_string_opt("u8").error().message, "g.gguf: key 'u8' has type u8, expected string");
}

TEST(GgufValueTest, ConstructorsAndArraySize) {
  EXPECT_EQ(GgufValue::u32(3).type, GgufValueType::kUint32);
  EXPECT_EQ(GgufValue::u32(3).array_size(), 0u);
  EXPECT_EQ(GgufValue::string("abc").array_size(), 0u);
  EXPECT_EQ(GgufValue::string_array({"a", "b"}).array_size(), 2u);
  EXPECT_EQ(GgufValue::f32_array({1, 2, 3}).element_type, GgufValueType::kFloat32);
  EXPECT_EQ(GgufValue::i32_array({}).array_size(), 0u);
  EXPECT_EQ(gguf_value_type_name(GgufValueType::kFloat64), "f64");
}

}  // namespace
}  // namespace moe::formats

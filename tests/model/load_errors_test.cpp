// A model file that parses as GGUF but is not a valid model: each case gives an error that
// names the architecture, key or tensor.
#include <gtest/gtest.h>

#include "model/model.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::copy_gguf;
using testing::TempFile;
using testing::write_random_model;

class LoadErrors : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(write_random_model(base.path, "tiny-moe", DType::kF32, 3).ok()); }
  std::string load_error(const std::function<bool(const formats::GgufTensorInfo&)>& keep,
                         const std::function<void(formats::GgufWriter&)>& edit = {}) {
    TempFile edited("load-error-edited");
    auto status = copy_gguf(base.path, edited.path, keep, edit);
    EXPECT_TRUE(status.ok()) << status.error().message;
    auto model = Model::load(edited.path);
    EXPECT_FALSE(model.ok());
    return model.ok() ? "" : model.error().message;
  }
  TempFile base{"load-error-base"};
};

auto keep_all = [](const formats::GgufTensorInfo&) { return true; };

TEST_F(LoadErrors, UnknownArchitecture) {
  const std::string e = load_error(keep_all, [](formats::GgufWriter& w) {
    w.set("general.architecture", formats::GgufValue::string("mamba9"));
  });
  EXPECT_NE(e.find("unknown architecture 'mamba9'"), std::string::npos) << e;
}

TEST_F(LoadErrors, MissingArchitectureKey) {
  // Dropping a key: copy everything but general.architecture.
  TempFile edited("load-error-noarch");
  auto file = formats::GgufFile::open(base.path);
  ASSERT_TRUE(file.ok());
  formats::GgufWriter w;
  for (const auto& [k, v] : file->metadata()) {
    if (k != "general.architecture") w.set(k, v);
  }
  for (const auto& t : file->tensors()) {
    ASSERT_TRUE(w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
  }
  ASSERT_TRUE(w.write(edited.path).ok());
  auto model = Model::load(edited.path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.error().message.find("general.architecture"), std::string::npos) << model.error().message;
}

TEST_F(LoadErrors, MissingHyperparameter) {
  TempFile edited("load-error-nohp");
  auto file = formats::GgufFile::open(base.path);
  ASSERT_TRUE(file.ok());
  formats::GgufWriter w;
  for (const auto& [k, v] : file->metadata()) {
    if (k != "llama.embedding_length") w.set(k, v);
  }
  ASSERT_TRUE(w.write(edited.path).ok());
  auto model = Model::load(edited.path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.error().message.find("llama.embedding_length"), std::string::npos) << model.error().message;
}

TEST_F(LoadErrors, MissingRequiredTensor) {
  const std::string e =
      load_error([](const formats::GgufTensorInfo& t) { return t.name != "blk.1.ffn_up_exps.weight"; });
  EXPECT_NE(e.find("missing required tensor 'blk.1.ffn_up_exps.weight'"), std::string::npos) << e;
}

TEST_F(LoadErrors, TensorOfWrongShape) {
  const std::string e = load_error(
      [](const formats::GgufTensorInfo& t) { return t.name != "blk.0.attn_q.weight"; },
      [](formats::GgufWriter& w) {
        ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight", DType::kF32, {64, 32}, std::vector<uint8_t>(64 * 32 * 4)).ok());
      });
  EXPECT_NE(e.find("tensor 'blk.0.attn_q.weight' has shape [64, 32], expected [64, 64]"), std::string::npos) << e;
}

TEST_F(LoadErrors, NormOfQuantizedType) {
  const std::string e = load_error(
      [](const formats::GgufTensorInfo& t) { return t.name != "output_norm.weight"; },
      [](formats::GgufWriter& w) {
        ASSERT_TRUE(w.add_tensor("output_norm.weight", DType::kQ8_0, {64}, std::vector<uint8_t>(2 * 34)).ok());
      });
  EXPECT_NE(e.find("tensor 'output_norm.weight' has type q8_0, expected f32"), std::string::npos) << e;
}

TEST_F(LoadErrors, ExpertsUsedAboveExpertCount) {
  const std::string e = load_error(keep_all, [](formats::GgufWriter& w) {
    w.set("llama.expert_used_count", formats::GgufValue::u32(9));
  });
  EXPECT_NE(e.find("expert_used_count 9 must be within 1..expert_count (4)"), std::string::npos) << e;
}

TEST_F(LoadErrors, HeadsNotDivisible) {
  const std::string e = load_error(keep_all, [](formats::GgufWriter& w) {
    w.set("llama.attention.head_count_kv", formats::GgufValue::u32(3));
  });
  EXPECT_NE(e.find("n_head (4) is not a multiple of n_head_kv (3)"), std::string::npos) << e;
}

TEST(ParameterCounts, SmallMoeMatchesHandCount) {
  // small-moe: 4 layers, n_embd 256, 8 heads / 4 KV heads of 32, n_ff 512, 8 experts, top-2.
  //   attention per layer: q 256*256 + k 256*128 + v 256*128 + o 256*256 = 196,608
  //   norms per layer: 2 * 256 = 512;  router: 256 * 8 = 2,048
  //   one expert: 3 * 256 * 512 = 393,216;  8 experts: 3,145,728
  //   per layer: 196,608 + 512 + 2,048 + 3,145,728 = 3,344,896;  4 layers: 13,379,584
  //   embeddings + output: 2 * 256 * n_vocab; output_norm: 256
  //   active: total - 4 layers * 6 unused experts * 393,216 = total - 9,437,184
  TempFile file("small-moe-count");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 1).ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const int64_t n_vocab = (*model)->hparams().n_vocab;
  const ParameterCounts counts = (*model)->parameter_counts();
  const int64_t expected_total = 13379584 + 2 * 256 * n_vocab + 256;
  EXPECT_EQ(counts.total, expected_total);
  EXPECT_EQ(counts.active, expected_total - 9437184);
  EXPECT_EQ(counts.expert, 4 * 3145728);
}

}  // namespace
}  // namespace moe::model

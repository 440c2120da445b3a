// gpt-oss: hyperparameters read as llama.cpp reads them, the errors for what it requires, and its
// routing (top-k by raw logit, softmax over the chosen). Token-level agreement with llama.cpp is
// in llama_cpp_reference_test.cpp (gpt-oss-*.txt).
#include <gtest/gtest.h>

#include <cmath>

#include "model/blocks.h"
#include "model/model.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::TempFile;
using testing::write_random_model;

class GptOss : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(write_random_model(base.path, "tiny-moe", DType::kF32, 5, {}, "gpt-oss").ok());
  }
  // Returns the load error of the base model without metadata key `dropped`.
  std::string error_without_key(const std::string& dropped) {
    TempFile edited("gpt-oss-edited");
    auto file = formats::GgufFile::open(base.path);
    EXPECT_TRUE(file.ok());
    formats::GgufWriter w;
    for (const auto& [k, v] : file->metadata()) {
      if (k != dropped) w.set(k, v);
    }
    for (const auto& t : file->tensors()) {
      EXPECT_TRUE(w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
    }
    EXPECT_TRUE(w.write(edited.path).ok());
    auto model = Model::load(edited.path);
    EXPECT_FALSE(model.ok());
    return model.ok() ? "" : model.error().message;
  }
  TempFile base{"gpt-oss-base"};
};

TEST_F(GptOss, ReadsWindowYarnAndRouting) {
  auto model = Model::load(base.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const HParams& hp = (*model)->hparams();
  EXPECT_EQ(hp.n_swa, 8);
  EXPECT_EQ(hp.swa_period, 2);
  EXPECT_TRUE(hp.layer_is_swa(0));   // llama.cpp: il % 2 < 1 is windowed
  EXPECT_FALSE(hp.layer_is_swa(1));
  EXPECT_TRUE(hp.yarn.enabled);
  EXPECT_EQ(hp.yarn.n_ctx_orig, 4096);
  EXPECT_FLOAT_EQ(hp.rope_freq_scale, 1.0f / 32.0f);
  EXPECT_EQ(hp.rope_layout, kernels::RopeLayout::kNeox);
  EXPECT_EQ(hp.moe.gating, GatingFunction::kSoftmaxWeight);
  EXPECT_FALSE(hp.moe.normalize_top_k);
  EXPECT_FLOAT_EQ(hp.moe.swiglu_alpha, 1.702f);
  EXPECT_FLOAT_EQ(hp.moe.swiglu_limit, 7.0f);
}

TEST_F(GptOss, MissingSlidingWindowIsAnError) {
  const std::string e = error_without_key("gpt-oss.attention.sliding_window");
  EXPECT_NE(e.find("gpt-oss: missing required key 'gpt-oss.attention.sliding_window'"), std::string::npos) << e;
}

TEST_F(GptOss, MissingExpertFeedForwardLengthIsAnError) {
  const std::string e = error_without_key("gpt-oss.expert_feed_forward_length");
  EXPECT_NE(e.find("'gpt-oss.expert_feed_forward_length'"), std::string::npos) << e;
}

TEST(GptOssRouting, SoftmaxOverTheChosenLogits) {
  MoeSpec spec;
  spec.n_expert = 4;
  spec.n_expert_used = 2;
  spec.gating = GatingFunction::kSoftmaxWeight;
  spec.normalize_top_k = false;
  const float logits[4] = {0.5f, 3.0f, -1.0f, 2.0f};
  const RoutedToken routed = route_token(spec, logits);
  ASSERT_EQ(routed.experts, (std::vector<int>{1, 3}));
  const float e = std::exp(-1.0f);  // exp(2 - 3)
  EXPECT_NEAR(routed.weights[0], 1.0f / (1.0f + e), 1e-6f);
  EXPECT_NEAR(routed.weights[1], e / (1.0f + e), 1e-6f);
}

}  // namespace
}  // namespace moe::model

// deepseek2 (multi-head latent attention): hyperparameters read as llama.cpp reads them, errors
// that name a missing key or a mis-shaped tensor, and the latent cache giving the same logits
// whether a prompt runs in one micro-batch or token by token. Agreement with llama.cpp itself is
// checked by llama_cpp_reference_test (deepseek2-*.txt).
#include <gtest/gtest.h>

#include <cmath>

#include "model/context.h"
#include "model/model.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::copy_gguf;
using testing::TempFile;
using testing::write_random_model;

class Deepseek2 : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(write_random_model(base.path, "tiny-moe", DType::kF32, 3, {}, "deepseek2").ok());
  }
  // Returns the load error of the base model with `key` left out.
  std::string error_without_key(const std::string& key) {
    TempFile edited("deepseek2-nokey");
    auto file = formats::GgufFile::open(base.path);
    EXPECT_TRUE(file.ok());
    formats::GgufWriter w;
    for (const auto& [k, v] : file->metadata()) {
      if (k != key) w.set(k, v);
    }
    for (const auto& t : file->tensors()) {
      EXPECT_TRUE(w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
    }
    EXPECT_TRUE(w.write(edited.path).ok());
    return load_error(edited.path);
  }
  std::string error_with(const std::function<bool(const formats::GgufTensorInfo&)>& keep,
                         const std::function<void(formats::GgufWriter&)>& edit) {
    TempFile edited("deepseek2-edited");
    EXPECT_TRUE(copy_gguf(base.path, edited.path, keep, edit).ok());
    return load_error(edited.path);
  }
  static std::string load_error(const std::string& path) {
    auto model = Model::load(path);
    EXPECT_FALSE(model.ok());
    return model.ok() ? "" : model.error().message;
  }
  TempFile base{"deepseek2-base"};
};

auto keep_all = [](const formats::GgufTensorInfo&) { return true; };

TEST_F(Deepseek2, ReadsMlaShape) {
  auto model = Model::load(base.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const HParams& hp = (*model)->hparams();
  // tiny-moe: n_embd 64, 4 heads of 16 (+ 8 RoPE dims), latent 32, no Q compression.
  EXPECT_EQ(hp.mla.kv_lora_rank, 32);
  EXPECT_EQ(hp.mla.q_lora_rank, 0);
  EXPECT_EQ(hp.mla.head_dim_k, 24);
  EXPECT_EQ(hp.mla.head_dim_v, 16);
  EXPECT_EQ(hp.n_rot, 8);
  EXPECT_EQ(hp.n_head_kv, 1);
  EXPECT_TRUE(hp.cache_v_in_k);
  EXPECT_EQ(hp.moe.gating, GatingFunction::kSoftmax);
  EXPECT_FALSE(hp.moe.selection_bias);
  EXPECT_FLOAT_EQ(hp.kq_scale, 1.0f / std::sqrt(24.0f));
}

TEST_F(Deepseek2, V3PresetReadsRoutingAndYarn) {
  TempFile file("deepseek2-v3");
  ASSERT_TRUE(write_random_model(file.path, "small-moe-v3", DType::kF32, 3, {}, "deepseek2").ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const HParams& hp = (*model)->hparams();
  EXPECT_GT(hp.mla.q_lora_rank, 0);
  EXPECT_EQ(hp.moe.gating, GatingFunction::kSigmoid);
  EXPECT_TRUE(hp.moe.selection_bias);
  EXPECT_TRUE(hp.moe.normalize_top_k);
  EXPECT_EQ(hp.moe.n_group, 4);
  EXPECT_EQ(hp.moe.n_group_used, 2);
  EXPECT_TRUE(hp.yarn.enabled);
  EXPECT_FLOAT_EQ(hp.rope_freq_scale, 0.25f);
  // mscale = 1 + 0.1 * mscale_all_dim (1) * ln 4, squared into the softmax scale.
  const float mscale = 1.0f + 0.1f * std::log(4.0f);
  EXPECT_NEAR(hp.kq_scale, mscale * mscale / std::sqrt(48.0f), 1e-6f);
}

TEST_F(Deepseek2, MissingKeysAreNamed) {
  for (const std::string key : {"deepseek2.attention.kv_lora_rank", "deepseek2.attention.key_length_mla",
                                "deepseek2.attention.value_length_mla", "deepseek2.expert_shared_count",
                                "deepseek2.expert_feed_forward_length",
                                "deepseek2.attention.layer_norm_rms_epsilon"}) {
    const std::string e = error_without_key(key);
    EXPECT_NE(e.find("missing required key '" + key + "'"), std::string::npos) << key << ": " << e;
  }
}

TEST_F(Deepseek2, CacheShapeMismatchIsNamed) {
  const std::string e = error_with(keep_all, [](formats::GgufWriter& w) {
    w.set("deepseek2.attention.key_length", formats::GgufValue::u32(24));
  });
  EXPECT_NE(e.find("expected attention.head_count_kv 1, key_length 40"), std::string::npos) << e;
}

TEST_F(Deepseek2, UnsupportedGatingIsNamed) {
  const std::string e = error_with(keep_all, [](formats::GgufWriter& w) {
    w.set("deepseek2.expert_gating_func", formats::GgufValue::u32(3));
  });
  EXPECT_NE(e.find("expert_gating_func 3 is not supported"), std::string::npos) << e;
}

TEST_F(Deepseek2, WrongLatentShapeIsNamed) {
  const std::string e = error_with(
      [](const formats::GgufTensorInfo& t) { return t.name != "blk.0.attn_kv_a_mqa.weight"; },
      [](formats::GgufWriter& w) {
        ASSERT_TRUE(
            w.add_tensor("blk.0.attn_kv_a_mqa.weight", DType::kF32, {64, 32}, std::vector<uint8_t>(64 * 32 * 4)).ok());
      });
  EXPECT_NE(e.find("tensor 'blk.0.attn_kv_a_mqa.weight' has shape [64, 32], expected [64, 40]"), std::string::npos)
      << e;
}

TEST_F(Deepseek2, MissingAbsorbedKeyMatrixIsNamed) {
  const std::string e = error_with([](const formats::GgufTensorInfo& t) { return t.name != "blk.1.attn_k_b.weight"; },
                                   {});
  EXPECT_NE(e.find("missing required tensor 'blk.1.attn_k_b.weight'"), std::string::npos) << e;
}

// The latent cache written by a prompt batch must serve later tokens exactly as if each had been
// evaluated alone (F32 cache, so rounding cannot differ between the two paths).
TEST_F(Deepseek2, BatchAndTokenByTokenAgree) {
  TempFile file("deepseek2-batch");
  ASSERT_TRUE(write_random_model(file.path, "tiny-moe-v3", DType::kF32, 5, {}, "deepseek2").ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  ThreadPool pool(2);
  ContextParams params;
  params.kv_type = KvType::kF32;
  const std::vector<int32_t> tokens = {1, 40, 300, 7, 99, 512, 3, 18};
  auto batch = InferenceContext::create(**model, params, pool);
  auto single = InferenceContext::create(**model, params, pool);
  ASSERT_TRUE(batch.ok() && single.ok());
  ASSERT_TRUE((*batch)->eval(tokens).ok());
  for (int32_t token : tokens) ASSERT_TRUE((*single)->eval(std::span<const int32_t>(&token, 1)).ok());
  const auto a = (*batch)->logits();
  const auto b = (*single)->logits();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4f) << i;
}

}  // namespace
}  // namespace moe::model

#include <gtest/gtest.h>

#include <cmath>

#include "model/context.h"
#include "model/model.h"
#include "reference_forward.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::ReferenceLlama;
using testing::TempFile;
using testing::write_random_model;

double max_abs(std::span<const float> v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// Our forward pass (f32 weights, f32 KV cache) against the independent double-precision
// reference, token by token, for dense and MoE models.
class ForwardVsReference : public ::testing::TestWithParam<const char*> {};

TEST_P(ForwardVsReference, LogitsAgreeAtEveryPosition) {
  TempFile file("forward-ref");
  ASSERT_TRUE(write_random_model(file.path, GetParam(), DType::kF32, 7).ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  ReferenceLlama reference((*model)->file());
  ThreadPool pool(2);
  ContextParams params;
  params.n_ctx = 64;
  params.kv_type = KvType::kF32;
  auto ctx = InferenceContext::create(**model, params, pool);
  ASSERT_TRUE(ctx.ok());
  const std::vector<int32_t> tokens = {1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33};
  for (int32_t token : tokens) {
    ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(&token, 1)).ok());
    const std::vector<double> expected = reference.step(token);
    const auto logits = (*ctx)->logits();
    ASSERT_EQ(logits.size(), expected.size());
    const double scale = max_abs(logits);
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_NEAR(logits[i], expected[i], 1e-4 * scale) << "token index " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, ForwardVsReference, ::testing::Values("tiny", "tiny-moe"));

// A prompt evaluated in one batch (and in uneven micro-batches) gives the same logits as the
// same tokens fed one at a time.
TEST(Forward, BatchedPromptEqualsTokenByToken) {
  TempFile file("forward-batch");
  ASSERT_TRUE(write_random_model(file.path, "tiny-moe", DType::kF32, 11).ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  ThreadPool pool(2);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 37; ++i) tokens.push_back(3 + (i * 37) % 250);
  auto run = [&](int64_t n_ubatch, bool one_by_one) {
    ContextParams params;
    params.n_ctx = 64;
    params.n_ubatch = n_ubatch;
    auto ctx = InferenceContext::create(**model, params, pool);
    if (one_by_one) {
      for (int32_t t : tokens) EXPECT_TRUE((*ctx)->eval(std::span<const int32_t>(&t, 1)).ok());
    } else {
      EXPECT_TRUE((*ctx)->eval(tokens).ok());
    }
    return std::vector<float>((*ctx)->logits().begin(), (*ctx)->logits().end());
  };
  const std::vector<float> single = run(512, true);
  for (int64_t ubatch : {512, 5}) {
    const std::vector<float> batched = run(ubatch, false);
    const double scale = max_abs(single);
    for (size_t i = 0; i < single.size(); ++i) ASSERT_NEAR(batched[i], single[i], 1e-4 * scale);
  }
}

TEST(Forward, ContextOverflowAndBadTokenAreErrors) {
  TempFile file("forward-errors");
  ASSERT_TRUE(write_random_model(file.path, "tiny", DType::kF32, 1).ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok());
  ThreadPool pool(1);
  ContextParams params;
  params.n_ctx = 4;
  auto ctx = InferenceContext::create(**model, params, pool);
  ASSERT_TRUE(ctx.ok());
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  auto overflow = (*ctx)->eval(five);
  ASSERT_FALSE(overflow.ok());
  EXPECT_NE(overflow.error().message.find("context is full"), std::string::npos);
  const std::vector<int32_t> bad = {1, 100000};
  auto out_of_range = (*ctx)->eval(bad);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.error().message.find("token id 100000 is out of range"), std::string::npos);
  EXPECT_EQ((*ctx)->n_past(), 0);
}

// Quantized weights stay close to the f32 model they were quantized from.
TEST(Forward, QuantizedModelsTrackTheF32Model) {
  ThreadPool pool(2);
  const std::vector<int32_t> tokens = {1, 84, 104, 101, 32, 99, 97, 116};
  std::vector<float> f32_logits;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1,
                     DType::kQ5_0, DType::kQ5_1}) {
    TempFile file("forward-quant");
    // Dense: MoE routing flips would turn small weight errors into jumps and hide a kernel bug.
    ASSERT_TRUE(write_random_model(file.path, "small-moe", type, 5, [](HParams& hp) { hp.moe = MoeSpec{}; }).ok())
        << dtype_name(type);
    auto model = Model::load(file.path);
    ASSERT_TRUE(model.ok()) << model.error().message;
    auto ctx = InferenceContext::create(**model, ContextParams{}, pool);
    ASSERT_TRUE((*ctx)->eval(tokens).ok());
    std::vector<float> logits((*ctx)->logits().begin(), (*ctx)->logits().end());
    if (type == DType::kF32) {
      f32_logits = logits;
      continue;
    }
    double err = 0, ref = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      err += (logits[i] - f32_logits[i]) * (logits[i] - f32_logits[i]);
      ref += f32_logits[i] * f32_logits[i];
    }
    // Normalised error grows with fewer bits; 4-bit types lose the most.
    const double nmse = err / ref;
    // Bounds from the types' bits through 4 layers (measured: f16 1e-6, bf16 5e-5, q8_0 6e-4,
    // q5 ~0.02, q4 ~0.07-0.09); a kernel bug shows up as an error of order 1.
    double bound = 0.15;
    if (type == DType::kF16 || type == DType::kBF16) bound = 1e-3;
    if (type == DType::kQ8_0) bound = 5e-3;
    if (type == DType::kQ5_0 || type == DType::kQ5_1) bound = 0.05;
    EXPECT_LT(nmse, bound) << dtype_name(type);
  }
}

}  // namespace
}  // namespace moe::model

// The whole network: parameter gradients against finite differences (covers MoE dispatch and
// combine, routing, residuals and norms end to end), and logits equal to the inference engine's.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/context.h"
#include "model/model.h"
#include "tokenizer/vocab.h"
#include "train/network.h"
#include "grad_check.h"
#include "train_test_util.h"

namespace moe::train {
namespace {

using testing::expect_gradient;
using testing::random_vector;

Batch random_batch(int64_t n_seq, int64_t seq_len, int64_t n_vocab, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.n_seq = n_seq;
  b.seq_len = seq_len;
  for (int64_t i = 0; i < n_seq * seq_len; ++i) {
    b.tokens.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_vocab))));
    b.targets.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_vocab))));
  }
  return b;
}

// Widens the initial weights so gradients are far above float rounding in the checks.
void widen(TrainModel& m) {
  for (Param& p : m.params()) {
    if (!p.decay) continue;
    for (float& x : p.value) x *= 15.0f;
  }
}

class NetworkGrad : public ::testing::TestWithParam<BalanceMode> {};

TEST_P(NetworkGrad, EveryParameter) {
  ThreadPool pool(2);
  model::HParams hp = make_hparams(24, 2, 16, 4, 2, 20, 4, 2, 8);
  hp.moe.n_leading_dense = 0;
  RouterSpec router;
  router.balance = GetParam();
  router.aux_coef = 0.1f;
  router.z_coef = 0.01f;
  auto model = TrainModel::create(hp, router, 3);
  ASSERT_TRUE(model.ok()) << model.error().message;
  widen(*model);
  if (GetParam() == BalanceMode::kBias) model->expert_bias()[0] = {0.05f, -0.02f, 0.0f, 0.01f};
  Network net(*model, pool);
  const Batch batch = random_batch(2, 6, hp.n_vocab, 11);
  auto loss = [&] {
    const ForwardStats s = net.forward(batch);
    return s.ce_sum / static_cast<double>(batch.n_tokens()) + s.aux + s.z;
  };
  loss();
  model->zero_grad();
  net.backward();
  for (Param& p : model->params()) {
    const std::vector<float> grad = p.grad;
    expect_gradient(p.name.c_str(), p.value, grad, loss, 1e-3f, 3e-2, 48);
  }
}

INSTANTIATE_TEST_SUITE_P(Balance, NetworkGrad, ::testing::Values(BalanceMode::kAuxLoss, BalanceMode::kBias));

TEST(NetworkGrad, DenseModel) {
  ThreadPool pool(2);
  const model::HParams hp = make_hparams(24, 2, 16, 4, 4, 20, 0, 0, 8);
  auto model = TrainModel::create(hp, RouterSpec{}, 5);
  ASSERT_TRUE(model.ok()) << model.error().message;
  widen(*model);
  Network net(*model, pool);
  const Batch batch = random_batch(2, 5, hp.n_vocab, 12);
  auto loss = [&] { return net.forward(batch).ce_sum / static_cast<double>(batch.n_tokens()); };
  loss();
  model->zero_grad();
  net.backward();
  for (Param& p : model->params()) {
    const std::vector<float> grad = p.grad;
    expect_gradient(p.name.c_str(), p.value, grad, loss, 1e-3f, 3e-2, 48);
  }
}

// Trains a few steps, exports, loads with model::Model and compares every position's logits
// against InferenceContext (f32 KV cache) fed one token at a time.
void expect_logits_match_inference(TrainOptions o, int n_steps) {
  ThreadPool pool(2);
  const tokenizer::VocabData vocab_data = tokenizer::builtin_byte_vocab();
  const auto n_vocab = static_cast<int64_t>(vocab_data.tokens.size());
  auto data = DataSet::from_corpora({testing::random_corpus("rand", n_vocab, 2000, 1)}, o.ctx);
  ASSERT_TRUE(data.ok()) << data.error().message;
  auto trainer = Trainer::create(o, *data, n_vocab, pool);
  ASSERT_TRUE(trainer.ok()) << trainer.error().message;
  for (int i = 0; i < n_steps; ++i) (*trainer)->step();

  const std::string path =
      (std::filesystem::temp_directory_path() / ("moe-train-export-" + std::to_string(::getpid()) + ".gguf")).string();
  ASSERT_TRUE((*trainer)->export_gguf(path, [&](formats::GgufWriter& w) {
    tokenizer::write_vocab_metadata(vocab_data, w);
  }).ok());
  auto loaded = model::Model::load(path);
  std::remove(path.c_str());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;

  const Batch batch = random_batch(1, 12, n_vocab, 3);
  (*trainer)->network().forward(batch);
  const std::vector<float>& train_logits = (*trainer)->network().logits();
  model::ContextParams params;
  params.n_ctx = 32;
  params.kv_type = model::KvType::kF32;
  auto ctx = model::InferenceContext::create(**loaded, params, pool);
  ASSERT_TRUE(ctx.ok());
  for (int64_t t = 0; t < batch.seq_len; ++t) {
    ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(&batch.tokens[static_cast<size_t>(t)], 1)).ok());
    const auto logits = (*ctx)->logits();
    double max_abs = 0.0, max_err = 0.0;
    for (int64_t v = 0; v < n_vocab; ++v) {
      const float mine = train_logits[static_cast<size_t>(t * n_vocab + v)];
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(logits[static_cast<size_t>(v)])));
      max_err = std::max(max_err, static_cast<double>(std::fabs(mine - logits[static_cast<size_t>(v)])));
    }
    EXPECT_LE(max_err, 1e-4 * max_abs) << "position " << t;
  }
}

TEST(Export, LogitsMatchInferenceMoe) { expect_logits_match_inference(testing::tiny_options(), 5); }

TEST(Export, LogitsMatchInferenceDenseUntrained) {
  TrainOptions o = testing::tiny_options();
  o.n_expert = 0;
  o.n_head_kv = 4;
  expect_logits_match_inference(o, 0);
}

}  // namespace
}  // namespace moe::train

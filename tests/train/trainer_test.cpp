// The training run as a whole: bit-exact resume from a checkpoint, a short run whose loss falls,
// the schedule, data sources and the loss-curve writer.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tokenizer/tokenizer.h"
#include "train/loop.h"
#include "train/svg.h"
#include "train_test_util.h"

namespace moe::train {
namespace {

std::string temp_path(const std::string& stem) {
  return (std::filesystem::temp_directory_path() / (stem + "-" + std::to_string(::getpid()))).string();
}

class Resume : public ::testing::TestWithParam<BalanceMode> {};

// Train 6 steps, checkpoint, train on: a fresh trainer loaded from the checkpoint must give the
// very same next losses as the uninterrupted run.
TEST_P(Resume, NextStepLossIsIdentical) {
  ThreadPool pool(2);
  TrainOptions o = testing::tiny_options();
  o.router.balance = GetParam();
  auto data = DataSet::from_corpora({testing::random_corpus("a", 64, 3000, 1), testing::random_corpus("b", 64, 2000, 2)},
                                    o.ctx);
  ASSERT_TRUE(data.ok()) << data.error().message;
  auto run = Trainer::create(o, *data, 64, pool);
  ASSERT_TRUE(run.ok());
  for (int i = 0; i < 6; ++i) (*run)->step();
  const std::string path = temp_path("moe-train-ckpt");
  ASSERT_TRUE((*run)->save_checkpoint(path).ok());
  const double expected1 = (*run)->step().loss;
  const double expected2 = (*run)->step().loss;

  auto resumed = Trainer::create(o, *data, 64, pool);
  ASSERT_TRUE(resumed.ok());
  const Status loaded = (*resumed)->load_checkpoint(path);
  std::remove(path.c_str());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ((*resumed)->step_index(), 6);
  EXPECT_EQ((*resumed)->step().loss, expected1);
  EXPECT_EQ((*resumed)->step().loss, expected2);
  for (size_t i = 0; i < (*run)->model().params().size(); ++i) {
    ASSERT_EQ((*run)->model().params()[i].value, (*resumed)->model().params()[i].value) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Balance, Resume, ::testing::Values(BalanceMode::kAuxLoss, BalanceMode::kBias));

TEST(Resume, RejectsADifferentModel) {
  ThreadPool pool(1);
  TrainOptions o = testing::tiny_options();
  auto data = DataSet::from_corpora({testing::random_corpus("a", 64, 1000, 1)}, o.ctx);
  ASSERT_TRUE(data.ok());
  auto run = Trainer::create(o, *data, 64, pool);
  const std::string path = temp_path("moe-train-ckpt-mismatch");
  ASSERT_TRUE((*run)->save_checkpoint(path).ok());
  o.n_embd = 64;
  auto other = Trainer::create(o, *data, 64, pool);
  const Status s = (*other)->load_checkpoint(path);
  std::remove(path.c_str());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("different model"), std::string::npos) << s.error().message;
}

TEST(Determinism, SameSeedSameRunAnyThreadCount) {
  TrainOptions o = testing::tiny_options();
  auto data = DataSet::from_corpora({testing::random_corpus("a", 64, 3000, 1)}, o.ctx);
  ASSERT_TRUE(data.ok());
  ThreadPool one(1), two(2);
  auto a = Trainer::create(o, *data, 64, one);
  auto b = Trainer::create(o, *data, 64, two);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*a)->step().loss, (*b)->step().loss) << "step " << i;
}

// Sentences from a small grammar: enough structure for a tiny model to learn fast.
std::string grammar_text(size_t n_sentences) {
  const char* subjects[] = {"the king", "a shepherd", "the people", "his son", "the lord"};
  const char* verbs[] = {"went", "spoke", "came", "looked", "rested"};
  const char* places[] = {"to the city", "unto the river", "into the house", "upon the mountain"};
  Rng rng(99);
  std::string text;
  for (size_t i = 0; i < n_sentences; ++i) {
    text += subjects[rng.below(5)];
    text += ' ';
    text += verbs[rng.below(5)];
    text += ' ';
    text += places[rng.below(4)];
    text += ".\n";
  }
  return text;
}

TEST(TrainingRun, LossFallsOnASmallText) {
  ThreadPool pool(2);
  auto vocab = load_train_vocab("builtin");
  ASSERT_TRUE(vocab.ok());
  const std::string path = temp_path("moe-train-text") + ".txt";
  std::ofstream(path) << grammar_text(1500);
  auto data = DataSet::load({DataSource{"grammar", path, 1.0}}, vocab->vocab, 0.1, 32, pool);
  std::remove(path.c_str());
  ASSERT_TRUE(data.ok()) << data.error().message;
  TrainOptions o = testing::tiny_options();
  o.n_embd = 48;
  o.n_head = 4;
  o.n_head_kv = 4;
  o.ctx = 32;
  o.batch = 8;
  o.steps = 200;
  o.optim.warmup = 20;
  o.optim.lr = 5e-3f;
  auto trainer = Trainer::create(o, *data, vocab->vocab.size(), pool);
  ASSERT_TRUE(trainer.ok());
  const double initial = (*trainer)->evaluate().mean;
  LoopOptions loop;
  loop.log_every = 50;
  loop.eval_every = 100;
  loop.svg_path = temp_path("moe-train-curve") + ".svg";
  ASSERT_TRUE(run_training(**trainer, loop).ok());
  const double final_loss = (*trainer)->evaluate().mean;
  EXPECT_TRUE(std::filesystem::exists(loop.svg_path));
  std::remove(loop.svg_path.c_str());
  // From ln(vocab) ~ 7.4 nats at random init to under half that: the model learned the words.
  EXPECT_GT(initial, 7.0);
  EXPECT_LT(final_loss, initial - 4.0) << "initial " << initial << " final " << final_loss;
}

TEST(Schedule, WarmupThenCosineToFloor) {
  OptimizerConfig c;
  c.lr = 1.0f;
  c.warmup = 10;
  c.total_steps = 110;
  c.min_lr_ratio = 0.1f;
  EXPECT_FLOAT_EQ(learning_rate(c, 0), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate(c, 9), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(c, 10), 1.0f);
  EXPECT_NEAR(learning_rate(c, 60), 0.55f, 1e-6);
  EXPECT_FLOAT_EQ(learning_rate(c, 110), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate(c, 500), 0.1f);
}

TEST(Optimizer, NoDecayOnNormsAndClipping) {
  ThreadPool pool(1);
  auto model = TrainModel::create(make_hparams(16, 1, 8, 2, 2, 8, 2, 1, 4), RouterSpec{}, 1);
  ASSERT_TRUE(model.ok());
  OptimizerConfig c;
  c.weight_decay = 0.5f;
  c.clip_norm = 1.0f;
  AdamW adam(c, *model);
  for (Param& p : model->params()) std::fill(p.grad.begin(), p.grad.end(), 10.0f);
  const double norm = adam.clip_gradients(pool, *model);
  EXPECT_NEAR(norm, 10.0 * std::sqrt(static_cast<double>(model->n_params())), 1e-2 * norm);
  double after = 0.0;
  for (const Param& p : model->params()) {
    for (float g : p.grad) after += static_cast<double>(g) * g;
  }
  EXPECT_NEAR(std::sqrt(after), 1.0, 1e-4);
  for (Param& p : model->params()) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
  adam.step(pool, *model, 0.1f);
  // Zero gradients: only decay moves weights, and never the norms (which start at 1).
  for (const Param& p : model->params()) {
    if (!p.decay) {
      EXPECT_EQ(p.value[0], 1.0f) << p.name;
    }
  }
}

TEST(Data, ParsesSources) {
  auto plain = parse_data_source("/tmp/a.txt");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->name, "a.txt");
  EXPECT_EQ(plain->weight, 1.0);
  auto named = parse_data_source("bible=/data/kjv.txt:3.5");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->name, "bible");
  EXPECT_EQ(named->path, "/data/kjv.txt");
  EXPECT_EQ(named->weight, 3.5);
  EXPECT_FALSE(parse_data_source("x=/a:heavy").ok());
  EXPECT_FALSE(parse_data_source("x=/a:-1").ok());
}

TEST(Data, MixtureFollowsWeightsAndValidationIsHeldOut) {
  std::vector<Corpus> corpora(2);
  corpora[0].name = "zeros";
  corpora[0].weight = 3.0;
  corpora[0].train.assign(100, 0);
  corpora[0].valid.assign(40, 2);
  corpora[1].name = "ones";
  corpora[1].weight = 1.0;
  corpora[1].train.assign(100, 1);
  corpora[1].valid.assign(40, 3);
  auto data = DataSet::from_corpora(corpora, 8);
  ASSERT_TRUE(data.ok());
  Rng rng(5);
  Batch b;
  int zeros = 0;
  for (int i = 0; i < 200; ++i) {
    data->sample_train(rng, 4, 8, b);
    for (int s = 0; s < 4; ++s) zeros += b.tokens[static_cast<size_t>(s * 8)] == 0;
    for (int32_t t : b.tokens) ASSERT_LE(t, 1);  // never a validation token
  }
  EXPECT_NEAR(zeros / 800.0, 0.75, 0.05);
  const auto valid = data->validation_batches(1, 2, 8, 100);
  ASSERT_EQ(valid.size(), 2u);  // 4 windows of 8 (+1 target) fit in 40 tokens, 2 per batch
  EXPECT_EQ(valid[0].tokens[0], 3);
}

TEST(Svg, PlotsTrainLineAndValidationDots) {
  std::vector<LossPoint> history = {{1, 5.0, NAN}, {2, 4.0, 4.2}, {3, 3.0, NAN}};
  const std::string svg = loss_curve_svg(history, "t");
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_EQ(svg.find("<circle") != std::string::npos, true);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace moe::train

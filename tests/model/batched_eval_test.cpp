// BatchEvaluator (continuous batching): several sequences in one step give each sequence the
// logits it gets alone, whatever shares its steps and however its prompt is chunked, for the
// attention variants (standard, MLA, gpt-oss sinks) and for dense, MoE and shared-expert FFNs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../tile_switch.h"
#include "model/context.h"
#include "model/model.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::TempFile;
using testing::write_random_model;

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<float> copy(std::span<const float> v) { return {v.begin(), v.end()}; }

// The prompts of the sequences: different lengths, so segments differ in size and position.
std::vector<std::vector<int32_t>> test_prompts() {
  std::vector<std::vector<int32_t>> prompts;
  for (int s = 0; s < 4; ++s) {
    std::vector<int32_t> p = {1};
    for (int i = 0; i < 3 + 5 * s; ++i) p.push_back(3 + (i * 37 + s * 101) % 250);
    prompts.push_back(p);
  }
  return prompts;
}

constexpr int kSteps = 6;

// Per sequence: the logits after the prompt and after each greedy token (kSteps + 1 vectors).
using Trace = std::vector<std::vector<float>>;

// Hands out experts from the mapped tensors as an expert store hands out its cached copies, in
// reverse order (a store reorders them), and checks the protocol: per layer and step one
// begin_layer, then each of its experts acquired once and released.
class CheckingSource final : public ExpertSource {
 public:
  // `all_ready`: report every expert as in memory (one grouped pass) or none (one by one).
  CheckingSource(const Model& model, bool all_ready)
      : model_(model), all_ready_(all_ready), begun_(static_cast<size_t>(model.hparams().n_layer), 0) {}

  size_t begin_layer(int layer, std::vector<int>& experts) override {
    if (!pending_.empty() || held_ != 0) ++protocol_errors_;
    std::reverse(experts.begin(), experts.end());
    pending_ = experts;
    layer_ = layer;
    ++begun_[static_cast<size_t>(layer)];
    return all_ready_ ? experts.size() : 0;
  }
  void hint(int, const float*, int64_t) override {}
  ExpertWeights acquire(int layer, int expert) override {
    const auto at = std::find(pending_.begin(), pending_.end(), expert);
    if (layer != layer_ || at == pending_.end()) {
      ++protocol_errors_;
    } else {
      pending_.erase(at);
    }
    ++held_;
    return mapped_expert_weights(model_.weights().layers[static_cast<size_t>(layer)], expert);
  }
  void release(int, int) override { --held_; }
  Status status() const override { return ok_status(); }

  // Returns how many steps asked for the experts of `layer`.
  int64_t layers_begun(int layer) const { return begun_[static_cast<size_t>(layer)]; }
  int64_t protocol_errors() const { return protocol_errors_ + (pending_.empty() && held_ == 0 ? 0 : 1); }

 private:
  const Model& model_;
  bool all_ready_;
  std::vector<int64_t> begun_;
  std::vector<int> pending_;
  int layer_ = -1;
  int held_ = 0;
  int64_t protocol_errors_ = 0;
};

class BatchedEval : public ::testing::TestWithParam<std::tuple<const char*, const char*, DType>> {
 protected:
  void SetUp() override {
    const auto& [arch, preset, type] = GetParam();
    ASSERT_TRUE(write_random_model(file_.path, preset, type, 21, {}, arch).ok());
    auto loaded = Model::load(file_.path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    model_ = std::move(loaded).value();
  }

  std::unique_ptr<InferenceContext> new_sequence() {
    ContextParams params;
    params.n_ctx = 64;
    auto ctx = InferenceContext::create(*model_, params, pool_);
    EXPECT_TRUE(ctx.ok());
    return std::move(ctx).value();
  }

  // Runs all prompts together (each prefilled in chunks of `chunk` tokens, all sequences in the
  // same steps), then kSteps greedy tokens for all of them in shared steps.
  // With `source`, routed experts come from it; n_steps_ counts the steps.
  std::vector<Trace> run_together(const std::vector<std::vector<int32_t>>& prompts, size_t chunk,
                                  ExpertSource* source = nullptr) {
    BatchEvaluator evaluator(*model_, pool_);
    evaluator.set_expert_source(source);
    n_steps_ = 0;
    std::vector<std::unique_ptr<InferenceContext>> seqs;
    for (size_t s = 0; s < prompts.size(); ++s) seqs.push_back(new_sequence());
    std::vector<Trace> traces(prompts.size());
    std::vector<size_t> done(prompts.size(), 0);
    // Prefill: sequences whose prompt is finished wait, the others advance one chunk per step.
    for (;;) {
      std::vector<SequenceChunk> step;
      for (size_t s = 0; s < prompts.size(); ++s) {
        if (done[s] == prompts[s].size()) continue;
        const size_t n = std::min(chunk, prompts[s].size() - done[s]);
        step.push_back({seqs[s].get(), std::span<const int32_t>(prompts[s]).subspan(done[s], n),
                        done[s] + n == prompts[s].size()});
        done[s] += n;
      }
      if (step.empty()) break;
      EXPECT_TRUE(evaluator.eval(step).ok());
      ++n_steps_;
    }
    for (size_t s = 0; s < prompts.size(); ++s) traces[s].push_back(copy(seqs[s]->logits()));
    std::vector<int32_t> next(prompts.size());
    for (int i = 0; i < kSteps; ++i) {
      std::vector<SequenceChunk> step;
      for (size_t s = 0; s < prompts.size(); ++s) {
        next[s] = argmax(seqs[s]->logits());
        step.push_back({seqs[s].get(), std::span<const int32_t>(&next[s], 1), true});
      }
      EXPECT_TRUE(evaluator.eval(step).ok());
      ++n_steps_;
      for (size_t s = 0; s < prompts.size(); ++s) traces[s].push_back(copy(seqs[s]->logits()));
    }
    return traces;
  }

  // The same with InferenceContext::eval, one sequence at a time.
  Trace run_alone_unbatched(const std::vector<int32_t>& prompt) {
    auto seq = new_sequence();
    Trace trace;
    EXPECT_TRUE(seq->eval(prompt).ok());
    trace.push_back(copy(seq->logits()));
    for (int i = 0; i < kSteps; ++i) {
      const int32_t next = argmax(seq->logits());
      EXPECT_TRUE(seq->eval(std::span<const int32_t>(&next, 1)).ok());
      trace.push_back(copy(seq->logits()));
    }
    return trace;
  }

  TempFile file_{"batched-eval"};
  std::unique_ptr<Model> model_;
  ThreadPool pool_{2};
  int64_t n_steps_ = 0;
};

TEST_P(BatchedEval, SequencesTogetherGetTheirLogitsAlone) {
  const auto prompts = test_prompts();
  const std::vector<Trace> together = run_together(prompts, 64);
  for (size_t s = 0; s < prompts.size(); ++s) {
    // Alone through the same evaluator: bit-identical (sums are batch-invariant).
    const std::vector<Trace> alone = run_together({prompts[s]}, 64);
    ASSERT_EQ(together[s].size(), alone[0].size());
    for (size_t i = 0; i < alone[0].size(); ++i) ASSERT_EQ(together[s][i], alone[0][i]) << "sequence " << s << " step " << i;
  }
}

TEST_P(BatchedEval, ChunkedPrefillGivesTheSameLogits) {
  const auto prompts = test_prompts();
  const std::vector<Trace> whole = run_together(prompts, 64);
  for (size_t chunk : {1, 3, 7}) {
    const std::vector<Trace> chunked = run_together(prompts, chunk);
    for (size_t s = 0; s < prompts.size(); ++s) ASSERT_EQ(chunked[s], whole[s]) << "chunk " << chunk << " sequence " << s;
  }
}

// With an expert source (the server's expert store) the logits keep every bit, whether the
// source has the experts in memory (one grouped pass) or hands them out one at a time; and each
// step asks it once per MoE layer for the union of all sequences' experts, not once per sequence.
TEST_P(BatchedEval, ExpertSourceGivesTheSameLogitsAndIsAskedOncePerLayerAndStep) {
  const auto prompts = test_prompts();
  const std::vector<Trace> mapped = run_together(prompts, 5);
  const HParams& hp = model_->hparams();
  for (bool all_ready : {true, false}) {
    CheckingSource source(*model_, all_ready);
    const std::vector<Trace> sourced = run_together(prompts, 5, &source);
    for (size_t s = 0; s < prompts.size(); ++s) ASSERT_EQ(sourced[s], mapped[s]) << "sequence " << s << " " << all_ready;
    EXPECT_EQ(source.protocol_errors(), 0);
    for (int layer = 0; layer < hp.n_layer; ++layer) {
      const bool moe_layer = hp.moe.is_moe() && hp.layer_is_moe(layer);
      EXPECT_EQ(source.layers_begun(layer), moe_layer ? n_steps_ : 0) << "layer " << layer;
    }
  }
}

// The unbatched path sums prompts in llama.cpp's batched order, so logits differ in the last
// bits; greedy choices must agree.
// The unbatched context would put prompts on the tile unit (bf16), which BatchEvaluator never
// does (its sums must not depend on the batch); compare both on the same kernels.
TEST_P(BatchedEval, MatchesTheUnbatchedContext) {
  const moe::testing::PrefillKernels exact(moe::testing::PrefillEngine::kDotKernels);
  const auto prompts = test_prompts();
  const std::vector<Trace> together = run_together(prompts, 5);
  for (size_t s = 0; s < prompts.size(); ++s) {
    const Trace alone = run_alone_unbatched(prompts[s]);
    ASSERT_EQ(together[s].size(), alone.size());
    for (size_t i = 0; i < alone.size(); ++i) {
      float scale = 0;
      for (float x : alone[i]) scale = std::max(scale, std::fabs(x));
      for (size_t v = 0; v < alone[i].size(); ++v) ASSERT_NEAR(together[s][i][v], alone[i][v], 1e-3f * scale);
      EXPECT_EQ(argmax(together[s][i]), argmax(alone[i])) << "sequence " << s << " step " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Archs, BatchedEval,
    ::testing::Values(std::make_tuple("llama", "tiny", DType::kF32), std::make_tuple("llama", "tiny-moe", DType::kQ8_0),
                      std::make_tuple("olmoe", "tiny-moe", DType::kF16),
                      std::make_tuple("qwen2moe", "tiny-moe", DType::kQ4_0),
                      std::make_tuple("deepseek2", "tiny-moe", DType::kF32),
                      std::make_tuple("gpt-oss", "tiny-moe", DType::kF32)),
    [](const auto& info) {
      std::string name = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param) + "_" +
                         std::to_string(static_cast<int>(std::get<2>(info.param)));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST(BatchEvaluatorErrors, BadStepsAreErrorsAndChangeNothing) {
  TempFile file("batched-errors");
  ASSERT_TRUE(write_random_model(file.path, "tiny", DType::kF32, 3).ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok());
  ThreadPool pool(1);
  ContextParams params;
  params.n_ctx = 4;
  auto a = InferenceContext::create(**model, params, pool);
  auto b = InferenceContext::create(**model, params, pool);
  ASSERT_TRUE(a.ok() && b.ok());
  BatchEvaluator evaluator(**model, pool);
  const std::vector<int32_t> two = {1, 2}, five = {1, 2, 3, 4, 5}, bad = {1, 100000}, none;
  auto message = [&](std::vector<SequenceChunk> chunks) {
    const Status st = evaluator.eval(chunks);
    return st.ok() ? std::string("ok") : st.error().message;
  };
  EXPECT_EQ(message({}), "a batched step needs at least one sequence");
  EXPECT_EQ(message({{a->get(), two}, {a->get(), two}}), "sequence 1 appears twice in one step");
  EXPECT_EQ(message({{a->get(), two}, {b->get(), none}}), "sequence 1 has no tokens to evaluate");
  EXPECT_EQ(message({{a->get(), two}, {b->get(), five}}),
            "sequence 1: context is full: 0 positions used + 5 new tokens > context size 4");
  EXPECT_EQ(message({{b->get(), bad}}), "sequence 0: token id 100000 is out of range (vocabulary size 1617)");
  EXPECT_EQ(message({{nullptr, two}}), "sequence 0 is not a context of this model");
  EXPECT_EQ((*a)->n_past(), 0);
  EXPECT_EQ((*b)->n_past(), 0);
  EXPECT_EQ(message({{a->get(), two}, {b->get(), two}}), "ok");
  EXPECT_EQ((*a)->n_past(), 2);
  EXPECT_EQ((*b)->n_past(), 2);
}

}  // namespace
}  // namespace moe::model

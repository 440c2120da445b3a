// The expert store under continuous batching (model::BatchEvaluator, as `moe serve` runs it):
// several sequences sharing steps get the logits they get from the mapped file, bit for bit,
// while the store evicts and re-reads experts every step; a failed read fails the step and
// leaves every sequence as it was.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "moe/expert_store.h"
#include "store_test_util.h"

namespace moe::experts {
namespace {

using testing::budget_for_slots;
using testing::TempFile;
using testing::write_random_model;

constexpr int kDecodeSteps = 6;

// Sequences with prompts of different lengths, prefilled together in one step, then decoded
// together (each feeding back a fixed token) in shared steps.
class BatchedRun {
 public:
  BatchedRun(const model::Model& model, model::ExpertSource* source) : evaluator_(model, pool_) {
    evaluator_.set_expert_source(source);
    for (int s = 0; s < 3; ++s) {
      model::ContextParams params;
      params.n_ctx = 64;
      auto ctx = model::InferenceContext::create(model, params, pool_);
      EXPECT_TRUE(ctx.ok());
      sequences_.push_back(std::move(ctx).value());
      prompts_.push_back(testing::test_tokens(2 + 4 * s, model.hparams().n_vocab));
    }
  }

  // Runs the steps; returns the logits of every sequence after every step, or the first error.
  Status run(std::vector<std::vector<float>>& logits) {
    std::vector<model::SequenceChunk> prefill;
    for (size_t s = 0; s < sequences_.size(); ++s) prefill.push_back({sequences_[s].get(), prompts_[s], true});
    MOE_TRY(step(prefill, logits));
    for (int i = 0; i < kDecodeSteps; ++i) {
      std::vector<model::SequenceChunk> decode;
      for (size_t s = 0; s < sequences_.size(); ++s) {
        decode.push_back({sequences_[s].get(), std::span<const int32_t>(&prompts_[s][static_cast<size_t>(i % 2)], 1)});
      }
      MOE_TRY(step(decode, logits));
    }
    return ok_status();
  }

  // Returns the tokens the steps evaluate in all.
  int64_t n_tokens() const {
    int64_t n = 0;
    for (const auto& p : prompts_) n += static_cast<int64_t>(p.size()) + kDecodeSteps;
    return n;
  }
  const std::vector<std::unique_ptr<model::InferenceContext>>& sequences() const { return sequences_; }

 private:
  Status step(const std::vector<model::SequenceChunk>& chunks, std::vector<std::vector<float>>& logits) {
    MOE_TRY(evaluator_.eval(chunks));
    for (const auto& seq : sequences_) logits.emplace_back(seq->logits().begin(), seq->logits().end());
    return ok_status();
  }

  ThreadPool pool_{2};
  model::BatchEvaluator evaluator_;
  std::vector<std::unique_ptr<model::InferenceContext>> sequences_;
  std::vector<std::vector<int32_t>> prompts_;
};

// A store on its own copy of the model (the store moves the non-expert weights to RAM).
struct StoredModel {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<ExpertStore> store;
};

std::unique_ptr<StoredModel> stored_model(const std::string& path, int64_t n_slots, int64_t fail_read_at) {
  auto s = std::make_unique<StoredModel>();
  auto m = model::Model::load(path);
  if (!m.ok()) return nullptr;
  s->model = std::move(*m);
  StoreOptions options;
  options.fail_read_at = fail_read_at;
  options.budget_bytes = budget_for_slots(*s->model, options, n_slots);
  auto store = ExpertStore::create(*s->model, options);
  if (!store.ok()) return nullptr;
  s->store = std::move(*store);
  return s;
}

TEST(BatchedStore, SequencesSharingStepsMatchTheMappedRunWhileEvicting) {
  for (const char* arch : {"llama", "olmoe", "gpt-oss"}) {
    TempFile file(std::string("batched-store-") + arch);
    ASSERT_TRUE(write_random_model(file.path, "tiny-moe", DType::kQ8_0, 11, {}, arch).ok());
    auto mapped = model::Model::load(file.path);
    ASSERT_TRUE(mapped.ok());
    std::vector<std::vector<float>> expected;
    ASSERT_TRUE(BatchedRun(**mapped, nullptr).run(expected).ok());

    // As few slots as the store accepts: every layer of every step evicts the previous layer's.
    auto stored = stored_model(file.path, (*mapped)->hparams().moe.n_expert_used, 0);
    ASSERT_NE(stored, nullptr) << arch;
    BatchedRun run(*stored->model, stored->store.get());
    std::vector<std::vector<float>> actual;
    const Status status = run.run(actual);
    ASSERT_TRUE(status.ok()) << arch << ": " << status.error().message;
    EXPECT_EQ(actual, expected) << arch;

    const StoreStats stats = stored->store->stats();
    EXPECT_EQ(stats.tokens, run.n_tokens()) << arch;
    EXPECT_GT(stats.misses, 0) << arch;
    EXPECT_GT(stats.evictions, 0) << arch;
    EXPECT_EQ(stats.hits + stats.late_prefetches + stats.misses, stats.expert_uses) << arch;
    EXPECT_GT(stored->store->n_cached(), 0) << arch;
    EXPECT_LE(stored->store->n_cached(), stored->store->plan().n_slots) << arch;
  }
}

TEST(BatchedStore, ReadErrorFailsTheStepAndChangesNoSequence) {
  TempFile file("batched-store-fault");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 9).ok());
  auto stored = stored_model(file.path, 2, /*fail_read_at=*/7);
  ASSERT_NE(stored, nullptr);
  BatchedRun run(*stored->model, stored->store.get());
  std::vector<std::vector<float>> logits;
  const Status status = run.run(logits);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("Input/output error"), std::string::npos) << status.error().message;
  // The failing step was the first (the prompts): no sequence kept any position of it.
  EXPECT_TRUE(logits.empty());
  for (const auto& seq : run.sequences()) EXPECT_EQ(seq->n_past(), 0);
  // The failure is sticky: the next step reports it without evaluating.
  std::vector<std::vector<float>> again;
  EXPECT_FALSE(run.run(again).ok());
  for (const auto& seq : run.sequences()) EXPECT_EQ(seq->n_past(), 0);
}

TEST(BatchedStore, PlanReportsTheBudget) {
  TempFile file("batched-store-plan");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 5).ok());
  auto m = model::Model::load(file.path);
  ASSERT_TRUE(m.ok());
  StoreOptions options;
  options.budget_bytes = budget_for_slots(**m, options, 5);
  auto store = ExpertStore::create(**m, options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->plan().budget_bytes, options.budget_bytes);
  EXPECT_EQ((*store)->plan().n_slots, 5);
  EXPECT_EQ((*store)->n_cached(), 0);  // nothing read before the first step
}

}  // namespace
}  // namespace moe::experts

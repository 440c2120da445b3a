// The expert store gives the same logits as running from the mapped file, bit for bit, while it
// evicts and re-reads experts every step; and it fails cleanly on bad budgets and bad files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <tuple>

#include "moe/expert_store.h"
#include "store_test_util.h"

namespace moe::experts {
namespace {

using testing::budget_for_slots;
using testing::run_trace;
using testing::TempFile;
using testing::Trace;
using testing::write_random_model;

bool same_bits(const Trace& a, const Trace& b) {
  if (a.logits.size() != b.logits.size()) return false;
  for (size_t i = 0; i < a.logits.size(); ++i) {
    if (a.logits[i].size() != b.logits[i].size() ||
        std::memcmp(a.logits[i].data(), b.logits[i].data(), a.logits[i].size() * sizeof(float)) != 0) {
      return false;
    }
  }
  return true;
}

struct Case {
  const char* arch;
  const char* preset;
  DType type;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.arch << " " << c.preset << " " << dtype_name(c.type); }

class StoreBitIdentical : public ::testing::TestWithParam<Case> {};

// A budget of exactly top-k slots: every MoE layer of every step evicts the previous layer's
// experts and reads its own again.
TEST_P(StoreBitIdentical, LogitsMatchTheMappedRunWhileEvictingEveryStep) {
  const Case c = GetParam();
  TempFile file(std::string("store-") + c.arch);
  ASSERT_TRUE(write_random_model(file.path, c.preset, c.type, 7, {}, c.arch).ok());
  auto resident = model::Model::load(file.path);
  ASSERT_TRUE(resident.ok()) << resident.error().message;
  const Trace expected = run_trace(**resident, nullptr, 5, 6);
  ASSERT_TRUE(expected.status.ok()) << expected.status.error().message;

  auto stored = model::Model::load(file.path);
  ASSERT_TRUE(stored.ok());
  StoreOptions options;
  options.budget_bytes = budget_for_slots(**stored, options, (*stored)->hparams().moe.n_expert_used);
  auto store = ExpertStore::create(**stored, options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_EQ((*store)->plan().n_slots, (*stored)->hparams().moe.n_expert_used);
  const Trace actual = run_trace(**stored, store->get(), 5, 6);
  ASSERT_TRUE(actual.status.ok()) << actual.status.error().message;
  EXPECT_TRUE(same_bits(expected, actual));

  const StoreStats stats = (*store)->stats();
  EXPECT_EQ(stats.tokens, 5 + 6);
  EXPECT_GT(stats.misses, 0);
  // Each of the 7 steps (1 prompt batch + 6 decodes) evicts in every MoE layer after the first.
  EXPECT_GE(stats.evictions, 7 * (static_cast<int64_t>((*store)->plan().n_experts / (*stored)->hparams().moe.n_expert) - 1));
  EXPECT_GT(stats.bytes_read, 0u);
}

INSTANTIATE_TEST_SUITE_P(Archs, StoreBitIdentical,
                         ::testing::Values(Case{"llama", "small-moe", DType::kQ8_0},
                                           Case{"llama", "tiny-moe", DType::kF32},
                                           Case{"olmoe", "small-moe", DType::kQ4_K},
                                           Case{"qwen2moe", "tiny-moe", DType::kF16},
                                           Case{"gpt-oss", "tiny-moe", DType::kF32},
                                           Case{"deepseek2", "tiny-moe-v3", DType::kF32}),
                         [](const auto& info) {
                           std::string name = std::string(info.param.arch) + "_" + info.param.preset;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// Every policy, global or per-layer capacity, with and without prefetch: same bits.
class StoreOptionsBitIdentical : public ::testing::TestWithParam<std::tuple<PolicyKind, bool, bool>> {};

TEST_P(StoreOptionsBitIdentical, LogitsMatch) {
  const auto [policy, per_layer, prefetch] = GetParam();
  TempFile file("store-options");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 3).ok());
  auto resident = model::Model::load(file.path);
  ASSERT_TRUE(resident.ok());
  const Trace expected = run_trace(**resident, nullptr, 4, 8);
  auto stored = model::Model::load(file.path);
  ASSERT_TRUE(stored.ok());
  StoreOptions options;
  options.policy = policy;
  options.per_layer = per_layer;
  options.prefetch = prefetch;
  options.pinned = {{1, 3}};
  // small-moe: 4 MoE layers of 8 experts, top-2; 12 slots hold 3 per layer.
  options.budget_bytes = budget_for_slots(**stored, options, 12);
  auto store = ExpertStore::create(**stored, options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  const Trace actual = run_trace(**stored, store->get(), 4, 8);
  ASSERT_TRUE(actual.status.ok()) << actual.status.error().message;
  EXPECT_TRUE(same_bits(expected, actual));
  const StoreStats stats = (*store)->stats();
  EXPECT_GT(stats.evictions, 0);
  EXPECT_TRUE((*store)->is_cached(1, 3));  // pinned: never evicted
  EXPECT_LE(stats.predicted_correct, stats.predicted);
  EXPECT_LE(stats.predicted_correct, stats.predicted_layer_uses);
  if (prefetch) {
    EXPECT_GT(stats.predicted, 0);
  } else {
    EXPECT_EQ(stats.prefetch_reads, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(All, StoreOptionsBitIdentical,
                         ::testing::Combine(::testing::Values(PolicyKind::kLru, PolicyKind::kLfu, PolicyKind::kRouting),
                                            ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(policy_name(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_per_layer" : "_global") +
                                  (std::get<2>(info.param) ? "_prefetch" : "_no_prefetch");
                         });

TEST(ExpertStore, EverythingFitsMeansEveryExpertIsReadOnce) {
  TempFile file("store-fits");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 5).ok());
  auto m = model::Model::load(file.path);
  ASSERT_TRUE(m.ok());
  StoreOptions options;
  options.budget_bytes = uint64_t{1} << 40;
  auto store = ExpertStore::create(**m, options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->plan().n_slots, (*store)->plan().n_experts);
  // Once every expert is in RAM the layers take the one-pass grouped path: still the same bits.
  auto resident = model::Model::load(file.path);
  ASSERT_TRUE(resident.ok());
  const Trace expected = run_trace(**resident, nullptr, 6, 10);
  const Trace actual = run_trace(**m, store->get(), 6, 10);
  ASSERT_TRUE(actual.status.ok());
  EXPECT_TRUE(same_bits(expected, actual));
  const StoreStats stats = (*store)->stats();
  EXPECT_EQ(stats.evictions, 0);
  EXPECT_LE(stats.reads, (*store)->plan().n_experts);
  EXPECT_EQ(stats.hits + stats.late_prefetches + stats.misses, stats.expert_uses);
}

// ---- Faults: each a clear error, never a crash or a hang. ----

TEST(ExpertStoreFaults, BudgetSmallerThanTheResidentPart) {
  TempFile file("store-budget");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 5).ok());
  auto m = model::Model::load(file.path);
  ASSERT_TRUE(m.ok());
  StoreOptions options;
  options.reserved_bytes = 1 << 20;
  options.budget_bytes = 1 << 20;  // not even the KV cache fits
  auto store = ExpertStore::create(**m, options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("memory budget 1.0 MiB is too small"), std::string::npos)
      << store.error().message;
  // One slot short of a token's experts in a layer is also refused.
  options.budget_bytes = budget_for_slots(**m, options, (*m)->hparams().moe.n_expert_used) - 1;
  store = ExpertStore::create(**m, options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("give at least"), std::string::npos) << store.error().message;
}

// Store on a private copy of a model file, with `n_slots` slots and no prefetch.
struct StoredModel {
  TempFile file{"store-fault"};
  std::unique_ptr<model::Model> model;
  std::unique_ptr<ExpertStore> store;
};

std::unique_ptr<StoredModel> stored_model(int64_t fail_read_at) {
  auto s = std::make_unique<StoredModel>();
  if (!write_random_model(s->file.path, "small-moe", DType::kQ8_0, 9).ok()) return nullptr;
  auto m = model::Model::load(s->file.path);
  if (!m.ok()) return nullptr;
  s->model = std::move(*m);
  StoreOptions options;
  options.prefetch = false;
  options.fail_read_at = fail_read_at;
  options.budget_bytes = budget_for_slots(*s->model, options, 2);
  auto store = ExpertStore::create(*s->model, options);
  if (!store.ok()) return nullptr;
  s->store = std::move(*store);
  return s;
}

TEST(ExpertStoreFaults, ReadErrorFailsEvalAndStaysFailed) {
  auto s = stored_model(/*fail_read_at=*/7);
  ASSERT_NE(s, nullptr);
  const Trace trace = run_trace(*s->model, s->store.get(), 3, 4);
  ASSERT_FALSE(trace.status.ok());
  EXPECT_NE(trace.status.error().message.find("Input/output error"), std::string::npos) << trace.status.error().message;
  EXPECT_NE(trace.status.error().message.find(s->file.path), std::string::npos);
  EXPECT_FALSE(s->store->status().ok());
  // Later evals report the same error at once.
  const Trace again = run_trace(*s->model, s->store.get(), 1, 0);
  EXPECT_FALSE(again.status.ok());
}

TEST(ExpertStoreFaults, FileTruncatedMidRun) {
  auto s = stored_model(0);
  ASSERT_NE(s, nullptr);
  ThreadPool pool(2);
  model::ContextParams params;
  params.n_ctx = 64;
  auto ctx = model::InferenceContext::create(*s->model, params, pool);
  ASSERT_TRUE(ctx.ok());
  (*ctx)->set_expert_source(s->store.get());
  const std::vector<int32_t> tokens = testing::test_tokens(8, s->model->hparams().n_vocab);
  ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(tokens.data(), 4)).ok());
  // Cut the file at the first expert tensor: every expert read from now on hits the end.
  const formats::GgufTensorInfo* first = s->model->file().find_tensor("blk.0.ffn_gate_exps.weight");
  ASSERT_NE(first, nullptr);
  std::filesystem::resize_file(s->file.path, s->model->file().data_offset() + first->offset);
  Status status;
  int64_t n_past = 0;
  for (int i = 4; i < 8 && status.ok(); ++i) {
    n_past = (*ctx)->n_past();
    status = (*ctx)->eval(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1));
  }
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("truncated"), std::string::npos) << status.error().message;
  EXPECT_EQ((*ctx)->n_past(), n_past);  // the failed eval added no positions
  EXPECT_FALSE((*ctx)->eval(std::span<const int32_t>(tokens.data(), 1)).ok());
}

TEST(ExpertStoreFaults, NonMoeModelAndMemoryImageAreRefused) {
  TempFile file("store-dense");
  ASSERT_TRUE(write_random_model(file.path, "tiny", DType::kF32, 1).ok());
  auto m = model::Model::load(file.path);
  ASSERT_TRUE(m.ok());
  StoreOptions options;
  options.budget_bytes = uint64_t{1} << 30;
  auto store = ExpertStore::create(**m, options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("needs a MoE model"), std::string::npos);
}

TEST(ExpertStoreFaults, BadPinsAreErrors) {
  TempFile file("store-pins");
  ASSERT_TRUE(write_random_model(file.path, "small-moe", DType::kQ8_0, 5).ok());
  auto m = model::Model::load(file.path);
  ASSERT_TRUE(m.ok());
  StoreOptions options;
  options.pinned = {{0, 99}};
  options.budget_bytes = budget_for_slots(**m, options, 8);
  auto store = ExpertStore::create(**m, options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("cannot pin expert 99 of layer 0"), std::string::npos);
}

}  // namespace
}  // namespace moe::experts

// Helpers for expert-store tests: run a model with or without a store and collect logits.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../model/test_models.h"
#include "model/context.h"
#include "model/model.h"
#include "moe/expert_store.h"

namespace moe::experts::testing {

using model::testing::TempFile;
using model::testing::write_random_model;

// Logits after a prompt evaluated as one batch, then after each of `n_decode` single tokens.
struct Trace {
  std::vector<std::vector<float>> logits;
  Status status;
};

inline std::vector<int32_t> test_tokens(int n, int64_t n_vocab) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(static_cast<int32_t>((i * 37 + 11) % n_vocab));
  return tokens;
}

// Evaluates `n_prompt` tokens in one batch, then `n_decode` one at a time, on `model` with
// `source` (null: the mapped file).
inline Trace run_trace(const model::Model& model, model::ExpertSource* source, int n_prompt, int n_decode,
                       int threads = 2) {
  ThreadPool pool(threads);
  model::ContextParams params;
  params.n_ctx = 128;
  auto ctx = model::InferenceContext::create(model, params, pool);
  Trace trace;
  if (!ctx.ok()) {
    trace.status = Status(ctx.error());
    return trace;
  }
  (*ctx)->set_expert_source(source);
  const std::vector<int32_t> tokens = test_tokens(n_prompt + n_decode, model.hparams().n_vocab);
  trace.status = (*ctx)->eval(std::span<const int32_t>(tokens.data(), static_cast<size_t>(n_prompt)));
  if (!trace.status.ok()) return trace;
  trace.logits.emplace_back((*ctx)->logits().begin(), (*ctx)->logits().end());
  for (int i = 0; i < n_decode; ++i) {
    trace.status = (*ctx)->eval(std::span<const int32_t>(&tokens[static_cast<size_t>(n_prompt + i)], 1));
    if (!trace.status.ok()) return trace;
    trace.logits.emplace_back((*ctx)->logits().begin(), (*ctx)->logits().end());
  }
  return trace;
}

// Returns a budget that leaves exactly `n_slots` cache slots for `model`.
inline uint64_t budget_for_slots(const model::Model& model, StoreOptions options, int64_t n_slots) {
  options.budget_bytes = uint64_t{1} << 50;
  auto plan = plan_store(model, options);
  if (!plan.ok()) return 0;
  return plan->resident_bytes + plan->reserved_bytes + static_cast<uint64_t>(n_slots) * plan->slot_bytes;
}

}  // namespace moe::experts::testing

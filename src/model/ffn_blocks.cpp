// The feed-forward blocks: dense SwiGLU and the routed-experts block configured by MoeSpec
// (gating function, top-k renormalisation, scaling, shared experts).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"
#include "kernels/ops.h"
#include "model/blocks.h"

namespace moe::model {

namespace {

// Scores of the experts a token may pick: the gating scores plus the selection bias, with the
// experts of all but the best n_group_used groups masked out (DeepSeek-V3's group-limited
// routing ranks a group by the sum of its two best scores).
std::vector<float> selection_scores(const MoeSpec& spec, const std::vector<float>& scores, const float* bias) {
  std::vector<float> selection = scores;
  if (bias != nullptr) {
    for (int e = 0; e < spec.n_expert; ++e) selection[static_cast<size_t>(e)] += bias[e];
  }
  if (spec.n_group <= 1) return selection;
  const int per_group = spec.n_expert / spec.n_group;
  std::vector<float> group_score(static_cast<size_t>(spec.n_group));
  for (int g = 0; g < spec.n_group; ++g) {
    std::vector<float> members(selection.begin() + g * per_group, selection.begin() + (g + 1) * per_group);
    std::partial_sort(members.begin(), members.begin() + std::min(2, per_group), members.end(), std::greater<>());
    group_score[static_cast<size_t>(g)] = members[0] + (per_group > 1 ? members[1] : 0.0f);
  }
  std::vector<int> groups(static_cast<size_t>(spec.n_group));
  std::iota(groups.begin(), groups.end(), 0);
  std::partial_sort(groups.begin(), groups.begin() + spec.n_group_used, groups.end(), [&](int a, int b) {
    return group_score[static_cast<size_t>(a)] > group_score[static_cast<size_t>(b)] ||
           (group_score[static_cast<size_t>(a)] == group_score[static_cast<size_t>(b)] && a < b);
  });
  std::vector<bool> kept(static_cast<size_t>(spec.n_group), false);
  for (int i = 0; i < spec.n_group_used; ++i) kept[static_cast<size_t>(groups[static_cast<size_t>(i)])] = true;
  for (int e = 0; e < spec.n_expert; ++e) {
    if (!kept[static_cast<size_t>(e / per_group)]) selection[static_cast<size_t>(e)] = -INFINITY;
  }
  return selection;
}

}  // namespace

RoutedToken route_token(const MoeSpec& spec, const float* router_logits, const float* selection_bias) {
  std::vector<float> scores(router_logits, router_logits + spec.n_expert);
  if (spec.gating == GatingFunction::kSoftmax) {
    kernels::softmax(scores.data(), spec.n_expert);
  } else if (spec.gating == GatingFunction::kSigmoid) {
    for (float& s : scores) s = 1.0f / (1.0f + std::exp(-s));
  }  // kSoftmaxWeight: the raw logits select; the chosen ones are softmaxed below.
  const std::vector<float> selection = selection_scores(spec, scores, selection_bias);
  std::vector<int> order(static_cast<size_t>(spec.n_expert));
  std::iota(order.begin(), order.end(), 0);
  // Highest score first; ties go to the lower expert index.
  std::partial_sort(order.begin(), order.begin() + spec.n_expert_used, order.end(), [&](int a, int b) {
    return selection[static_cast<size_t>(a)] > selection[static_cast<size_t>(b)] ||
           (selection[static_cast<size_t>(a)] == selection[static_cast<size_t>(b)] && a < b);
  });
  RoutedToken routed;
  routed.experts.assign(order.begin(), order.begin() + spec.n_expert_used);
  // The weights are the unbiased scores; their sum is taken in double and clamped as ggml does.
  for (int e : routed.experts) routed.weights.push_back(scores[static_cast<size_t>(e)]);
  if (spec.gating == GatingFunction::kSoftmaxWeight) kernels::softmax(routed.weights.data(), spec.n_expert_used);
  double sum = 0.0;
  for (float weight : routed.weights) sum += weight;
  const float divisor = std::max(static_cast<float>(sum), 6.103515625e-5f);
  for (float& weight : routed.weights) {
    if (spec.normalize_top_k) weight /= divisor;
    if (spec.routed_scale != 0.0f && spec.routed_scale != 1.0f) weight *= spec.routed_scale;
  }
  return routed;
}

namespace {

// out (n_tokens, n_embd) = down(silu(gate(x)) * up(x)) of the normalised input.
void swiglu_ffn(LayerContext& ctx, const Tensor& gate_w, const Tensor& up_w, const Tensor& down_w, float* out) {
  const int64_t n_t = ctx.n_tokens;
  const int64_t n_ff = up_w.n_rows();
  std::vector<float> gate(static_cast<size_t>(n_t * n_ff)), up(gate.size());
  Scratch& s = ctx.scratch;
  matmul_f32(ctx.pool, gate_w, s.norm.data(), n_t, gate.data(), s.act);
  matmul_f32(ctx.pool, up_w, s.norm.data(), n_t, up.data(), s.act);
  kernels::swiglu(gate.data(), up.data(), gate.data(), n_t * n_ff);
  matmul_f32(ctx.pool, down_w, gate.data(), n_t, out, s.act);
}

void dense_ffn(LayerContext& ctx, const LayerWeights& w) {
  ctx.scratch.block_out.resize(static_cast<size_t>(ctx.n_tokens * ctx.hp.n_embd));
  swiglu_ffn(ctx, w[LayerSlot::kFfnGate], w[LayerSlot::kFfnUp], w[LayerSlot::kFfnDown], ctx.scratch.block_out.data());
}

// Adds the shared expert(s) to block_out; qwen2moe scales them by a per-token sigmoid gate.
void add_shared_experts(LayerContext& ctx, const LayerWeights& w) {
  const HParams& hp = ctx.hp;
  const int64_t n_t = ctx.n_tokens;
  std::vector<float> shared(static_cast<size_t>(n_t * hp.n_embd));
  swiglu_ffn(ctx, w[LayerSlot::kFfnGateShexp], w[LayerSlot::kFfnUpShexp], w[LayerSlot::kFfnDownShexp], shared.data());
  std::vector<float> gate(static_cast<size_t>(n_t), 1.0f);
  if (hp.moe.shared_expert_gate) {
    matmul_f32(ctx.pool, w[LayerSlot::kFfnGateInpShexp], ctx.scratch.norm.data(), n_t, gate.data(), ctx.scratch.act);
    for (float& g : gate) g = 1.0f / (1.0f + std::exp(-g));
  }
  for (int64_t t = 0; t < n_t; ++t) {
    float* out = ctx.scratch.block_out.data() + t * hp.n_embd;
    const float* src = shared.data() + t * hp.n_embd;
    for (int64_t i = 0; i < hp.n_embd; ++i) out[i] += hp.moe.shared_expert_gate ? src[i] * gate[static_cast<size_t>(t)] : src[i];
  }
}

// The tokens of a micro-batch routed to one expert, with the slot (rank) each chose it at.
struct ExpertGroup {
  std::vector<int64_t> tokens;
  std::vector<int> slots;
};

// Returns the experts with tokens in this micro-batch, most tokens first.
std::vector<int> used_experts(const std::vector<ExpertGroup>& groups) {
  std::vector<int64_t> counts;
  for (const ExpertGroup& g : groups) counts.push_back(static_cast<int64_t>(g.tokens.size()));
  return experts_by_use(counts);
}

// Runs one expert (weights `ew`, laid out as w's stacked tensors) over its token group; writes
// each token's result to its slot in `slot_out` (n_tokens, n_expert_used, n_embd).
void run_expert(LayerContext& ctx, const LayerWeights& w, const ExpertWeights& ew, const ExpertGroup& group,
                float* slot_out) {
  const HParams& hp = ctx.hp;
  const int64_t n = static_cast<int64_t>(group.tokens.size());
  const int64_t n_ff = hp.n_ff_expert;
  std::vector<float> input(static_cast<size_t>(n * hp.n_embd));
  for (int64_t i = 0; i < n; ++i) {
    const float* src = ctx.scratch.norm.data() + group.tokens[static_cast<size_t>(i)] * hp.n_embd;
    std::copy(src, src + hp.n_embd, input.data() + i * hp.n_embd);
  }
  std::vector<float> gate(static_cast<size_t>(n * n_ff)), up(gate.size()), down(static_cast<size_t>(n * hp.n_embd));
  std::vector<uint8_t> buffer;
  const Tensor gate_w = expert_view(w[LayerSlot::kFfnGateExps], ew.gate);
  const Tensor up_w = expert_view(w[LayerSlot::kFfnUpExps], ew.up);
  const Tensor down_w = expert_view(w[LayerSlot::kFfnDownExps], ew.down);
  ConvertedRows rows = convert_rows(ctx.pool, *gate_w.traits, input.data(), n, hp.n_embd, buffer);
  matmul(ctx.pool, gate_w, 0, rows, n, gate.data(), n_ff);
  if (up_w.traits->vec_dot_type != gate_w.traits->vec_dot_type) {
    rows = convert_rows(ctx.pool, *up_w.traits, input.data(), n, hp.n_embd, buffer);
  }
  matmul(ctx.pool, up_w, 0, rows, n, up.data(), n_ff);
  kernels::swiglu(gate.data(), up.data(), gate.data(), n * n_ff);
  rows = convert_rows(ctx.pool, *down_w.traits, gate.data(), n, n_ff, buffer);
  matmul(ctx.pool, down_w, 0, rows, n, down.data(), hp.n_embd);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = group.tokens[static_cast<size_t>(i)];
    float* dst = slot_out + (t * hp.moe.n_expert_used + group.slots[static_cast<size_t>(i)]) * hp.n_embd;
    std::copy(down.data() + i * hp.n_embd, down.data() + (i + 1) * hp.n_embd, dst);
  }
}

void moe_ffn(LayerContext& ctx, const LayerWeights& w, int layer) {
  const HParams& hp = ctx.hp;
  const MoeSpec& spec = hp.moe;
  const int64_t n_t = ctx.n_tokens;
  std::vector<float> router(static_cast<size_t>(n_t * spec.n_expert));
  matmul_f32(ctx.pool, w[LayerSlot::kFfnGateInp], ctx.scratch.norm.data(), n_t, router.data(), ctx.scratch.act);

  const Tensor& bias_tensor = w[LayerSlot::kExpProbsB];
  const float* bias = spec.selection_bias && bias_tensor.present() ? bias_tensor.f32() : nullptr;
  std::vector<RoutedToken> routes(static_cast<size_t>(n_t));
  std::vector<ExpertGroup> groups(static_cast<size_t>(spec.n_expert));
  for (int64_t t = 0; t < n_t; ++t) {
    routes[static_cast<size_t>(t)] = route_token(spec, router.data() + t * spec.n_expert, bias);
    if (ctx.routing != nullptr) ctx.routing->record(layer, routes[static_cast<size_t>(t)].experts);
    const RoutedToken& r = routes[static_cast<size_t>(t)];
    for (int slot = 0; slot < spec.n_expert_used; ++slot) {
      ExpertGroup& g = groups[static_cast<size_t>(r.experts[static_cast<size_t>(slot)])];
      g.tokens.push_back(t);
      g.slots.push_back(slot);
    }
  }
  std::vector<float> slot_out(static_cast<size_t>(n_t * spec.n_expert_used * hp.n_embd));
  // Each expert writes its own slots, so the order experts run in does not change the result.
  for_each_expert(ctx, layer, used_experts(groups), [&](int e, const ExpertWeights& ew) {
    run_expert(ctx, w, ew, groups[static_cast<size_t>(e)], slot_out.data());
  });
  // Weighted sum in slot order, as llama.cpp adds the weighted expert outputs.
  Scratch& s = ctx.scratch;
  s.block_out.assign(static_cast<size_t>(n_t * hp.n_embd), 0.0f);
  for (int64_t t = 0; t < n_t; ++t) {
    float* out = s.block_out.data() + t * hp.n_embd;
    for (int slot = 0; slot < spec.n_expert_used; ++slot) {
      const float* src = slot_out.data() + (t * spec.n_expert_used + slot) * hp.n_embd;
      const float weight = routes[static_cast<size_t>(t)].weights[static_cast<size_t>(slot)];
      for (int64_t i = 0; i < hp.n_embd; ++i) out[i] += src[i] * weight;
    }
  }
  if (spec.n_ff_shared > 0) add_shared_experts(ctx, w);
}

}  // namespace

void ffn_block(LayerContext& ctx, int layer) {
  const LayerWeights& w = ctx.layer(layer);
  norm_tokens(ctx, w[LayerSlot::kFfnNorm]);
  if (ctx.hp.layer_is_moe(layer)) {
    moe_ffn(ctx, w, layer);
  } else {
    dense_ffn(ctx, w);
  }
  add_residual(ctx, ctx.scratch.block_out.data());
}

}  // namespace moe::model

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

// Whether a dense SwiGLU can run as a one-expert grouped FFN and still sum as llama.cpp's
// mul_mat does: always for one token; for a batch only when the weights are quantized (F32 and
// F16 batches take sgemm's order there, which the expert kernels do not follow).
bool dense_can_run_grouped(const Tensor& weight, int64_t n_tokens) {
  return n_tokens == 1 || plain_matmul_order(weight.n_rows(), weight.n_cols(), n_tokens) == kernels::SumOrder::kVecDot ||
         (weight.type != DType::kF32 && weight.type != DType::kF16);
}

// out (n_tokens, n_embd) = down(silu(gate(x)) * up(x)) of the normalised input.
void swiglu_ffn(LayerContext& ctx, const Tensor& gate_w, const Tensor& up_w, const Tensor& down_w, float* out) {
  const int64_t n_t = ctx.n_tokens;
  Scratch& s = ctx.scratch;
  if (dense_can_run_grouped(gate_w, n_t) && dense_can_run_grouped(up_w, n_t) && dense_can_run_grouped(down_w, n_t)) {
    // Every token to "expert" 0 with weight 1: one pass for gate/up/SwiGLU, one for down.
    static const int kOnlyExpert = 0;
    static const float kUnitWeight = 1.0f;
    const std::vector<TokenRoute> routes(static_cast<size_t>(n_t), TokenRoute{&kOnlyExpert, &kUnitWeight});
    grouped_expert_ffn(ctx.pool, {&gate_w, &up_w, &down_w}, s.norm.data(), n_t, routes, 1, out, s.experts);
    return;
  }
  const int64_t n_ff = up_w.n_rows();
  std::vector<float> gate(static_cast<size_t>(n_t * n_ff)), up(gate.size());
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

// The routed experts of `layer` with weights from an expert store. When all are in RAM they run
// in one grouped pass, as without a store; otherwise one at a time as the store hands them out
// (those in RAM first, so their compute overlaps the reads of the others). Same bits either way.
void run_from_source(LayerContext& ctx, int layer, GroupedExpertFfn& ffn, float* out) {
  ExpertSource& source = *ctx.experts;
  std::vector<int> order = ffn.experts();
  const size_t ready = source.begin_layer(layer, order);
  source.hint(layer, ctx.hidden, ctx.n_tokens);
  if (ready == order.size()) {
    std::vector<ExpertMatrices> matrices(static_cast<size_t>(ctx.hp.moe.n_expert));
    for (int e : order) {
      const ExpertWeights ew = source.acquire(layer, e);
      matrices[static_cast<size_t>(e)] = {ew.gate, ew.up, ew.down};
    }
    ffn.run_all(out, &matrices);
    for (int e : order) source.release(layer, e);
    return;
  }
  for (int e : order) {
    const ExpertWeights ew = source.acquire(layer, e);
    ffn.run_expert(e, {ew.gate, ew.up, ew.down});
    source.release(layer, e);
  }
  ffn.combine(out);
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
  for (int64_t t = 0; t < n_t; ++t) {
    routes[static_cast<size_t>(t)] = route_token(spec, router.data() + t * spec.n_expert, bias);
    if (ctx.routing != nullptr) ctx.routing->record(layer, routes[static_cast<size_t>(t)].experts);
  }
  std::vector<TokenRoute> token_routes(static_cast<size_t>(n_t));
  for (int64_t t = 0; t < n_t; ++t) {
    token_routes[static_cast<size_t>(t)] = {routes[static_cast<size_t>(t)].experts.data(),
                                            routes[static_cast<size_t>(t)].weights.data()};
  }
  const ExpertFfnWeights experts{&w[LayerSlot::kFfnGateExps], &w[LayerSlot::kFfnUpExps], &w[LayerSlot::kFfnDownExps]};
  Scratch& s = ctx.scratch;
  s.block_out.resize(static_cast<size_t>(n_t * hp.n_embd));
  GroupedExpertFfn ffn(ctx.pool, experts, s.norm.data(), n_t, token_routes, spec.n_expert_used, s.experts);
  if (ctx.experts == nullptr) {
    ffn.run_all(s.block_out.data());
  } else {
    run_from_source(ctx, layer, ffn, s.block_out.data());
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

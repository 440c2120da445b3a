#include "train/network.h"

#include <algorithm>

#include "core/check.h"
#include "train/ops.h"

namespace moe::train {

using model::GlobalSlot;
using model::LayerSlot;

namespace {

float* data(std::vector<float>& v) { return v.data(); }

void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }

void zeros(std::vector<float>& v, int64_t n) { v.assign(static_cast<size_t>(n), 0.0f); }

void add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

AttentionShape attention_shape(const model::HParams& hp, const Batch& b) {
  return {b.n_seq, b.seq_len, hp.n_head, hp.n_head_kv, hp.head_dim_k};
}

// The weights of expert e of a layer (or of the dense FFN, e = 0): views into the stacked
// tensors, gate/up (n_ff, n_embd) and down (n_embd, n_ff).
struct ExpertWeights {
  Param* gate;
  Param* up;
  Param* down;
  int64_t offset;  // elements from the start of each stacked tensor
};

ExpertWeights expert_weights(TrainModel& m, int64_t l, int e) {
  const model::HParams& hp = m.hp();
  if (!hp.layer_is_moe(l)) {
    return {&m.layer(l, LayerSlot::kFfnGate), &m.layer(l, LayerSlot::kFfnUp), &m.layer(l, LayerSlot::kFfnDown), 0};
  }
  return {&m.layer(l, LayerSlot::kFfnGateExps), &m.layer(l, LayerSlot::kFfnUpExps),
          &m.layer(l, LayerSlot::kFfnDownExps), e * hp.n_ff_expert * hp.n_embd};
}

int64_t ffn_size(const model::HParams& hp, int64_t l) { return hp.layer_is_moe(l) ? hp.n_ff_expert : hp.n_ff; }

}  // namespace

ForwardStats Network::forward(const Batch& batch) {
  const model::HParams& hp = model_.hp();
  const int64_t T = batch.n_tokens();
  MOE_CHECK(static_cast<int64_t>(batch.tokens.size()) == T && static_cast<int64_t>(batch.targets.size()) == T);
  batch_ = &batch;
  positions_.resize(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) positions_[static_cast<size_t>(t)] = static_cast<int32_t>(t % batch.seq_len);
  layers_.resize(static_cast<size_t>(hp.n_layer));

  ForwardStats stats;
  stats.expert_counts.assign(static_cast<size_t>(hp.n_layer), {});
  std::vector<float> h(static_cast<size_t>(T * hp.n_embd));
  embedding_forward(model_.global(GlobalSlot::kTokenEmbd).value.data(), batch.tokens, h.data(), hp.n_embd);
  for (int64_t l = 0; l < hp.n_layer; ++l) layer_forward(l, h.data(), stats);

  h_final_ = h;
  resize(hn_, T * hp.n_embd);
  resize(rstd_final_, T);
  rms_norm_forward(pool_, h.data(), model_.global(GlobalSlot::kOutputNorm).value.data(), data(hn_), data(rstd_final_), T,
                   hp.n_embd, hp.rms_eps);
  resize(logits_, T * hp.n_vocab);
  linear_forward(pool_, data(hn_), model_.global(GlobalSlot::kOutput).value.data(), data(logits_), T, hp.n_embd,
                 hp.n_vocab);
  stats.ce_sum = cross_entropy(pool_, data(logits_), batch.targets, hp.n_vocab, nullptr, 0.0f);
  return stats;
}

void Network::layer_forward(int64_t l, float* h, ForwardStats& stats) {
  const model::HParams& hp = model_.hp();
  LayerActs& a = layers_[static_cast<size_t>(l)];
  const int64_t T = batch_->n_tokens();
  const int64_t E = hp.n_embd;
  const int64_t n_q = hp.n_head * hp.head_dim_k;
  const int64_t n_kv = hp.n_embd_k_gqa();
  a.h_in.assign(h, h + T * E);
  resize(a.xn1, T * E);
  resize(a.rstd1, T);
  rms_norm_forward(pool_, h, model_.layer(l, LayerSlot::kAttnNorm).value.data(), data(a.xn1), data(a.rstd1), T, E,
                   hp.rms_eps);
  resize(a.q, T * n_q);
  resize(a.k, T * n_kv);
  resize(a.v, T * n_kv);
  linear_forward(pool_, data(a.xn1), model_.layer(l, LayerSlot::kWq).value.data(), data(a.q), T, E, n_q);
  linear_forward(pool_, data(a.xn1), model_.layer(l, LayerSlot::kWk).value.data(), data(a.k), T, E, n_kv);
  linear_forward(pool_, data(a.xn1), model_.layer(l, LayerSlot::kWv).value.data(), data(a.v), T, E, n_kv);
  rope_forward(pool_, data(a.q), positions_, hp.n_head, hp.head_dim_k, hp.n_rot, hp.rope_freq_base);
  rope_forward(pool_, data(a.k), positions_, hp.n_head_kv, hp.head_dim_k, hp.n_rot, hp.rope_freq_base);
  const AttentionShape shape = attention_shape(hp, *batch_);
  resize(a.probs, shape.n_seq * shape.n_head * shape.seq_len * shape.seq_len);
  resize(a.att, T * n_q);
  attention_forward(pool_, shape, data(a.q), data(a.k), data(a.v), data(a.probs), data(a.att));
  std::vector<float> block(static_cast<size_t>(T * E));
  linear_forward(pool_, data(a.att), model_.layer(l, LayerSlot::kWo).value.data(), block.data(), T, n_q, E);
  add(block.data(), h, T * E);

  a.h_mid.assign(h, h + T * E);
  resize(a.xn2, T * E);
  resize(a.rstd2, T);
  rms_norm_forward(pool_, h, model_.layer(l, LayerSlot::kFfnNorm).value.data(), data(a.xn2), data(a.rstd2), T, E,
                   hp.rms_eps);
  ffn_forward(l, a, block.data(), stats);
  add(block.data(), h, T * E);
}

void Network::ffn_forward(int64_t l, LayerActs& a, float* out, ForwardStats& stats) {
  const model::HParams& hp = model_.hp();
  const int64_t T = batch_->n_tokens();
  const int64_t E = hp.n_embd;
  if (!hp.layer_is_moe(l)) {
    a.experts.resize(1);
    ExpertActs& ex = a.experts[0];
    ex.tokens.resize(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) ex.tokens[static_cast<size_t>(t)] = t;
    ex.slots.assign(static_cast<size_t>(T), 0);
    expert_forward(l, 0, ex, data(a.xn2), out, 1);
    return;
  }
  const RouterSpec& spec = model_.router();
  const int k = spec.n_expert_used;
  resize(a.router_logits, T * spec.n_expert);
  linear_forward(pool_, data(a.xn2), model_.layer(l, LayerSlot::kFfnGateInp).value.data(), data(a.router_logits), T, E,
                 spec.n_expert);
  const float* bias = spec.balance == BalanceMode::kBias ? model_.expert_bias()[static_cast<size_t>(l)].data() : nullptr;
  route_forward(pool_, spec, data(a.router_logits), bias, T, a.routing);
  const RouterLoss loss = router_loss(spec, a.routing, T);
  stats.aux += loss.aux;
  stats.z += loss.z;
  stats.expert_counts[static_cast<size_t>(l)] = a.routing.counts;

  // Group tokens by expert in token order, so each expert runs one matrix product.
  a.experts.assign(static_cast<size_t>(spec.n_expert), {});
  for (int64_t t = 0; t < T; ++t) {
    for (int j = 0; j < k; ++j) {
      ExpertActs& ex = a.experts[static_cast<size_t>(a.routing.experts[static_cast<size_t>(t * k + j)])];
      ex.tokens.push_back(t);
      ex.slots.push_back(j);
    }
  }
  resize(a.slot_out, T * k * E);
  for (int e = 0; e < spec.n_expert; ++e) {
    if (!a.experts[static_cast<size_t>(e)].tokens.empty()) {
      expert_forward(l, e, a.experts[static_cast<size_t>(e)], data(a.xn2), data(a.slot_out), k);
    }
  }
  // Weighted sum in slot order, as model::moe_ffn combines.
  std::fill(out, out + T * E, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    for (int j = 0; j < k; ++j) {
      const float w = a.routing.weights[static_cast<size_t>(t * k + j)];
      const float* src = a.slot_out.data() + (t * k + j) * E;
      for (int64_t i = 0; i < E; ++i) out[t * E + i] += src[i] * w;
    }
  }
}

void Network::expert_forward(int64_t l, int e, ExpertActs& ex, const float* xn2, float* slot_out, int k) {
  const model::HParams& hp = model_.hp();
  const int64_t E = hp.n_embd;
  const int64_t F = ffn_size(hp, l);
  const auto n = static_cast<int64_t>(ex.tokens.size());
  const ExpertWeights w = expert_weights(model_, l, e);
  resize(ex.x, n * E);
  for (int64_t i = 0; i < n; ++i) {
    const float* src = xn2 + ex.tokens[static_cast<size_t>(i)] * E;
    std::copy(src, src + E, ex.x.data() + i * E);
  }
  resize(ex.gate, n * F);
  resize(ex.up, n * F);
  resize(ex.act, n * F);
  linear_forward(pool_, data(ex.x), w.gate->value.data() + w.offset, data(ex.gate), n, E, F);
  linear_forward(pool_, data(ex.x), w.up->value.data() + w.offset, data(ex.up), n, E, F);
  swiglu_forward(data(ex.gate), data(ex.up), data(ex.act), n * F);
  std::vector<float> down(static_cast<size_t>(n * E));
  linear_forward(pool_, data(ex.act), w.down->value.data() + w.offset, down.data(), n, F, E);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = ex.tokens[static_cast<size_t>(i)];
    std::copy(down.data() + i * E, down.data() + (i + 1) * E,
              slot_out + (t * k + ex.slots[static_cast<size_t>(i)]) * E);
  }
}

void Network::backward() {
  const model::HParams& hp = model_.hp();
  const Batch& batch = *batch_;
  const int64_t T = batch.n_tokens();
  const int64_t E = hp.n_embd;
  std::vector<float> dlogits(static_cast<size_t>(T * hp.n_vocab));
  cross_entropy(pool_, data(logits_), batch.targets, hp.n_vocab, dlogits.data(), 1.0f / static_cast<float>(T));
  std::vector<float> dhn(static_cast<size_t>(T * E), 0.0f);
  Param& out = model_.global(GlobalSlot::kOutput);
  linear_backward(pool_, data(hn_), out.value.data(), dlogits.data(), dhn.data(), out.grad.data(), T, E, hp.n_vocab);
  std::vector<float> dh(static_cast<size_t>(T * E), 0.0f);
  Param& norm = model_.global(GlobalSlot::kOutputNorm);
  rms_norm_backward(pool_, data(h_final_), norm.value.data(), data(rstd_final_), dhn.data(), dh.data(),
                    norm.grad.data(), T, E);
  for (int64_t l = hp.n_layer - 1; l >= 0; --l) layer_backward(l, dh.data());
  embedding_backward(batch.tokens, dh.data(), model_.global(GlobalSlot::kTokenEmbd).grad.data(), E);
}

void Network::layer_backward(int64_t l, float* dh) {
  const model::HParams& hp = model_.hp();
  LayerActs& a = layers_[static_cast<size_t>(l)];
  const int64_t T = batch_->n_tokens();
  const int64_t E = hp.n_embd;
  const int64_t n_q = hp.n_head * hp.head_dim_k;
  const int64_t n_kv = hp.n_embd_k_gqa();
  auto p = [&](LayerSlot s) -> Param& { return model_.layer(l, s); };

  // h_out = h_mid + ffn(norm(h_mid)): dh already holds d h_out, which passes straight to h_mid.
  std::vector<float> dx;
  zeros(dx, T * E);
  ffn_backward(l, a, dh, dx.data());
  rms_norm_backward(pool_, data(a.h_mid), p(LayerSlot::kFfnNorm).value.data(), data(a.rstd2), dx.data(), dh,
                    p(LayerSlot::kFfnNorm).grad.data(), T, E);

  // h_mid = h_in + Wo . attention(rope(Wq x), rope(Wk x), Wv x) with x = norm(h_in).
  std::vector<float> datt, dq, dk, dv;
  zeros(datt, T * n_q);
  linear_backward(pool_, data(a.att), p(LayerSlot::kWo).value.data(), dh, datt.data(), p(LayerSlot::kWo).grad.data(), T,
                  n_q, E);
  zeros(dq, T * n_q);
  zeros(dk, T * n_kv);
  zeros(dv, T * n_kv);
  attention_backward(pool_, attention_shape(hp, *batch_), data(a.q), data(a.k), data(a.v), data(a.probs), datt.data(),
                     dq.data(), dk.data(), dv.data());
  rope_backward(pool_, dq.data(), positions_, hp.n_head, hp.head_dim_k, hp.n_rot, hp.rope_freq_base);
  rope_backward(pool_, dk.data(), positions_, hp.n_head_kv, hp.head_dim_k, hp.n_rot, hp.rope_freq_base);
  zeros(dx, T * E);
  linear_backward(pool_, data(a.xn1), p(LayerSlot::kWq).value.data(), dq.data(), dx.data(), p(LayerSlot::kWq).grad.data(),
                  T, E, n_q);
  linear_backward(pool_, data(a.xn1), p(LayerSlot::kWk).value.data(), dk.data(), dx.data(), p(LayerSlot::kWk).grad.data(),
                  T, E, n_kv);
  linear_backward(pool_, data(a.xn1), p(LayerSlot::kWv).value.data(), dv.data(), dx.data(), p(LayerSlot::kWv).grad.data(),
                  T, E, n_kv);
  rms_norm_backward(pool_, data(a.h_in), p(LayerSlot::kAttnNorm).value.data(), data(a.rstd1), dx.data(), dh,
                    p(LayerSlot::kAttnNorm).grad.data(), T, E);
}

void Network::ffn_backward(int64_t l, LayerActs& a, const float* dout, float* dxn2) {
  const model::HParams& hp = model_.hp();
  const int64_t T = batch_->n_tokens();
  const int64_t E = hp.n_embd;
  if (!hp.layer_is_moe(l)) {
    const float one = 1.0f;
    // Dense: a single "expert" over every token with weight 1 (weights index by token * k).
    std::vector<float> ones(static_cast<size_t>(T), one);
    expert_backward(l, 0, a.experts[0], dout, ones.data(), 1, dxn2);
    return;
  }
  const RouterSpec& spec = model_.router();
  const int k = spec.n_expert_used;
  // d(weight_tj) = <dout_t, expert output_tj>.
  std::vector<float> dweights(static_cast<size_t>(T * k));
  pool_.parallel_for(T, 32, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int j = 0; j < k; ++j) {
        const float* o = a.slot_out.data() + (t * k + j) * E;
        float dot = 0.0f;
        for (int64_t i = 0; i < E; ++i) dot += o[i] * dout[t * E + i];
        dweights[static_cast<size_t>(t * k + j)] = dot;
      }
    }
  });
  for (int e = 0; e < spec.n_expert; ++e) {
    if (!a.experts[static_cast<size_t>(e)].tokens.empty()) {
      expert_backward(l, e, a.experts[static_cast<size_t>(e)], dout, a.routing.weights.data(), k, dxn2);
    }
  }
  std::vector<float> dlogits(static_cast<size_t>(T * spec.n_expert));
  route_backward(pool_, spec, a.routing, dweights.data(), T, dlogits.data());
  Param& router = model_.layer(l, LayerSlot::kFfnGateInp);
  linear_backward(pool_, data(a.xn2), router.value.data(), dlogits.data(), dxn2, router.grad.data(), T, E,
                  spec.n_expert);
}

void Network::expert_backward(int64_t l, int e, ExpertActs& ex, const float* dout, const float* weights, int k,
                              float* dxn2) {
  const model::HParams& hp = model_.hp();
  const int64_t E = hp.n_embd;
  const int64_t F = ffn_size(hp, l);
  const auto n = static_cast<int64_t>(ex.tokens.size());
  const ExpertWeights w = expert_weights(model_, l, e);
  // The expert's output gradient: the token's output gradient times its routing weight.
  std::vector<float> ddown(static_cast<size_t>(n * E));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = ex.tokens[static_cast<size_t>(i)];
    const float weight = weights[t * k + ex.slots[static_cast<size_t>(i)]];
    for (int64_t c = 0; c < E; ++c) ddown[static_cast<size_t>(i * E + c)] = dout[t * E + c] * weight;
  }
  std::vector<float> dact(static_cast<size_t>(n * F), 0.0f);
  linear_backward(pool_, data(ex.act), w.down->value.data() + w.offset, ddown.data(), dact.data(),
                  w.down->grad.data() + w.offset, n, F, E);
  std::vector<float> dgate(static_cast<size_t>(n * F), 0.0f), dup(static_cast<size_t>(n * F), 0.0f);
  swiglu_backward(data(ex.gate), data(ex.up), dact.data(), dgate.data(), dup.data(), n * F);
  std::vector<float> dx(static_cast<size_t>(n * E), 0.0f);
  linear_backward(pool_, data(ex.x), w.gate->value.data() + w.offset, dgate.data(), dx.data(),
                  w.gate->grad.data() + w.offset, n, E, F);
  linear_backward(pool_, data(ex.x), w.up->value.data() + w.offset, dup.data(), dx.data(), w.up->grad.data() + w.offset,
                  n, E, F);
  // Tokens are distinct within one expert, and experts run in order: no races, fixed sums.
  for (int64_t i = 0; i < n; ++i) add(dx.data() + i * E, dxn2 + ex.tokens[static_cast<size_t>(i)] * E, E);
}

}  // namespace moe::train

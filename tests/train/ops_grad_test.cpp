// Every training op's backward pass against central finite differences.
#include <gtest/gtest.h>

#include "train/ops.h"
#include "train/router.h"
#include "grad_check.h"

namespace moe::train {
namespace {

using testing::dot;
using testing::expect_gradient;
using testing::random_vector;

TEST(OpsGrad, Linear) {
  ThreadPool pool(2);
  const int64_t T = 5, n_in = 12, n_out = 7;
  auto x = random_vector(T * n_in, 1), w = random_vector(n_out * n_in, 2), dy = random_vector(T * n_out, 3);
  auto loss = [&] {
    std::vector<float> y(static_cast<size_t>(T * n_out));
    linear_forward(pool, x.data(), w.data(), y.data(), T, n_in, n_out);
    return dot(y, dy);
  };
  std::vector<float> dx(x.size(), 0.0f), dw(w.size(), 0.0f);
  linear_backward(pool, x.data(), w.data(), dy.data(), dx.data(), dw.data(), T, n_in, n_out);
  expect_gradient("dx", x, dx, loss);
  expect_gradient("dw", w, dw, loss);
}

TEST(OpsGrad, GemmMatchesNaiveOnOddSizes) {
  ThreadPool pool(2);
  const int64_t m = 70, n = 131, k = 9;
  auto a = random_vector(m * k, 4), b = random_vector(n * k, 5);
  std::vector<float> c(static_cast<size_t>(m * n));
  gemm_nt(pool, a.data(), b.data(), c.data(), m, n, k);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < k; ++p) sum += static_cast<double>(a[i * k + p]) * b[j * k + p];
      ASSERT_NEAR(c[static_cast<size_t>(i * n + j)], sum, 1e-4) << i << "," << j;
    }
  }
}

TEST(OpsGrad, RmsNorm) {
  ThreadPool pool(2);
  const int64_t T = 4, n = 16;
  auto x = random_vector(T * n, 6), w = random_vector(n, 7), dy = random_vector(T * n, 8);
  auto loss = [&] {
    std::vector<float> y(x.size()), rstd(static_cast<size_t>(T));
    rms_norm_forward(pool, x.data(), w.data(), y.data(), rstd.data(), T, n, 1e-5f);
    return dot(y, dy);
  };
  std::vector<float> y(x.size()), rstd(static_cast<size_t>(T)), dx(x.size(), 0.0f), dw(w.size(), 0.0f);
  rms_norm_forward(pool, x.data(), w.data(), y.data(), rstd.data(), T, n, 1e-5f);
  rms_norm_backward(pool, x.data(), w.data(), rstd.data(), dy.data(), dx.data(), dw.data(), T, n);
  expect_gradient("dx", x, dx, loss, 1e-3f);
  expect_gradient("dw", w, dw, loss, 1e-3f);
}

TEST(OpsGrad, Rope) {
  ThreadPool pool(2);
  const int64_t T = 6, n_heads = 2, hd = 8;
  std::vector<int32_t> pos = {0, 1, 2, 5, 17, 100};
  auto x = random_vector(T * n_heads * hd, 9), dy = random_vector(x.size(), 10);
  auto loss = [&] {
    std::vector<float> y = x;
    rope_forward(pool, y.data(), pos, n_heads, hd, hd, 10000.0f);
    return dot(y, dy);
  };
  std::vector<float> dx = dy;
  rope_backward(pool, dx.data(), pos, n_heads, hd, hd, 10000.0f);
  expect_gradient("dx", x, dx, loss);
}

TEST(OpsGrad, SwiGlu) {
  auto gate = random_vector(40, 11, 2.0f), up = random_vector(40, 12), dy = random_vector(40, 13);
  auto loss = [&] {
    std::vector<float> y(gate.size());
    swiglu_forward(gate.data(), up.data(), y.data(), 40);
    return dot(y, dy);
  };
  std::vector<float> dgate(40, 0.0f), dup(40, 0.0f);
  swiglu_backward(gate.data(), up.data(), dy.data(), dgate.data(), dup.data(), 40);
  expect_gradient("dgate", gate, dgate, loss, 1e-3f);
  expect_gradient("dup", up, dup, loss, 1e-3f);
}

// Multi-head and grouped-query shapes.
class AttentionGrad : public ::testing::TestWithParam<int> {};

TEST_P(AttentionGrad, QueryKeyValue) {
  ThreadPool pool(2);
  const AttentionShape s{2, 5, 4, GetParam(), 4};
  const int64_t T = s.n_seq * s.seq_len;
  auto q = random_vector(T * s.n_head * s.head_dim, 14), k = random_vector(T * s.n_head_kv * s.head_dim, 15);
  auto v = random_vector(k.size(), 16), dy = random_vector(q.size(), 17);
  std::vector<float> probs(static_cast<size_t>(s.n_seq * s.n_head * s.seq_len * s.seq_len));
  auto loss = [&] {
    std::vector<float> out(q.size());
    attention_forward(pool, s, q.data(), k.data(), v.data(), probs.data(), out.data());
    return dot(out, dy);
  };
  loss();
  std::vector<float> dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  attention_backward(pool, s, q.data(), k.data(), v.data(), probs.data(), dy.data(), dq.data(), dk.data(), dv.data());
  expect_gradient("dq", q, dq, loss, 1e-3f);
  expect_gradient("dk", k, dk, loss, 1e-3f);
  expect_gradient("dv", v, dv, loss, 1e-3f);
}

INSTANTIATE_TEST_SUITE_P(Heads, AttentionGrad, ::testing::Values(4, 2, 1));

TEST(OpsGrad, AttentionIsCausal) {
  ThreadPool pool(1);
  const AttentionShape s{1, 4, 1, 1, 2};
  auto q = random_vector(8, 18), k = random_vector(8, 19), v = random_vector(8, 20);
  std::vector<float> probs(16), out(8), out2(8);
  attention_forward(pool, s, q.data(), k.data(), v.data(), probs.data(), out.data());
  v[6] += 1.0f;  // the last position's value may only change the last output
  attention_forward(pool, s, q.data(), k.data(), v.data(), probs.data(), out2.data());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], out2[static_cast<size_t>(i)]);
}

TEST(OpsGrad, CrossEntropy) {
  ThreadPool pool(2);
  const int64_t T = 5, V = 11;
  auto logits = random_vector(T * V, 21, 2.0f);
  std::vector<int32_t> targets = {0, 3, 10, 3, 7};
  auto loss = [&] { return cross_entropy(pool, logits.data(), targets, V, nullptr, 0.0f) / T; };
  std::vector<float> d(logits.size());
  cross_entropy(pool, logits.data(), targets, V, d.data(), 1.0f / T);
  expect_gradient("dlogits", logits, d, loss, 1e-3f);
}

TEST(OpsGrad, Embedding) {
  const int64_t n = 3;
  auto table = random_vector(5 * n, 22);
  std::vector<int32_t> ids = {4, 1, 4, 0};
  auto dy = random_vector(ids.size() * n, 23);
  auto loss = [&] {
    std::vector<float> y(ids.size() * n);
    embedding_forward(table.data(), ids, y.data(), n);
    return dot(y, dy);
  };
  std::vector<float> dtable(table.size(), 0.0f);
  embedding_backward(ids, dy.data(), dtable.data(), n);
  expect_gradient("dtable", table, dtable, loss);
}

// Routing: top-k with renormalised weights, the Switch loss and the z-loss. Logits are spread
// so that no finite-difference step changes which experts are chosen.
class RouterGrad : public ::testing::TestWithParam<BalanceMode> {};

TEST_P(RouterGrad, Logits) {
  ThreadPool pool(2);
  RouterSpec spec;
  spec.n_expert = 6;
  spec.n_expert_used = 2;
  spec.balance = GetParam();
  spec.aux_coef = 0.3f;
  spec.z_coef = 0.05f;
  const int64_t T = 7;
  auto logits = random_vector(T * spec.n_expert, 24, 3.0f);
  auto dweights = random_vector(T * spec.n_expert_used, 25);
  std::vector<float> bias = {0.0f, 0.1f, -0.05f, 0.0f, 0.02f, 0.0f};
  const float* b = spec.balance == BalanceMode::kBias ? bias.data() : nullptr;
  Routing r;
  auto loss = [&] {
    Routing local;
    route_forward(pool, spec, logits.data(), b, T, local);
    const RouterLoss rl = router_loss(spec, local, T);
    return dot(local.weights, dweights) + rl.aux + rl.z;
  };
  route_forward(pool, spec, logits.data(), b, T, r);
  std::vector<float> d(logits.size());
  route_backward(pool, spec, r, dweights.data(), T, d.data());
  expect_gradient("dlogits", logits, d, loss, 1e-3f);
}

INSTANTIATE_TEST_SUITE_P(Balance, RouterGrad, ::testing::Values(BalanceMode::kAuxLoss, BalanceMode::kBias));

TEST(Router, WeightsRenormaliseAndBiasOnlySelects) {
  ThreadPool pool(1);
  RouterSpec spec;
  spec.n_expert = 3;
  spec.n_expert_used = 2;
  std::vector<float> logits = {2.0f, 1.0f, 0.0f};
  Routing r;
  route_forward(pool, spec, logits.data(), nullptr, 1, r);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(r.weights[0] + r.weights[1], 1.0f, 1e-6);
  std::vector<float> bias = {0.0f, 0.0f, 1.0f};  // pushes expert 2 in; its weight stays unbiased
  route_forward(pool, spec, logits.data(), bias.data(), 1, r);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{2, 0}));
  EXPECT_NEAR(r.weights[1] / r.weights[0], std::exp(2.0f), 1e-4);
  std::vector<int64_t> counts = {5, 1, 0};
  update_balance_bias(spec, counts, bias.data());
  EXPECT_FLOAT_EQ(bias[0], -spec.bias_rate);
  EXPECT_FLOAT_EQ(bias[2], 1.0f + spec.bias_rate);
}

}  // namespace
}  // namespace moe::train

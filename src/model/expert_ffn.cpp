#include "model/expert_ffn.h"

#include <algorithm>
#include <numeric>

#include "core/check.h"
#include "kernels/ops.h"
#include "kernels/tile_gemm.h"
#include "model/blocks.h"

namespace moe::model {

namespace {

// Rows per task: enough to amortise a claim and keep a tile's weights in L2 while every token
// of the group passes over them, few enough that a decode step still splits into dozens of
// tasks for two to a few dozen threads.
constexpr int64_t kGateUpChunkRows = 64;
constexpr int64_t kDownChunkRows = 32;

// The tokens routed to one expert. Pairs (token, slot) are numbered group after group; a
// group's pairs are rows first_pair.. of the per-pair buffers.
struct Group {
  int expert = 0;
  int64_t first_pair = 0;
  std::vector<int64_t> tokens;
  bool tiles = false;          // runs on the tile unit (bf16), not the int8 kernels
  size_t packed_x = 0;         // where its inputs start in ExpertFfnScratch::packed_x
  size_t packed_hidden = 0;    // and its SwiGLU outputs in packed_hidden
};

struct Plan {
  std::vector<Group> groups;      // active experts, largest token group first
  std::vector<int64_t> pair_of;   // (n_tokens, n_expert_used): row of each (token, slot)
  int64_t n_pairs = 0;
};

Plan make_plan(const std::vector<TokenRoute>& routes, int n_expert_used, int n_expert) {
  const auto n_tokens = static_cast<int64_t>(routes.size());
  std::vector<Group> by_expert(static_cast<size_t>(n_expert));
  for (int e = 0; e < n_expert; ++e) by_expert[static_cast<size_t>(e)].expert = e;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int slot = 0; slot < n_expert_used; ++slot) {
      const int e = routes[static_cast<size_t>(t)].experts[slot];
      MOE_CHECK(e >= 0 && e < n_expert);
      by_expert[static_cast<size_t>(e)].tokens.push_back(t);
    }
  }
  Plan plan;
  for (Group& g : by_expert) {
    if (!g.tokens.empty()) plan.groups.push_back(std::move(g));
  }
  std::stable_sort(plan.groups.begin(), plan.groups.end(),
                   [](const Group& a, const Group& b) { return a.tokens.size() > b.tokens.size(); });
  // Where each (token, slot) landed: the k-th token of a group is its k-th pair.
  std::vector<int64_t> first_pair_of_expert(static_cast<size_t>(n_expert), -1);
  for (Group& g : plan.groups) {
    g.first_pair = plan.n_pairs;
    first_pair_of_expert[static_cast<size_t>(g.expert)] = g.first_pair;
    plan.n_pairs += static_cast<int64_t>(g.tokens.size());
  }
  plan.pair_of.resize(static_cast<size_t>(n_tokens * n_expert_used));
  std::vector<int64_t> next(first_pair_of_expert);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int slot = 0; slot < n_expert_used; ++slot) {
      const int e = routes[static_cast<size_t>(t)].experts[slot];
      plan.pair_of[static_cast<size_t>(t * n_expert_used + slot)] = next[static_cast<size_t>(e)]++;
    }
  }
  return plan;
}

using Quantizer = void (*)(const float*, void*, int64_t);

// The activation conversion for weights of `traits` (as convert_rows does it), or null for F32.
Quantizer activation_quantizer(const kernels::TypeTraits& traits) {
  if (traits.vec_dot_type == DType::kF32) return nullptr;
  const kernels::TypeTraits* act = kernels::type_traits(traits.vec_dot_type);
  MOE_CHECK(act != nullptr && act->from_float != nullptr);
  return act->from_float_activation != nullptr ? act->from_float_activation : act->from_float;
}

size_t activation_row_bytes(const kernels::TypeTraits& traits, int64_t n) {
  const auto bytes = dtype_row_bytes(traits.vec_dot_type, n);
  MOE_CHECK(bytes.has_value());
  return *bytes;
}

// Activation rows of one type: converted once for all tokens, then gathered per group (a
// single token is shared by every group as is).
struct GroupedInput {
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  bool shared = false;  // one row used by every group

  const uint8_t* of(const Group& g) const {
    return shared ? data : data + static_cast<size_t>(g.first_pair) * row_bytes;
  }
};

GroupedInput prepare_input(ThreadPool& pool, const kernels::TypeTraits& traits, const float* x, int64_t n_tokens,
                           int64_t n_embd, const Plan& plan, std::vector<uint8_t>& converted,
                           std::vector<uint8_t>& grouped) {
  const Quantizer quantize = activation_quantizer(traits);
  const size_t row_bytes = activation_row_bytes(traits, n_embd);
  const uint8_t* rows = reinterpret_cast<const uint8_t*>(x);
  if (quantize != nullptr) {
    converted.resize(row_bytes * static_cast<size_t>(n_tokens));
    pool.parallel_for(n_tokens, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) quantize(x + t * n_embd, converted.data() + t * row_bytes, n_embd);
    });
    rows = converted.data();
  }
  if (n_tokens == 1) return {rows, row_bytes, true};
  grouped.resize(row_bytes * static_cast<size_t>(plan.n_pairs));
  for (const Group& g : plan.groups) {
    for (size_t i = 0; i < g.tokens.size(); ++i) {
      std::copy_n(rows + g.tokens[i] * row_bytes, row_bytes, grouped.data() + (g.first_pair + i) * row_bytes);
    }
  }
  return {grouped.data(), row_bytes, false};
}

// Rows per task for products whose output is quantized per block of `block` elements: whole
// blocks, and whole 16-float SIMD groups so element-wise kernels round as over full rows.
int64_t chunk_rows(int64_t goal, int64_t block) {
  const int64_t unit = std::lcm<int64_t>(std::max<int64_t>(block, 1), 16);
  return std::max(unit, goal / unit * unit);
}

int64_t block_size_of(DType type) {
  const kernels::TypeTraits* traits = kernels::type_traits(type);
  MOE_CHECK(traits != nullptr);
  return traits->block_size;
}

}  // namespace

struct GroupedExpertFfn::State {
  ThreadPool& pool;
  ExpertFfnWeights w;
  const float* x;
  int64_t n_tokens;
  const std::vector<TokenRoute>& routes;
  int n_expert_used;
  ExpertFfnScratch& s;
  int64_t n_embd = 0;
  int64_t n_ff = 0;
  Plan plan;
  std::vector<int> experts;             // plan.groups' experts in order
  std::vector<int> group_of_expert;     // expert -> index in plan.groups, -1 when unused
  GroupedInput in_gate, in_up;
  Quantizer quantize_hidden = nullptr;
  size_t hidden_row_bytes = 0;
  int64_t hidden_block = 1;
  size_t hidden_block_bytes = 0;
  int64_t gate_chunk = 0;
  int64_t n_gate_chunks = 0;
  int64_t down_chunk_rows = kDownChunkRows;
  // Whether groups may sum on the int8 tile unit, decided on the calling thread (BatchInvariantSums
  // is per thread, and the tasks run on the pool's).
  bool int8_tiles = false;

  State(ThreadPool& p, const ExpertFfnWeights& weights, const float* input, int64_t n_t,
        const std::vector<TokenRoute>& r, int k, ExpertFfnScratch& scratch)
      : pool(p), w(weights), x(input), n_tokens(n_t), routes(r), n_expert_used(k), s(scratch) {
    n_embd = w.gate->n_cols();
    n_ff = w.gate->n_rows();
    const int n_expert = static_cast<int>(w.gate->shape.size() > 2 ? w.gate->shape[2] : 1);
    MOE_CHECK(static_cast<int64_t>(routes.size()) == n_tokens);
    plan = make_plan(routes, n_expert_used, n_expert);
    group_of_expert.assign(static_cast<size_t>(n_expert), -1);
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      experts.push_back(plan.groups[g].expert);
      group_of_expert[static_cast<size_t>(plan.groups[g].expert)] = static_cast<int>(g);
    }
    const kernels::TypeTraits& gate_t = *w.gate->traits;
    const kernels::TypeTraits& up_t = *w.up->traits;
    const kernels::TypeTraits& down_t = *w.down->traits;
    in_gate = prepare_input(pool, gate_t, x, n_tokens, n_embd, plan, s.input, s.grouped);
    in_up = up_t.vec_dot_type == gate_t.vec_dot_type
                ? in_gate
                : prepare_input(pool, up_t, x, n_tokens, n_embd, plan, s.input_up, s.grouped_up);
    const auto pairs = static_cast<size_t>(plan.n_pairs);
    s.gate.resize(pairs * static_cast<size_t>(n_ff));
    s.up.resize(s.gate.size());
    s.down.resize(pairs * static_cast<size_t>(n_embd));
    quantize_hidden = activation_quantizer(down_t);
    hidden_row_bytes = activation_row_bytes(down_t, n_ff);
    hidden_block = block_size_of(down_t.vec_dot_type);
    hidden_block_bytes = activation_row_bytes(down_t, hidden_block);
    if (quantize_hidden != nullptr) s.hidden.resize(pairs * hidden_row_bytes);
    gate_chunk = chunk_rows(kGateUpChunkRows, hidden_block);
    n_gate_chunks = (n_ff + gate_chunk - 1) / gate_chunk;
    // Few tokens: each task streams its rows of every expert from memory, and each new stretch
    // starts without a prefetch lead, so take ~4 long chunks per thread rather than many short ones.
    if (n_tokens <= kernels::kTileTokens) {
      down_chunk_rows = std::max(kDownChunkRows, n_embd / (4 * pool.size()) / 16 * 16);
    }
    int8_tiles = int8_tiles_allowed();
    plan_tile_groups();
  }

  // The order a group of n tokens sums a product with `w` in: on the int8 tile unit when it is
  // allowed and covers the type from that many tokens, else ggml's vec_dot order.
  kernels::SumOrder order_for(const Tensor& weights, int64_t n) const {
    return int8_tiles && use_int8_tiles(weights, n) ? kernels::SumOrder::kTileBlocks : kernels::SumOrder::kVecDot;
  }

  bool on_int8_tiles(const Tensor& weights, const Group& g) const {
    return order_for(weights, static_cast<int64_t>(g.tokens.size())) == kernels::SumOrder::kTileBlocks;
  }

  size_t index_of(const Group& g) const { return static_cast<size_t>(&g - plan.groups.data()); }

  // The int8 tile products of a group are split into row chunks (the pool's tasks); each would
  // pack the group's activations again, so they are packed once per group before each pass. Gate
  // and up share one packing when they read the same rows (the same activation type).
  bool gate_up_share_inputs() const { return in_up.data == in_gate.data; }

  bool packs_inputs(const Group& g) const {
    return !g.tiles && gate_up_share_inputs() && (on_int8_tiles(*w.gate, g) || on_int8_tiles(*w.up, g));
  }

  bool packs_hidden(const Group& g) const { return !g.tiles && quantize_hidden != nullptr && on_int8_tiles(*w.down, g); }

  void pack_inputs(const Group& g) {
    const Tensor& t = on_int8_tiles(*w.gate, g) ? *w.gate : *w.up;
    kernels::int8_tiles::pack_activations(t.type, in_gate.of(g), in_gate.row_bytes,
                                          static_cast<int64_t>(g.tokens.size()), n_embd, s.int8_inputs[index_of(g)]);
  }

  void pack_hidden(const Group& g) {
    kernels::int8_tiles::pack_activations(w.down->type,
                                          s.hidden.data() + static_cast<size_t>(g.first_pair) * hidden_row_bytes,
                                          hidden_row_bytes, static_cast<int64_t>(g.tokens.size()), n_ff,
                                          s.int8_hidden[index_of(g)]);
  }

  // Packs, for every group that needs it (packs(g)), with pack(g) over the pool; nothing when no
  // group does (decode never pays for a pool pass).
  template <class Needs, class Pack>
  void pack_groups(const Needs& packs, const Pack& pack) {
    std::vector<const Group*> todo;
    for (const Group& g : plan.groups) {
      if (packs(g)) todo.push_back(&g);
    }
    if (todo.empty()) return;
    s.int8_inputs.resize(plan.groups.size());
    s.int8_hidden.resize(plan.groups.size());
    pool.run_tasks(static_cast<int64_t>(todo.size()), [&](int64_t i) { pack(*todo[static_cast<size_t>(i)]); });
  }

  void pack_all_inputs() {
    pack_groups([&](const Group& g) { return packs_inputs(g); }, [&](const Group& g) { pack_inputs(g); });
  }

  void pack_all_hidden() {
    pack_groups([&](const Group& g) { return packs_hidden(g); }, [&](const Group& g) { pack_hidden(g); });
  }

  // One product of a group's gate / up rows [r0, r1) (`x` its grouped input rows).
  void gate_or_up_rows(const Tensor& t, const uint8_t* m, const Group& g, const GroupedInput& x, float* y, int64_t r0,
                       int64_t r1) {
    const auto n = static_cast<int64_t>(g.tokens.size());
    if (packs_inputs(g) && on_int8_tiles(t, g)) {
      kernels::int8_tiles::matmul_packed(t.type, m, t.row_bytes, s.int8_inputs[index_of(g)], y, n_ff, r0, r1);
      return;
    }
    kernels::matmul_rows(*t.traits, m, t.row_bytes, n_embd, x.of(g), x.row_bytes, n, y, n_ff, r0, r1, order_for(t, n));
  }

  // Marks the groups that run on the tile unit and packs their inputs. Not while sums must be
  // batch-invariant: whether a group is big enough depends on the rest of the batch.
  void plan_tile_groups() {
    const int64_t most = plan.groups.empty() ? 0 : static_cast<int64_t>(plan.groups[0].tokens.size());
    const bool usable = use_tiles(*w.gate, most) && use_tiles(*w.up, most) && use_tiles(*w.down, most) &&
                        gate_chunk % kernels::tiles::kTileRows == 0;
    if (!usable) return;
    // A group runs all three products on one engine: from the largest of their thresholds.
    const int64_t threshold = std::max({kernels::tiles::min_tokens(w.gate->type), kernels::tiles::min_tokens(w.up->type),
                                        kernels::tiles::min_tokens(w.down->type)});
    size_t x_size = 0, hidden_size = 0;
    std::vector<Group*> tile_groups;
    for (Group& g : plan.groups) {
      if (static_cast<int64_t>(g.tokens.size()) < threshold) continue;
      g.tiles = true;
      g.packed_x = x_size;
      g.packed_hidden = hidden_size;
      const auto n = static_cast<int64_t>(g.tokens.size());
      x_size += kernels::tiles::packed_size(n, n_embd);
      hidden_size += kernels::tiles::packed_size(n, n_ff);
      tile_groups.push_back(&g);
    }
    if (tile_groups.empty()) return;
    s.packed_x.resize(x_size);
    s.packed_hidden.resize(hidden_size);
    pool.run_tasks(static_cast<int64_t>(tile_groups.size()), [&](int64_t i) {
      const Group& g = *tile_groups[static_cast<size_t>(i)];
      std::vector<const float*> rows;
      for (int64_t t : g.tokens) rows.push_back(x + t * n_embd);
      kernels::tiles::pack_activations(rows.data(), static_cast<int64_t>(rows.size()), n_embd, 0, n_embd,
                                       s.packed_x.data() + g.packed_x);
    });
  }

  // Gate and up rows [r0, r1) of a tile group, SwiGLU, and those columns of its packed hidden.
  void gate_up_chunk_tiles(const Group& g, const ExpertMatrices& m, int64_t r0, int64_t r1) {
    const auto n = static_cast<int64_t>(g.tokens.size());
    float* gate = s.gate.data() + g.first_pair * n_ff;
    float* up = s.up.data() + g.first_pair * n_ff;
    const uint16_t* packed = s.packed_x.data() + g.packed_x;
    kernels::tiles::matmul(w.gate->type, m.gate, w.gate->row_bytes, n_embd, packed, n, gate, n_ff, r0, r1);
    kernels::tiles::matmul(w.up->type, m.up, w.up->row_bytes, n_embd, packed, n, up, n_ff, r0, r1);
    std::vector<const float*> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      kernels::swiglu(gate + i * n_ff + r0, up + i * n_ff + r0, gate + i * n_ff + r0, r1 - r0);
      rows[static_cast<size_t>(i)] = gate + i * n_ff;
    }
    kernels::tiles::pack_activations(rows.data(), n, n_ff, r0, r1, s.packed_hidden.data() + g.packed_hidden);
  }

  // Gate and up rows [r0, r1) of group g, SwiGLU, conversion for down.
  void gate_up_chunk(const Group& g, const ExpertMatrices& m, int64_t r0, int64_t r1) {
    if (g.tiles) return gate_up_chunk_tiles(g, m, r0, r1);
    const auto n = static_cast<int64_t>(g.tokens.size());
    float* gate = s.gate.data() + g.first_pair * n_ff;
    float* up = s.up.data() + g.first_pair * n_ff;
    gate_or_up_rows(*w.gate, m.gate, g, in_gate, gate, r0, r1);
    gate_or_up_rows(*w.up, m.up, g, in_up, up, r0, r1);
    for (int64_t i = 0; i < n; ++i) {
      float* row = gate + i * n_ff;
      kernels::swiglu(row + r0, up + i * n_ff + r0, row + r0, r1 - r0);
      if (quantize_hidden != nullptr) {
        uint8_t* dst = s.hidden.data() + static_cast<size_t>(g.first_pair + i) * hidden_row_bytes;
        quantize_hidden(row + r0, dst + static_cast<size_t>(r0 / hidden_block) * hidden_block_bytes, r1 - r0);
      }
    }
  }

  // Down rows [r0, r1) of group g into its pairs' rows of s.down.
  void down_chunk(const Group& g, const ExpertMatrices& m, int64_t r0, int64_t r1) {
    if (g.tiles) {
      kernels::tiles::matmul(w.down->type, m.down, w.down->row_bytes, n_ff, s.packed_hidden.data() + g.packed_hidden,
                             static_cast<int64_t>(g.tokens.size()), s.down.data() + g.first_pair * n_embd, n_embd,
                             r0, r1);
      return;
    }
    const uint8_t* hidden = quantize_hidden != nullptr
                                ? s.hidden.data() + static_cast<size_t>(g.first_pair) * hidden_row_bytes
                                : reinterpret_cast<const uint8_t*>(s.gate.data() + g.first_pair * n_ff);
    const auto n = static_cast<int64_t>(g.tokens.size());
    float* y = s.down.data() + g.first_pair * n_embd;
    if (packs_hidden(g)) {
      kernels::int8_tiles::matmul_packed(w.down->type, m.down, w.down->row_bytes, s.int8_hidden[index_of(g)], y, n_embd,
                                         r0, r1);
      return;
    }
    kernels::matmul_rows(*w.down->traits, m.down, w.down->row_bytes, n_ff, hidden, hidden_row_bytes, n, y, n_embd, r0,
                         r1, order_for(*w.down, n));
  }

  // out rows [r0, r1) of every token: the weighted sum of its slots, in slot order.
  void combine_rows(float* out, int64_t r0, int64_t r1) const {
    for (int64_t t = 0; t < n_tokens; ++t) {
      const TokenRoute& route = routes[static_cast<size_t>(t)];
      const int64_t* pair = plan.pair_of.data() + t * n_expert_used;
      float* o = out + t * n_embd;
      // Slot by slot over the row range (streams each slot's row once, and vectorizes); every
      // o[r] still adds its slots in slot order, starting from zero.
      std::fill(o + r0, o + r1, 0.0f);
      for (int slot = 0; slot < n_expert_used; ++slot) {
        const float* d = s.down.data() + pair[slot] * n_embd;
        const float weight = route.weights[slot];
        for (int64_t r = r0; r < r1; ++r) o[r] += d[r] * weight;
      }
    }
  }

  int64_t n_down_chunks() const { return (n_embd + down_chunk_rows - 1) / down_chunk_rows; }
};

GroupedExpertFfn::GroupedExpertFfn(ThreadPool& pool, const ExpertFfnWeights& w, const float* x, int64_t n_tokens,
                                   const std::vector<TokenRoute>& routes, int n_expert_used, ExpertFfnScratch& scratch)
    : state_(std::make_unique<State>(pool, w, x, n_tokens, routes, n_expert_used, scratch)) {}

GroupedExpertFfn::~GroupedExpertFfn() = default;

const std::vector<int>& GroupedExpertFfn::experts() const { return state_->experts; }

void GroupedExpertFfn::run_all(float* out, const std::vector<ExpertMatrices>* matrices) {
  State& st = *state_;
  auto matrices_of = [&](int e) {
    return matrices != nullptr ? (*matrices)[static_cast<size_t>(e)] : st.w.in_tensors(e);
  };
  // Pass 1: per (group, row chunk), big groups first.
  st.pack_all_inputs();
  st.pool.run_tasks(static_cast<int64_t>(st.plan.groups.size()) * st.n_gate_chunks, [&](int64_t task) {
    const Group& g = st.plan.groups[static_cast<size_t>(task / st.n_gate_chunks)];
    const int64_t r0 = task % st.n_gate_chunks * st.gate_chunk;
    st.gate_up_chunk(g, matrices_of(g.expert), r0, std::min(st.n_ff, r0 + st.gate_chunk));
  });
  // Pass 2: down per output row chunk over every group, then each token's weighted sum.
  st.pack_all_hidden();
  st.pool.run_tasks(st.n_down_chunks(), [&](int64_t task) {
    const int64_t r0 = task * st.down_chunk_rows;
    const int64_t r1 = std::min(st.n_embd, r0 + st.down_chunk_rows);
    for (const Group& g : st.plan.groups) st.down_chunk(g, matrices_of(g.expert), r0, r1);
    st.combine_rows(out, r0, r1);
  });
}

void GroupedExpertFfn::run_expert(int expert, const ExpertMatrices& m) {
  State& st = *state_;
  MOE_CHECK(expert >= 0 && static_cast<size_t>(expert) < st.group_of_expert.size());
  const int index = st.group_of_expert[static_cast<size_t>(expert)];
  MOE_CHECK(index >= 0);
  const Group& g = st.plan.groups[static_cast<size_t>(index)];
  st.s.int8_inputs.resize(st.plan.groups.size());
  st.s.int8_hidden.resize(st.plan.groups.size());
  if (st.packs_inputs(g)) st.pack_inputs(g);
  st.pool.run_tasks(st.n_gate_chunks, [&](int64_t task) {
    const int64_t r0 = task * st.gate_chunk;
    st.gate_up_chunk(g, m, r0, std::min(st.n_ff, r0 + st.gate_chunk));
  });
  if (st.packs_hidden(g)) st.pack_hidden(g);
  st.pool.run_tasks(st.n_down_chunks(), [&](int64_t task) {
    const int64_t r0 = task * st.down_chunk_rows;
    st.down_chunk(g, m, r0, std::min(st.n_embd, r0 + st.down_chunk_rows));
  });
}

void GroupedExpertFfn::combine(float* out) {
  State& st = *state_;
  st.pool.run_tasks(st.n_down_chunks(), [&](int64_t task) {
    const int64_t r0 = task * st.down_chunk_rows;
    st.combine_rows(out, r0, std::min(st.n_embd, r0 + st.down_chunk_rows));
  });
}

void grouped_expert_ffn(ThreadPool& pool, const ExpertFfnWeights& w, const float* x, int64_t n_tokens,
                        const std::vector<TokenRoute>& routes, int n_expert_used, float* out,
                        ExpertFfnScratch& scratch, const std::vector<ExpertMatrices>* matrices) {
  GroupedExpertFfn(pool, w, x, n_tokens, routes, n_expert_used, scratch).run_all(out, matrices);
}

}  // namespace moe::model

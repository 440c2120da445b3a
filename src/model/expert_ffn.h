// The routed experts of a micro-batch as one grouped computation (SwiGLU experts).
//
// Tokens are grouped by expert; every chosen expert then runs once over its whole token group,
// so its weights stream from memory once per micro-batch however many tokens picked it. The
// work is two passes over the thread pool, whatever the number of experts:
//   1. gate and up products, SwiGLU and the quantization of the result, per (expert, row chunk)
//      task, largest token groups first so threads stay balanced when experts get uneven loads;
//   2. the down product per row chunk of the output across all experts, fused with the weighted
//      sum of each token's expert outputs (in routing-slot order, as llama.cpp adds them).
// Activations are quantized once per micro-batch for all experts. Every dot product is the
// kernel's vec_dot (tiles are bit-identical to it), so results equal a per-expert loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/aligned_vector.h"
#include "kernels/tile_int8.h"
#include "core/thread_pool.h"
#include "model/tensor.h"

namespace moe::model {

// Where one expert's matrices start: the first row of that expert in each stacked tensor.
// Normally inside the mapped file; an expert store may hand out copies it holds in RAM.
struct ExpertMatrices {
  const uint8_t* gate = nullptr;
  const uint8_t* up = nullptr;
  const uint8_t* down = nullptr;
};

// The stacked expert tensors of one layer: gate/up (n_expert, n_ff, n_embd), down
// (n_expert, n_embd, n_ff).
struct ExpertFfnWeights {
  const Tensor* gate = nullptr;
  const Tensor* up = nullptr;
  const Tensor* down = nullptr;

  // Returns expert e's matrices inside the tensors.
  ExpertMatrices in_tensors(int expert) const {
    return {gate->row(0, expert), up->row(0, expert), down->row(0, expert)};
  }
};

// One token's routing: experts[slot] and weights[slot] for slot in [0, n_expert_used).
struct TokenRoute {
  const int* experts = nullptr;
  const float* weights = nullptr;
};

// Buffers reused across layers and micro-batches (grown, never shrunk).
struct ExpertFfnScratch {
  std::vector<uint8_t> input;    // x converted to the gate/up activation type, per token
  std::vector<uint8_t> input_up; // the same for up when its activation type differs
  std::vector<uint8_t> grouped;  // those rows gathered per expert group
  std::vector<uint8_t> grouped_up;
  std::vector<float> gate;       // (pairs, n_ff) gate products, then SwiGLU in place
  std::vector<float> up;         // (pairs, n_ff)
  std::vector<uint8_t> hidden;   // (pairs, ...) SwiGLU output in down's activation type
  std::vector<float> down;       // (pairs, n_embd)
  AlignedVector<uint16_t> packed_x;       // bf16 inputs of the groups that use the tile unit
  AlignedVector<uint16_t> packed_hidden;  // their SwiGLU outputs, the same way
  // Per group, for products on the int8 tile unit: its inputs and its SwiGLU outputs, packed once.
  std::vector<kernels::int8_tiles::PackedActivations> int8_inputs;
  std::vector<kernels::int8_tiles::PackedActivations> int8_hidden;
};

// One grouped expert FFN over a micro-batch. Either all experts at once (run_all: two pool
// passes, the weighted sum fused into the second), or expert by expert as an expert store
// hands them out (run_expert for each, then combine) -- both give the same bits.
class GroupedExpertFfn {
 public:
  // x (n_tokens, n_embd) and `routes` must outlive the object.
  GroupedExpertFfn(ThreadPool& pool, const ExpertFfnWeights& w, const float* x, int64_t n_tokens,
                   const std::vector<TokenRoute>& routes, int n_expert_used, ExpertFfnScratch& scratch);
  ~GroupedExpertFfn();
  GroupedExpertFfn(const GroupedExpertFfn&) = delete;
  GroupedExpertFfn& operator=(const GroupedExpertFfn&) = delete;

  // Returns the experts with tokens, most tokens first (ties: lower index first).
  const std::vector<int>& experts() const;
  // out (n_tokens, n_embd) = sum over slots of weight * expert(x); `matrices` (indexed by
  // expert) overrides where experts' weights are, null: in the tensors.
  void run_all(float* out, const std::vector<ExpertMatrices>* matrices = nullptr);
  // Runs one expert of experts() over its tokens with weights at `m`; its outputs wait for
  // combine(). The expert's weights may be released when this returns.
  void run_expert(int expert, const ExpertMatrices& m);
  // out = the weighted sum of the outputs of run_expert (every expert of experts() must have run).
  void combine(float* out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Convenience: GroupedExpertFfn(...).run_all(out, matrices).
void grouped_expert_ffn(ThreadPool& pool, const ExpertFfnWeights& w, const float* x, int64_t n_tokens,
                        const std::vector<TokenRoute>& routes, int n_expert_used, float* out,
                        ExpertFfnScratch& scratch, const std::vector<ExpertMatrices>* matrices = nullptr);

}  // namespace moe::model

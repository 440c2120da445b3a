#include "moe/expert_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "model/blocks.h"
#include "moe/memory_budget.h"

namespace moe::experts {

namespace {

using model::LayerSlot;
using model::Tensor;

constexpr std::array<LayerSlot, 3> kProjections = {LayerSlot::kFfnGateExps, LayerSlot::kFfnUpExps,
                                                   LayerSlot::kFfnDownExps};

uint64_t round_up(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

bool is_routed_expert(const Tensor& t) {
  return t.name.ends_with("ffn_gate_exps.weight") || t.name.ends_with("ffn_up_exps.weight") ||
         t.name.ends_with("ffn_down_exps.weight");
}

// Bytes of one expert of a stacked tensor (n_cols, n_rows, n_expert).
uint64_t expert_stride(const Tensor& t) { return static_cast<uint64_t>(t.n_rows()) * t.row_bytes; }

// Room a projection needs in a slot: its bytes, rounded to the O_DIRECT unit, plus one unit for
// the expert's misalignment in the file (reads start at the aligned offset below it).
uint64_t projection_room(const Tensor& t) { return round_up(expert_stride(t), kDirectAlign) + kDirectAlign; }

}  // namespace

Result<StorePlan> plan_store(const model::Model& model, const StoreOptions& options) {
  const model::HParams& hp = model.hparams();
  if (!hp.moe.is_moe()) return make_error("the expert store needs a MoE model; '{}' has no routed experts", hp.arch);
  StorePlan plan;
  plan.budget_bytes = options.budget_bytes;
  plan.reserved_bytes = options.reserved_bytes;
  for (const auto& info : model.file().tensors()) {
    const bool expert = info.name.ends_with("_exps.weight");
    (expert ? plan.all_experts_bytes : plan.resident_bytes) += info.n_bytes;
  }
  int n_moe_layers = 0;
  for (int l = 0; l < hp.n_layer; ++l) {
    const model::LayerWeights& w = model.weights().layers[static_cast<size_t>(l)];
    if (!hp.layer_is_moe(l) || !w[LayerSlot::kFfnGateExps].present()) continue;
    ++n_moe_layers;
    uint64_t expert = 0, slot = 0;
    for (LayerSlot p : kProjections) {
      expert += expert_stride(w[p]);
      slot += projection_room(w[p]);
    }
    plan.expert_bytes = std::max(plan.expert_bytes, expert);
    plan.slot_bytes = std::max(plan.slot_bytes, slot);
  }
  if (n_moe_layers == 0) return make_error("the model has no layers with routed experts");
  plan.n_experts = int64_t{n_moe_layers} * hp.moe.n_expert;
  const uint64_t fixed = plan.resident_bytes + plan.reserved_bytes;
  const uint64_t minimum = fixed + static_cast<uint64_t>(hp.moe.n_expert_used) * plan.slot_bytes;
  if (options.budget_bytes < minimum) {
    return make_error(
        "memory budget {} is too small: the resident part needs {} (weights other than routed experts {} + KV cache "
        "and activations {}) plus {} for the {} experts one token uses in a layer; give at least {}",
        format_size(options.budget_bytes), format_size(fixed), format_size(plan.resident_bytes),
        format_size(plan.reserved_bytes), format_size(hp.moe.n_expert_used * plan.slot_bytes), hp.moe.n_expert_used,
        format_size(minimum));
  }
  plan.n_slots = std::min<int64_t>(static_cast<int64_t>((options.budget_bytes - fixed) / plan.slot_bytes), plan.n_experts);
  if (options.per_layer && plan.n_slots < int64_t{n_moe_layers} * hp.moe.n_expert_used) {
    return make_error("per-layer capacity needs {} slots ({} per layer) but the budget gives {}",
                      int64_t{n_moe_layers} * hp.moe.n_expert_used, hp.moe.n_expert_used, plan.n_slots);
  }
  if (static_cast<int64_t>(options.pinned.size()) > plan.n_slots - hp.moe.n_expert_used) {
    return make_error("{} pinned experts leave fewer than {} free slots of {}", options.pinned.size(),
                      hp.moe.n_expert_used, plan.n_slots);
  }
  return plan;
}

ExpertStore::ExpertStore(model::Model& model, const StoreOptions& options, const StorePlan& plan)
    : model_(model), options_(options), plan_(plan) {}

Result<std::unique_ptr<ExpertStore>> ExpertStore::create(model::Model& model, const StoreOptions& options) {
  MOE_ASSIGN_OR_RETURN(StorePlan plan, plan_store(model, options));
  if (model.file().mapped_bytes().empty()) return make_error("the expert store needs a model opened from a file");
  auto store = std::unique_ptr<ExpertStore>(new ExpertStore(model, options, plan));
  MOE_TRY(store->init_layout());
  MOE_TRY(store->init_memory());
  IoEngineOptions io;
  io.queue_depth = options.queue_depth;
  io.fail_read_at = options.fail_read_at;
  ExpertStore* self = store.get();
  MOE_ASSIGN_OR_RETURN(store->io_, IoEngine::open(model.file().path(), io, [self](ReadRequest& r, const Status& s) {
                         self->on_read_done(r, s);
                       }));
  MOE_TRY(store->load_pinned());
  return store;
}

ExpertStore::~ExpertStore() {
  io_.reset();  // joins the I/O thread after its reads finished: nothing writes the slots after this
  if (slot_memory_ != nullptr) ::munmap(slot_memory_, static_cast<size_t>(plan_.n_slots) * plan_.slot_bytes);
  if (zero_slot_ != nullptr) ::munmap(zero_slot_, plan_.slot_bytes);
}

Status ExpertStore::init_layout() {
  const model::HParams& hp = model_.hparams();
  n_layer_ = static_cast<int>(hp.n_layer);
  n_expert_ = hp.moe.n_expert;
  proj_.resize(static_cast<size_t>(n_layer_));
  gates_.resize(static_cast<size_t>(n_layer_));
  const formats::GgufFile& file = model_.file();
  for (int l = 0; l < n_layer_; ++l) {
    const model::LayerWeights& w = model_.weights().layers[static_cast<size_t>(l)];
    if (!hp.layer_is_moe(l) || !w[LayerSlot::kFfnGateExps].present()) continue;
    moe_layers_.push_back(l);
    uint64_t slot_offset = 0;
    for (size_t p = 0; p < kProjections.size(); ++p) {
      const Tensor& t = w[kProjections[p]];
      const formats::GgufTensorInfo* info = file.find_tensor(t.name);
      MOE_CHECK(info != nullptr);
      proj_[static_cast<size_t>(l)][p] = {file.data_offset() + info->offset, expert_stride(t), slot_offset};
      slot_offset += projection_room(t);
    }
    Gate& g = gates_[static_cast<size_t>(l)];
    g.norm = w[LayerSlot::kFfnNorm].f32();
    const Tensor& router = w[LayerSlot::kFfnGateInp];
    if (router.traits == nullptr || router.traits->to_float == nullptr) {
      return make_error("router '{}' has a type the store cannot read", router.name);
    }
    g.router.resize(static_cast<size_t>(n_expert_ * hp.n_embd));
    for (int e = 0; e < n_expert_; ++e) router.traits->to_float(router.row(e), g.router.data() + e * hp.n_embd, hp.n_embd);
    if (w[LayerSlot::kFfnGateInpB].present()) g.router_bias = w[LayerSlot::kFfnGateInpB].f32();
    if (hp.moe.selection_bias && w[LayerSlot::kExpProbsB].present()) g.selection_bias = w[LayerSlot::kExpProbsB].f32();
  }
  first_moe_layer_ = moe_layers_.front();
  entries_.resize(static_cast<size_t>(n_layer_ * n_expert_));
  predicted_.assign(static_cast<size_t>(n_layer_), {});
  policy_ = make_policy(options_.policy, n_layer_, n_expert_, options_.half_life);
  reset_stats_locked();
  return ok_status();
}

Status ExpertStore::init_memory() {
  // Everything but the routed experts moves to RAM the model owns: only the experts are read from
  // the file from now on, and only by the I/O thread.
  model_.copy_to_memory(is_routed_expert);
  const std::span<const uint8_t> mapped = model_.file().mapped_bytes();
  auto* base = const_cast<uint8_t*>(mapped.data());
  // Why: the copy and the header parse faulted pages of the mapping in; drop them, and the page
  // cache they came from, so the memory they hold goes to the expert cache. MADV_RANDOM keeps the
  // kernel from reading ahead should anything touch the mapping again.
  ::madvise(base, mapped.size(), MADV_DONTNEED);
  ::madvise(base, mapped.size(), MADV_RANDOM);
  if (const int fd = ::open(model_.file().path().c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  const size_t bytes = static_cast<size_t>(plan_.n_slots) * plan_.slot_bytes;
  // Anonymous mappings are page-aligned, as O_DIRECT buffers must be; pages are committed as
  // experts are first read into them.
  void* slots = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (slots == MAP_FAILED) return make_error("cannot allocate the expert cache ({}): {}", format_size(bytes), std::strerror(errno));
  slot_memory_ = static_cast<uint8_t*>(slots);
  // Never written: reads see the kernel's shared zero page, so it costs no memory.
  void* zero = ::mmap(nullptr, plan_.slot_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (zero == MAP_FAILED) return make_error("cannot map a zero slot: {}", std::strerror(errno));
  zero_slot_ = static_cast<uint8_t*>(zero);
  slots_.resize(static_cast<size_t>(plan_.n_slots));
  for (size_t s = 0; s < slots_.size(); ++s) {
    slots_[s].data = slot_memory_ + s * plan_.slot_bytes;
    if (options_.per_layer) slots_[s].owner_layer = moe_layers_[s % moe_layers_.size()];
  }
  requests_.resize(slots_.size() * kProjections.size());
  return ok_status();
}

Status ExpertStore::load_pinned() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto [layer, expert] : options_.pinned) {
    if (layer < 0 || layer >= n_layer_ || expert < 0 || expert >= n_expert_ || gates_[static_cast<size_t>(layer)].router.empty()) {
      return make_error("cannot pin expert {} of layer {}: no such routed expert", expert, layer);
    }
    Entry& entry = entries_[static_cast<size_t>(entry_of(layer, expert))];
    if (entry.permanent) continue;
    const int slot = find_slot_locked(layer);
    if (slot < 0) return make_error("no cache slot left to pin expert {} of layer {}", expert, layer);
    entry.permanent = true;
    start_load_locked(entry_of(layer, expert), slot, /*prefetch=*/false);
  }
  changed_.wait(lock, [&] {
    return std::none_of(entries_.begin(), entries_.end(), [](const Entry& e) { return e.state == State::kLoading; });
  });
  reset_stats_locked();
  return error_;
}

int ExpertStore::find_slot_locked(int layer) const {
  int best = -1;
  double best_score = 0.0;
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& slot = slots_[s];
    if (slot.owner_layer >= 0 && slot.owner_layer != layer) continue;
    if (slot.entry < 0) return static_cast<int>(s);
    const Entry& e = entries_[static_cast<size_t>(slot.entry)];
    if (e.state != State::kReady || e.pins > 0 || e.permanent) continue;
    const double score = policy_->keep_score(slot.entry, tick_);
    if (best < 0 || score < best_score) {
      best = static_cast<int>(s);
      best_score = score;
    }
  }
  return best;
}

void ExpertStore::start_load_locked(int entry_index, int slot_index, bool prefetch) {
  Slot& slot = slots_[static_cast<size_t>(slot_index)];
  if (slot.entry >= 0) {
    Entry& old = entries_[static_cast<size_t>(slot.entry)];
    old = Entry{-1, State::kAbsent, old.pins, 0, old.permanent, false, false};
    ++stats_.evictions;
  }
  Entry& e = entries_[static_cast<size_t>(entry_index)];
  slot.entry = entry_index;
  e.slot = slot_index;
  e.state = State::kLoading;
  e.reads_left = static_cast<int>(kProjections.size());
  e.prefetched = prefetch;
  e.failed = false;
  policy_->on_insert(entry_index, tick_);
  ++stats_.reads;
  if (prefetch) ++stats_.prefetch_reads;
  const int layer = entry_index / n_expert_;
  const int expert = entry_index % n_expert_;
  for (size_t p = 0; p < kProjections.size(); ++p) {
    const Projection& proj = proj_[static_cast<size_t>(layer)][p];
    const uint64_t offset = proj.offset + static_cast<uint64_t>(expert) * proj.stride;
    const uint64_t start = offset / kDirectAlign * kDirectAlign;
    ReadRequest& r = requests_[static_cast<size_t>(slot_index) * kProjections.size() + p];
    r = ReadRequest{start, slot.data + proj.slot_offset, round_up(offset + proj.stride - start, kDirectAlign),
                    offset + proj.stride - start, 0, static_cast<uint64_t>(slot_index)};
    stats_.bytes_read += r.length;
    io_->submit(&r);
  }
}

void ExpertStore::on_read_done(ReadRequest& request, const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Slot& slot = slots_[static_cast<size_t>(request.tag)];
    Entry& e = entries_[static_cast<size_t>(slot.entry)];
    if (!status.ok()) {
      e.failed = true;
      if (error_.ok()) error_ = status;
    }
    if (--e.reads_left == 0) {
      if (e.failed) {  // the slot's bytes are incomplete: forget the expert
        e = Entry{-1, State::kAbsent, e.pins, 0, e.permanent, false, false};
        slot.entry = -1;
      } else {
        e.state = State::kReady;
      }
    }
  }
  changed_.notify_all();
}

void ExpertStore::score_prediction_locked(int layer, const std::vector<int>& experts) {
  std::vector<uint8_t>& predicted = predicted_[static_cast<size_t>(layer)];
  if (predicted.empty()) return;
  int64_t n_predicted = 0, correct = 0;
  for (uint8_t p : predicted) n_predicted += p;
  for (int e : experts) correct += predicted[static_cast<size_t>(e)];
  stats_.predicted += n_predicted;
  stats_.predicted_correct += correct;
  stats_.predicted_layer_uses += static_cast<int64_t>(experts.size());
  predicted.clear();
}

size_t ExpertStore::begin_layer(int layer, std::vector<int>& experts) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++tick_;
  score_prediction_locked(layer, experts);
  std::vector<int> ready, loading, missing;
  for (int expert : experts) {
    const int index = entry_of(layer, expert);
    Entry& e = entries_[static_cast<size_t>(index)];
    policy_->on_use(index, 1, tick_);
    ++stats_.uses[static_cast<size_t>(index)];
    ++stats_.expert_uses;
    if (e.prefetched && e.state != State::kAbsent) ++stats_.prefetch_used;
    e.prefetched = false;
    ++e.pins;
    if (e.state == State::kReady) {
      ++stats_.hits;
      ready.push_back(expert);
    } else if (e.state == State::kLoading) {
      ++stats_.late_prefetches;
      loading.push_back(expert);
    } else {
      ++stats_.misses;
      e.state = State::kQueued;
      missing.push_back(expert);
      queued_.push_back(index);
    }
  }
  // Compute what is in memory while the rest arrives; misses keep their most-used-first order.
  experts = ready;
  experts.insert(experts.end(), loading.begin(), loading.end());
  experts.insert(experts.end(), missing.begin(), missing.end());
  if (!error_.ok()) return 0;
  issue_queued_locked();
  return ready.size();
}

void ExpertStore::issue_queued_locked() {
  while (!queued_.empty()) {
    const int index = queued_.front();
    const int slot = find_slot_locked(index / n_expert_);
    if (slot < 0) return;
    queued_.erase(queued_.begin());
    start_load_locked(index, slot, /*prefetch=*/false);
  }
}

std::vector<int> ExpertStore::predict(int layer, const float* hidden, int64_t n_tokens) const {
  const model::HParams& hp = model_.hparams();
  const Gate& g = gates_[static_cast<size_t>(layer)];
  const kernels::TypeTraits* f32 = kernels::type_traits(DType::kF32);
  std::vector<float> x(static_cast<size_t>(hp.n_embd)), logits(static_cast<size_t>(n_expert_));
  std::vector<int64_t> counts(static_cast<size_t>(n_expert_), 0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    kernels::rms_norm(hidden + t * hp.n_embd, g.norm, x.data(), hp.n_embd, hp.rms_eps);
    for (int e = 0; e < n_expert_; ++e) {
      logits[static_cast<size_t>(e)] = f32->vec_dot(hp.n_embd, g.router.data() + e * hp.n_embd, x.data());
      if (g.router_bias != nullptr) logits[static_cast<size_t>(e)] += g.router_bias[e];
    }
    for (int e : model::route_token(hp.moe, logits.data(), g.selection_bias).experts) ++counts[static_cast<size_t>(e)];
  }
  return model::experts_by_use(counts);
}

void ExpertStore::hint(int layer, const float* hidden, int64_t n_tokens) {
  if (layer == first_moe_layer_) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.tokens += n_tokens;
  }
  const int next = layer + 1;
  if (!options_.prefetch || next >= n_layer_ || gates_[static_cast<size_t>(next)].router.empty()) return;
  {
    // A layer still waiting for slots has no room for guesses about the next one.
    std::lock_guard<std::mutex> lock(mutex_);
    if (!queued_.empty() || !error_.ok()) return;
  }
  const std::vector<int> guess = predict(next, hidden, n_tokens);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint8_t>& predicted = predicted_[static_cast<size_t>(next)];
  predicted.assign(static_cast<size_t>(n_expert_), 0);
  for (int expert : guess) {
    predicted[static_cast<size_t>(expert)] = 1;
    const int index = entry_of(next, expert);
    if (entries_[static_cast<size_t>(index)].state != State::kAbsent) continue;
    const int slot = find_slot_locked(next);
    if (slot < 0) break;
    start_load_locked(index, slot, /*prefetch=*/true);
  }
}

model::ExpertWeights ExpertStore::weights_in(const uint8_t* base, int layer, int expert) const {
  std::array<const uint8_t*, 3> p{};
  for (size_t i = 0; i < kProjections.size(); ++i) {
    const Projection& proj = proj_[static_cast<size_t>(layer)][i];
    const uint64_t offset = proj.offset + static_cast<uint64_t>(expert) * proj.stride;
    p[i] = base + proj.slot_offset + offset % kDirectAlign;
  }
  return {p[0], p[1], p[2]};
}

model::ExpertWeights ExpertStore::acquire(int layer, int expert) {
  std::unique_lock<std::mutex> lock(mutex_);
  const int index = entry_of(layer, expert);
  Entry& e = entries_[static_cast<size_t>(index)];
  const auto start = std::chrono::steady_clock::now();
  while (error_.ok() && e.state != State::kReady) {
    if (e.state == State::kQueued) {
      const int slot = find_slot_locked(layer);
      if (slot >= 0) {
        queued_.erase(std::find(queued_.begin(), queued_.end(), index));
        start_load_locked(index, slot, /*prefetch=*/false);
        continue;
      }
      const bool any_loading = std::any_of(entries_.begin(), entries_.end(),
                                           [](const Entry& x) { return x.state == State::kLoading; });
      if (!any_loading) {  // only possible if the caller ignored begin_layer's order
        error_ = make_error("expert cache deadlock: no slot can take expert {} of layer {}", expert, layer);
        break;
      }
    }
    changed_.wait(lock);
  }
  stats_.stall_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!error_.ok() || e.state != State::kReady) return weights_in(zero_slot_, layer, expert);
  return weights_in(slots_[static_cast<size_t>(e.slot)].data, layer, expert);
}

void ExpertStore::release(int layer, int expert) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entries_[static_cast<size_t>(entry_of(layer, expert))];
  MOE_CHECK(e.pins > 0);
  --e.pins;
  if (e.state == State::kQueued && e.pins == 0) {  // after a failure: never read, drop it
    queued_.erase(std::find(queued_.begin(), queued_.end(), entry_of(layer, expert)));
    e.state = State::kAbsent;
  }
  if (error_.ok()) issue_queued_locked();
}

bool ExpertStore::is_cached(int layer, int expert) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_[static_cast<size_t>(entry_of(layer, expert))].state == State::kReady;
}

int64_t ExpertStore::n_cached() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.state == State::kReady; });
}

Status ExpertStore::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

StoreStats ExpertStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void ExpertStore::reset_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  reset_stats_locked();
}

void ExpertStore::reset_stats_locked() {
  stats_ = StoreStats{};
  stats_.n_layer = n_layer_;
  stats_.n_expert = n_expert_;
  stats_.uses.assign(entries_.size(), 0);
}

}  // namespace moe::experts

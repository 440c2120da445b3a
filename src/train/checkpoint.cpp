// Trainer checkpoints: a little-endian binary file holding everything a run's next step
// depends on, so a resumed run continues bit for bit. Layout:
//   "MOETRNCK" u32 version, string fingerprint (model shape and routing; must match),
//   i64 step, u64 rng state, i64 adam steps, history (u64 n, n x (i64, f64, f64)),
//   expert bias (u64 n_layer, each u64 n + floats),
//   params (u64 n, each: string name, u64 size, value, adam m, adam v as f32).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "train/trainer.h"

namespace moe::train {

namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'T', 'R', 'N', 'C', 'K'};
constexpr uint32_t kVersion = 1;

class Writer {
 public:
  explicit Writer(std::ofstream& out) : out_(out) {}
  template <typename T>
  void pod(const T& v) {
    out_.write(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void string(const std::string& s) {
    pod<uint64_t>(s.size());
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  void floats(const std::vector<float>& v) {
    pod<uint64_t>(v.size());
    out_.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  }

 private:
  std::ofstream& out_;
};

// Reads with bounds: every count is checked against what remains in the file before use.
class Reader {
 public:
  Reader(std::ifstream& in, uint64_t size, std::string path) : in_(in), remaining_(size), path_(std::move(path)) {}
  template <typename T>
  Result<T> pod() {
    T v{};
    MOE_TRY(read(&v, sizeof(T)));
    return v;
  }
  Result<std::string> string() {
    MOE_ASSIGN_OR_RETURN(uint64_t n, pod<uint64_t>());
    if (n > remaining_) return make_error("checkpoint '{}' is truncated (string of {} bytes)", path_, n);
    std::string s(n, '\0');
    MOE_TRY(read(s.data(), n));
    return s;
  }
  Status floats(std::vector<float>& v, const std::string& what) {
    MOE_ASSIGN_OR_RETURN(uint64_t n, pod<uint64_t>());
    if (n != v.size()) return make_error("checkpoint '{}': {} has {} values, expected {}", path_, what, n, v.size());
    return read(v.data(), n * sizeof(float));
  }

 private:
  Status read(void* dst, uint64_t n) {
    if (n > remaining_) return make_error("checkpoint '{}' is truncated", path_);
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in_) return make_error("checkpoint '{}': read failed", path_);
    remaining_ -= n;
    return ok_status();
  }
  std::ifstream& in_;
  uint64_t remaining_;
  std::string path_;
};

}  // namespace

std::string Trainer::fingerprint() const {
  const model::HParams& hp = model_.hp();
  return fmt::format("llama vocab={} layer={} embd={} head={} head_kv={} ff={} expert={}/{} ctx={} balance={}",
                     hp.n_vocab, hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ff_expert, hp.moe.n_expert,
                     hp.moe.n_expert_used, hp.n_ctx_train, static_cast<int>(model_.router().balance));
}

Status Trainer::save_checkpoint(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error("cannot write checkpoint '{}'", tmp);
    Writer w(out);
    out.write(kMagic, sizeof(kMagic));
    w.pod(kVersion);
    w.string(fingerprint());
    w.pod<int64_t>(step_);
    w.pod<uint64_t>(rng_.state());
    w.pod<int64_t>(optimizer_.steps_taken());
    w.pod<uint64_t>(history_.size());
    for (const LossPoint& p : history_) {
      w.pod(p.step);
      w.pod(p.train);
      w.pod(p.valid);
    }
    w.pod<uint64_t>(model_.expert_bias().size());
    for (const auto& bias : model_.expert_bias()) w.floats(bias);
    const auto& params = model_.params();
    w.pod<uint64_t>(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      w.string(params[i].name);
      w.floats(params[i].value);
      w.floats(optimizer_.first_moments()[i]);
      w.floats(optimizer_.second_moments()[i]);
    }
    out.flush();
    if (!out) return make_error("writing checkpoint '{}' failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return make_error("cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  return ok_status();
}

Status Trainer::load_checkpoint(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return make_error("cannot open checkpoint '{}': {}", path, ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot open checkpoint '{}'", path);
  Reader r(in, size, path);
  MOE_ASSIGN_OR_RETURN(uint64_t magic, r.pod<uint64_t>());
  if (std::memcmp(&magic, kMagic, sizeof(kMagic)) != 0) return make_error("'{}' is not a moe.cpp checkpoint", path);
  MOE_ASSIGN_OR_RETURN(uint32_t version, r.pod<uint32_t>());
  if (version != kVersion) return make_error("checkpoint '{}' has version {}, expected {}", path, version, kVersion);
  MOE_ASSIGN_OR_RETURN(std::string print, r.string());
  if (print != fingerprint()) {
    return make_error("checkpoint '{}' is for a different model:\n  checkpoint: {}\n  this run:   {}", path, print,
                      fingerprint());
  }
  MOE_ASSIGN_OR_RETURN(step_, r.pod<int64_t>());
  MOE_ASSIGN_OR_RETURN(uint64_t rng_state, r.pod<uint64_t>());
  rng_.set_state(rng_state);
  MOE_ASSIGN_OR_RETURN(int64_t adam_steps, r.pod<int64_t>());
  optimizer_.set_steps_taken(adam_steps);
  MOE_ASSIGN_OR_RETURN(uint64_t n_history, r.pod<uint64_t>());
  if (n_history > size / 24) return make_error("checkpoint '{}': history of {} points is too long", path, n_history);
  history_.resize(n_history);
  for (LossPoint& p : history_) {
    MOE_ASSIGN_OR_RETURN(p.step, r.pod<int64_t>());
    MOE_ASSIGN_OR_RETURN(p.train, r.pod<double>());
    MOE_ASSIGN_OR_RETURN(p.valid, r.pod<double>());
  }
  MOE_ASSIGN_OR_RETURN(uint64_t n_bias, r.pod<uint64_t>());
  if (n_bias != model_.expert_bias().size()) return make_error("checkpoint '{}': expert bias layers differ", path);
  for (auto& bias : model_.expert_bias()) MOE_TRY(r.floats(bias, "expert bias"));
  MOE_ASSIGN_OR_RETURN(uint64_t n_params, r.pod<uint64_t>());
  auto& params = model_.params();
  if (n_params != params.size()) return make_error("checkpoint '{}' has {} tensors, expected {}", path, n_params, params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    MOE_ASSIGN_OR_RETURN(std::string name, r.string());
    if (name != params[i].name) return make_error("checkpoint '{}': tensor {} is '{}', expected '{}'", path, i, name, params[i].name);
    MOE_TRY(r.floats(params[i].value, name));
    MOE_TRY(r.floats(optimizer_.first_moments()[i], name + " (adam m)"));
    MOE_TRY(r.floats(optimizer_.second_moments()[i], name + " (adam v)"));
  }
  return ok_status();
}

}  // namespace moe::train

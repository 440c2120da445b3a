#include "train/trainer.h"

#include <cmath>

#include "kernels/kernels.h"
#include "model/random_model.h"

namespace moe::train {

model::HParams hparams_for(const TrainOptions& o, int64_t n_vocab) {
  return make_hparams(n_vocab, o.n_layer, o.n_embd, o.n_head, o.n_head_kv > 0 ? o.n_head_kv : o.n_head, o.n_ff,
                      o.n_expert, o.n_expert_used, o.ctx);
}

Result<std::unique_ptr<Trainer>> Trainer::create(const TrainOptions& options, const DataSet& data, int64_t n_vocab,
                                                 ThreadPool& pool) {
  if (options.ctx <= 1 || options.batch <= 0 || options.steps <= 0) {
    return make_error("ctx ({}) must exceed 1, batch ({}) and steps ({}) must be positive", options.ctx, options.batch,
                      options.steps);
  }
  if (options.n_head <= 0 || options.n_embd % options.n_head != 0 || (options.n_embd / options.n_head) % 2 != 0) {
    return make_error("n_embd ({}) must be a multiple of n_head ({}) with an even head size", options.n_embd,
                      options.n_head);
  }
  MOE_ASSIGN_OR_RETURN(TrainModel model, TrainModel::create(hparams_for(options, n_vocab), options.router, options.seed));
  return std::unique_ptr<Trainer>(new Trainer(options, data, std::move(model), pool));
}

Trainer::Trainer(const TrainOptions& options, const DataSet& data, TrainModel model, ThreadPool& pool)
    : options_(options),
      data_(data),
      pool_(pool),
      model_(std::move(model)),
      network_(model_, pool),
      optimizer_(
          [&] {
            OptimizerConfig c = options.optim;
            c.total_steps = options.steps;
            return c;
          }(),
          model_),
      // The data order has its own stream, distinct from the weight initialisation's.
      rng_(splitmix64(options.seed ^ 0x64617461ull)) {}

StepResult Trainer::step() {
  data_.sample_train(rng_, options_.batch, options_.ctx, batch_);
  model_.zero_grad();
  const ForwardStats stats = network_.forward(batch_);
  network_.backward();
  StepResult r;
  r.loss = stats.ce_sum / static_cast<double>(batch_.n_tokens());
  r.aux = stats.aux;
  r.z = stats.z;
  r.expert_counts = stats.expert_counts;
  r.grad_norm = optimizer_.clip_gradients(pool_, model_);
  r.lr = learning_rate(optimizer_.config(), step_);
  optimizer_.step(pool_, model_, r.lr);
  if (model_.router().balance == BalanceMode::kBias) {
    for (int64_t l = 0; l < model_.hp().n_layer; ++l) {
      if (model_.hp().layer_is_moe(l)) {
        update_balance_bias(model_.router(), stats.expert_counts[static_cast<size_t>(l)],
                            model_.expert_bias()[static_cast<size_t>(l)].data());
      }
    }
  }
  ++step_;
  history_.push_back({step_, r.loss, std::numeric_limits<double>::quiet_NaN()});
  return r;
}

EvalResult Trainer::evaluate() {
  EvalResult result;
  double total = 0.0;
  int64_t n_tokens = 0;
  for (size_t i = 0; i < data_.corpora().size(); ++i) {
    double sum = 0.0;
    int64_t n = 0;
    for (const Batch& b : data_.validation_batches(i, options_.batch, options_.ctx, options_.eval_windows)) {
      sum += network_.forward(b).ce_sum;
      n += b.n_tokens();
    }
    result.loss.push_back(n > 0 ? sum / static_cast<double>(n) : 0.0);
    total += sum;
    n_tokens += n;
  }
  result.mean = n_tokens > 0 ? total / static_cast<double>(n_tokens) : 0.0;
  if (!history_.empty() && history_.back().step == step_) history_.back().valid = result.mean;
  return result;
}

namespace {

// Returns the tensor's bytes as `type`, row by row (rows are shape[0] long).
Result<std::vector<uint8_t>> encode_tensor(const Param& p, DType type) {
  const kernels::TypeTraits* traits = kernels::type_traits(type);
  const auto row_bytes = dtype_row_bytes(type, p.shape[0]);
  if (traits == nullptr || traits->from_float == nullptr || !row_bytes) {
    return make_error("cannot store tensor '{}' (rows of {}) as {}", p.name, p.shape[0], dtype_name(type));
  }
  const int64_t n_rows = p.size() / p.shape[0];
  std::vector<uint8_t> bytes(*row_bytes * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    traits->from_float(p.value.data() + r * p.shape[0], bytes.data() + static_cast<size_t>(r) * *row_bytes, p.shape[0]);
  }
  return bytes;
}

}  // namespace

Status Trainer::export_gguf(const std::string& path, const std::function<void(formats::GgufWriter&)>& write_vocab,
                            DType type) const {
  formats::GgufWriter writer;
  model::add_llama_family_metadata(model_.hp(), writer);
  write_vocab(writer);
  for (const Param& p : model_.params()) {
    const bool keep_f32 = !p.decay || p.name.find("ffn_gate_inp") != std::string::npos;
    const DType t = keep_f32 ? DType::kF32 : type;
    MOE_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, encode_tensor(p, t));
    MOE_TRY(writer.add_tensor(p.name, t, p.shape, std::move(bytes)));
  }
  return writer.write(path);
}

}  // namespace moe::train

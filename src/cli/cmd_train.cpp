// `moe train`: trains a small llama-arch MoE model on text files and writes a GGUF that
// `moe run` loads, plus a loss-curve SVG. Progress goes to stderr.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/thread_pool.h"
#include "train/data.h"
#include "train/loop.h"
#include "train/trainer.h"

namespace moe::cli {

namespace {

struct TrainCliOptions {
  std::vector<std::string> data;
  std::string vocab = "builtin";
  std::string output_path;
  std::string svg_path;
  std::string balance = "aux";
  std::string type_name = "f32";
  std::string checkpoint_dir;
  bool resume = false;
  int threads = 0;
  double val_fraction = 0.05;
  train::TrainOptions train;
  train::LoopOptions loop;
};

Result<train::BalanceMode> parse_balance(const std::string& name) {
  if (name == "aux") return train::BalanceMode::kAuxLoss;
  if (name == "bias") return train::BalanceMode::kBias;
  return make_error("--balance must be 'aux' or 'bias', got '{}'", name);
}

Status run_train_impl(TrainCliOptions& o) {
  MOE_ASSIGN_OR_RETURN(o.train.router.balance, parse_balance(o.balance));
  const auto type = dtype_from_name(o.type_name);
  if (!type) return make_error("unknown weight type '{}'", o.type_name);
  std::vector<train::DataSource> sources;
  for (const std::string& spec : o.data) {
    MOE_ASSIGN_OR_RETURN(train::DataSource source, train::parse_data_source(spec));
    sources.push_back(std::move(source));
  }
  ThreadPool pool(resolve_threads(o.threads));
  MOE_ASSIGN_OR_RETURN(train::TrainVocab vocab, train::load_train_vocab(o.vocab));
  MOE_ASSIGN_OR_RETURN(train::DataSet data, train::DataSet::load(sources, vocab.vocab, o.val_fraction, o.train.ctx, pool));
  for (const train::Corpus& c : data.corpora()) {
    fmt::print(stderr, "data {}: {} training + {} validation tokens (weight {})\n", c.name, c.train.size(),
               c.valid.size(), c.weight);
  }
  MOE_ASSIGN_OR_RETURN(auto trainer, train::Trainer::create(o.train, data, vocab.vocab.size(), pool));
  o.loop.checkpoint_dir = o.checkpoint_dir;
  if (o.resume) {
    if (o.checkpoint_dir.empty()) return make_error("--resume needs --checkpoint DIR");
    const std::string path = train::checkpoint_path(o.checkpoint_dir);
    if (std::filesystem::exists(path)) {
      MOE_TRY(trainer->load_checkpoint(path));
      fmt::print(stderr, "resumed from {} at step {}\n", path, trainer->step_index());
    } else {
      fmt::print(stderr, "no checkpoint at {}; starting fresh\n", path);
    }
  }
  const model::HParams& hp = trainer->model().hp();
  fmt::print(stderr, "model: {} layers, n_embd {}, {} heads ({} kv), n_ff {}, {} experts top-{}, vocab {}, {:.2f}M params\n",
             hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ff_expert, hp.moe.n_expert, hp.moe.n_expert_used,
             hp.n_vocab, static_cast<double>(trainer->model().n_params()) / 1e6);
  o.loop.svg_path = o.svg_path.empty() ? std::filesystem::path(o.output_path).replace_extension(".svg").string()
                                       : o.svg_path;
  MOE_TRY(train::run_training(*trainer, o.loop));
  MOE_TRY(trainer->export_gguf(o.output_path, vocab.write_metadata, *type));
  fmt::print(stderr, "wrote {} and {}\n", o.output_path, o.loop.svg_path);
  return ok_status();
}

int run_train(TrainCliOptions& o) {
  if (Status s = run_train_impl(o); !s.ok()) return report_error(s.error().message);
  return 0;
}

}  // namespace

CommandRunner add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  train::TrainOptions& t = o->train;
  CLI::App* sub = app.add_subcommand("train", "Train a small MoE model on text files (CPU)");
  sub->add_option("--data", o->data, "Training text: FILE or name=FILE:weight (repeatable, mixed by weight)")
      ->required();
  sub->add_option("--vocab", o->vocab, "Vocabulary: 'builtin' or a GGUF with tokenizer metadata")->capture_default_str();
  sub->add_option("-o,--output", o->output_path, "Output GGUF")->required();
  sub->add_option("--type", o->type_name, "Stored type of the output's matrices (f32, f16, q8_0, ...)")
      ->capture_default_str();
  sub->add_option("--svg", o->svg_path, "Loss curve SVG (default: OUTPUT with .svg)");
  sub->add_option("--n-layer", t.n_layer, "Layers")->capture_default_str();
  sub->add_option("--n-embd", t.n_embd, "Embedding size")->capture_default_str();
  sub->add_option("--n-head", t.n_head, "Attention heads")->capture_default_str();
  sub->add_option("--n-head-kv", t.n_head_kv, "KV heads (0: same as --n-head)")->capture_default_str();
  sub->add_option("--n-ff", t.n_ff, "FFN size per expert")->capture_default_str();
  sub->add_option("--n-expert", t.n_expert, "Experts per layer (0: dense)")->capture_default_str();
  sub->add_option("--n-expert-used", t.n_expert_used, "Experts per token")->capture_default_str();
  sub->add_option("--ctx", t.ctx, "Training window (tokens)")->capture_default_str();
  sub->add_option("--batch", t.batch, "Windows per step")->capture_default_str();
  sub->add_option("--steps", t.steps, "Optimizer steps")->capture_default_str();
  sub->add_option("--lr", t.optim.lr, "Peak learning rate")->capture_default_str();
  sub->add_option("--min-lr-ratio", t.optim.min_lr_ratio, "Final LR as a fraction of --lr")->capture_default_str();
  sub->add_option("--warmup", t.optim.warmup, "Warmup steps")->capture_default_str();
  sub->add_option("--weight-decay", t.optim.weight_decay, "AdamW weight decay (not on norms)")->capture_default_str();
  sub->add_option("--clip", t.optim.clip_norm, "Global gradient-norm clip (0: off)")->capture_default_str();
  sub->add_option("--balance", o->balance, "Load balancing: aux (Switch loss) or bias (DeepSeek-V3)")
      ->capture_default_str();
  sub->add_option("--aux-coef", t.router.aux_coef, "Switch auxiliary loss weight")->capture_default_str();
  sub->add_option("--bias-rate", t.router.bias_rate, "Bias update step (--balance bias)")->capture_default_str();
  sub->add_option("--z-loss", t.router.z_coef, "Router z-loss weight (0: off)")->capture_default_str();
  sub->add_option("--seed", t.seed, "Seed of the initialisation and data order")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  sub->add_option("--checkpoint", o->checkpoint_dir, "Checkpoint directory (written at every evaluation)");
  sub->add_flag("--resume", o->resume, "Continue from the checkpoint in --checkpoint");
  sub->add_option("--eval-every", o->loop.eval_every, "Steps between validation passes")->capture_default_str();
  sub->add_option("--eval-windows", t.eval_windows, "Validation windows per corpus")->capture_default_str();
  sub->add_option("--log-every", o->loop.log_every, "Steps between progress lines")->capture_default_str();
  sub->add_option("--val-fraction", o->val_fraction, "Held-out tail of each corpus")->capture_default_str();
  return [o] { return run_train(*o); };
}

}  // namespace moe::cli

#include "train/loop.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "train/svg.h"

namespace moe::train {

namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// Per-layer share of routed tokens per expert, summed since the last report.
class Utilisation {
 public:
  void add(const std::vector<std::vector<int64_t>>& counts) {
    if (sums_.size() != counts.size()) sums_.assign(counts.size(), {});
    for (size_t l = 0; l < counts.size(); ++l) {
      if (sums_[l].size() != counts[l].size()) sums_[l].assign(counts[l].size(), 0);
      for (size_t e = 0; e < counts[l].size(); ++e) sums_[l][e] += counts[l][e];
    }
  }
  // Returns "L0 [25 24 26 25]% L1 [...]" and resets; empty for a dense model.
  std::string report() {
    std::string out;
    for (size_t l = 0; l < sums_.size(); ++l) {
      int64_t total = 0;
      for (int64_t c : sums_[l]) total += c;
      if (total == 0) continue;
      out += fmt::format("{}L{} [", out.empty() ? "" : " ", l);
      for (size_t e = 0; e < sums_[l].size(); ++e) {
        out += fmt::format("{}{:.0f}", e ? " " : "", 100.0 * static_cast<double>(sums_[l][e]) / static_cast<double>(total));
      }
      out += "]%";
    }
    sums_.clear();
    return out;
  }

 private:
  std::vector<std::vector<int64_t>> sums_;
};

void log_eval(Trainer& trainer) {
  const EvalResult eval = trainer.evaluate();
  std::string per_source;
  const auto& corpora = trainer.data().corpora();
  if (corpora.size() > 1) {
    for (size_t i = 0; i < corpora.size(); ++i) {
      per_source += fmt::format(" | {} {:.4f}", corpora[i].name, eval.loss[i]);
    }
  }
  fmt::print(stderr, "eval step {} | val loss {:.4f} | val ppl {:.2f}{}\n", trainer.step_index(), eval.mean,
             std::exp(eval.mean), per_source);
}

}  // namespace

std::string checkpoint_path(const std::string& dir) { return (std::filesystem::path(dir) / "checkpoint.bin").string(); }

Status run_training(Trainer& trainer, const LoopOptions& options) {
  const TrainOptions& o = trainer.options();
  const int64_t tokens_per_step = o.batch * o.ctx;
  if (!options.checkpoint_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.checkpoint_dir, ec);
    if (ec) return make_error("cannot create checkpoint directory '{}': {}", options.checkpoint_dir, ec.message());
  }
  const int64_t first = trainer.step_index();
  const auto start = Clock::now();
  Utilisation utilisation;
  double loss_sum = 0.0;
  int64_t loss_n = 0;
  while (trainer.step_index() < o.steps) {
    const StepResult r = trainer.step();
    utilisation.add(r.expert_counts);
    loss_sum += r.loss;
    ++loss_n;
    const int64_t step = trainer.step_index();
    const bool last = step == o.steps;
    if (step % options.log_every == 0 || last) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      const double done = static_cast<double>(step - first);
      const double tok_s = done * static_cast<double>(tokens_per_step) / std::max(elapsed, 1e-9);
      const double eta = elapsed / std::max(done, 1.0) * static_cast<double>(o.steps - step);
      fmt::print(stderr, "step {}/{} | loss {:.4f} | aux {:.4f} z {:.4f} | grad {:.2f} | lr {:.2e} | {:.0f} tok/s | ETA {}\n",
                 step, o.steps, loss_sum / static_cast<double>(loss_n), r.aux, r.z, r.grad_norm, r.lr, tok_s,
                 format_duration(eta));
      loss_sum = 0.0;
      loss_n = 0;
    }
    const bool eval_now = (options.eval_every > 0 && step % options.eval_every == 0) || last;
    if (eval_now) {
      log_eval(trainer);
      if (const std::string u = utilisation.report(); !u.empty()) fmt::print(stderr, "experts {}\n", u);
      if (!options.checkpoint_dir.empty()) MOE_TRY(trainer.save_checkpoint(checkpoint_path(options.checkpoint_dir)));
    }
  }
  if (!options.svg_path.empty()) MOE_TRY(write_loss_curve(options.svg_path, trainer.history(), "moe train: loss"));
  return ok_status();
}

}  // namespace moe::train

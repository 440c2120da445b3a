// The training loop around Trainer: progress line on stderr (step, loss, tokens/s, ETA),
// periodic validation with per-corpus loss and perplexity, per-expert utilisation per layer,
// checkpoints, and the loss curve at the end.
#pragma once

#include <string>

#include "core/result.h"
#include "train/trainer.h"

namespace moe::train {

struct LoopOptions {
  int64_t log_every = 10;         // steps between progress lines
  int64_t eval_every = 200;       // steps between validation passes (and checkpoints); 0: at the end only
  std::string checkpoint_dir;     // empty: no checkpoints
  std::string svg_path;           // empty: no loss curve
};

// Returns the checkpoint file inside `dir`.
std::string checkpoint_path(const std::string& dir);

// Steps `trainer` until options().steps, logging to stderr. Returns an error from a failed
// checkpoint or plot write.
Status run_training(Trainer& trainer, const LoopOptions& options);

}  // namespace moe::train

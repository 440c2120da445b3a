// A loss-curve plot as a standalone SVG file (no dependencies): training loss as a line,
// validation loss as dots, step on x, loss on y.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "train/trainer.h"

namespace moe::train {

// Returns the SVG document for `history`.
std::string loss_curve_svg(const std::vector<LossPoint>& history, const std::string& title);

// Writes loss_curve_svg to `path`.
Status write_loss_curve(const std::string& path, const std::vector<LossPoint>& history, const std::string& title);

}  // namespace moe::train

// Reports of expert utilisation: a per-layer table and an SVG heat map (layers x experts).
#pragma once

#include <string>

#include "core/result.h"
#include "model/routing_stats.h"

namespace moe::runtime {

// Returns one line per layer: "L<n> [a b c ...]%" with each expert's share of selections.
std::string routing_table(const model::RoutingStats& stats);

// Returns a standalone SVG heat map: one row per layer, one cell per expert, darker = more
// selections, with the share printed in each cell when there are few experts.
std::string routing_heatmap_svg(const model::RoutingStats& stats, const std::string& title);

}  // namespace moe::runtime

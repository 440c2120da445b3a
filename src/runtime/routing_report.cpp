#include "runtime/routing_report.h"

#include <fmt/format.h>

#include <algorithm>

namespace moe::runtime {

std::string routing_table(const model::RoutingStats& stats) {
  std::string out;
  for (int64_t l = 0; l < stats.n_layer(); ++l) {
    if (stats.tokens(l) == 0) continue;
    out += fmt::format("L{} [", l);
    for (int64_t e = 0; e < stats.n_expert(); ++e) {
      out += fmt::format("{}{:.1f}", e == 0 ? "" : " ", 100.0 * stats.share(l, e));
    }
    out += "]%\n";
  }
  return out;
}

std::string routing_heatmap_svg(const model::RoutingStats& stats, const std::string& title) {
  const int cell = stats.n_expert() <= 16 ? 48 : 12;
  const int left = 50, top = 40;
  const int width = left + static_cast<int>(stats.n_expert()) * cell + 20;
  const int height = top + static_cast<int>(stats.n_layer()) * cell + 40;
  // Uniform routing gives each expert 1/n_expert of the selections; colour relative to twice that.
  const double full = 2.0 / static_cast<double>(std::max<int64_t>(1, stats.n_expert()));
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n",
      width, height, left, title);
  for (int64_t l = 0; l < stats.n_layer(); ++l) {
    const int y = top + static_cast<int>(l) * cell;
    svg += fmt::format("<text x=\"8\" y=\"{}\">L{}</text>\n", y + cell / 2 + 4, l);
    for (int64_t e = 0; e < stats.n_expert(); ++e) {
      const double share = stats.share(l, e);
      const int shade = 255 - static_cast<int>(std::min(1.0, share / full) * 200.0);
      const int x = left + static_cast<int>(e) * cell;
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"rgb({},{},255)\" stroke=\"#ccc\"/>\n",
                         x, y, cell, cell, shade, shade);
      if (cell >= 40) {
        svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:.0f}%</text>\n", x + cell / 2,
                           y + cell / 2 + 4, 100.0 * share);
      }
    }
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\">experts 0..{} (share of each layer's selections)</text>\n</svg>\n",
                     left, height - 12, stats.n_expert() - 1);
  return svg;
}

}  // namespace moe::runtime

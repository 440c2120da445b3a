#include "train/svg.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>

namespace moe::train {

namespace {

constexpr double kWidth = 800, kHeight = 480, kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;

struct Axes {
  double x0, x1, y0, y1;
  double x(double step) const { return kLeft + (step - x0) / std::max(1.0, x1 - x0) * (kWidth - kLeft - kRight); }
  double y(double loss) const {
    return kTop + (y1 - loss) / std::max(1e-9, y1 - y0) * (kHeight - kTop - kBottom);
  }
};

Axes fit_axes(const std::vector<LossPoint>& history) {
  Axes a{0, 1, 0, 1};
  if (history.empty()) return a;
  a.x0 = static_cast<double>(history.front().step);
  a.x1 = static_cast<double>(history.back().step);
  a.y0 = INFINITY;
  a.y1 = -INFINITY;
  for (const LossPoint& p : history) {
    for (double v : {p.train, p.valid}) {
      if (!std::isfinite(v)) continue;
      a.y0 = std::min(a.y0, v);
      a.y1 = std::max(a.y1, v);
    }
  }
  if (!std::isfinite(a.y0)) a.y0 = 0, a.y1 = 1;
  const double pad = std::max(0.05, 0.05 * (a.y1 - a.y0));
  a.y0 = std::max(0.0, a.y0 - pad);
  a.y1 += pad;
  return a;
}

std::string grid(const Axes& a) {
  std::string out;
  for (int i = 0; i <= 5; ++i) {
    const double loss = a.y0 + (a.y1 - a.y0) * i / 5.0;
    const double step = a.x0 + (a.x1 - a.x0) * i / 5.0;
    out += fmt::format(R"(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#ddd"/>)"
                       R"(<text x="{3}" y="{4:.1f}" text-anchor="end">{5:.2f}</text>)"
                       "\n",
                       kLeft, a.y(loss), kWidth - kRight, kLeft - 6, a.y(loss) + 4, loss);
    out += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{:.0f}</text>)"
                       "\n",
                       a.x(step), kHeight - kBottom + 18, step);
  }
  return out;
}

}  // namespace

std::string loss_curve_svg(const std::vector<LossPoint>& history, const std::string& title) {
  const Axes a = fit_axes(history);
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">)"
      "\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      R"(<text x="{}" y="24" font-size="15">{}</text>)"
      "\n",
      kWidth, kHeight, kLeft, title);
  svg += grid(a);
  svg += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">step</text>)"
                     "\n",
                     (kLeft + kWidth - kRight) / 2, kHeight - 12);
  std::string line;
  for (const LossPoint& p : history) {
    if (std::isfinite(p.train)) line += fmt::format("{:.1f},{:.1f} ", a.x(static_cast<double>(p.step)), a.y(p.train));
  }
  svg += fmt::format(R"(<polyline fill="none" stroke="#1f77b4" stroke-width="1.2" points="{}"/>)"
                     "\n",
                     line);
  for (const LossPoint& p : history) {
    if (!std::isfinite(p.valid)) continue;
    svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3.5" fill="#d62728"/>)"
                       "\n",
                       a.x(static_cast<double>(p.step)), a.y(p.valid));
  }
  svg += fmt::format(R"(<text x="{0}" y="{1}" fill="#1f77b4">train loss</text>)"
                     R"(<text x="{0}" y="{2}" fill="#d62728">validation loss</text>)"
                     "\n</svg>\n",
                     kWidth - kRight - 120, kTop + 14, kTop + 30);
  return svg;
}

Status write_loss_curve(const std::string& path, const std::vector<LossPoint>& history, const std::string& title) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return make_error("cannot write loss curve '{}'", path);
  out << loss_curve_svg(history, title);
  if (!out) return make_error("writing loss curve '{}' failed", path);
  return ok_status();
}

}  // namespace moe::train

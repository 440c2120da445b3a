// A one-line progress bar on stderr, redrawn in place; silent when stderr is not a terminal
// unless forced, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace moe::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled) : label_(std::move(label)), enabled_(enabled) {}

  // Redraws for `done` of `total` items (at most ~10 times a second, and always at the end).
  void update(size_t done, size_t total) {
    if (!enabled_ || total == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30;
    const int filled = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    const bool tty = isatty(fileno(stderr)) != 0;
    std::fprintf(stderr, "%s%s [%s] %zu/%zu%s", tty ? "\r" : "", label_.c_str(), bar.c_str(), done, total,
                 (done == total || !tty) ? "\n" : "");
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace moe::cli

#include "moe/store_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace moe::experts {

namespace {

// "layer 3: 12 (9.1%) 40 (7.7%) ..." for the `top` most used experts of a layer.
std::string layer_line(const StoreStats& s, int64_t layer, int top) {
  std::vector<int64_t> order(static_cast<size_t>(s.n_expert));
  std::iota(order.begin(), order.end(), 0);
  const auto count = [&](int64_t e) { return s.uses[static_cast<size_t>(layer * s.n_expert + e)]; };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return count(a) > count(b); });
  int64_t total = 0;
  for (int64_t e = 0; e < s.n_expert; ++e) total += count(e);
  if (total == 0) return {};
  std::string line = fmt::format("  layer {:>2}:", layer);
  for (int i = 0; i < top && i < static_cast<int>(order.size()); ++i) {
    const int64_t e = order[static_cast<size_t>(i)];
    line += fmt::format(" {} ({:.1f}%)", e, 100.0 * static_cast<double>(count(e)) / static_cast<double>(total));
  }
  return line + "\n";
}

}  // namespace

std::string format_store_stats(const StoreStats& s, bool per_layer) {
  std::string out = fmt::format(
      "expert store: {} tokens, {} expert uses, hit rate {:.1f}% ({} hits, {} late prefetches, {} misses), "
      "{} evictions\n",
      s.tokens, s.expert_uses, 100.0 * s.hit_rate(), s.hits, s.late_prefetches, s.misses, s.evictions);
  out += fmt::format("  reads: {} experts ({} prefetched, {} of those used), {:.1f} MB/token, I/O stall {:.2f} ms/token\n",
                     s.reads, s.prefetch_reads, s.prefetch_used, s.bytes_per_token() / 1e6,
                     1e3 * s.stall_seconds_per_token());
  out += fmt::format("  next-layer prediction: precision {:.1f}%, recall {:.1f}% ({} predicted, {} correct)\n",
                     100.0 * s.precision(), 100.0 * s.recall(), s.predicted, s.predicted_correct);
  if (per_layer) {
    out += "  most used experts per layer (share of the layer's uses):\n";
    for (int64_t l = 0; l < s.n_layer; ++l) out += layer_line(s, l, 8);
  }
  return out;
}

}  // namespace moe::experts

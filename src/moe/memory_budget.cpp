#include "moe/memory_budget.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace moe::experts {

Result<uint64_t> parse_size(std::string_view text) {
  const std::string original(text);
  size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) != 0 || text[end] == '.')) ++end;
  if (end == 0) return make_error("'{}' is not a size (examples: 512M, 2G, 1.5GiB)", original);
  double value = 0.0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
  if (ec != std::errc() || ptr != text.data() + end) return make_error("'{}' is not a size", original);
  std::string unit(text.substr(end));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) {
    unit.erase(unit.size() - 2);
  } else if (unit.size() > 1 && unit.ends_with("B")) {
    unit.pop_back();
  } else if (unit == "B") {
    unit.clear();
  }
  double scale = 1.0;
  if (unit == "K") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024.0;
  } else if (unit == "G") {
    scale = 1024.0 * 1024.0 * 1024.0;
  } else if (unit == "T") {
    scale = 1024.0 * 1024.0 * 1024.0 * 1024.0;
  } else if (!unit.empty()) {
    return make_error("'{}' has an unknown unit (use K, M, G or T)", original);
  }
  const double bytes = value * scale;
  if (!(bytes >= 1.0) || bytes > 9.0e18) return make_error("'{}' is not a positive size", original);
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string format_size(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", b / (1 << 30));
  if (bytes >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", b / (1 << 20));
  if (bytes >= (uint64_t{1} << 10)) return fmt::format("{:.1f} KiB", b / (1 << 10));
  return fmt::format("{} B", bytes);
}

namespace {

std::optional<uint64_t> read_limit_file(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc()) return std::nullopt;
  // cgroup v1 reports "no limit" as a huge page-rounded number (e.g. 9223372036854771712).
  if (value >= (uint64_t{1} << 60)) return std::nullopt;
  return value;
}

// The tightest limit on `dir` and its ancestors under `root`.
std::optional<uint64_t> tightest_limit(const std::string& root, std::string dir, const char* file) {
  std::optional<uint64_t> best;
  for (;;) {
    if (auto limit = read_limit_file(root + dir + "/" + file)) best = best ? std::min(*best, *limit) : *limit;
    if (dir.empty() || dir == "/") break;
    const size_t slash = dir.find_last_of('/');
    dir = slash == std::string::npos ? std::string() : dir.substr(0, slash);
  }
  return best;
}

}  // namespace

std::optional<uint64_t> cgroup_memory_limit(const std::string& cgroup_file, const std::string& cgroup_root) {
  std::ifstream in(cgroup_file);
  std::optional<uint64_t> best;
  auto take = [&](std::optional<uint64_t> limit) {
    if (limit) best = best ? std::min(*best, *limit) : *limit;
  };
  // Lines are "id:controllers:path"; v1 names the memory controller, v2 is "0::path".
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    std::stringstream list(controllers);
    bool memory = false;
    for (std::string c; std::getline(list, c, ',');) memory = memory || c == "memory";
    if (memory) take(tightest_limit(cgroup_root + "/memory", path, "memory.limit_in_bytes"));
    if (controllers.empty()) take(tightest_limit(cgroup_root, path, "memory.max"));
  }
  return best;
}

std::optional<uint64_t> mem_available(const std::string& meminfo) {
  std::ifstream in(meminfo);
  for (std::string key; in >> key;) {
    uint64_t kib = 0;
    if (!(in >> kib)) return std::nullopt;
    if (key == "MemAvailable:") return kib * 1024;
    std::string rest;
    std::getline(in, rest);
  }
  return std::nullopt;
}

Result<uint64_t> default_memory_budget() {
  std::optional<uint64_t> limit = cgroup_memory_limit();
  if (auto available = mem_available()) limit = limit ? std::min(*limit, *available) : *available;
  if (!limit) return make_error("cannot tell how much memory is available (no cgroup limit, no MemAvailable); pass --mem-budget");
  const uint64_t margin = std::clamp<uint64_t>(*limit / 16, uint64_t{64} << 20, uint64_t{1} << 30);
  if (*limit <= margin) return make_error("only {} of memory is available", format_size(*limit));
  return *limit - margin;
}

}  // namespace moe::experts

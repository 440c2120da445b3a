// Diagnostics go to stderr so that stdout carries only generated text (scripts depend on it).
#pragma once

#include <cstdio>
#include <utility>

#include <fmt/format.h>

namespace moe {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kSilent = 4 };

// Returns the current threshold; messages below it are dropped.
LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  fmt::print(stderr, format, std::forward<Args>(args)...);
  std::fputc('\n', stderr);
}

#define MOE_LOG_DEBUG(...) ::moe::log(::moe::LogLevel::kDebug, __VA_ARGS__)
#define MOE_LOG_INFO(...) ::moe::log(::moe::LogLevel::kInfo, __VA_ARGS__)
#define MOE_LOG_WARN(...) ::moe::log(::moe::LogLevel::kWarn, __VA_ARGS__)
#define MOE_LOG_ERROR(...) ::moe::log(::moe::LogLevel::kError, __VA_ARGS__)

}  // namespace moe

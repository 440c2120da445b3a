// MOE_CHECK: an internal invariant that stays on in release builds. A failure is a bug in
// moe.cpp (never bad user input, which returns an Error), so it prints file:line and aborts.
#pragma once

namespace moe::detail {
[[noreturn]] void check_failed(const char* condition, const char* file, int line, const char* message);
}  // namespace moe::detail

#define MOE_CHECK(cond)                                                  \
  do {                                                                   \
    if (!(cond)) ::moe::detail::check_failed(#cond, __FILE__, __LINE__, ""); \
  } while (0)

#define MOE_CHECK_MSG(cond, msg)                                            \
  do {                                                                      \
    if (!(cond)) ::moe::detail::check_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)

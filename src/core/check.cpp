#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace moe::detail {

void check_failed(const char* condition, const char* file, int line, const char* message) {
  std::fprintf(stderr, "moe: internal check failed at %s:%d: %s %s\n", file, line, condition, message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace moe::detail

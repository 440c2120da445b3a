// CPU feature detection, read once from cpuid (and xgetbv for OS-enabled register state).
#pragma once

#include <string>

namespace moe {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool amx_bf16 = false;  // AMX tiles with bf16 products, and XCR0 enables tile state
  bool amx_int8 = false;  // AMX tiles with int8 products, and XCR0 enables tile state
};

// Returns the features of the running CPU, detected on first call. Setting the environment
// variable MOE_FORCE_ISA to "scalar", "avx2" or "avx512" caps what is reported (for tests and
// comparisons).
const CpuFeatures& cpu_features();

// Returns a short description like "avx512 (vnni, bf16)" for logs and benchmark output.
std::string describe_cpu_features();

// Returns the number of physical cores (falls back to logical CPUs when it cannot tell).
int physical_core_count();

}  // namespace moe

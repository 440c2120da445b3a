#include "core/cpu_features.h"

#include <cpuid.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace moe {

namespace {

unsigned long long read_xcr0() {
  unsigned int eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = (ecx & bit_OSXSAVE) != 0;
  if (!osxsave) return f;
  const unsigned long long xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;            // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;       // plus opmask and ZMM state
  f.fma = os_avx && (ecx & bit_FMA);
  f.f16c = os_avx && (ecx & bit_F16C);
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = os_avx && (ebx & bit_AVX2);
    f.avx512f = os_avx512 && (ebx & bit_AVX512F);
    f.avx512bw = os_avx512 && (ebx & bit_AVX512BW);
    f.avx512vl = os_avx512 && (ebx & bit_AVX512VL);
    f.avx512vnni = os_avx512 && (ecx & bit_AVX512VNNI);
    // AMX: EDX bit 22 (AMX-BF16) and bit 24 (AMX-TILE); XCR0 bits 17-18 (TILECFG, TILEDATA).
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;
    f.amx_bf16 = os_amx && f.avx512f && (edx & (1u << 22)) && (edx & (1u << 24));
    f.amx_int8 = os_amx && f.avx512f && (edx & (1u << 25)) && (edx & (1u << 24));  // AMX-INT8, AMX-TILE
  }
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
    f.avx512bf16 = f.avx512f && (eax & bit_AVX512BF16);
  }
  if (const char* forced = std::getenv("MOE_FORCE_ISA")) {
    if (std::strcmp(forced, "scalar") == 0) {
      f = CpuFeatures{};
    } else if (std::strcmp(forced, "avx2") == 0) {
      f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = f.avx512bf16 = false;
    }
  }
  // Our tile kernels convert to bf16 with AVX-512 BF16 instructions.
  f.amx_bf16 = f.amx_bf16 && f.avx512bf16;
  // The int8 tile kernels prepare operands and scale results with AVX-512 BW / VNNI.
  f.amx_int8 = f.amx_int8 && f.avx512bw && f.avx512vnni;
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string describe_cpu_features() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512vl) {
    std::string s = "avx512";
    if (f.avx512vnni) s += "+vnni";
    if (f.avx512bf16) s += "+bf16";
    if (f.amx_bf16) s += "+amx";
    return s;
  }
  if (f.avx2 && f.fma && f.f16c) return "avx2";
  return "scalar";
}

int physical_core_count() {
  // Count distinct (physical id, core id) pairs; hyperthreads share a pair.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int physical_id = 0;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("physical id", 0) == 0) {
      physical_id = std::atoi(line.substr(line.find(':') + 1).c_str());
    } else if (line.rfind("core id", 0) == 0) {
      cores.insert({physical_id, std::atoi(line.substr(line.find(':') + 1).c_str())});
    }
  }
  const long logical = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores.empty()) return logical > 0 ? static_cast<int>(logical) : 1;
  return static_cast<int>(cores.size());
}

}  // namespace moe

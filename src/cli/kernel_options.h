// The kernel switches shared by the commands that evaluate prompts (run, bench).
#pragma once

#include <CLI/CLI.hpp>

namespace moe::cli {

struct KernelOptions {
  bool amx = false;    // --amx: batched products on the AMX tile unit in bf16
  bool exact = false;  // --exact: every product on the int8 / fp32 dot kernels (llama.cpp's bits)
};

// Adds --amx and --exact.
void add_kernel_options(CLI::App& app, KernelOptions& options);

// Applies them (MOE_AMX=1 and MOE_INT8_TILES=0 in the environment do the same). Warns and keeps
// the other kernels when the CPU or the kernel cannot run AMX-BF16.
void apply_kernel_options(const KernelOptions& options);

// Returns a one-line description of the prefill kernels in use, for benchmark output.
const char* prefill_kernels_description();

}  // namespace moe::cli

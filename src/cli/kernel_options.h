// The kernel switches shared by the commands that evaluate prompts (run, bench).
#pragma once

#include <CLI/CLI.hpp>

namespace moe::cli {

// Adds --amx: batched products (prompts, big expert groups) on the AMX tile unit in bf16.
void add_kernel_options(CLI::App& app, bool& amx);

// Applies --amx (MOE_AMX=1 in the environment does the same). Warns and keeps the int8
// kernels when the CPU or the kernel cannot run AMX-BF16.
void apply_kernel_options(bool amx);

// Returns a one-line description of the prefill kernels in use, for benchmark output.
const char* prefill_kernels_description();

}  // namespace moe::cli

// How much memory the process may use: parsed from "--mem-budget 2G", or by default what its
// cgroup (v1 or v2) or the machine (MemAvailable) allows, minus a margin for everything the
// budget does not count (code, stacks, allocator slack).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace moe::experts {

// Parses "512M", "2G", "1.5GiB", "4096" (bytes; K/M/G/T are powers of 1024, with or without
// "i" and "B"). Returns an error naming the text when it is not a positive size.
Result<uint64_t> parse_size(std::string_view text);

// Returns "1.50 GiB", "512.0 MiB", "812 B" for messages.
std::string format_size(uint64_t bytes);

// Returns the memory limit of the cgroup that `cgroup_file` (a /proc/<pid>/cgroup) names, read
// under `cgroup_root` (/sys/fs/cgroup): v1 memory.limit_in_bytes or v2 memory.max, walking up
// to the root. nullopt when there is no limit. Parameters exist for tests.
std::optional<uint64_t> cgroup_memory_limit(const std::string& cgroup_file = "/proc/self/cgroup",
                                            const std::string& cgroup_root = "/sys/fs/cgroup");

// Returns MemAvailable from `meminfo` (/proc/meminfo), or nullopt.
std::optional<uint64_t> mem_available(const std::string& meminfo = "/proc/meminfo");

// Returns the default budget: min(cgroup limit, MemAvailable) minus a margin of 1/16 of it
// (at least 64 MiB, at most 1 GiB). Errors when neither can be read.
Result<uint64_t> default_memory_budget();

}  // namespace moe::experts
